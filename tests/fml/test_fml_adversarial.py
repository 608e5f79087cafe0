"""Adversarial learners against settlement on evidence of work (reduced runs, real Fashion-MNIST)."""
import pytest
import torch

from pocnet.fml.data import DataMissingError, load_dataset
from pocnet.fml.driver import KINDS, RunConfig, run
from pocnet.fml.learners import make_population
from pocnet.fml.perfedavg import PerFedAvgConfig
from pocnet.fml.schemes import OfflineCoordinator
from pocnet.fml.training import Trainer
from pocnet.games.params import GameParams


@pytest.fixture(scope="module")
def fashion():
    try:
        return load_dataset("fashion-mnist", limit=8000)
    except DataMissingError as exc:  # pragma: no cover - CI installs it (scripts/setup.sh)
        pytest.skip(str(exc))


def test_kind_is_validated():
    assert RunConfig(disguise=True).kind() == "disguised"
    assert RunConfig(misbehaviour_kind="noisy", disguise=True).kind() == "noisy"
    with pytest.raises(ValueError):
        RunConfig(misbehaviour_kind="sneaky").kind()
    assert KINDS == ("lazy", "disguised", "noisy", "free-rider")


def test_head_measurements_expose_the_strategies(fashion):
    """Noise makes a lazy update as long as the honest median but adds no work; a returned model shows none."""
    torch.set_num_threads(1)
    pop = make_population(fashion, 8, seed=1)
    tr = Trainer(pop, PerFedAvgConfig(), seed=1)
    members = list(range(8))
    honest, lazy, noisy, rider = members[:5], 5, 6, 7
    iters = {j: 10 for j in honest} | {lazy: 2, noisy: 2, rider: 0}
    res = tr.train_round({0: members}, iters, inflate={noisy})[0]
    med = sorted(res.grad_norm[j] for j in honest)[2]
    assert res.grad_norm[noisy] == pytest.approx(med, rel=1e-3)
    assert res.grad_norm[rider] == 0.0 and res.own_gain[rider] == 0.0
    low = min(res.own_gain[j] for j in honest)
    assert res.own_gain[noisy] < low and res.own_gain[lazy] < low


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["disguised", "noisy", "free-rider"])
def test_disguised_strategies_earn_less_than_honest(fashion, kind):
    torch.set_num_threads(1)
    cfg = RunConfig(n_learners=16, n_coalitions=2, rounds=4, misbehave_rate=0.25, misbehaviour_kind=kind)
    p = GameParams(n_learners=16, n_coalitions=2)
    res = run(OfflineCoordinator("gfml", p), fashion, cfg, 0, p)
    f = res.final
    assert f["profit_per_honest"] > f["profit_per_misbehaving"], f
    assert res.config["misbehaviour_kind"] == kind
