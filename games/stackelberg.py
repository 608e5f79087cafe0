"""Stackelberg incentive game inside one coalition (docs/model.md eqs. 20-25).

Stage II (followers): each member picks its CPU frequency by the closed-form
KKT best response. Stage I (leader, the MSP): picks the competition incentive
C_k in [C_min, C_max] that maximises its utility given those responses. The
MSP utility is concave between the incentives where some member's response
leaves a clip bound ("breakpoints") but not necessarily across them, so the
leader solves each piece by bisection on the derivative and keeps the best.
"""
from __future__ import annotations

import enum
import math
from dataclasses import dataclass
from typing import Sequence

import numpy as np

from pocnet.games import pmath
from pocnet.games.cost import deadline_min_frequency, energy_cost
from pocnet.games.params import GameParams
from pocnet.games.reputation import coalition_reputation, reputation_fn


class KKTCase(enum.IntEnum):
    """Which constraints bind at the follower's optimum (paper's cases 1-6; 7 ours)."""

    INFEASIBLE = 0  # the head's deadline cannot be met even at f_max: sit out
    INTERIOR = 1  # no constraint active: f* = C w / (2 mu kappa Q f_max)
    LOWER = 2  # f* = f_min
    UPPER = 3  # f* = f_max
    DEADLINE = 4  # f* = f^T, the slowest clock meeting the deadline
    LOWER_UPPER = 5  # f_min = f_max
    LOWER_DEADLINE = 6  # f_min = f^T
    DEADLINE_UPPER = 7  # f^T = f_max (ours: the paper lists no such case)


@dataclass(frozen=True)
class Follower:
    """What the game needs to know about one coalition member."""

    address: str
    cycles: float  # Q_i, CPU cycles per round
    kappa: float
    f_min: float
    f_max: float
    tx_time: float  # t_com = Z / r_i
    weight: float  # omega_{i,k}: share of the competition pot
    reputation: float  # r_{i,k}: overall reputation w.r.t. this coalition's head

    def __post_init__(self) -> None:
        for name in ("cycles", "kappa", "f_min", "f_max", "tx_time", "weight", "reputation"):
            v = getattr(self, name)
            if not isinstance(v, (int, float)) or not math.isfinite(v):
                raise ValueError(f"{name}: must be a finite number (learner {self.address})")
        if self.cycles <= 0 or self.kappa <= 0:
            raise ValueError(f"cycles/kappa: must be > 0 (learner {self.address})")
        if not 0 < self.f_min <= self.f_max:
            raise ValueError(f"f_min/f_max: need 0 < f_min <= f_max (learner {self.address})")
        if self.tx_time < 0 or not 0.0 <= self.weight <= 1.0 or not 0.0 <= self.reputation <= 1.0:
            raise ValueError(f"tx_time/weight/reputation out of range (learner {self.address})")


@dataclass(frozen=True)
class CoalitionGame:
    """One coalition: its head's deadline and its members (head included)."""

    head: str
    deadline: float  # T_{h_k}
    members: tuple[Follower, ...]

    @property
    def size(self) -> int:
        return len(self.members)

    @property
    def reputation(self) -> float:
        """r_bar_k, the mean overall reputation of the members."""
        return coalition_reputation([m.reputation for m in self.members])


@dataclass(frozen=True)
class BestResponse:
    frequency: float  # f_i* (f_max when infeasible: the best the device can do)
    case: KKTCase
    lower: float  # max(f_min, f^T)
    upper: float  # f_max

    @property
    def feasible(self) -> bool:
        return self.case is not KKTCase.INFEASIBLE


@dataclass(frozen=True)
class StackelbergSolution:
    incentive: float  # C_k*
    frequencies: dict[str, float]
    cases: dict[str, KKTCase]
    completion_times: dict[str, float]
    learner_utilities: dict[str, float]
    msp_utility: float
    infeasible: tuple[str, ...]  # members that cannot meet the deadline (sit out)


def learner_utility(
    frequency: float,
    incentive: float,
    member: Follower,
    coalition_size: int,
    coalition_rep: float,
    params: GameParams,
) -> float:
    """U_{i,k}(f) = R Phi(r_bar_k)/|S_k| + C_k w_{i,k} f/f_max - E_i(f) (eqs. 10, 20)."""
    share = params.R * reputation_fn(coalition_rep, params) / coalition_size
    reward = incentive * member.weight * frequency / member.f_max
    return share + reward - energy_cost(frequency, member.cycles, member.kappa, params)


def interior_slope(member: Follower, params: GameParams) -> float:
    """a_i with f_unclipped = a_i * C: w / (2 mu kappa Q f_max)."""
    return member.weight / (2.0 * params.mu * member.kappa * member.cycles * member.f_max)


def follower_best_response(incentive: float, member: Follower, deadline: float, params: GameParams) -> BestResponse:
    """Stage II by KKT: the utility is strictly concave in f, so clip the stationary point."""
    f_t = deadline_min_frequency(member.cycles, deadline, member.tx_time)
    lower = max(member.f_min, f_t)
    upper = member.f_max
    if lower > upper:
        return BestResponse(upper, KKTCase.INFEASIBLE, lower, upper)
    f_unc = interior_slope(member, params) * incentive
    if lower < f_unc < upper:
        return BestResponse(f_unc, KKTCase.INTERIOR, lower, upper)
    f = lower if f_unc <= lower else upper
    at_min, at_max, at_dl = f == member.f_min, f == member.f_max, f == f_t
    if at_min and at_max:
        case = KKTCase.LOWER_UPPER
    elif at_min and at_dl:
        case = KKTCase.LOWER_DEADLINE
    elif at_dl and at_max:
        case = KKTCase.DEADLINE_UPPER
    elif at_min:
        case = KKTCase.LOWER
    elif at_max:
        case = KKTCase.UPPER
    else:
        case = KKTCase.DEADLINE
    return BestResponse(f, case, lower, upper)


def msp_utility(incentive: float, game: CoalitionGame, params: GameParams) -> float:
    """U^MSP(C) = beta ln(1 + sum r_i (T_h - t_i(f_i*(C)))) - C (eq. 23, ours: one log).

    Members that cannot meet the deadline sit out and add nothing.
    """
    terms = []
    for m in game.members:
        br = follower_best_response(incentive, m, game.deadline, params)
        if br.feasible:
            t_i = m.cycles / br.frequency + m.tx_time
            terms.append(m.reputation * (game.deadline - t_i))
    return params.beta * pmath.log1p(math.fsum(terms)) - incentive


def _bisect_derivative(a_sum: float, b_sum: float, lo: float, hi: float, beta: float) -> float:
    """argmax of beta ln(1 + A - B/C) - C on [lo, hi] (concave there): bisection on U'."""

    def deriv(c: float) -> float:
        return beta * (b_sum / (c * c)) / (1.0 + a_sum - b_sum / c) - 1.0

    if b_sum <= 0.0 or deriv(lo) <= 0.0:
        return lo
    if deriv(hi) >= 0.0:
        return hi
    for _ in range(200):  # stops at float resolution long before 200
        mid = 0.5 * (lo + hi)
        if mid <= lo or mid >= hi:
            break
        if deriv(mid) > 0.0:
            lo = mid
        else:
            hi = mid
    return 0.5 * (lo + hi)


def leader_optimum(game: CoalitionGame, params: GameParams) -> tuple[float, dict[str, float]]:
    """(C_k*, {address: f_i*}) - the global maximiser of the MSP utility on [C_min, C_max].

    Members that cannot meet the deadline are left out of the frequencies.
    """
    c_lo, c_hi = params.C_min, params.C_max
    feas: list[Follower] = []
    lower: list[float] = []
    for m in game.members:
        br = follower_best_response(c_lo, m, game.deadline, params)
        if br.feasible:
            feas.append(m)
            lower.append(br.lower)
    if not feas or c_hi == c_lo:
        c_star = c_lo
    else:
        a = np.array([interior_slope(m, params) for m in feas])
        lo_f = np.array(lower)
        hi_f = np.array([m.f_max for m in feas])
        q = np.array([m.cycles for m in feas])
        rep = np.array([m.reputation for m in feas])
        slack = game.deadline - np.array([m.tx_time for m in feas])  # T_h - t_com
        with np.errstate(divide="ignore", over="ignore"):
            brk_lo = np.where(a > 0, lo_f / np.where(a > 0, a, 1.0), np.inf)
            brk_hi = np.where(a > 0, hi_f / np.where(a > 0, a, 1.0), np.inf)
        inner = np.concatenate([brk_lo, brk_hi])
        inner = np.unique(inner[(inner > c_lo) & (inner < c_hi)])
        edges = np.concatenate([[c_lo], inner, [c_hi]])
        best_c, best_u = c_lo, -math.inf
        for p in range(len(edges) - 1):
            p_lo, p_hi = float(edges[p]), float(edges[p + 1])
            mid = 0.5 * (p_lo + p_hi)
            f_mid = a * mid
            interior = (f_mid > lo_f) & (f_mid < hi_f)
            pinned_f = np.where(f_mid <= lo_f, lo_f, hi_f)
            a_sum = math.fsum(np.where(interior, rep * slack, rep * (slack - q / pinned_f)).tolist())
            b_sum = math.fsum(np.where(interior, rep * q / np.where(interior, a, 1.0), 0.0).tolist())
            c = _bisect_derivative(a_sum, b_sum, p_lo, p_hi, params.beta)
            f = np.clip(a * c, lo_f, hi_f)
            u = params.beta * pmath.log1p(math.fsum((rep * (slack - q / f)).tolist())) - c
            if u > best_u:  # strict: ties keep the smaller incentive
                best_c, best_u = c, u
        c_star = best_c
    freqs = {m.address: follower_best_response(c_star, m, game.deadline, params).frequency for m in feas}
    return c_star, freqs


def solve_coalition(game: CoalitionGame, params: GameParams) -> StackelbergSolution:
    """Leader optimum plus everything a round plan records about it."""
    c_star, freqs = leader_optimum(game, params)
    cases: dict[str, KKTCase] = {}
    times: dict[str, float] = {}
    utils: dict[str, float] = {}
    infeasible = []
    rbar = game.reputation
    for m in game.members:
        br = follower_best_response(c_star, m, game.deadline, params)
        cases[m.address] = br.case
        if not br.feasible:
            infeasible.append(m.address)
            continue
        times[m.address] = m.cycles / br.frequency + m.tx_time
        utils[m.address] = learner_utility(br.frequency, c_star, m, game.size, rbar, params)
    return StackelbergSolution(
        incentive=c_star,
        frequencies=freqs,
        cases=cases,
        completion_times=times,
        learner_utilities=utils,
        msp_utility=msp_utility(c_star, game, params),
        infeasible=tuple(infeasible),
    )


def coalition_weights(similarities: Sequence[float], data_sizes: Sequence[float]) -> list[float]:
    """omega_{i,k} = s_i D_i / sum_j s_j D_j (0 for everyone if the sum is 0)."""
    prods = [s * d for s, d in zip(similarities, data_sizes)]
    total = math.fsum(prods)
    return [p / total if total > 0 else 0.0 for p in prods]


def make_game(head: str, deadline: float, members: Sequence[Follower]) -> CoalitionGame:
    return CoalitionGame(head=head, deadline=float(deadline), members=tuple(members))


__all__: Sequence[str] = (
    "KKTCase",
    "Follower",
    "CoalitionGame",
    "BestResponse",
    "StackelbergSolution",
    "learner_utility",
    "follower_best_response",
    "msp_utility",
    "leader_optimum",
    "solve_coalition",
    "coalition_weights",
    "make_game",
)
