"""Per-FedAvg, Hessian-free variant (Fallah, Mokhtari, Ozdaglar 2020; docs/model.md).

Local step on learner i with three independent batches D, D', D'':

    w_tmp = w - alpha * grad F_i(w; D)                    (inner / adaptation step)
    v     = grad F_i(w_tmp; D')                           (outer gradient at adapted w)
    Hv   ~= (grad F_i(w + d v; D'') - grad F_i(w - d v; D'')) / (2 d),  d = delta / max(1, |v|)
    w    <- w - beta * (v - alpha * Hv)                   (applied to the ORIGINAL w)

alpha is the personalisation step (also used at evaluation), beta the meta
step, delta the finite-difference radius of the Hessian-vector product.
All functions work on stacked models (see fml.model): one call trains every
learner of the round at once; ``iters`` lets each learner stop after its own
number of iterations (misbehaving learners do fewer than committed).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from pocnet.fml.model import Params, axpy, flat, grads, per_model_loss


@dataclass(frozen=True)
class PerFedAvgConfig:
    """Hyper-parameters of the learning side (not game parameters)."""

    alpha: float = 0.03  # inner / personalisation step size
    beta: float = 0.1  # meta (outer) step size
    delta: float = 1e-3  # finite-difference radius of the HF Hessian-vector product
    batch: int = 32  # samples in each of D, D', D''
    personal_steps: int = 1  # alpha-steps at evaluation time
    max_update_norm: float = 10.0  # clip of the meta-gradient norm per step (ours, stability)


def hf_step(
    params: Params,
    batches: tuple[tuple[torch.Tensor, ...], ...],  # (x, y) per batch
    cfg: PerFedAvgConfig,
    mask: torch.Tensor | None = None,
) -> Params:
    """One Per-FedAvg HF step for every stacked model; ``mask [n]`` freezes some."""
    (x1, y1), (x2, y2), (x3, y3) = batches
    g1, _ = grads(params, x1, y1)
    w_tmp = axpy(-cfg.alpha, g1, params)
    v, _ = grads(w_tmp, x2, y2)
    # finite-difference radius per model: delta along the unit direction of v
    vnorm = flat(v).norm(dim=1).clamp_min(1e-12)
    rad = cfg.delta / vnorm.clamp_min(1.0)
    gp, _ = grads(axpy(rad, v, params), x3, y3)
    gm, _ = grads(axpy(-rad, v, params), x3, y3)
    scale = cfg.alpha / (2.0 * rad)
    upd = tuple(vi - _per_model(scale, vi) * (a - b) for vi, a, b in zip(v, gp, gm))
    # guard (ours): clip the meta-gradient norm, as is usual for SGD on MLPs;
    # without it a rare learner diverged to NaN in the first experiments
    unorm = flat(upd).norm(dim=1)
    shrink = (cfg.max_update_norm / unorm.clamp_min(1e-12)).clamp(max=1.0)
    new = tuple(w - cfg.beta * _per_model(shrink, u) for w, u in zip(params, upd))
    ok = torch.isfinite(flat(new)).all(dim=1)
    keep = ok if mask is None else (mask & ok)
    if bool(keep.all()):
        return new
    return tuple(
        torch.where(keep.view(-1, *([1] * (w.dim() - 1))), nw, w) for nw, w in zip(new, params)
    )


def _per_model(a: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    return a.view(-1, *([1] * (x.dim() - 1))) * x


class StackedSampler:
    """Draws per-learner minibatches from one contiguous pool of training data.

    Learner j's samples sit at ``pool_x[offset[j] : offset[j] + size[j]]``.
    """

    def __init__(self, pool_x: torch.Tensor, pool_y: torch.Tensor, offset: torch.Tensor, size: torch.Tensor):
        self.pool_x, self.pool_y = pool_x, pool_y
        self.offset, self.size = offset.long(), size.long()

    def sample(self, who: torch.Tensor, batch: int, gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        """``x [len(who), batch, 784], y [len(who), batch]`` drawn with replacement."""
        return self.take(who, torch.rand(len(who), batch, generator=gen))

    def take(self, who: torch.Tensor, u: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The batches that uniforms ``u [len(who), batch]`` select (see :func:`shard_batch`)."""
        idx = self.offset[who].unsqueeze(1) + (u * self.size[who].unsqueeze(1)).long()
        return self.pool_x[idx], self.pool_y[idx]


def shard_batch(x: torch.Tensor, y: torch.Tensor, u: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """One learner's batch from its own shard: the rows ``StackedSampler.take`` picks for it.

    A learner in another process (fml.flower) given the same uniforms draws exactly
    the samples the stacked simulation draws for it.
    """
    idx = (u * len(y)).long()
    return x[idx], y[idx]


def sampling_noise(n: int, steps: int, batch: int, gen: torch.Generator) -> torch.Tensor:
    """``[steps, 3, n, batch]`` uniforms, consumed from ``gen`` exactly as :func:`local_train` does."""
    return torch.stack([torch.stack([torch.rand(n, batch, generator=gen) for _ in range(3)])
                        for _ in range(steps)]) if steps else torch.zeros(0, 3, n, batch)


def train_one(params: Params, x: torch.Tensor, y: torch.Tensor, noise: torch.Tensor, iters: int,
              cfg: PerFedAvgConfig) -> Params:
    """``iters`` HF steps of ONE learner (a 1-model stack) on its shard ``x, y``, batches picked by
    ``noise [steps, 3, batch]`` (its rows of :func:`sampling_noise`); bit-identical to its
    row of :func:`local_train` (hf_step works model by model)."""
    for t in range(min(iters, noise.shape[0])):
        batches = tuple(tuple(b.unsqueeze(0) for b in shard_batch(x, y, noise[t, k])) for k in range(3))
        params = hf_step(params, batches, cfg)
    return params


def local_train(
    params: Params,
    sampler: StackedSampler,
    who: torch.Tensor,
    iters: torch.Tensor,
    cfg: PerFedAvgConfig,
    gen: torch.Generator,
) -> Params:
    """Run ``iters[j]`` HF steps on model j (learner ``who[j]``); returns new stack."""
    steps = int(iters.max().item()) if len(iters) else 0
    for t in range(steps):
        mask = iters > t
        batches = tuple(sampler.sample(who, cfg.batch, gen) for _ in range(3))
        params = hf_step(params, batches, cfg, None if bool(mask.all()) else mask)
    return params


def local_train_spot(
    params: Params,
    sampler: StackedSampler,
    who: torch.Tensor,
    iters: torch.Tensor,
    cfg: PerFedAvgConfig,
    gen: torch.Generator,
    challenge: torch.Tensor,
    spare: torch.Generator,
) -> tuple[Params, list[tuple[int, int, Params, tuple, Params]]]:
    """``local_train`` (same draws from ``gen``, same result) that also keeps what a learner
    reveals when its head challenges step t: the model before and after step t and the
    step's batches, for every (model j, t in ``challenge[j]``) (steps 1-based).

    A model that stopped after ``iters[j]`` steps holds its last model for the steps it
    skipped (before == after: the chain of checkpoints it commits to cannot contain a
    genuine step it never computed); batches of steps nobody ran come from ``spare``.
    """
    steps = int(iters.max().item()) if len(iters) else 0
    kept: list[tuple[int, int, Params, tuple, Params]] = []
    for t in range(steps):
        mask = iters > t
        batches = tuple(sampler.sample(who, cfg.batch, gen) for _ in range(3))
        new = hf_step(params, batches, cfg, None if bool(mask.all()) else mask)
        for j in (challenge == t + 1).any(dim=1).nonzero().flatten().tolist():
            kept.append((j, t + 1, tuple(p[j:j + 1].clone() for p in params),
                         tuple((x[j:j + 1].clone(), y[j:j + 1].clone()) for x, y in batches),
                         tuple(p[j:j + 1].clone() for p in new)))
        params = new
    for j, col in (challenge > steps).nonzero().tolist():
        step = int(challenge[j, col])
        one = torch.as_tensor([int(who[j])])
        batches = tuple(sampler.sample(one, cfg.batch, spare) for _ in range(3))
        held = tuple(p[j:j + 1].clone() for p in params)
        kept.append((j, step, held, batches, held))
    return params, kept


def spot_check(before: Params, batches: tuple, after: Params, cfg: PerFedAvgConfig, rtol: float = 1e-3) -> bool:
    """Re-execute one revealed step: does ``hf_step(before, batches)`` give ``after``?

    Tolerance relative to the step's own length (the stacked and the single-model
    computation may differ in the last bits of float32)."""
    redo = flat(hf_step(before, batches, cfg))
    b = flat(before)
    err = float((redo - flat(after)).norm())
    return err <= rtol * float((redo - b).norm()) + 1e-7


def adapt(params: Params, x: torch.Tensor, y: torch.Tensor, alpha: float, steps: int) -> Params:
    """Personalise: ``steps`` plain gradient steps of size alpha on (x, y) per model."""
    for _ in range(steps):
        g, _ = grads(params, x, y)
        params = axpy(-alpha, g, params)
    return params


def aggregate(params: Params, weights: torch.Tensor) -> Params:
    """Weighted average of the stacked models (weights ~ data size), as a 1-model stack."""
    w = weights.double() / weights.double().sum()
    w = w.float()
    return tuple((p * w.view(-1, *([1] * (p.dim() - 1)))).sum(0, keepdim=True) for p in params)


def leave_one_out_models(params: Params, weights: torch.Tensor) -> Params:
    """Stack of m aggregates, the j-th leaving member j out (weights renormalised).

    With one member the "without" model is undefined; the caller handles it.
    """
    w = weights.float()
    total = w.sum()
    out = []
    for p in params:
        shape = (-1,) + (1,) * (p.dim() - 1)
        s = (p * w.view(shape)).sum(0, keepdim=True)
        out.append((s - p * w.view(shape)) / (total - w).clamp_min(1e-12).view(shape))
    return tuple(out)


def mean_loss(params: Params, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Loss of each stacked model on the SAME batch ``x [b, 784]``: ``[n]``."""
    n = params[0].shape[0]
    with torch.no_grad():
        return per_model_loss(params, x.unsqueeze(0).expand(n, -1, -1), y.unsqueeze(0).expand(n, -1))
