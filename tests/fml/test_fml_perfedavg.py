"""Model shapes, Per-FedAvg HF step, aggregation and leave-one-out weights."""
import torch

from pocnet.fml.model import LAYERS, flat, forward, grads, init_params, per_model_loss, select
from pocnet.fml.perfedavg import PerFedAvgConfig, StackedSampler, adapt, aggregate, hf_step, leave_one_out_models, local_train

torch.set_num_threads(1)


def test_shapes():
    p = init_params(3, seed=0)
    assert [tuple(t.shape) for t in p] == [(3, 784, 80), (3, 80), (3, 80, 60), (3, 60), (3, 60, 10), (3, 10)]
    x = torch.rand(3, 5, 784)
    assert forward(p, x).shape == (3, 5, 10)
    assert forward(p, x, hidden=True).shape == (3, 5, 60)
    assert LAYERS == (784, 80, 60, 10)
    assert torch.equal(p[0][0], p[0][2])  # one initialisation copied


def _toy(n=2, b=64, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(n, b, 784, generator=g)
    y = (x[:, :, :392].sum(-1) > x[:, :, 392:].sum(-1)).long()
    return x, y


def test_hf_step_reduces_loss():
    p = init_params(2, seed=1)
    x, y = _toy()
    cfg = PerFedAvgConfig(alpha=0.05, beta=0.2, delta=1e-3)
    before = per_model_loss(p, x, y)
    for _ in range(5):
        p = hf_step(p, ((x, y), (x, y), (x, y)), cfg)
    after = per_model_loss(p, x, y)
    assert (after < before).all()


def test_hf_step_is_applied_to_original_weights():
    """With alpha = 0 the HF step is plain SGD from w: w - beta grad F(w)."""
    p = init_params(1, seed=2)
    x, y = _toy(1)
    cfg = PerFedAvgConfig(alpha=0.0, beta=0.1)
    new = hf_step(p, ((x, y), (x, y), (x, y)), cfg)
    g, _ = grads(p, x, y)
    for a, w, gi in zip(new, p, g):
        assert torch.allclose(a, w - 0.1 * gi, atol=1e-6)


def test_mask_freezes_models_and_iters():
    p = init_params(3, seed=0)
    x = torch.rand(300, 784)
    y = torch.randint(0, 10, (300,))
    s = StackedSampler(x, y, torch.tensor([0, 100, 200]), torch.tensor([100, 100, 100]))
    out = local_train(p, s, torch.tensor([0, 1, 2]), torch.tensor([0, 1, 3]), PerFedAvgConfig(), torch.Generator().manual_seed(0))
    d = (flat(out) - flat(p)).norm(dim=1)
    assert d[0] == 0 and d[1] > 0 and d[2] > d[1] * 0.5


def test_aggregation_weighted_by_data_size():
    p = init_params(3, seed=0)
    p = tuple(t + torch.arange(3, dtype=torch.float32).view(-1, *([1] * (t.dim() - 1))) for t in p)
    w = torch.tensor([100.0, 300.0, 600.0])
    agg = aggregate(p, w)
    expect = (flat(p) * (w / w.sum()).unsqueeze(1)).sum(0)
    assert torch.allclose(flat(agg)[0], expect, atol=1e-5)
    loo = leave_one_out_models(p, w)
    for j in range(3):
        keep = [k for k in range(3) if k != j]
        ref = aggregate(select(p, keep), w[keep])
        assert torch.allclose(flat(select(loo, [j]))[0], flat(ref)[0], atol=1e-5)


def test_adapt_moves_towards_local_data():
    p = init_params(1, seed=3)
    x, y = _toy(1)
    assert per_model_loss(adapt(p, x, y, 0.1, 3), x, y) < per_model_loss(p, x, y)
