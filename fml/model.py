"""The seed-000 network (784 -> 80 -> 60 -> 10, ELU) in a *stacked* form.

Every learner owns an independent copy of the weights; keeping the copies as
one tensor with a leading "model" axis lets a whole round of local training
run as a handful of batched matrix products instead of 36 Python loops. That
is what makes the experiments feasible on two shared cores.

Params are a tuple ``(W1, b1, W2, b2, W3, b3)`` with shapes
``[n, 784, 80], [n, 80], [n, 80, 60], [n, 60], [n, 60, 10], [n, 10]``.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F

LAYERS: tuple[int, ...] = (784, 80, 60, 10)
Params = tuple[torch.Tensor, ...]


def init_params(n_models: int = 1, seed: int = 0) -> Params:
    """One PyTorch-default (Kaiming-uniform) initialisation, copied ``n_models`` times."""
    gen = torch.Generator().manual_seed(seed)
    out: list[torch.Tensor] = []
    for fan_in, fan_out in zip(LAYERS[:-1], LAYERS[1:]):
        bound = 1.0 / math.sqrt(fan_in)
        w = (torch.rand(fan_in, fan_out, generator=gen) * 2 - 1) * bound
        b = (torch.rand(fan_out, generator=gen) * 2 - 1) * bound
        out += [w.expand(n_models, -1, -1).clone(), b.expand(n_models, -1).clone()]
    return tuple(out)


def n_models(params: Params) -> int:
    return int(params[0].shape[0])


def select(params: Params, idx: torch.Tensor | list[int]) -> Params:
    """Gather some models (by index along the model axis) as a new stack."""
    idx = torch.as_tensor(idx, dtype=torch.long)
    return tuple(p.index_select(0, idx) for p in params)


def forward(params: Params, x: torch.Tensor, hidden: bool = False) -> torch.Tensor:
    """Logits ``[n, b, 10]`` for inputs ``[n, b, 784]`` (one batch per model).

    With ``hidden=True`` return the last hidden layer ``[n, b, 60]`` (the
    embedding space of docs/model.md eq. 13).
    """
    w1, b1, w2, b2, w3, b3 = params
    h = F.elu(torch.baddbmm(b1.unsqueeze(1), x, w1))
    h = F.elu(torch.baddbmm(b2.unsqueeze(1), h, w2))
    if hidden:
        return h
    return torch.baddbmm(b3.unsqueeze(1), h, w3)


def per_model_loss(params: Params, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Mean cross-entropy of each model on its own batch: ``[n]``."""
    logits = forward(params, x)
    n, b, c = logits.shape
    return F.cross_entropy(logits.reshape(n * b, c), y.reshape(n * b), reduction="none").reshape(n, b).mean(1)


def grads(params: Params, x: torch.Tensor, y: torch.Tensor) -> tuple[Params, torch.Tensor]:
    """Per-model gradients (models are independent, so grad of the sum is per-model)."""
    leaves = tuple(p.detach().requires_grad_(True) for p in params)
    loss = per_model_loss(leaves, x, y)
    g = torch.autograd.grad(loss.sum(), leaves)
    return tuple(gi.detach() for gi in g), loss.detach()


def axpy(a: float | torch.Tensor, xs: Params, ys: Params) -> Params:
    """``ys + a * xs`` tensor by tensor; ``a`` may be a per-model vector ``[n]``."""
    if isinstance(a, torch.Tensor) and a.dim() == 1:
        return tuple(y + a.view(-1, *([1] * (x.dim() - 1))) * x for x, y in zip(xs, ys))
    return tuple(y + a * x for x, y in zip(xs, ys))


def accuracy(params: Params, x: torch.Tensor, y: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
    """Per-model accuracy on padded batches; ``mask [n, b]`` marks real samples."""
    with torch.no_grad():
        pred = forward(params, x).argmax(-1)
    hit = (pred == y).float()
    if mask is None:
        return hit.mean(1)
    return (hit * mask).sum(1) / mask.sum(1).clamp_min(1)


def masked_loss(params: Params, x: torch.Tensor, y: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Per-model mean cross-entropy over the real (mask=1) samples of padded batches."""
    with torch.no_grad():
        logits = forward(params, x)
        n, b, c = logits.shape
        ce = F.cross_entropy(logits.reshape(n * b, c), y.reshape(n * b), reduction="none").reshape(n, b)
    return (ce * mask).sum(1) / mask.sum(1).clamp_min(1)


def flat(params: Params) -> torch.Tensor:
    """``[n, P]`` view of all weights (for norms and tests)."""
    return torch.cat([p.reshape(p.shape[0], -1) for p in params], dim=1)
