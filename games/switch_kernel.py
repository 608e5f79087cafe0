"""Compiled inner loop of the switch rule (numba): the one implementation used in production.

Why compiled: the rule is sequential (each move changes two coalitions'
aggregates, which every later learner sees), so after ~10^5 moves per
formation numpy's per-call overhead dominated. This kernel visits learners
one at a time in address order, exactly as docs/model.md Algorithm 1 states.

Bit-for-bit rules (all peers must compute the same partition):
* ``fastmath`` off, ``parallel`` off, ``error_model="numpy"`` (IEEE division:
  x/0 gives inf/nan, never an exception), Intel SVML disabled (it would
  vectorise ``exp`` with different bits); LLVM does not fuse a*b+c into an
  FMA without fastmath flags, so every operation rounds as written.
* Every formula uses the same operations in the same order as the numpy
  helpers in ``games.coalition`` (``_join_utility``, ``_own_utility``,
  ``_aggregates``); ``exp`` is the portable ``games.pmath.exp_nb`` (built
  from + - * / and exact 2^k scaling, bit-identical to ``pmath.exp``), never
  the C library's, whose last bits depend on the CPU (FMA or not).
* Pruning without changing a decision: a newcomer's utility is
  ``fpart + share`` with ``share = 2R rho0 / ((exp(x) + 1) n1)``, where
  ``x = theta (r_th - rbar)`` and ``rbar <= (rep_sum + max_i r_{i,c}) / n1``.
  IEEE rounding is monotone, so ``x >= x_min`` (the value with that maximum)
  and, with ``e_lo = exp(x_min) * 0.999`` (far below pmath.exp's < 1 ulp error),
  ``share <= share_ub = 2R rho0 / ((e_lo + 1) n1)`` (needs 2R rho0 >= 0 and
  theta >= 0, which GameParams enforces; otherwise nothing is pruned), and
  ``fl(fpart + share_ub)`` bounds the computed utility from above. ``exp``
  and the two other divisions are evaluated only for coalitions whose bound
  reaches the best exact value (ties included, so the first maximum is still
  found), and not at all when no bound could make the learner move (the move
  test is monotone in the best value). A row with a NaN bound is evaluated in
  full, with np.argmax's NaN rule.
"""
from __future__ import annotations

import os
import sys

import numpy as np

if "numba" not in sys.modules:
    # SVML would replace libm's exp by a vectorised one with different last bits.
    os.environ["NUMBA_DISABLE_INTEL_SVML"] = "1"
import numba  # noqa: E402

if numba.config.USING_SVML:  # type: ignore[attr-defined]  # numba was imported earlier with SVML on: refuse rather than differ
    raise RuntimeError("games.switch_kernel: numba uses Intel SVML; set NUMBA_DISABLE_INTEL_SVML=1")

from pocnet.games.pmath import exp_nb as _exp  # noqa: E402  (compiled portable exp)

OK = 0
MOVE_BOUND_EXCEEDED = 1


@numba.njit(cache=True, fastmath=False, error_model="numpy")
def _aggregates(assign, rep, wt, w_pad, size, rep_sum, w_sum):  # pragma: no cover - compiled
    """|S_k|, sum r_{j,k}, sum s_{j,k} D_j from scratch, summed in address order (as np.bincount) + w_pad."""
    k = size.shape[0]
    for c in range(k):
        size[c] = 0.0
        rep_sum[c] = 0.0
        w_sum[c] = 0.0
    for i in range(assign.shape[0]):
        c = assign[i]
        if c >= 0:
            size[c] += 1.0
            rep_sum[c] += rep[i, c]
            w_sum[c] += wt[i, c]
    for c in range(k):
        w_sum[c] = w_sum[c] + w_pad[c]


@numba.njit(cache=True, fastmath=False, error_model="numpy")
def _share(i, c, rep, size, rep_sum, share_num, neg_theta, theta_rth):  # pragma: no cover - compiled
    """Reputation part of a newcomer's utility (as _join_utility)."""
    n1 = size[c] + 1.0
    rbar = (rep_sum[c] + rep[i, c]) / n1
    return share_num / ((_exp(rbar * neg_theta + theta_rth) + 1.0) * n1)


@numba.njit(cache=True, fastmath=False, error_model="numpy")
def _share_bound(c, rep_max, size, rep_sum, share_num, neg_theta, theta_rth):  # pragma: no cover - compiled
    """Upper bound of ``_share`` over every newcomer to c (valid for share_num >= 0, neg_theta <= 0)."""
    n1 = size[c] + 1.0
    rbar = (rep_sum[c] + rep_max[c]) / n1
    e_lo = _exp(rbar * neg_theta + theta_rth) * 0.999
    return share_num / ((e_lo + 1.0) * n1)


@numba.njit(cache=True, fastmath=False, error_model="numpy")
def switch_rule_kernel(
    assign,  # int64[N], modified in place: coalition index or -1 (out)
    rep,  # float64[N,K]
    wt,  # float64[N,K]
    cwt,  # float64[N,K]
    lower,  # float64[N,K]
    ban,  # float64[N,K] 0 or -inf; modified in place (-inf for every coalition left)
    left,  # bool[N,K], modified in place
    energy,  # float64[N]
    slope,  # float64[N]
    f_max,  # float64[N]
    inv_f_max,  # float64[N]
    is_head,  # bool[N]
    w_pad,  # float64[K]
    share_num,  # 2 R rho0 (>= 0)
    neg_theta,  # -theta
    theta_rth,  # theta r_th
    eps,
):  # pragma: no cover - compiled
    """Sweeps in address order until none moves. Returns (sweeps, moves, status)."""
    n, k = rep.shape
    size = np.zeros(k)
    rep_sum = np.zeros(k)
    w_sum = np.zeros(k)
    share_ub = np.zeros(k)  # >= any newcomer's computed share in c (see the module docstring)
    rep_max = np.zeros(k)
    for c in range(k):
        for i in range(n):
            rep_max[c] = max(rep_max[c], rep[i, c])
    fpart = np.zeros(k)
    bound = np.zeros(k)
    moves = 0
    sweeps = 0
    limit = (2 * k + 2) * n + 1  # the history rule's bound; a safety net, never reached
    prune = share_num >= 0.0 and neg_theta <= 0.0
    while True:
        sweeps += 1
        # aggregates from scratch at every sweep (resets the float drift of the incremental sums)
        _aggregates(assign, rep, wt, w_pad, size, rep_sum, w_sum)
        for c in range(k):
            share_ub[c] = _share_bound(c, rep_max, size, rep_sum, share_num, neg_theta, theta_rth)
        moved = False
        for i in range(n):
            if is_head[i]:
                continue
            own = assign[i]
            # current utility in its own coalition (as games.coalition._own_utility)
            cur = 0.0
            if own >= 0:
                if ban[i, own] != 0.0:
                    cur = -np.inf
                else:
                    nn = size[own]
                    rbar = rep_sum[own] / nn
                    share = share_num / ((_exp(rbar * neg_theta + theta_rth) + 1.0) * nn)
                    cw = cwt[i, own] / w_sum[own]
                    f = np.minimum(np.maximum(cw * slope[i], lower[i, own]), f_max[i])
                    cur = f * (cw * inv_f_max[i] - energy[i] * f) + share
            # upper bounds of cand = utility + ban (own coalition: -inf); a branch-free loop LLVM can vectorise
            cwt_i = cwt[i]
            wt_i = wt[i]
            lower_i = lower[i]
            ban_i = ban[i]
            sl = slope[i]
            fm = f_max[i]
            ifm = inv_f_max[i]
            en = energy[i]
            for c in range(k):
                cw = cwt_i[c] / (w_sum[c] + wt_i[c])  # f*(C w / f_max - mu kappa Q f), as _join_utility
                f = np.minimum(np.maximum(cw * sl, lower_i[c]), fm)
                fp = f * (cw * ifm - en * f)
                fpart[c] = fp
                bound[c] = (fp + share_ub[c]) + ban_i[c]
            if own >= 0:
                bound[own] = -np.inf
            full = not prune
            ub_best = -np.inf
            ub_arg = -1
            for c in range(k):
                b = bound[c]
                if b != b:
                    full = True
                if ub_arg < 0 or b > ub_best:
                    ub_best = b
                    ub_arg = c
            best = 0
            best_val = -np.inf
            if full:
                # every coalition exactly; first maximum, NaN first, as np.argmax
                for c in range(k):
                    if c == own:
                        v = -np.inf
                    else:
                        v = (fpart[c] + _share(i, c, rep, size, rep_sum, share_num, neg_theta, theta_rth)) + ban[i, c]
                    if c == 0:
                        best_val = v
                        if v != v:
                            break
                    elif v != v:
                        best = c
                        best_val = v
                        break
                    elif v > best_val:
                        best = c
                        best_val = v
            elif ub_best >= 0.0 and ub_best > cur + eps:
                # exact values where the bound reaches the best bound's exact value
                top = (fpart[ub_arg] + _share(i, ub_arg, rep, size, rep_sum, share_num, neg_theta, theta_rth)) + ban[
                    i, ub_arg
                ]
                best = -1
                for c in range(k):
                    if c == own or bound[c] < top:
                        continue  # its exact value <= bound < top: neither the maximum nor a tie
                    if c == ub_arg:
                        v = top
                    else:
                        v = (fpart[c] + _share(i, c, rep, size, rep_sum, share_num, neg_theta, theta_rth)) + ban[i, c]
                    if best < 0 or v > best_val:
                        best = c
                        best_val = v
            # else: no bound passes the join test, so the best exact value cannot either
            if best_val >= 0.0 and best_val > cur + eps:
                dst = best
            elif own >= 0 and 0.0 > cur + eps:
                dst = -1
            else:
                continue
            # apply the move: two coalitions' aggregates change
            if own >= 0:
                size[own] -= 1.0
                rep_sum[own] -= rep[i, own]
                w_sum[own] -= wt[i, own]
                share_ub[own] = _share_bound(own, rep_max, size, rep_sum, share_num, neg_theta, theta_rth)
                left[i, own] = True
                ban[i, own] = -np.inf
            if dst >= 0:
                size[dst] += 1.0
                rep_sum[dst] += rep[i, dst]
                w_sum[dst] += wt[i, dst]
                share_ub[dst] = _share_bound(dst, rep_max, size, rep_sum, share_num, neg_theta, theta_rth)
            assign[i] = dst
            moves += 1
            moved = True
            if moves > limit:
                return sweeps, moves, MOVE_BOUND_EXCEEDED
        if not moved:
            return sweeps, moves, OK


def warm_up() -> None:
    """Compile (or load from numba's cache) every kernel now, e.g. when a node starts.

    The first call in a process otherwise pays it inside the first formation:
    ~0.6 s from the cache, ~3-4 s for a cold compile (measured on the dev machine).
    """
    from pocnet.games import pmath

    pmath.warm_up()  # exp_array (formation utilities) is compiled separately from the kernel
    n, k = 2, 1
    z2 = np.zeros((n, k))
    switch_rule_kernel(
        np.zeros(n, dtype=np.int64), z2, np.ones((n, k)), z2, z2, np.zeros((n, k)), np.zeros((n, k), dtype=np.bool_),
        np.ones(n), np.ones(n), np.ones(n), np.ones(n), np.array([True, False]), np.zeros(k), 1.0, -1.0, 0.0, 1e-9,
    )
