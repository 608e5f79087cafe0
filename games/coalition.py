"""Head selection and coalition formation by the switch rule (docs/model.md Algorithm 1).

The switch rule is sequential: learners are visited in address order and a
move changes the size, reputation sum and weight sum of two coalitions, which
later learners see. ``prepare_formation`` precomputes every per-(learner,
coalition) constant with numpy; the sequential loop itself runs compiled in
``games.switch_kernel`` (numba, no fastmath), one learner at a time, with the
same float operations (and the same portable ``pmath`` exp) as the numpy helpers here, which the stability checks
(``is_nash_stable``, ``stability_violations``) and ``member_utilities`` use.

Options of a learner: any coalition whose head's deadline it can meet and that
it has not left during this formation (the no-return history rule, which
bounds the moves per learner by 2K+1 and so guarantees termination), or
sitting the round out (utility 0). It moves when the best option beats its
current utility by more than epsilon. Heads never move.
"""
from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Iterable, Mapping, Sequence

import numpy as np

from pocnet.games import pmath
from pocnet.games.cost import cycles_per_round, deadline_min_frequency, transmission_time
from pocnet.games.params import GameParams
from pocnet.games.profile import LearnerProfile
from pocnet.games.reputation import cosine_matrix
from pocnet.games.switch_kernel import MOVE_BOUND_EXCEEDED, switch_rule_kernel

OUT = -1  # assignment value of a learner sitting the round out


@dataclass(frozen=True)
class FormationResult:
    partition: dict[str, tuple[str, ...]]  # head -> members in address order, head included
    sitting_out: tuple[str, ...]  # participating learners in no coalition
    left: dict[str, frozenset[str]]  # learner -> heads of coalitions it left (history rule)
    sweeps: int
    moves: int
    utilities: dict[str, float]  # U_{i,k}(f_i*) of every member at the formation incentives


@dataclass
class FormationArrays:
    """Per-(learner, coalition) constants of the switch rule, rows in address order."""

    addresses: list[str]
    heads: list[str]
    head_rows: np.ndarray  # [K] row of each head
    is_head: np.ndarray  # [N] bool
    rep: np.ndarray  # [N,K] overall reputation r_{i,k}
    wt: np.ndarray  # [N,K] s_{i,k} * D_i
    lower: np.ndarray  # [N,K] max(f_min, f^T)
    ban: np.ndarray  # [N,K] 0, or -inf where the head's deadline is infeasible
    energy: np.ndarray  # [N] mu kappa Q
    slope: np.ndarray  # [N] 1/(2 mu kappa Q f_max): f_unc = C w slope
    f_max: np.ndarray  # [N]
    incentive: np.ndarray  # [K] C_k used during formation
    params: GameParams
    # derived in __post_init__
    cwt: np.ndarray = field(init=False)  # [N,K] C_k s_{i,k} D_i
    inv_f_max: np.ndarray = field(init=False)  # [N]
    w_pad: np.ndarray = field(init=False)  # [K] +inf where the head's own weight is 0

    def __post_init__(self) -> None:
        self.cwt = self.incentive[None, :] * self.wt
        self.inv_f_max = 1.0 / self.f_max
        k = len(self.heads)
        head_w = self.wt[self.head_rows, np.arange(k)] if k else np.zeros(0)
        self.w_pad = np.where(head_w > 0, 0.0, np.inf)


def prepare_formation(
    learners: Sequence[LearnerProfile],
    heads: Sequence[str],
    reputation: np.ndarray | Mapping[str, Mapping[str, float]],
    params: GameParams,
    incentives: Mapping[str, float] | None = None,
) -> FormationArrays:
    """Sort by address and precompute everything that does not change during formation.

    ``reputation[i, k]`` is learner ``learners[i]``'s overall reputation w.r.t.
    ``heads[k]`` (in the orders given), or a mapping learner -> head -> value.
    """
    addrs_given = [p.address for p in learners]
    if len(set(addrs_given)) != len(addrs_given):
        raise ValueError("learners: duplicate address")
    if len(set(heads)) != len(heads):
        raise ValueError("heads: duplicate head")
    for p in learners:
        if not p.active:
            raise ValueError(f"learners: {p.address} is passive and cannot join a coalition")
    row_of_given = {a: i for i, a in enumerate(addrs_given)}
    for h in heads:
        if h not in row_of_given:
            raise ValueError(f"heads: {h} is not among the learners")
    order = sorted(range(len(learners)), key=lambda i: addrs_given[i])
    horder = sorted(range(len(heads)), key=lambda k: heads[k])
    profs = [learners[i] for i in order]
    addresses = [p.address for p in profs]
    head_list = [heads[k] for k in horder]
    n, k = len(profs), len(head_list)
    if isinstance(reputation, Mapping):
        rep = np.array([[float(reputation[a][h]) for h in head_list] for a in addresses]).reshape(n, k)
    else:
        rep_in = np.asarray(reputation, dtype=float)
        if rep_in.shape != (len(learners), len(heads)):
            raise ValueError(f"reputation: shape {rep_in.shape} != ({len(learners)}, {len(heads)})")
        rep = rep_in[np.ix_(order, horder)]
    if not np.all(np.isfinite(rep)) or rep.min(initial=0.0) < 0 or rep.max(initial=0.0) > 1:
        raise ValueError("reputation: values must be in [0, 1]")
    row = {a: i for i, a in enumerate(addresses)}
    head_rows = np.array([row[h] for h in head_list], dtype=np.int64)
    is_head = np.zeros(n, dtype=bool)
    is_head[head_rows] = True

    dims = {len(p.embedding) for p in profs}
    if len(dims) > 1:
        raise ValueError("embedding: all learners' embeddings must have the same length")
    emb = np.array([p.embedding for p in profs], dtype=float).reshape(n, dims.pop() if dims else 0)
    sim = cosine_matrix(emb, emb[head_rows])
    data = np.array([p.data_size for p in profs], dtype=float)
    q = np.array([cycles_per_round(p.data_size, params) for p in profs])
    kappa = np.array([p.kappa for p in profs])
    f_min = np.array([p.f_min for p in profs])
    f_max = np.array([p.f_max for p in profs])
    tx = np.array([transmission_time(p.rate, params) for p in profs])
    deadline = np.array([profs[r].tolerated_time for r in head_rows])
    slack = deadline[None, :] - tx[:, None]
    with np.errstate(divide="ignore", invalid="ignore"):
        f_t = np.where(slack > 0, q[:, None] / np.where(slack > 0, slack, 1.0), np.inf)
    lower = np.maximum(f_min[:, None], f_t)
    feasible = lower <= f_max[:, None]
    energy = params.mu * kappa * q
    if incentives is None:
        c = np.full(k, params.C_max)
    else:
        c = np.array([float(incentives.get(h, params.C_max)) for h in head_list])
        if np.any(c < params.C_min) or np.any(c > params.C_max):
            raise ValueError("incentives: must lie in [C_min, C_max]")
    return FormationArrays(
        addresses=addresses,
        heads=head_list,
        head_rows=head_rows,
        is_head=is_head,
        rep=rep,
        wt=sim * data[:, None],
        lower=np.where(feasible, lower, f_max[:, None]),
        ban=np.where(feasible, 0.0, -np.inf),
        energy=energy,
        slope=1.0 / (2.0 * energy * f_max),
        f_max=f_max,
        incentive=c,
        params=params,
    )


def _join_utility(fa: FormationArrays, rows: slice, size, rep_sum, w_sum) -> np.ndarray:
    """U_{i,k}(f_i*) of each row's learner in every coalition as a newcomer ([B,K]).

    Elementwise; ``games.switch_kernel`` evaluates the same expression entry by entry.
    """
    p = fa.params
    n1 = size + 1.0
    rbar = (rep_sum + fa.rep[rows]) / n1
    share = (2.0 * p.R * p.rho0) / ((pmath.exp_array(rbar * (-p.theta) + p.theta * p.r_th) + 1.0) * n1)
    cw = fa.cwt[rows] / (w_sum + fa.wt[rows])
    fmax = fa.f_max[rows][:, None]
    f = np.minimum(np.maximum(cw * fa.slope[rows][:, None], fa.lower[rows]), fmax)
    return f * (cw * fa.inv_f_max[rows][:, None] - fa.energy[rows][:, None] * f) + share


def _own_utility(fa: FormationArrays, rows: np.ndarray, cols: np.ndarray, size, rep_sum, w_sum) -> np.ndarray:
    """U of each learner ``rows[j]`` in the coalition ``cols[j]`` it belongs to ([B]); -inf if infeasible."""
    p = fa.params
    n = size[cols]
    rbar = rep_sum[cols] / n
    share = (2.0 * p.R * p.rho0) / ((pmath.exp_array(rbar * (-p.theta) + p.theta * p.r_th) + 1.0) * n)
    cw = fa.cwt[rows, cols] / w_sum[cols]
    fmax = fa.f_max[rows]
    f = np.minimum(np.maximum(cw * fa.slope[rows], fa.lower[rows, cols]), fmax)
    return f * (cw * fa.inv_f_max[rows] - fa.energy[rows] * f) + share + fa.ban[rows, cols]


def _aggregates(fa: FormationArrays, assign: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(|S_k|, sum of r_{j,k}, sum of s_{j,k} D_j) recomputed from scratch.

    A coalition whose head has a zero embedding has weight sum 0 for good; it
    is stored as +inf so every weight there is 0/inf = 0 without a branch.
    """
    k = len(fa.heads)
    members = np.flatnonzero(assign >= 0)
    cols = assign[members]
    size = np.bincount(cols, minlength=k).astype(float)
    rep_sum = np.bincount(cols, weights=fa.rep[members, cols], minlength=k)
    w_sum = np.bincount(cols, weights=fa.wt[members, cols], minlength=k) + fa.w_pad
    return size, rep_sum, w_sum


def _decide(cur: np.ndarray | float, best_val, in_coalition, eps: float):
    """(join best?, go out?) from the switch rule."""
    do_join = (best_val >= 0.0) & (best_val > cur + eps)
    do_out = ~do_join & in_coalition & (0.0 > cur + eps)
    return do_join, do_out


def _evaluate(
    fa: FormationArrays,
    lo: int,
    hi: int,
    assign: np.ndarray,
    ban: np.ndarray,
    size: np.ndarray,
    rep_sum: np.ndarray,
    w_sum: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """Decisions of rows lo..hi-1 against the current aggregates: (target, movers mask).

    ``ban`` is -inf where a coalition is infeasible or was left. target is a
    coalition index or OUT; movers marks who gains more than epsilon.
    """
    join = _join_utility(fa, slice(lo, hi), size, rep_sum, w_sum)
    return _decisions(fa, lo, hi, join, assign, ban, size, rep_sum, w_sum)


def _decisions(
    fa: FormationArrays,
    lo: int,
    hi: int,
    join: np.ndarray,
    assign: np.ndarray,
    ban: np.ndarray,
    size: np.ndarray,
    rep_sum: np.ndarray,
    w_sum: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """``_evaluate`` given the rows' newcomer utilities ``join`` ([B,K])."""
    rows = slice(lo, hi)
    b = hi - lo
    cand = join + ban[rows]
    own = assign[rows]
    inside = np.flatnonzero(own >= 0)
    cur = np.zeros(b)
    if inside.size:
        ok = own[inside]
        # ... and its own coalition as it stands
        cur[inside] = _own_utility(fa, inside + lo, ok, size, rep_sum, w_sum)
        cand[inside, ok] = -np.inf
    if cand.shape[1]:
        best = np.argmax(cand, axis=1)
        best_val = cand[np.arange(b), best]
    else:
        best = np.zeros(b, dtype=np.int64)
        best_val = np.full(b, -np.inf)
    do_join, do_out = _decide(cur, best_val, own >= 0, fa.params.epsilon)
    movers = (do_join | do_out) & ~fa.is_head[rows]
    target = np.where(do_join, best, OUT)
    return target, movers


def run_switch_rule(fa: FormationArrays, assign: np.ndarray) -> tuple[np.ndarray, np.ndarray, int, int]:
    """Apply the switch rule until a full sweep moves nobody.

    Returns (assignment, left [N,K] bool, sweeps, moves); ``assign`` is not
    modified. The sequential loop is compiled (``games.switch_kernel``): one
    learner at a time in address order, each move updating the aggregates
    the next learners see, with the same float operations as the numpy
    helpers above.
    """
    n, k = fa.rep.shape
    work = np.array(assign, dtype=np.int64, copy=True).reshape(n)
    work[fa.head_rows] = np.arange(k)
    left = np.zeros((n, k), dtype=np.bool_)
    ban = np.array(fa.ban, dtype=np.float64, copy=True)  # also receives -inf for every coalition a learner leaves
    p = fa.params
    f64 = np.ascontiguousarray
    sweeps, moves, status = switch_rule_kernel(
        work,
        f64(fa.rep, dtype=np.float64),
        f64(fa.wt, dtype=np.float64),
        f64(fa.cwt, dtype=np.float64),
        f64(fa.lower, dtype=np.float64),
        ban,
        left,
        f64(fa.energy, dtype=np.float64),
        f64(fa.slope, dtype=np.float64),
        f64(fa.f_max, dtype=np.float64),
        f64(fa.inv_f_max, dtype=np.float64),
        f64(fa.is_head, dtype=np.bool_),
        f64(fa.w_pad, dtype=np.float64),
        float(2.0 * p.R * p.rho0),
        float(-p.theta),
        float(p.theta * p.r_th),
        float(p.epsilon),
    )
    if status == MOVE_BOUND_EXCEEDED:
        raise RuntimeError("switch rule exceeded its move bound")
    return work, left, int(sweeps), int(moves)


def member_utilities(fa: FormationArrays, assign: np.ndarray) -> np.ndarray:
    """U_{i,k}(f*) of every learner in its own coalition (0 when out)."""
    size, rep_sum, w_sum = _aggregates(fa, assign)
    out = np.zeros(len(assign))
    inside = np.flatnonzero(assign >= 0)
    if inside.size:
        out[inside] = _own_utility(fa, inside, assign[inside], size, rep_sum, w_sum)
    return out


def stability_violations(
    fa: FormationArrays, assign: np.ndarray, left: np.ndarray | None = None
) -> list[tuple[str, str | None, str | None, float]]:
    """Every (learner, from head, to head, gain) switch that gains more than epsilon.

    ``None`` as a head means sitting out. Recomputes the aggregates from scratch.
    """
    n, k = fa.rep.shape
    size, rep_sum, w_sum = _aggregates(fa, assign)
    ban = fa.ban if left is None else fa.ban + np.where(left, -np.inf, 0.0)
    out = []
    for lo in range(0, n, 4096):
        hi = min(n, lo + 4096)
        target, movers = _evaluate(fa, lo, hi, assign, ban, size, rep_sum, w_sum)
        for j in np.flatnonzero(movers):
            i = lo + int(j)
            src, dst = int(assign[i]), int(target[j])
            cur = member_utilities(fa, assign)[i] if src >= 0 else 0.0
            if dst >= 0:
                trial = assign.copy()
                trial[i] = dst
                new = member_utilities(fa, trial)[i]
            else:
                new = 0.0
            out.append(
                (fa.addresses[i], fa.heads[src] if src >= 0 else None, fa.heads[dst] if dst >= 0 else None, new - cur)
            )
    return out


def _initial_assignment(fa: FormationArrays, initial: Mapping[str, str | None]) -> np.ndarray:
    col = {h: j for j, h in enumerate(fa.heads)}
    assign = np.full(len(fa.addresses), OUT, dtype=np.int64)
    for i, a in enumerate(fa.addresses):
        h = initial.get(a)
        if h is not None:
            if h not in col:
                raise ValueError(f"initial: {a} assigned to unknown head {h}")
            assign[i] = col[h]
    assign[fa.head_rows] = np.arange(len(fa.heads))
    return assign


def _result(fa: FormationArrays, assign: np.ndarray, left: np.ndarray, sweeps: int, moves: int) -> FormationResult:
    members: dict[str, list[str]] = {h: [] for h in fa.heads}
    out = []
    for i, a in enumerate(fa.addresses):
        j = int(assign[i])
        if j >= 0:
            members[fa.heads[j]].append(a)
        else:
            out.append(a)
    util = member_utilities(fa, assign)
    left_map: dict[str, set[str]] = {}
    rows, cols = np.nonzero(left)
    for i, j in zip(rows.tolist(), cols.tolist()):
        left_map.setdefault(fa.addresses[i], set()).add(fa.heads[j])
    return FormationResult(
        partition={h: tuple(m) for h, m in members.items()},
        sitting_out=tuple(out),
        left={a: frozenset(s) for a, s in left_map.items()},
        sweeps=sweeps,
        moves=moves,
        utilities={fa.addresses[i]: float(util[i]) for i in np.flatnonzero(assign >= 0).tolist()},
    )


def form_coalitions(
    learners: Sequence[LearnerProfile],
    heads: Sequence[str],
    reputation: np.ndarray | Mapping[str, Mapping[str, float]],
    initial: Mapping[str, str | None],
    params: GameParams,
    incentives: Mapping[str, float] | None = None,
) -> FormationResult:
    """Algorithm 1 steps 3: from ``initial`` (learner -> head, missing = out) to a Nash-stable partition.

    ``incentives`` are the C_k each learner assumes (previous round's, C_max by default).
    """
    fa = prepare_formation(learners, heads, reputation, params, incentives)
    assign0 = _initial_assignment(fa, initial)
    assign, left, sweeps, moves = run_switch_rule(fa, assign0)
    return _result(fa, assign, left, sweeps, moves)


def _assignment_from_partition(fa: FormationArrays, partition: Mapping[str, Iterable[str]]) -> np.ndarray:
    col = {h: j for j, h in enumerate(fa.heads)}
    row = {a: i for i, a in enumerate(fa.addresses)}
    if set(partition) != set(fa.heads):
        raise ValueError("partition: keys must be exactly the heads")
    assign = np.full(len(fa.addresses), OUT, dtype=np.int64)
    for h, members in partition.items():
        for a in members:
            if a not in row:
                raise ValueError(f"partition: unknown learner {a}")
            if assign[row[a]] != OUT:
                raise ValueError(f"partition: {a} is in two coalitions")
            assign[row[a]] = col[h]
    if np.any(assign[fa.head_rows] != np.arange(len(fa.heads))):
        raise ValueError("partition: every head must be in its own coalition")
    return assign


def is_nash_stable(
    learners: Sequence[LearnerProfile],
    heads: Sequence[str],
    reputation: np.ndarray | Mapping[str, Mapping[str, float]],
    partition: Mapping[str, Iterable[str]],
    params: GameParams,
    incentives: Mapping[str, float] | None = None,
    left: Mapping[str, Iterable[str]] | None = None,
) -> bool:
    """True when no non-head learner gains more than epsilon by an allowed switch.

    Allowed: any coalition whose deadline it can meet and that is not in
    ``left[learner]`` (history rule), or sitting out.
    """
    fa = prepare_formation(learners, heads, reputation, params, incentives)
    assign = _assignment_from_partition(fa, partition)
    left_arr = np.zeros(fa.rep.shape, dtype=bool)
    if left:
        col = {h: j for j, h in enumerate(fa.heads)}
        row = {a: i for i, a in enumerate(fa.addresses)}
        for a, hs in left.items():
            for h in hs:
                if a in row and h in col:
                    left_arr[row[a], col[h]] = True
    n, k = fa.rep.shape
    size, rep_sum, w_sum = _aggregates(fa, assign)
    ban = fa.ban + np.where(left_arr, -np.inf, 0.0)
    for lo in range(0, n, 4096):
        _, movers = _evaluate(fa, lo, min(n, lo + 4096), assign, ban, size, rep_sum, w_sum)
        if movers.any():
            return False
    return True


def self_feasible(p: LearnerProfile, params: GameParams) -> bool:
    """Can the learner meet its own tolerated time at f_max (needed to be a head)?"""
    q = cycles_per_round(p.data_size, params)
    f_t = deadline_min_frequency(q, p.tolerated_time, transmission_time(p.rate, params))
    return max(p.f_min, f_t) <= p.f_max


def head_score(p: LearnerProfile, global_rep: float) -> tuple[float, str]:
    """Sort key: highest R^g / T first, ties by address (Algorithm 1 lines 8-14)."""
    return (-(global_rep / p.tolerated_time), p.address)


def select_heads(
    groups: Sequence[Sequence[str]],
    profiles: Mapping[str, LearnerProfile],
    global_reputation: Mapping[str, float],
    params: GameParams,
) -> list[str | None]:
    """One head per group (aligned with ``groups``): the eligible member with the highest R^g / T.

    Ties by address. Eligible = active and able to meet its own deadline. A
    group without an eligible member takes the best eligible learner not yet
    chosen (ours); None when there is none left.
    """
    eligible = {a for a, p in profiles.items() if p.active and self_feasible(p, params)}

    def key(a: str) -> tuple[float, str]:
        return head_score(profiles[a], global_reputation.get(a, params.r_th))

    heads: list[str | None] = []
    chosen: set[str] = set()
    for g in groups:
        cands = sorted((a for a in g if a in eligible and a not in chosen), key=key)
        h = cands[0] if cands else None
        heads.append(h)
        if h is not None:
            chosen.add(h)
    spare = sorted((a for a in eligible if a not in chosen), key=key)
    for j, h in enumerate(heads):
        if h is None and spare:
            heads[j] = spare.pop(0)
    return heads


def random_groups(addresses: Sequence[str], n_groups: int, seed: int) -> list[list[str]]:
    """Round 1: the learners shuffled with ``seed`` and dealt into n_groups (sorted input => deterministic)."""
    order = sorted(addresses)
    random.Random(seed).shuffle(order)
    groups: list[list[str]] = [[] for _ in range(max(0, min(n_groups, len(order))))]
    for idx, a in enumerate(order):
        groups[idx % len(groups)].append(a)
    return groups


__all__ = [
    "FormationResult",
    "FormationArrays",
    "prepare_formation",
    "run_switch_rule",
    "form_coalitions",
    "is_nash_stable",
    "stability_violations",
    "member_utilities",
    "select_heads",
    "self_feasible",
    "random_groups",
]
