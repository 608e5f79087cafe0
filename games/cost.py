"""Cost and time model of one learner (docs/model.md § Cost and time, eqs. 6-9, 21).

Units: cycles, Hz, bits, bit/s, seconds. Communication energy is neglected as
in the paper, so the only cost is computation energy.
"""
from __future__ import annotations

import math

from pocnet.games.params import GameParams


def cycles_per_round(data_size: float, params: GameParams) -> float:
    """Q_i = tau * c * D_i: one pass over the local data per local iteration (ours)."""
    if data_size < 0:
        raise ValueError("data_size: must be >= 0")
    return params.tau * params.cycles_per_sample * data_size


def energy_cost(frequency: float, cycles: float, kappa: float, params: GameParams) -> float:
    """E_i(f) = mu * kappa_i * Q_i * f^2 (priced computation energy)."""
    return params.mu * kappa * cycles * frequency * frequency


def computation_time(cycles: float, frequency: float) -> float:
    """t_cmp = Q_i / f_i."""
    if frequency <= 0:
        raise ValueError("frequency: must be > 0")
    return cycles / frequency


def transmission_time(rate: float, params: GameParams) -> float:
    """t_com = Z / r_i (uplink to the head; downlink neglected)."""
    if rate <= 0:
        raise ValueError("rate: must be > 0")
    return params.model_size_bits / rate


def completion_time(cycles: float, frequency: float, rate: float, params: GameParams) -> float:
    """t_i = t_cmp + t_com."""
    return computation_time(cycles, frequency) + transmission_time(rate, params)


def deadline_min_frequency(cycles: float, deadline: float, tx_time: float) -> float:
    """f^T = Q_i / (T_h - t_com): the slowest clock that meets the head's deadline.

    ``math.inf`` when the upload alone already misses the deadline (infeasible).
    """
    slack = deadline - tx_time
    if slack <= 0:
        return math.inf
    return cycles / slack
