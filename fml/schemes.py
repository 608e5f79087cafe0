"""[GFML]'s baselines (§ VI) as compositions of ``games`` functions, and the
offline coordinator that plans and settles rounds with them.

A scheme is four choices:

| axis        | values |
|-------------|--------|
| coalitions  | ``game`` (switch rule from last round's partition), ``random`` (re-dealt every round), ``fixed`` (formed once by embedding similarity), ``single`` (best effort: everyone in one coalition), ``oracle`` (diagnostic, not in [GFML]: formed once from the learners' true classes) |
| heads       | ``reputation`` (highest R^g/T, games.coalition.select_heads), ``lowest_T`` (strictest deadline), ``random`` |
| incentives  | ``stackelberg`` (leader C_k*, games.stackelberg.solve_coalition) or ``fixed`` (C_k = C_max = 15) |
| frequencies | ``optimised`` (follower best response) or ``random`` (uniform in [f_min, f_max]; members missing the deadline are dropped) |

GFML is ``games.round.plan_round`` unchanged. The baselines build the same
``games.round.RoundPlan`` from games pieces (select_heads, form_coalitions,
random_groups, reputation_matrix, solve_coalition, follower_best_response),
and every scheme is settled by ``games.round.settle_round`` (q_i, reputation
histories, payouts R Phi(r_bar_k)/|S_k| + C_k omega_i f_i / f_max), so they
differ only in how a round is planned.
"""
from __future__ import annotations

import math
import random
from dataclasses import dataclass
from typing import Any, Mapping, Sequence

import numpy as np

import pocnet.games.round as games_round
from pocnet.fml.driver import CoalitionPlan, Plan, Settlement
from pocnet.games.coalition import form_coalitions, random_groups, select_heads, self_feasible
from pocnet.games.cost import cycles_per_round, energy_cost, transmission_time
from pocnet.games.params import GameParams
from pocnet.games.profile import LearnerProfile
from pocnet.games.round import MemberReport, RoundPlan
from pocnet.games.reputation import (
    EMPTY_HISTORY,
    ReputationHistory,
    cosine_matrix,
    global_reputation,
    reputation_fn,
    reputation_matrix,
)
from pocnet.games.stackelberg import Follower, coalition_weights, follower_best_response, make_game, solve_coalition


@dataclass(frozen=True)
class Scheme:
    key: str
    label: str  # as in [GFML]'s Table VI
    coalitions: str
    heads: str
    incentives: str
    frequencies: str


SCHEMES: dict[str, Scheme] = {
    s.key: s
    for s in (
        Scheme("gfml", "GFML", "game", "reputation", "stackelberg", "optimised"),
        Scheme("gfml-opt-freq", "GFML + only frequencies optimized", "game", "lowest_T", "fixed", "optimised"),
        Scheme("gfml-rand-freq", "GFML + random frequencies", "game", "random", "fixed", "random"),
        Scheme("random-stackelberg", "Random coalition formation + Stackelberg game", "random", "random", "stackelberg", "optimised"),
        Scheme("random-opt-freq", "Random coalition formation + optimized frequencies", "random", "random", "fixed", "optimised"),
        Scheme("best-effort-stackelberg", "Best effort + Stackelberg game", "single", "lowest_T", "stackelberg", "optimised"),
        Scheme("best-effort-opt-freq", "Best effort + optimized frequencies", "single", "lowest_T", "fixed", "optimised"),
        Scheme("best-effort-random-head", "Best effort + random head", "single", "random", "fixed", "random"),
        Scheme("fixed-stackelberg", "Fixed coalition formation + Stackelberg game", "fixed", "lowest_T", "stackelberg", "optimised"),
        Scheme("fixed-opt-freq", "Fixed coalition formation + optimized frequencies", "fixed", "lowest_T", "fixed", "optimised"),
        # Diagnostic, not a [GFML] baseline: the best clustering any formation rule could
        # find (by the learners' true classes), to measure how much clustering can matter.
        Scheme("oracle-stackelberg", "Oracle coalitions (true classes) + Stackelberg game", "oracle", "lowest_T",
               "stackelberg", "optimised"),
    )
}
PAPER_SCHEMES: tuple[str, ...] = tuple(k for k, v in SCHEMES.items() if v.coalitions != "oracle")  # what "all" runs


def class_clusters(classes: Mapping[str, Sequence[int]], k: int, iterations: int = 50) -> list[list[str]]:
    """``k`` groups of learners with overlapping classes: k-means on multi-hot class vectors.

    Deterministic (no seed needed): addresses in sorted order, farthest-point
    initialisation from the first learner, Lloyd iterations until nothing moves.
    Ground truth a real formation rule never sees; used by the oracle diagnostic.
    """
    addrs = sorted(classes)
    if not addrs:
        return []
    n_cls = 1 + max((c for a in addrs for c in classes[a]), default=0)
    x = np.zeros((len(addrs), n_cls))
    for i, a in enumerate(addrs):
        x[i, list(classes[a])] = 1.0
    k = max(1, min(k, len(addrs)))
    centres = [x[0]]
    while len(centres) < k:
        dist = np.min([((x - c) ** 2).sum(axis=1) for c in centres], axis=0)
        centres.append(x[int(np.argmax(dist))])
    cent = np.array(centres)
    label = np.full(len(addrs), -1)
    for _ in range(iterations):
        new = np.argmin(((x[:, None, :] - cent[None]) ** 2).sum(axis=2), axis=1)
        if np.array_equal(new, label):
            break
        label = new
        cent = np.array([x[label == c].mean(axis=0) if np.any(label == c) else cent[c] for c in range(k)])
    return [g for g in ([addrs[i] for i in np.flatnonzero(label == c)] for c in range(k)) if g]


def _by_deadline(profiles: Mapping[str, LearnerProfile]):
    return lambda a: (profiles[a].tolerated_time, a)


class OfflineCoordinator:
    """Plans and settles rounds in-process with ``games`` (no chain)."""

    def __init__(self, scheme: Scheme | str, params: GameParams, trust_reports: bool = False):
        self.scheme = SCHEMES[scheme] if isinstance(scheme, str) else scheme
        self.params = params
        self.trust_reports = trust_reports
        self.k = int(params.n_coalitions)
        self.histories: dict[str, ReputationHistory] = {}
        self.work_scores: dict[str, int] = {}  # games.settlement work score per learner (ppm)
        self.prev_partition: dict[str, tuple[str, ...]] | None = None
        self.prev_incentives: dict[str, float] = {}
        self.fixed_partition: dict[str, tuple[str, ...]] | None = None
        self.true_classes: dict[str, tuple[int, ...]] | None = None

    def bind_population(self, classes: Mapping[str, Sequence[int]]) -> None:
        """The learners' true classes (learner -> classes); only the oracle diagnostic uses them."""
        self.true_classes = {a: tuple(int(c) for c in cs) for a, cs in classes.items()}

    # ------------------------------------------------------------------ heads & partitions
    def _pick_heads(self, groups: Sequence[Sequence[str]], prof: Mapping[str, LearnerProfile], rng: random.Random) -> list[str]:
        s, p = self.scheme, self.params
        if s.heads == "reputation":
            rg = {a: global_reputation(self.histories.get(a, EMPTY_HISTORY), p) for a in prof}
            picked = select_heads(groups, prof, rg, p)
            if any(h is None for h in picked):  # would misalign heads and groups below
                raise RuntimeError("no eligible head candidate left for a group")
            return [h for h in picked if h is not None]
        eligible = {a for a, q in prof.items() if q.active and self_feasible(q, p)}
        chosen: list[str] = []
        for g in groups:
            cands = sorted(a for a in g if a in eligible and a not in chosen)
            if not cands:
                cands = sorted(a for a in eligible if a not in chosen)
            if not cands:
                continue
            if s.heads == "lowest_T":
                chosen.append(min(cands, key=_by_deadline(prof)))
            else:
                chosen.append(rng.choice(cands))
        return chosen

    def _partition(self, active: list[LearnerProfile], rng: random.Random, seed: int) -> tuple[dict[str, tuple[str, ...]], tuple[str, ...]]:
        s, p = self.scheme, self.params
        prof = {q.address: q for q in active}
        addrs = sorted(prof)
        if s.coalitions == "single":
            heads = self._pick_heads([addrs], prof, rng)
            return ({heads[0]: tuple(addrs)} if heads else {}), ()
        if s.coalitions == "random":
            groups = random_groups(addrs, self.k, seed)
            heads = self._pick_heads(groups, prof, rng)
            part = {h: tuple(sorted(set(g) | {h})) for h, g in zip(heads, groups)}
            return _dedupe(part), ()
        if s.coalitions == "oracle":
            if self.fixed_partition is None:
                if self.true_classes is None:
                    raise ValueError(f"scheme {s.key}: needs the learners' true classes (bind_population)")
                groups = class_clusters({a: self.true_classes[a] for a in addrs}, self.k)
                heads = self._pick_heads(groups, prof, rng)
                self.fixed_partition = _dedupe({h: tuple(sorted(set(g) | {h})) for h, g in zip(heads, groups)})
            part = {h: tuple(m for m in ms if m in prof) for h, ms in self.fixed_partition.items() if h in prof}
            return part, ()
        if s.coalitions == "fixed":
            if self.fixed_partition is None:
                eligible = sorted((a for a in addrs if self_feasible(prof[a], p)), key=_by_deadline(prof))
                heads = eligible[: self.k]
                emb = np.array([prof[a].embedding for a in addrs], dtype=float)
                hemb = np.array([prof[h].embedding for h in heads], dtype=float)
                sim = cosine_matrix(emb, hemb)
                members: dict[str, list[str]] = {h: [h] for h in heads}
                for i, a in enumerate(addrs):
                    if a not in members:
                        members[heads[int(np.argmax(sim[i]))]].append(a)
                self.fixed_partition = {h: tuple(sorted(m)) for h, m in members.items()}
            part = {h: tuple(m for m in ms if m in prof) for h, ms in self.fixed_partition.items() if h in prof}
            return part, ()
        # "game": heads re-selected inside last round's coalitions, then the switch rule
        if self.prev_partition is None:
            groups = random_groups(addrs, self.k, seed)
        else:
            groups = [[m for m in ms if m in prof] for ms in self.prev_partition.values()]
            groups = [g for g in groups if g]
            placed = {m for g in groups for m in g}
            spare = [a for a in addrs if a not in placed]
            for i, a in enumerate(spare):  # newcomers / last round's sit-outs
                if len(groups) < self.k:
                    groups.append([a])
                else:
                    groups[i % len(groups)].append(a)
        heads = self._pick_heads(groups, prof, rng)
        initial: dict[str, str | None] = {}
        for h, g in zip(heads, groups):
            for a in g:
                initial[a] = h
        for h in heads:
            initial[h] = h
        _, overall = reputation_matrix(addrs, heads, self.histories, {a: prof[a].embedding for a in addrs}, p)
        if self.scheme.incentives == "fixed":
            inc = {h: p.C_max for h in heads}
        else:
            old_heads = list(self.prev_partition) if self.prev_partition else []
            inc = {}
            for k, h in enumerate(heads):
                prev = old_heads[k] if k < len(old_heads) else None
                inc[h] = float(self.prev_incentives.get(prev, p.C_max)) if prev else p.C_max
        res = form_coalitions([prof[a] for a in addrs], heads, overall, initial, p, inc)
        return {h: tuple(m) for h, m in res.partition.items()}, tuple(res.sitting_out)

    # ------------------------------------------------------------------ per-coalition game
    def _coalition(self, head: str, members: Sequence[str], prof: Mapping[str, LearnerProfile], rep_row: Mapping[str, float], rng: random.Random) -> CoalitionPlan:
        s, p = self.scheme, self.params
        members = sorted(members)
        hemb = np.array([prof[head].embedding], dtype=float)
        memb = np.array([prof[a].embedding for a in members], dtype=float)
        sims = cosine_matrix(memb, hemb)[:, 0]
        weights = coalition_weights(sims.tolist(), [prof[a].data_size for a in members])
        followers = [
            Follower(
                address=a,
                cycles=cycles_per_round(prof[a].data_size, p),
                kappa=prof[a].kappa,
                f_min=prof[a].f_min,
                f_max=prof[a].f_max,
                tx_time=transmission_time(prof[a].rate, p),
                weight=min(1.0, max(0.0, w)),
                reputation=min(1.0, max(0.0, rep_row[a])),
            )
            for a, w in zip(members, weights)
        ]
        deadline = prof[head].tolerated_time
        game = make_game(head, deadline, followers)
        if s.incentives == "stackelberg" and s.frequencies == "optimised":
            sol = solve_coalition(game, p)
            incentive, freqs = sol.incentive, dict(sol.frequencies)
        else:
            incentive = p.C_max
            freqs = {}
            for f in followers:
                if s.frequencies == "random":
                    freqs[f.address] = rng.uniform(f.f_min, f.f_max)
                else:
                    br = follower_best_response(incentive, f, deadline, p)
                    if br.feasible:
                        freqs[f.address] = br.frequency
        times = {f.address: f.cycles / freqs[f.address] + f.tx_time for f in followers if f.address in freqs}
        keep = {a for a, t in times.items() if t <= deadline * (1 + 1e-12)}
        if head not in keep and head in times:
            keep.add(head)  # the head aggregates whatever its own time
        kept = [f for f in followers if f.address in keep]
        util = p.beta * math.log1p(math.fsum(f.reputation * (deadline - times[f.address]) for f in kept)) - incentive
        return CoalitionPlan(
            head=head,
            members=tuple(f.address for f in kept),
            incentive=float(incentive),
            deadline=float(deadline),
            frequencies={a: freqs[a] for a in keep},
            times={a: times[a] for a in keep},
            weights={f.address: f.weight for f in kept},
            reputations={f.address: f.reputation for f in kept},
            msp_utility=float(util),
        )

    # ------------------------------------------------------------------ Coordinator API
    def plan_round(self, learners: Sequence[LearnerProfile], round_no: int, seed: int) -> Plan:
        """GFML is ``games.round.plan_round`` itself; baselines build the same RoundPlan."""
        p = self.params
        s = self.scheme
        if (s.coalitions, s.heads, s.incentives, s.frequencies) == ("game", "reputation", "stackelberg", "optimised"):
            rp = games_round.plan_round(learners, self.histories, self.prev_partition, seed, p, self.prev_incentives)
        else:
            rp = self._plan_baseline(learners, seed)
        self.prev_partition = {h: tuple(m) for h, m in rp.partition.items()}
        self.prev_incentives = dict(rp.incentives)
        return plan_from_round_plan(rp, round_no)

    def _plan_baseline(self, learners: Sequence[LearnerProfile], seed: int) -> RoundPlan:
        p = self.params
        rng = random.Random(seed)
        active = [q for q in learners if q.active]
        prof = {q.address: q for q in active}
        part, out = self._partition(active, rng, seed)
        heads = sorted(h for h in part if part[h])
        addrs = sorted(prof)
        embeddings = {q.address: q.embedding for q in sorted(learners, key=lambda q: q.address)}
        _, overall = reputation_matrix(addrs, heads, self.histories, embeddings, p)
        row = {a: i for i, a in enumerate(addrs)}
        fields: dict[str, Any] = {name: {} for name in _FLOAT_FIELDS}
        cases: dict[str, str] = {}
        partition: dict[str, tuple[str, ...]] = {}
        dropped: list[str] = list(out)
        for k, h in enumerate(heads):
            rep_row = {a: float(overall[row[a], k]) for a in part[h]}
            cp = self._coalition(h, part[h], prof, rep_row, rng)
            partition[h] = cp.members
            dropped += [a for a in part[h] if a not in cp.members]
            fields["deadlines"][h] = cp.deadline
            fields["incentives"][h] = cp.incentive
            fields["formation_incentives"][h] = cp.incentive
            rbar = float(np.mean([cp.reputations[a] for a in cp.members]))
            fields["coalition_reputation"][h] = rbar
            fields["msp_utilities"][h] = cp.msp_utility
            for a in cp.members:
                f = cp.frequencies[a]
                fields["frequencies"][a] = f
                fields["predicted_times"][a] = cp.times[a]
                fields["weights"][a] = cp.weights[a]
                fields["reputations"][a] = cp.reputations[a]
                reward = cp.incentive * cp.weights[a] * f / prof[a].f_max
                fields["competition_rewards"][a] = reward
                fields["expected_utilities"][a] = (
                    p.R * reputation_fn(rbar, p) / len(cp.members)
                    + reward
                    - energy_cost(f, cycles_per_round(prof[a].data_size, p), prof[a].kappa, p)
                )
                cases[a] = "RANDOM" if self.scheme.frequencies == "random" else "BEST_RESPONSE"
        return RoundPlan(
            seed=seed,
            heads=tuple(heads),
            partition=partition,
            cases=dict(sorted(cases.items())),
            sitting_out=tuple(sorted(set(dropped))),
            passive=tuple(sorted(q.address for q in learners if not q.active)),
            left={},
            embeddings=embeddings,
            **fields,
        )

    def settle_round(self, plan: Plan, reports: Mapping[str, MemberReport], round_no: int) -> Settlement:
        """``games.round.settle_round``; with ``trust_reports`` (no blockchain) the
        completion-time misreport check is off: the platform believes what it is told."""
        p = self.params
        if self.trust_reports:
            p = GameParams.from_dict({**p.to_dict(), "misreport_tolerance_s": 1e12})
        st = games_round.settle_round(plan.raw, reports, self.histories, round_no, p, self.work_scores)
        self.histories = dict(st.histories)
        self.work_scores.update(st.work_scores)
        return Settlement(q=st.q, payouts=st.payouts, global_reputation=st.global_reputation, raw=st)


_FLOAT_FIELDS = (
    "deadlines", "incentives", "formation_incentives", "coalition_reputation", "msp_utilities",
    "frequencies", "predicted_times", "weights", "reputations", "expected_utilities", "competition_rewards",
)


def plan_from_round_plan(rp: RoundPlan, round_no: int) -> Plan:
    """The driver's view of a games RoundPlan (the raw plan is kept for settlement)."""
    coalitions = {}
    for h in rp.heads:
        ms = tuple(rp.partition[h])
        coalitions[h] = CoalitionPlan(
            head=h,
            members=ms,
            incentive=float(rp.incentives[h]),
            deadline=float(rp.deadlines[h]),
            frequencies={a: rp.frequencies[a] for a in ms},
            times={a: rp.predicted_times[a] for a in ms},
            weights={a: rp.weights[a] for a in ms},
            reputations={a: rp.reputations[a] for a in ms},
            msp_utility=float(rp.msp_utilities[h]),
        )
    return Plan(round_no=round_no, coalitions=coalitions, sit_outs=tuple(rp.sitting_out), raw=rp)


def _dedupe(part: dict[str, tuple[str, ...]]) -> dict[str, tuple[str, ...]]:
    """A head drawn from a spare pool may also sit in another group: keep it only as head."""
    heads = set(part)
    return {h: tuple(m for m in ms if m == h or m not in heads) for h, ms in part.items()}
