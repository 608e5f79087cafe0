"""Spot checks (fml.perfedavg.local_train_spot / spot_check): the head re-executes committed steps."""
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from pocnet.fml.learners import make_population
from pocnet.fml.model import init_params
from pocnet.fml.perfedavg import PerFedAvgConfig, StackedSampler, local_train, local_train_spot, spot_check
from pocnet.fml.training import SPOT_CHECKS, Trainer

CFG = PerFedAvgConfig()


def _sampler(n: int) -> StackedSampler:
    g = torch.Generator().manual_seed(5)
    x = torch.randn(100 * n, 784, generator=g)
    y = torch.randint(0, 10, (100 * n,), generator=g)
    return StackedSampler(x, y, torch.arange(n) * 100, torch.full((n,), 100))


@settings(max_examples=8, deadline=None)
@given(iters=st.lists(st.integers(0, 4), min_size=2, max_size=3),
       steps=st.lists(st.integers(1, 4), min_size=2, max_size=3))
def test_spot_checks_pass_exactly_the_steps_a_learner_ran(iters, steps):
    """Same result as local_train (checking changes nothing the learners compute); a
    challenged step re-executes iff the learner ran it."""
    n = min(len(iters), len(steps))
    iters, steps = iters[:n], steps[:n]
    torch.set_num_threads(1)
    s, p, who = _sampler(n), init_params(n, 0), torch.arange(n)
    it = torch.tensor(iters)
    plain = local_train(p, s, who, it, CFG, torch.Generator().manual_seed(1))
    out, kept = local_train_spot(p, s, who, it, CFG, torch.Generator().manual_seed(1),
                                 torch.tensor(steps).view(n, 1), torch.Generator().manual_seed(2))
    assert all(torch.equal(a, b) for a, b in zip(plain, out))
    assert sorted((j, t) for j, t, *_ in kept) == sorted(enumerate(steps))
    for j, t, before, batches, after in kept:
        assert spot_check(before, batches, after, CFG) == (t <= iters[j]), (j, t, iters[j])


def test_trainer_verifies_honest_fully_and_free_riders_never():
    from tests.fml_toy import toy_dataset  # one toy MNIST-shaped dataset for the suite

    torch.set_num_threads(1)
    pop = make_population(toy_dataset(), 8, seed=3)
    tr = Trainer(pop, CFG, seed=3)
    members = list(range(8))
    iters = {j: 10 for j in members[:6]} | {6: 2, 7: 0}
    res = tr.train_round({0: members}, iters, inflate={6}, committed=10)[0]
    assert all(res.verified[j] == 1.0 for j in members[:6])
    assert res.verified[7] == 0.0
    assert res.verified[6] in (0.0, 0.5, 1.0) and SPOT_CHECKS == 2


def test_spot_check_rejects_a_moved_result():
    torch.set_num_threads(1)
    s, p = _sampler(1), init_params(1, 0)
    _, kept = local_train_spot(p, s, torch.arange(1), torch.tensor([2]), CFG, torch.Generator().manual_seed(1),
                               torch.tensor([[2]]), torch.Generator().manual_seed(2))
    (_, _, before, batches, after), = kept
    assert spot_check(before, batches, after, CFG)
    nudged = tuple(a + 1e-3 * torch.randn(a.shape, generator=torch.Generator().manual_seed(9)) for a in after)
    assert not spot_check(before, batches, nudged, CFG)
    with pytest.raises(ValueError):
        spot_check(before, batches[:2], after, CFG)
