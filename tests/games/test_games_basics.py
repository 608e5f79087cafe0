"""GameParams, quantize and the cost model against hand-computed values."""
import math

import pytest

from pocnet.games.cost import (
    completion_time,
    computation_time,
    cycles_per_round,
    deadline_min_frequency,
    energy_cost,
    transmission_time,
)
from pocnet.games.params import GameParams
from pocnet.games.quantize import dequantize, quantize

P = GameParams()


def test_defaults_are_formulas_md():
    assert (P.tau, P.cycles_per_sample, P.kappa, P.model_size_bits) == (10, 62720.0, 1e-26, 10e6)
    assert (P.mu, P.R, P.C_min, P.C_max) == (0.1, 5.0, 5.0, 15.0)
    assert (P.rho0, P.r_th, P.theta, P.decline, P.lam, P.beta, P.omega, P.epsilon) == (
        0.5, 0.5, 10.0, 0.7, 0.2, 25.0, 0.5, 1e-9)
    assert (P.n_learners, P.n_coalitions, P.active_share) == (40, 4, 0.9)


def test_params_roundtrip_and_errors():
    p = GameParams.from_dict({"beta": 30, "n_coalitions": 6, "freq_range_hz": [1e8, 3e9]})
    assert p.beta == 30.0 and p.n_coalitions == 6 and p.freq_range_hz == (1e8, 3e9)
    assert GameParams.from_dict(p.to_dict()) == p
    with pytest.raises(ValueError, match="params.bogus"):
        GameParams.from_dict({"bogus": 1})
    with pytest.raises(ValueError, match="C_max"):
        GameParams.from_dict({"C_min": 10, "C_max": 5})
    with pytest.raises(ValueError, match="params.mu"):
        GameParams.from_dict({"mu": "x"})
    with pytest.raises(ValueError, match="n_coalitions"):
        GameParams.from_dict({"n_coalitions": 2.5})


def test_quantize():
    assert quantize(1.5) == 1_500_000
    assert quantize(-0.0000015) == -2  # the double nearest 1.5e-6 is a hair above it, so not a tie
    assert quantize(0.5, scale=1) == 0 and quantize(1.5, scale=1) == 2  # half to even
    assert quantize(2.5, scale=1) == 2
    assert quantize(12.345678949) == 12_345_679
    assert dequantize(quantize(3.25)) == 3.25
    for bad in (math.nan, math.inf, -math.inf):
        with pytest.raises(ValueError):
            quantize(bad)
    with pytest.raises(TypeError):
        quantize("1")  # type: ignore[arg-type]


def test_cost_model_by_hand():
    q = cycles_per_round(1000, P)
    assert q == 10 * 62720 * 1000 == 627_200_000
    # E = mu kappa Q f^2 = 0.1 * 1e-26 * 6.272e8 * (1e9)^2 = 0.6272
    assert energy_cost(1e9, q, 1e-26, P) == pytest.approx(0.6272, rel=1e-12)
    assert computation_time(q, 1e9) == pytest.approx(0.6272)  # 6.272e8 / 1e9
    assert transmission_time(5e6, P) == pytest.approx(2.0)  # 1e7 bits / 5e6 bit/s
    assert completion_time(q, 1e9, 5e6, P) == pytest.approx(2.6272)
    # f^T = Q / (T - t_com) = 6.272e8 / (3.2544 - 2) = 5e8
    assert deadline_min_frequency(q, 3.2544, 2.0) == pytest.approx(5e8, rel=1e-12)
    assert deadline_min_frequency(q, 2.0, 2.0) == math.inf
    with pytest.raises(ValueError):
        computation_time(q, 0.0)
    with pytest.raises(ValueError):
        transmission_time(0.0, P)
