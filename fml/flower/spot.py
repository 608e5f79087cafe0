"""Spot checks across processes: the learner's checkpoint chain and the heads' re-execution.

The in-process driver verifies work by re-executing ``SPOT_CHECKS`` of the tau committed
Per-FedAvg steps of every member (``fml.training.Trainer.train_round``,
``fml.perfedavg.local_train_spot`` / ``spot_check``; docs/fml.md "Spot checks"). With Flower
learners the same protocol runs over messages:

1. the learner trains and keeps its checkpoint chain (the model it was sent, then its model
   after each of the tau steps; held where it skipped a step) and signs, with its update,
   the digests of the whole chain (:func:`checkpoint_chain`, ``common.model_digest``);
2. after the updates arrived, the strategy draws the steps to check exactly as the driver
   draws them (:func:`draw_challenges`: same generator, same member order);
3. the learner reveals the models before and after each challenged step; the batches need
   not travel: they follow from the minibatch uniforms the strategy sent and the shared
   split (``StackedSampler.take``);
4. :func:`verify_member` checks the revealed models against the signed digests and
   re-executes the step with ``perfedavg.spot_check`` (the driver's code).

No Flower import here, so the fast tests cover it in the node's venv.
"""
from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np
import torch

from pocnet.fml.flower.common import model_digest, to_arrays, from_arrays
from pocnet.fml.model import Params, flat
from pocnet.fml.perfedavg import PerFedAvgConfig, StackedSampler, spot_check, train_one
from pocnet.fml.training import SPOT_CHECKS


def iterations(kind: str, committed: int, lazy_iters: int) -> int:
    """Steps a learner of ``kind`` really runs (fml.driver's rule: free riders none, the other
    misbehaving kinds ``lazy_iters``)."""
    return {"honest": committed, "free-rider": 0}.get(kind, min(lazy_iters, committed))


def checkpoint_chain(start: Params, x: torch.Tensor, y: torch.Tensor, noise: torch.Tensor, committed: int,
                     iters: int, cfg: PerFedAvgConfig) -> list[Params]:
    """``[start, after step 1, ..., after step committed]`` for one learner: ``iters`` genuine
    HF steps (``train_one``, bit-identical to its stacked row), then its model held for the
    steps it skipped (as ``local_train_spot`` keeps them: no genuine transition there)."""
    chain = [start]
    for t in range(committed):
        chain.append(train_one(chain[-1], x, y, noise[t:t + 1], 1, cfg) if t < iters else chain[-1])
    return chain


def pad_with_noise(start: Params, trained: Params, scale: float, seed: int) -> Params:
    """The noisy kind: the update padded with Gaussian noise to ``scale`` x its own length."""
    d = flat(trained) - flat(start)
    n = torch.randn(d.shape, generator=torch.Generator().manual_seed(seed))
    d = d + n * (scale * float(d.norm()) / float(n.norm()))
    out, off, base = [], 0, flat(start)
    for p in start:
        out.append((base[:, off:off + p[0].numel()] + d[:, off:off + p[0].numel()]).reshape(p.shape))
        off += p[0].numel()
    return tuple(out)


def draw_challenges(members: Sequence[int], tau: int, gen: torch.Generator) -> dict[int, list[int]]:
    """Steps (1-based) each member must reveal, drawn as ``Trainer.train_round`` draws them:
    one ``randperm(tau)`` per member in the round's member order, first ``SPOT_CHECKS``."""
    if tau <= 0:
        return {m: [] for m in members}
    return {m: [int(t) + 1 for t in torch.randperm(tau, generator=gen)[:min(SPOT_CHECKS, tau)]] for m in members}


def chain_is_sound(commit: Sequence[str], tau: int, start: str, update: list[np.ndarray]) -> bool:
    """The signed chain has tau + 1 entries, starts at the model the learner was sent and ends
    at the update it sent (else its checkpoints prove nothing about that update)."""
    return len(commit) == tau + 1 and commit[0] == start and commit[-1] == model_digest(update)


def verify_member(learner: int, steps: Sequence[int], commit: Sequence[str],
                  revealed: Mapping[int, tuple[list[np.ndarray], list[np.ndarray]]], noise: torch.Tensor,
                  sampler: StackedSampler, cfg: PerFedAvgConfig) -> float:
    """Share of the challenged ``steps`` that re-executed: ``revealed[t] = (before, after)``
    must match the signed digests ``commit[t-1]``, ``commit[t]`` and ``hf_step(before, batches)``
    must give ``after``; ``noise [tau, 3, batch]`` is the learner's uniforms (its batches)."""
    if not steps:
        return 1.0
    passed = 0
    who = torch.as_tensor([learner])
    for t in steps:
        if t not in revealed or not 1 <= t < len(commit):
            continue
        before, after = revealed[t]
        if model_digest(before) != commit[t - 1] or model_digest(after) != commit[t]:
            continue
        batches = tuple(sampler.take(who, noise[t - 1, c].unsqueeze(0)) for c in range(3))
        passed += spot_check(from_arrays(before), batches, from_arrays(after), cfg)
    return passed / len(steps)


def reveal(chain: Sequence[list[np.ndarray]], steps: Sequence[int]) -> dict[int, tuple[list[np.ndarray], list[np.ndarray]]]:
    """What a learner sends for its challenged steps: the kept models around each."""
    return {t: (chain[t - 1], chain[t]) for t in steps if 1 <= t < len(chain)}


def chain_arrays(chain: Sequence[Params]) -> list[list[np.ndarray]]:
    return [to_arrays(m) for m in chain]
