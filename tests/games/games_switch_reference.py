"""Test-only: the numpy implementation of the switch rule that production used before
the numba kernel (games/switch_kernel.py), kept verbatim so tests can check that the
kernel returns the identical assignment, history, sweeps and moves.

Not imported by production code. Blocks of upcoming learners are evaluated with
numpy, the first mover is applied, and a per-row cache recomputes only changed
coalitions; a one-learner path (pmath.exp) runs while moves are dense.
"""
from __future__ import annotations

import math

import numpy as np

from pocnet.games import pmath

from pocnet.games.coalition import (
    OUT,
    FormationArrays,
    _aggregates,
    _decisions,
    _initial_assignment,
    _join_utility,
    _result,
    prepare_formation,
)


class _Rows:
    """Per-row Python floats for the one-learner path (cheaper than numpy scalars)."""

    def __init__(self, fa: FormationArrays) -> None:
        self.slope_l = fa.slope.tolist()
        self.f_max_l = fa.f_max.tolist()
        self.inv_f_max_l = fa.inv_f_max.tolist()
        self.energy_l = fa.energy.tolist()
        self.is_head_l = fa.is_head.tolist()


def _own_utility_scalar(fa: FormationArrays, rl: _Rows, i: int, k: int, n: float, rep_sum: float, w_sum: float) -> float:
    """``_own_utility`` for one learner in plain floats (same operation order)."""
    p = fa.params
    if fa.ban[i, k] != 0.0:
        return -math.inf
    rbar = rep_sum / n
    share = (2.0 * p.R * p.rho0) / ((pmath.exp(rbar * (-p.theta) + p.theta * p.r_th) + 1.0) * n)
    cw = float(fa.cwt[i, k]) / w_sum
    fmax = rl.f_max_l[i]
    f = min(max(cw * rl.slope_l[i], float(fa.lower[i, k])), fmax)
    return f * (cw * rl.inv_f_max_l[i] - rl.energy_l[i] * f) + share



def _join_utility_cols(fa: FormationArrays, lo: int, hi: int, cols: np.ndarray, size, rep_sum, w_sum) -> np.ndarray:
    """``_join_utility`` restricted to some coalitions ([B, len(cols)]); same bits per entry."""
    p = fa.params
    n1 = size[cols] + 1.0
    rbar = (rep_sum[cols] + fa.rep[lo:hi, cols]) / n1
    share = (2.0 * p.R * p.rho0) / ((pmath.exp_array(rbar * (-p.theta) + p.theta * p.r_th) + 1.0) * n1)
    cw = fa.cwt[lo:hi, cols] / (w_sum[cols] + fa.wt[lo:hi, cols])
    fmax = fa.f_max[lo:hi][:, None]
    f = np.minimum(np.maximum(cw * fa.slope[lo:hi][:, None], fa.lower[lo:hi, cols]), fmax)
    return f * (cw * fa.inv_f_max[lo:hi][:, None] - fa.energy[lo:hi][:, None] * f) + share



def reference_run_switch_rule(
    fa: FormationArrays, assign: np.ndarray, max_block: int = 1024
) -> tuple[np.ndarray, np.ndarray, int, int]:
    """Apply the switch rule until a full sweep moves nobody.

    Returns (assignment, left [N,K] bool, sweeps, moves); ``assign`` is not
    modified. While moves are dense, learners are evaluated six at a time and
    decided one by one up to the first mover; when moves thin out, in growing
    blocks. Block evaluation keeps a cache of
    every learner's newcomer utility per coalition and recomputes only the
    coalitions whose aggregates changed since the row was last computed
    (entries are bit-identical to a fresh computation, so decisions are too).
    """
    assign = assign.copy()
    rl = _Rows(fa)
    n, k = fa.rep.shape
    assign[fa.head_rows] = np.arange(k)
    left = np.zeros((n, k), dtype=bool)
    ban = fa.ban.copy()  # also receives -inf for every coalition a learner leaves
    cache = np.empty((n, k))
    stamp = np.full(n, -1, dtype=np.int64)  # epoch at which a cache row was last brought up to date
    changed_at = np.zeros(k, dtype=np.int64)  # epoch of each coalition's last aggregate change
    epoch = 0
    moves = 0
    sweeps = 0
    limit = (2 * k + 2) * n + 1  # the history rule's bound; a safety net, never reached
    dense_exit = 8
    small = 6  # learners evaluated together while moves are dense
    eps = fa.params.epsilon
    size, rep_sum, w_sum = _aggregates(fa, assign)

    def apply(i: int, dst: int) -> None:
        nonlocal epoch
        epoch += 1
        src = int(assign[i])
        if src >= 0:
            size[src] -= 1.0
            rep_sum[src] -= fa.rep[i, src]
            w_sum[src] -= fa.wt[i, src]
            left[i, src] = True
            ban[i, src] = -np.inf
            changed_at[src] = epoch
        if dst >= 0:
            size[dst] += 1.0
            rep_sum[dst] += fa.rep[i, dst]
            w_sum[dst] += fa.wt[i, dst]
            changed_at[dst] = epoch
        assign[i] = dst

    def block_decisions(lo: int, hi: int) -> tuple[np.ndarray, np.ndarray]:
        oldest = int(stamp[lo:hi].min())
        if oldest < 0:
            cache[lo:hi] = _join_utility(fa, slice(lo, hi), size, rep_sum, w_sum)
        else:
            cols = np.flatnonzero(changed_at > oldest)
            if cols.size == k:
                cache[lo:hi] = _join_utility(fa, slice(lo, hi), size, rep_sum, w_sum)
            elif cols.size:
                cache[lo:hi, cols] = _join_utility_cols(fa, lo, hi, cols, size, rep_sum, w_sum)
        stamp[lo:hi] = epoch
        return _decisions(fa, lo, hi, cache[lo:hi], assign, ban, size, rep_sum, w_sum)

    while True:
        sweeps += 1
        # reset float drift of the incremental sums; coalitions whose bits change count as changed
        fresh = _aggregates(fa, assign)
        drift = (fresh[0] != size) | (fresh[1] != rep_sum) | (fresh[2] != w_sum)
        if drift.any():
            epoch += 1
            changed_at[drift] = epoch
        size, rep_sum, w_sum = fresh
        pos, moved, block, single, streak = 0, False, 16, False, 0
        while pos < n:
            if single:
                # dense moves: a few learners at a time, decided one by one up to the first mover
                hi = min(n, pos + small)
                cand = _join_utility(fa, slice(pos, hi), size, rep_sum, w_sum)
                cand += ban[pos:hi]
                owns = assign[pos:hi].tolist()
                for r, own in enumerate(owns):
                    if own >= 0:
                        cand[r, own] = -np.inf
                best = cand.argmax(axis=1).tolist() if k else [0] * (hi - pos)
                nxt = hi
                for r, own in enumerate(owns):
                    i = pos + r
                    dst = None
                    if not rl.is_head_l[i]:
                        cur = (
                            _own_utility_scalar(fa, rl, i, own, float(size[own]), float(rep_sum[own]), float(w_sum[own]))
                            if own >= 0
                            else 0.0
                        )
                        bv = float(cand[r, best[r]]) if k else -math.inf
                        if bv >= 0.0 and bv > cur + eps:
                            dst = best[r]
                        elif own >= 0 and 0.0 > cur + eps:
                            dst = OUT
                    if dst is None:
                        streak += 1
                        continue
                    apply(i, dst)
                    moves += 1
                    moved, streak = True, 0
                    nxt = i + 1
                    break
                pos = nxt
                if streak >= dense_exit:
                    single, block = False, 16
            else:
                hi = min(n, pos + block)
                target, movers = block_decisions(pos, hi)
                hit = np.flatnonzero(movers)
                if hit.size == 0:
                    pos = hi
                    block = min(max_block, block * 2)
                    continue
                j = int(hit[0])
                apply(pos + j, int(target[j]))
                moves += 1
                moved = True
                pos += j + 1
                if j < dense_exit:
                    single, streak = True, 0
                else:
                    block = max(16, min(max_block, 2 * (j + 1)))
            if moves > limit:
                raise RuntimeError("switch rule exceeded its move bound")
        if not moved:
            return assign, left, sweeps, moves



def reference_form_coalitions(learners, heads, reputation, initial, params, incentives=None):
    """``games.coalition.form_coalitions`` with the numpy switch rule above."""
    fa = prepare_formation(learners, heads, reputation, params, incentives)
    assign0 = _initial_assignment(fa, initial)
    assign, left, sweeps, moves = reference_run_switch_rule(fa, assign0)
    return _result(fa, assign, left, sweeps, moves)
