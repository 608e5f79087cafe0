"""Integer fixed-point features shared by the float (torch) models and the
integer consensus path, so both see bit-identical inputs.

Fixed point: Q(FRAC_BITS), i.e. real value = int / 2**FRAC_BITS. Every feature
is clipped to [0, FEAT_CLIP]. No floats anywhere in this module.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np

from pocnet.models.objective import initial_free, proc_times
from pocnet.models.scenario import DEMAND_MAX, Scenario, task_graph_edges

FRAC_BITS = 12
ONE = 1 << FRAC_BITS
FEAT_CLIP = 32 * ONE
WORK_SCALE = 64      # work units
TIME_SCALE = 64      # ms (must divide ONE: pair_features relies on it)
CAP_SCALE = 8        # work units / ms
LOOK_MS = 100        # look-ahead / look-back window for load features

N_TASK_FEATS = 11
N_PROV_FEATS = 3
N_PAIR_FEATS = 8
LOOKAHEAD = 4        # tasks rolled out greedily in the look-ahead pair features


def _q(num: np.ndarray, den: np.ndarray | int) -> np.ndarray:
    """num/den in Q12, floor, clipped to [0, FEAT_CLIP]."""
    return np.clip((np.asarray(num, dtype=np.int64) * ONE) // den, 0, FEAT_CLIP).astype(np.int64)


def task_features(scn: Scenario) -> np.ndarray:
    """(n, N_TASK_FEATS) int64: work, gaps to previous/next arrival, deadline
    slack, demand (3), ideal share time, look-ahead / look-back offered load,
    relative size."""
    n = scn.n_tasks
    if n == 0:
        return np.zeros((0, N_TASK_FEATS), dtype=np.int64)
    w, a = scn.work, scn.arrival
    cap_sum = int(scn.capacity.sum())
    gap_prev = np.concatenate([[0], np.diff(a)])
    gap_next = np.concatenate([np.diff(a), [0]])
    slack = np.maximum(0, scn.deadline - a)
    dt = a[None, :] - a[:, None]  # a_j - a_i
    ahead = ((dt >= 0) & (dt <= LOOK_MS) & (np.arange(n)[None, :] > np.arange(n)[:, None]))
    behind = ((dt <= 0) & (dt >= -LOOK_MS) & (np.arange(n)[None, :] < np.arange(n)[:, None]))
    load_ahead = (ahead * w[None, :]).sum(axis=1)
    load_behind = (behind * w[None, :]).sum(axis=1)
    wsum = max(1, int(w.sum()))
    cols = [
        _q(w, WORK_SCALE),
        _q(gap_prev, TIME_SCALE),
        _q(gap_next, TIME_SCALE),
        _q(slack, TIME_SCALE),
        *[_q(scn.demand[:, k], DEMAND_MAX) for k in range(scn.demand.shape[1])],
        _q(w, cap_sum * TIME_SCALE),
        _q(load_ahead, cap_sum * TIME_SCALE),
        _q(load_behind, cap_sum * TIME_SCALE),
        _q(w * n, wsum),
    ]
    return np.stack(cols, axis=1)


def provider_sequences(scn: Scenario) -> np.ndarray:
    """(m, HISTORY_LEN, N_PROV_FEATS) int64 time series per provider:
    [delivered_t / (capacity * TIME_SCALE), capacity / CAP_SCALE,
    backlog drain time / TIME_SCALE]; the last two are the current (committed)
    values repeated over the window."""
    m, h = scn.history.shape
    cap = scn.capacity
    util = _q(scn.history, (cap * TIME_SCALE)[:, None])
    capf = np.repeat(_q(cap, CAP_SCALE)[:, None], h, axis=1)
    drain = -(-scn.backlog // cap)
    blf = np.repeat(_q(drain, TIME_SCALE)[:, None], h, axis=1)
    return np.stack([util, capf, blf], axis=2)


def pair_features(free: np.ndarray, i: int, arrival: Sequence[int] | np.ndarray, proc: Sequence[np.ndarray] | np.ndarray,
                  cap_q: np.ndarray) -> np.ndarray:
    """(m, N_PAIR_FEATS) int64 features of assigning task i to each provider
    given the queue state `free` (ms):
      0 processing time, 1 wait, 2 finish (= latency of task i), 3 regret vs
      the best finish, 4 idle gap, 5 relative capacity (`cap_q` = capacity *
      ONE // max capacity), 6 look-ahead cost = latency of task i plus the
      latency of the next LOOKAHEAD tasks placed greedily (earliest finish,
      ties to lowest index) after i goes to p, 7 look-ahead regret vs the best
      provider's look-ahead cost. Times are divided by TIME_SCALE.
    `arrival` and `proc` (rows = tasks) may be arrays or, faster in the decode
    loops, a list of ints and a list of row arrays."""
    m = free.shape[0]
    a = int(arrival[i])
    proc_i = proc[i]
    out = np.empty((m, N_PAIR_FEATS), dtype=np.int64)
    wait, fin, regret, idle, cost = out[:, 1], out[:, 2], out[:, 3], out[:, 4], out[:, 6]
    out[:, 0] = proc_i
    np.maximum(free, a, out=fin)          # start time
    np.subtract(fin, free, out=idle)      # max(0, a - free)
    np.subtract(fin, a, out=wait)         # max(0, free - a)
    fin += proc_i                         # finish (latency of task i)
    fin -= a
    np.subtract(fin, fin.min(), out=regret)
    # look-ahead: row p = queue state after task i went to provider p
    cost[:] = fin
    last = min(len(arrival), i + 1 + LOOKAHEAD)
    if last > i + 1:
        state = np.empty((m, m), dtype=np.int64)
        state[:] = free
        flat = state.reshape(-1)
        flat[::m + 1] = fin + a
        buf = np.empty_like(state)
        bflat = buf.reshape(-1)
        offs = _OFFS[m]
        a_sum = 0
        for j in range(i + 1, last):
            aj = int(arrival[j])
            a_sum += aj
            np.maximum(state, aj, out=buf)
            buf += proc[j]
            if j + 1 < last:
                idx = buf.argmin(axis=1)
                idx += offs
                best = bflat[idx]
                flat[idx] = best
                cost += best
            else:
                cost += buf.min(axis=1)
        cost -= a_sum
    np.subtract(cost, cost.min(), out=out[:, 7])
    out[:, :5] *= ONE // TIME_SCALE       # == floor(x * ONE / TIME_SCALE): TIME_SCALE divides ONE
    out[:, 6:] *= ONE
    out[:, 6:] //= TIME_SCALE * (1 + LOOKAHEAD)
    out[:, 5] = cap_q
    np.minimum(out, FEAT_CLIP, out=out)   # all >= 0 already
    return out


_OFFS = [np.arange(k, dtype=np.int64) * k for k in range(257)]


def relative_capacity(scn: Scenario) -> np.ndarray:
    return (scn.capacity * ONE) // int(scn.capacity.max())


def forced_pair_features(scn: Scenario, alloc: np.ndarray) -> np.ndarray:
    """(n, m, N_PAIR_FEATS) pair features along a given allocation (teacher
    forcing: the queue state before task i follows `alloc` for tasks < i)."""
    proc = proc_times(scn)
    free = initial_free(scn).copy()
    capq = relative_capacity(scn)
    out = np.zeros((scn.n_tasks, scn.n_providers, N_PAIR_FEATS), dtype=np.int64)
    for i in range(scn.n_tasks):
        out[i] = pair_features(free, i, scn.arrival, proc, capq)
        p = int(alloc[i])
        free[p] = max(int(free[p]), int(scn.arrival[i])) + int(proc[i, p])
    return out


def graph_with_self_loops(scn: Scenario) -> tuple[np.ndarray, np.ndarray]:
    """Task-graph edges plus one self-loop per node (what the GNN aggregates)."""
    src, dst = task_graph_edges(scn)
    loops = np.arange(scn.n_tasks, dtype=np.int64)
    return np.concatenate([src, loops]), np.concatenate([dst, loops])
