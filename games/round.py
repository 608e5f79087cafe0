"""One GFML round as two pure state transitions (docs/model.md Algorithm 2).

``plan_round`` runs at the close of registration: heads, Nash-stable
coalitions, the Stackelberg game per coalition. ``settle_round`` runs at the
close of the round: contributions q_i from the heads' reports, reputations,
payouts. Both are deterministic functions of their arguments (randomness only
from ``seed``, iteration in address order), so every peer computes the same
result; quantise with ``to_dict(quantized=True)`` before storing.

Restart safety: settle from the *stored* plan (``RoundPlan.from_dict`` of the
quantised form) on every peer, never from an in-memory float plan, so a peer
that restarted between the two steps computes the same settlement.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

from pocnet import probes
from pocnet.games.coalition import form_coalitions, random_groups, select_heads
from pocnet.games.cost import cycles_per_round, transmission_time
from pocnet.games.params import GameParams
from pocnet.games.profile import LearnerProfile
from pocnet.games.quantize import DEFAULT_SCALE, dequantize, quantize
from pocnet.games.settlement import PPM, next_score, work_factor, work_scores
from pocnet.games.reputation import (
    EMPTY_HISTORY,
    ReputationHistory,
    contributions,
    global_reputation,
    overall_reputation,
    reputation_fn,
    reputation_matrix,
    similarity,
)
from pocnet.games.rationality import NO_COALITION, solve_rational
from pocnet.games.stackelberg import Follower, KKTCase, coalition_weights

__all__ = [
    "LearnerProfile",
    "MemberReport",
    "RoundPlan",
    "RoundSettlement",
    "FormationInputs",
    "formation_inputs",
    "plan_round",
    "settle_round",
]


@dataclass(frozen=True)
class MemberReport:
    """What a head reports about one member at the end of the round."""

    loss_reduction: float  # leave-one-out validation-loss reduction (may be < 0; clipped)
    grad_norm: float  # recorded, not used by q_i (docs/model.md's q uses loss and time only)
    completion_time: float  # seconds
    # length of the member's update along the others' mean update (evidence of work,
    # games.settlement); None: not measured, the settlement falls back to grad_norm
    work: float | None = None

    def __post_init__(self) -> None:
        for name in ("loss_reduction", "grad_norm", "completion_time"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
                raise ValueError(f"{name}: must be a finite number")
        if self.grad_norm < 0:
            raise ValueError("grad_norm: must be >= 0")
        if self.work is not None and (isinstance(self.work, bool) or not isinstance(self.work, (int, float))
                                      or not math.isfinite(self.work) or self.work < 0):
            raise ValueError("work: must be a finite number >= 0")
        if self.completion_time <= 0:
            raise ValueError("completion_time: must be > 0")

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "MemberReport":
        for name in ("loss_reduction", "grad_norm", "completion_time"):
            if name not in d:
                raise ValueError(f"{name}: missing")
        work = d.get("work")
        return cls(float(d["loss_reduction"]), float(d["grad_norm"]), float(d["completion_time"]),
                   None if work is None else float(work))


# Float fields of RoundPlan per kind, for (de)quantisation.
_PLAN_MEMBER_FLOATS = ("frequencies", "predicted_times", "weights", "reputations", "expected_utilities",
                       "competition_rewards")
_PLAN_HEAD_FLOATS = ("deadlines", "incentives", "formation_incentives", "coalition_reputation", "msp_utilities")


@dataclass(frozen=True)
class RoundPlan:
    """Everything decided when registration closes. Members lists include the head."""

    seed: int
    heads: tuple[str, ...]  # address order
    partition: dict[str, tuple[str, ...]]  # head -> members (address order, head included)
    deadlines: dict[str, float]  # head -> T_h
    incentives: dict[str, float]  # head -> C_k*
    formation_incentives: dict[str, float]  # head -> C_k learners assumed while switching
    frequencies: dict[str, float]  # member -> f_i*
    cases: dict[str, str]  # member -> KKT case name
    predicted_times: dict[str, float]  # member -> t_i at f_i*
    weights: dict[str, float]  # member -> omega_{i,k}
    reputations: dict[str, float]  # member -> r_{i,k} when the plan was made
    coalition_reputation: dict[str, float]  # head -> r_bar_k
    expected_utilities: dict[str, float]  # member -> U_{i,k}(f_i*) at C_k*
    competition_rewards: dict[str, float]  # member -> C_k* omega f_i*/f_max (promised)
    msp_utilities: dict[str, float]  # head -> U^MSP(C_k*)
    sitting_out: tuple[str, ...]  # active learners in no coalition
    passive: tuple[str, ...]
    left: dict[str, tuple[str, ...]]  # learner -> heads it left during formation (history rule)
    embeddings: dict[str, tuple[float, ...]]  # snapshot, for task-specific reputation at settlement
    formation_sweeps: int = 0
    formation_moves: int = 0
    # sitting-out learner -> why: "no_coalition" (the switch rule found none better than staying
    # out) or "negative_utility: ..." (left after the Stackelberg stage, games.rationality)
    sit_out_reasons: dict[str, str] = field(default_factory=dict)
    exited_from: dict[str, str] = field(default_factory=dict)  # negative-utility leaver -> head it left

    def formation_partition(self) -> dict[str, tuple[str, ...]]:
        """The partition the switch rule formed (before members left for negative utility)."""
        out = {h: set(m) for h, m in self.partition.items()}
        for a, h in self.exited_from.items():
            out[h].add(a)
        return {h: tuple(sorted(m)) for h, m in out.items()}

    def coalition_of(self, address: str) -> str | None:
        for h, members in self.partition.items():
            if address in members:
                return h
        return None

    def to_dict(self, quantized: bool = False, scale: int = DEFAULT_SCALE) -> dict[str, Any]:
        """JSON-ready; with ``quantized`` every float becomes an int (x * scale, half-even)."""
        conv = (lambda x: quantize(x, scale)) if quantized else float
        out: dict[str, Any] = {
            "seed": self.seed,
            "heads": list(self.heads),
            "partition": {h: list(m) for h, m in self.partition.items()},
            "cases": dict(self.cases),
            "sitting_out": list(self.sitting_out),
            "passive": list(self.passive),
            "left": {a: list(h) for a, h in self.left.items()},
            "embeddings": {a: [conv(x) for x in e] for a, e in self.embeddings.items()},
            "formation_sweeps": self.formation_sweeps,
            "formation_moves": self.formation_moves,
            "sit_out_reasons": dict(self.sit_out_reasons),
            "exited_from": dict(self.exited_from),
            "quantized": bool(quantized),
            "scale": scale if quantized else None,
        }
        for name in _PLAN_MEMBER_FLOATS + _PLAN_HEAD_FLOATS:
            out[name] = {a: conv(v) for a, v in getattr(self, name).items()}
        return out

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "RoundPlan":
        """Inverse of ``to_dict`` (quantised ints are turned back into floats)."""
        quantized = bool(d.get("quantized", False))
        scale = int(d.get("scale") or DEFAULT_SCALE)
        conv = (lambda x: dequantize(int(x), scale)) if quantized else float
        kwargs: dict[str, Any] = {
            "seed": int(d["seed"]),
            "heads": tuple(d["heads"]),
            "partition": {h: tuple(m) for h, m in d["partition"].items()},
            "cases": dict(d["cases"]),
            "sitting_out": tuple(d["sitting_out"]),
            "passive": tuple(d["passive"]),
            "left": {a: tuple(h) for a, h in d["left"].items()},
            "embeddings": {a: tuple(conv(x) for x in e) for a, e in d["embeddings"].items()},
            "formation_sweeps": int(d.get("formation_sweeps", 0)),
            "formation_moves": int(d.get("formation_moves", 0)),
            "sit_out_reasons": dict(d.get("sit_out_reasons", {})),
            "exited_from": dict(d.get("exited_from", {})),
        }
        for name in _PLAN_MEMBER_FLOATS + _PLAN_HEAD_FLOATS:
            kwargs[name] = {a: conv(v) for a, v in d[name].items()}
        return cls(**kwargs)


@dataclass(frozen=True)
class RoundSettlement:
    round: int
    q: dict[str, float]  # member -> contribution q_i (0 when flagged)
    flags: dict[str, str]  # member -> "missing" | "misreport"
    histories: dict[str, ReputationHistory]  # every learner's updated history
    global_reputation: dict[str, float]  # every learner with a history
    overall_reputation: dict[str, float]  # member -> r_{i,k} w.r.t. its head, after the update
    coalition_reputation: dict[str, float]  # head -> mean of the members' updated r_{i,k}
    reputation_shares: dict[str, float]  # member -> R Phi(r_bar_k)/|S_k| (0 when flagged)
    competition_rewards: dict[str, float]  # member -> C_k* omega f*/f_max (0 when flagged)
    payouts: dict[str, float]  # member -> reputation share + competition reward
    msp_spend: dict[str, float] = field(default_factory=dict)  # head -> sum of its members' payouts
    work_factors: dict[str, int] = field(default_factory=dict)  # member -> e_i in ppm (games.settlement)
    work_scores: dict[str, int] = field(default_factory=dict)  # member -> updated work score s_i in ppm

    def to_dict(self, quantized: bool = False, scale: int = DEFAULT_SCALE) -> dict[str, Any]:
        conv = (lambda x: quantize(x, scale)) if quantized else float
        return {
            "round": self.round,
            "q": {a: conv(v) for a, v in self.q.items()},
            "flags": dict(self.flags),
            "histories": {
                a: [[r.round, r.head, conv(r.q)] for r in h.records] for a, h in self.histories.items()
            },
            "global_reputation": {a: conv(v) for a, v in self.global_reputation.items()},
            "overall_reputation": {a: conv(v) for a, v in self.overall_reputation.items()},
            "coalition_reputation": {a: conv(v) for a, v in self.coalition_reputation.items()},
            "reputation_shares": {a: conv(v) for a, v in self.reputation_shares.items()},
            "competition_rewards": {a: conv(v) for a, v in self.competition_rewards.items()},
            "payouts": {a: conv(v) for a, v in self.payouts.items()},
            "msp_spend": {a: conv(v) for a, v in self.msp_spend.items()},
            "work_factors": dict(self.work_factors),
            "work_scores": dict(self.work_scores),
            "quantized": bool(quantized),
            "scale": scale if quantized else None,
        }


def _initial_groups(
    active: Sequence[str], prev_partition: Mapping[str, Sequence[str]] | None, k: int, seed: int
) -> tuple[list[list[str]], list[str | None]]:
    """(groups, previous head of each group): the previous partition, or a seeded draw in round 1."""
    active_set = set(active)
    if not prev_partition:
        groups = random_groups(active, k, seed)
        return groups, [None] * len(groups)
    prev_heads = sorted(prev_partition)[:k]
    groups = [sorted(a for a in prev_partition[h] if a in active_set) for h in prev_heads]
    prev: list[str | None] = list(prev_heads)
    while len(groups) < min(k, len(active)):
        groups.append([])
        prev.append(None)
    return groups, prev


@dataclass(frozen=True)
class FormationInputs:
    """Algorithm 1 steps 1-2 done: what the switch rule starts from."""

    active: tuple[str, ...]  # address order
    passive: tuple[str, ...]
    heads: tuple[str, ...]  # address order
    initial: dict[str, str]  # learner -> head it starts with (absent: starts out)
    incentives: dict[str, float]  # head -> C_k learners assume while switching
    overall: Any  # np.ndarray [len(active), len(heads)]: r_{i,k}
    embeddings: dict[str, tuple[float, ...]]


def formation_inputs(
    learners: Sequence[LearnerProfile],
    histories: Mapping[str, ReputationHistory],
    prev_partition: Mapping[str, Sequence[str]] | None,
    seed: int,
    params: GameParams,
    prev_incentives: Mapping[str, float] | None = None,
) -> FormationInputs:
    """Starting partition (previous one, or seeded draw in round 1), heads, reputations."""
    addrs = [p.address for p in learners]
    if len(set(addrs)) != len(addrs):
        raise ValueError("learners: duplicate address")
    profiles = {p.address: p for p in learners}
    active = sorted(p.address for p in learners if p.active)
    passive = tuple(sorted(p.address for p in learners if not p.active))
    embeddings = {a: profiles[a].embedding for a in sorted(profiles)}
    glob_rep = {a: global_reputation(histories.get(a, EMPTY_HISTORY), params) for a in active}

    groups, prev_heads = _initial_groups(active, prev_partition, int(params.n_coalitions), seed)
    chosen = select_heads(groups, {a: profiles[a] for a in active}, glob_rep, params)
    heads_by_group = [(h, g, ph) for h, g, ph in zip(chosen, groups, prev_heads) if h is not None]
    heads = sorted(h for h, _, _ in heads_by_group)
    initial: dict[str, str] = {}
    for h, g, _ in heads_by_group:
        for a in g:
            if a not in heads:
                initial[a] = h
    incentives = {}
    for h, _, ph in heads_by_group:
        c = prev_incentives.get(ph) if (prev_incentives and ph is not None) else None
        incentives[h] = params.C_max if c is None else min(params.C_max, max(params.C_min, float(c)))
    _, overall = reputation_matrix(active, heads, histories, embeddings, params)
    return FormationInputs(tuple(active), passive, tuple(heads), initial, incentives, overall, embeddings)


@probes.timed("fml_plan_round")  # coalitions + Stackelberg solve; GET /metrics
def plan_round(
    learners: Sequence[LearnerProfile],
    histories: Mapping[str, ReputationHistory],
    prev_partition: Mapping[str, Sequence[str]] | None,
    seed: int,
    params: GameParams,
    prev_incentives: Mapping[str, float] | None = None,
) -> RoundPlan:
    """Heads -> switch rule to Nash stability -> Stackelberg per coalition.

    ``prev_partition`` is the previous plan's partition (head -> members); empty
    or None in round 1, when the seed draws the initial groups.
    ``prev_incentives`` (previous C_k* by head) are what learners assume while
    switching; C_max when absent.
    """
    fi = formation_inputs(learners, histories, prev_partition, seed, params, prev_incentives)
    profiles = {p.address: p for p in learners}
    active, passive, heads, embeddings, overall = list(fi.active), fi.passive, list(fi.heads), fi.embeddings, fi.overall
    incentives = fi.incentives
    if not heads:
        empty: dict[str, Any] = {name: {} for name in _PLAN_MEMBER_FLOATS + _PLAN_HEAD_FLOATS}
        return RoundPlan(seed=seed, heads=(), partition={}, cases={}, sitting_out=tuple(active), passive=passive,
                         left={}, embeddings=embeddings, **empty)
    formed = form_coalitions([profiles[a] for a in active], heads, overall, fi.initial, params, incentives)
    row = {a: i for i, a in enumerate(active)}
    col = {h: j for j, h in enumerate(heads)}

    out: dict[str, dict] = {name: {} for name in _PLAN_MEMBER_FLOATS + _PLAN_HEAD_FLOATS}
    cases: dict[str, str] = {}
    exited_from: dict[str, str] = {}
    exits: dict[str, str] = {}  # individual rationality after the Stackelberg stage (games.rationality)
    kept: dict[str, tuple[str, ...]] = {}
    for h in heads:
        members = formed.partition[h]
        head_emb = profiles[h].embedding
        sims = [similarity(profiles[a].embedding, head_emb) for a in members]
        weights = coalition_weights(sims, [profiles[a].data_size for a in members])
        followers = []
        for a, w in zip(members, weights):
            p = profiles[a]
            followers.append(
                Follower(
                    address=a,
                    cycles=cycles_per_round(p.data_size, params),
                    kappa=p.kappa,
                    f_min=p.f_min,
                    f_max=p.f_max,
                    tx_time=transmission_time(p.rate, params),
                    weight=w,
                    reputation=float(overall[row[a], col[h]]),
                )
            )
        game, sol, left_now = solve_rational(h, profiles[h].tolerated_time, followers, sims,
                                             [profiles[a].data_size for a in members], params)
        exits.update(left_now)
        exited_from.update({a: h for a in left_now})
        kept[h] = tuple(m.address for m in game.members)
        followers = list(game.members)
        if sol.infeasible:
            raise RuntimeError(f"coalition {h}: members {sol.infeasible} cannot meet the deadline")
        out["deadlines"][h] = game.deadline
        out["formation_incentives"][h] = incentives[h]
        out["incentives"][h] = sol.incentive
        out["coalition_reputation"][h] = game.reputation
        out["msp_utilities"][h] = sol.msp_utility
        for m in followers:
            f = sol.frequencies[m.address]
            out["frequencies"][m.address] = f
            out["predicted_times"][m.address] = sol.completion_times[m.address]
            out["weights"][m.address] = m.weight
            out["reputations"][m.address] = m.reputation
            out["expected_utilities"][m.address] = sol.learner_utilities[m.address]
            out["competition_rewards"][m.address] = sol.incentive * m.weight * f / m.f_max
            cases[m.address] = KKTCase(sol.cases[m.address]).name
    member_order = sorted(cases)
    return RoundPlan(
        seed=seed,
        heads=tuple(heads),
        partition={h: kept[h] for h in heads},
        cases={a: cases[a] for a in member_order},
        sitting_out=tuple(sorted(set(formed.sitting_out) | set(exits))),
        sit_out_reasons={a: exits.get(a, NO_COALITION) for a in sorted(set(formed.sitting_out) | set(exits))},
        exited_from=dict(sorted(exited_from.items())),
        passive=passive,
        left={a: tuple(sorted(formed.left[a])) for a in sorted(formed.left)},
        embeddings=embeddings,
        formation_sweeps=formed.sweeps,
        formation_moves=formed.moves,
        **{name: {a: vals[a] for a in sorted(vals)} for name, vals in out.items()},
    )


@probes.timed("fml_settle_round")  # payouts and reputation; GET /metrics
def settle_round(
    plan: RoundPlan,
    reports: Mapping[str, MemberReport],
    histories: Mapping[str, ReputationHistory],
    round_no: int,
    params: GameParams,
    prev_work_scores: Mapping[str, int] | None = None,
) -> RoundSettlement:
    """q_i per coalition -> histories -> reputations -> payouts.

    A member without a report, or whose reported completion time is below what
    its committed frequency allows (minus ``params.misreport_tolerance_s``), is
    flagged: q_i = 0 (it still enters its history, so its reputation drops),
    no payout, and it is left out of the min-max normalisation of the others
    (ours).

    Settlement on evidence of work (games.settlement): every other member's
    contribution q_i and payout are multiplied by its work factor e_i, computed
    in integers from the head's measured ``work`` (or ``grad_norm`` when a
    report has none) relative to its coalition, smoothed over rounds with the
    member's previous work score (``prev_work_scores``, ppm; absent: newcomer).
    """
    prev_scores = prev_work_scores or {}
    members_all = {a for m in plan.partition.values() for a in m}
    for a in reports:
        if a not in members_all:
            raise ValueError(f"reports: {a} is not a member of this round")
    q: dict[str, float] = {}
    flags: dict[str, str] = {}
    factors: dict[str, int] = {}
    scores: dict[str, int] = {}
    for h in plan.heads:
        valid, ells, times, work = [], [], [], {}
        for a in plan.partition[h]:
            rep = reports.get(a)
            if rep is None:
                flags[a] = "missing"
            elif rep.completion_time < plan.predicted_times[a] - params.misreport_tolerance_s:
                flags[a] = "misreport"
            else:
                valid.append(a)
                ells.append(rep.loss_reduction)
                times.append(rep.completion_time)
                work[a] = quantize(rep.grad_norm if rep.work is None else rep.work, PPM)
        scores.update(work_scores(work, {a: prev_scores[a] for a in work if a in prev_scores}))
        for a in plan.partition[h]:
            if a not in work:  # flagged: showed no work this round
                scores[a] = next_score(prev_scores.get(a), 0)
            factors[a] = work_factor(scores[a]) if a in work else 0
        for a, qa in zip(valid, contributions(ells, times, params)):
            q[a] = qa * factors[a] / PPM
        for a in plan.partition[h]:
            q.setdefault(a, 0.0)
    new_hist: dict[str, ReputationHistory] = dict(histories)
    for h in plan.heads:
        for a in plan.partition[h]:
            new_hist[a] = histories.get(a, EMPTY_HISTORY).add(round_no, h, q[a])
    new_hist = {a: new_hist[a] for a in sorted(new_hist)}
    glob = {a: global_reputation(hist, params) for a, hist in new_hist.items()}
    overall: dict[str, float] = {}
    coal_rep: dict[str, float] = {}
    shares: dict[str, float] = {}
    comp: dict[str, float] = {}
    payouts: dict[str, float] = {}
    spend: dict[str, float] = {}
    for h in plan.heads:
        members = plan.partition[h]
        reps = [overall_reputation(new_hist[a], h, plan.embeddings, params) for a in members]
        for a, r in zip(members, reps):
            overall[a] = r
        rbar = math.fsum(reps) / len(reps)
        coal_rep[h] = rbar
        share = params.R * reputation_fn(rbar, params) / len(members)
        for a in members:
            e = factors.get(a, 0) / PPM  # flagged members have no factor: nothing
            shares[a] = share * e
            comp[a] = plan.competition_rewards[a] * e
            payouts[a] = shares[a] + comp[a]
        spend[h] = math.fsum(payouts[a] for a in members)
    srt = sorted(q)
    return RoundSettlement(
        round=round_no,
        q={a: q[a] for a in srt},
        flags={a: flags[a] for a in sorted(flags)},
        histories=new_hist,
        global_reputation=glob,
        overall_reputation={a: overall[a] for a in srt},
        coalition_reputation=coal_rep,
        reputation_shares={a: shares[a] for a in srt},
        competition_rewards={a: comp[a] for a in srt},
        payouts={a: payouts[a] for a in srt},
        msp_spend=spend,
        work_factors={a: factors.get(a, 0) for a in srt},
        work_scores={a: scores[a] for a in srt},
    )
