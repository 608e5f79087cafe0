"""Eq. 1 of [PoC] (total latency) and eqs. 2-3 (diversity score D).

Queue model (documented in docs/models.md): provider p is busy with its
backlog until free_p = t0 + ceil(backlog_p / capacity_p); it serves the tasks
allocated to it one at a time in arrival order (ties: scenario task order,
i.e. task_id) at its capacity, so task i on p takes
proc_ip = ceil(work_i / capacity_p) ms and completes at
C_i = max(free_p, a_i) + proc_ip. Total latency = sum_i max(0, C_i - a_i).
All integer arithmetic, so objectives compare exactly.
"""
from __future__ import annotations

import numpy as np

from pocnet.models.scenario import Scenario


def proc_times(scn: Scenario) -> np.ndarray:
    """(n, m) int64 processing time ceil(work_i / capacity_p) in ms."""
    return -(-scn.work[:, None] // scn.capacity[None, :])


def initial_free(scn: Scenario) -> np.ndarray:
    """(m,) int64 time at which each provider has drained its backlog."""
    return scn.t0 + (-(-scn.backlog // scn.capacity))


def completion_times(scn: Scenario, alloc: np.ndarray | list[int]) -> np.ndarray:
    """(n,) int64 completion time C_i of each task under `alloc`."""
    alloc = np.asarray(alloc, dtype=np.int64)
    proc = proc_times(scn)
    free = initial_free(scn).copy()
    out = np.zeros(scn.n_tasks, dtype=np.int64)
    for i in range(scn.n_tasks):
        p = int(alloc[i])
        c = max(int(free[p]), int(scn.arrival[i])) + int(proc[i, p])
        free[p] = c
        out[i] = c
    return out


def total_latency(scn: Scenario, alloc: np.ndarray | list[int]) -> int:
    """Eq. 1: sum_i max(0, C_i - a_i) for one allocation (provider index per task)."""
    alloc = np.asarray(alloc, dtype=np.int64)
    if alloc.shape != (scn.n_tasks,):
        raise ValueError(f"allocation must have {scn.n_tasks} entries")
    if scn.n_tasks and (alloc.min() < 0 or alloc.max() >= scn.n_providers):
        raise ValueError("provider index out of range")
    c = completion_times(scn, alloc)
    return int(np.maximum(0, c - scn.arrival).sum())


def batch_total_latency(scn: Scenario, allocs: np.ndarray) -> np.ndarray:
    """Eq. 1 for a batch (B, n) of allocations, vectorised over the batch."""
    allocs = np.asarray(allocs, dtype=np.int64)
    b = allocs.shape[0]
    proc = proc_times(scn)
    free = np.tile(initial_free(scn), (b, 1))
    rows = np.arange(b)
    total = np.zeros(b, dtype=np.int64)
    for i in range(scn.n_tasks):
        p = allocs[:, i]
        a = int(scn.arrival[i])
        c = np.maximum(free[rows, p], a) + proc[i, p]
        free[rows, p] = c
        total += np.maximum(0, c - a)
    return total


def diversity_score(probs: np.ndarray) -> float:
    """Eqs. 2-3: mean pairwise Euclidean distance between the per-task action
    probability vectors P_i (rows of `probs`, shape (N, m)). 0 for N < 2."""
    p = np.asarray(probs, dtype=np.float64)
    n = p.shape[0]
    if n < 2:
        return 0.0
    diff = p[:, None, :] - p[None, :, :]
    d = np.sqrt((diff * diff).sum(axis=-1))
    iu = np.triu_indices(n, k=1)
    return float(d[iu].sum() / (n * (n - 1) / 2))


def one_hot(alloc: np.ndarray | list[int], m: int) -> np.ndarray:
    a = np.asarray(alloc, dtype=np.int64)
    out = np.zeros((a.shape[0], m))
    out[np.arange(a.shape[0]), a] = 1.0
    return out
