"""The round driver: one loop, pluggable coordination.

A :class:`Coordinator` decides *who trains with whom, at what frequency, for
what incentive* (``plan_round``) and turns the heads' measurements into
contributions, reputations and payouts (``settle_round``). Offline, the
:class:`fml.schemes.OfflineCoordinator` computes both with the ``games``
package; the on-chain coordinator (later) will submit the same inputs as
transactions and read the plan / settlement back from committed state. The
driver only trains, measures, reports and keeps the books.

Misbehaving learners commit to tau iterations and follow one strategy
(``misbehaviour_kind``, see ``KINDS``): ``lazy`` runs ``lazy_iters`` and sends
its update when it is done, so the head reports the completion time it
*observed* — shorter than the committed frequency allows, which the state
machine (and ``settle_round`` offline) flags as a misreport; ``disguised``
runs ``lazy_iters`` but holds its update back until its committed time;
``noisy`` does the same and pads its update with noise until its size matches
the coalition's median honest update; ``free-rider`` trains nothing and
returns the model it received, at its committed time. Against the disguised
kinds only the head's measurements of the update itself (leave-one-out loss,
length along the others' mean update) are evidence. With ``blockchain=False``
([GFML]'s "without blockchain" reputation store) learners self-report
their contribution and misbehavers claim the best loss reduction and the
best time of their coalition.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Mapping, Protocol, Sequence

import numpy as np
import torch

from pocnet.fml.data import Dataset
from pocnet.fml.learners import Population, make_population
from pocnet.fml.perfedavg import PerFedAvgConfig
from pocnet.fml.training import Trainer
from pocnet.games.cost import completion_time, cycles_per_round, energy_cost
from pocnet.games.params import GameParams
from pocnet.games.profile import LearnerProfile
from pocnet.games.round import MemberReport  # what a head reports per member: loss_reduction, grad_norm, completion_time
from pocnet.games.reputation import cosine_matrix


# ---------------------------------------------------------------------- plan types
@dataclass(frozen=True)
class CoalitionPlan:
    """One coalition as planned: the members' commitments and the head's deadline."""

    head: str
    members: tuple[str, ...]  # head included; only those who train this round
    incentive: float  # C_k
    deadline: float  # T_{h_k}
    frequencies: Mapping[str, float]  # f_i committed
    times: Mapping[str, float]  # predicted t_i at f_i (cost model)
    weights: Mapping[str, float]  # omega_{i,k}
    reputations: Mapping[str, float]  # r_{i,k}
    msp_utility: float


@dataclass(frozen=True)
class Plan:
    round_no: int
    coalitions: Mapping[str, CoalitionPlan]
    sit_outs: tuple[str, ...]
    raw: Any = None  # the coordinator's own object (e.g. games.round.RoundPlan)


@dataclass(frozen=True)
class Settlement:
    q: Mapping[str, float]
    payouts: Mapping[str, float]
    global_reputation: Mapping[str, float]
    raw: Any = None


class Coordinator(Protocol):
    """Plans and settles rounds; offline with games/ or on chain.

    A coordinator may also define ``bind_population(classes)``: ``run`` then
    hands it each learner's true classes (only the oracle diagnostic uses them).
    """

    def plan_round(self, learners: Sequence[LearnerProfile], round_no: int, seed: int) -> Plan: ...

    def settle_round(self, plan: Plan, reports: Mapping[str, MemberReport], round_no: int) -> Settlement: ...


# ---------------------------------------------------------------------- config / results
KINDS: tuple[str, ...] = ("lazy", "disguised", "noisy", "free-rider")
@dataclass(frozen=True)
class RunConfig:
    n_learners: int = 40
    n_coalitions: int = 4
    rounds: int = 20
    misbehave_rate: float = 0.0
    lazy_iters: int = 2  # iterations a misbehaving learner really runs (of tau)
    blockchain: bool = True
    disguise: bool = False  # legacy switch: kind "lazy" becomes "disguised"
    misbehaviour_kind: str = "lazy"  # one of KINDS
    classes_per_learner: int = 2  # distinct classes each learner holds (sensitivity table)

    def kind(self) -> str:
        """The effective strategy (``disguise`` upgrades ``lazy`` to ``disguised``)."""
        if self.misbehaviour_kind not in KINDS:
            raise ValueError(f"misbehaviour_kind: must be one of {', '.join(KINDS)}")
        return "disguised" if (self.disguise and self.misbehaviour_kind == "lazy") else self.misbehaviour_kind
    learn: PerFedAvgConfig = field(default_factory=PerFedAvgConfig)
    eval_every: int = 1


@dataclass
class RunResult:
    scheme: str
    seed: int
    config: dict
    rounds: list[dict]
    profit_per_learner: dict[str, float]
    final: dict

    def to_dict(self) -> dict:
        return {
            "scheme": self.scheme,
            "seed": self.seed,
            "config": self.config,
            "rounds": self.rounds,
            "profit_per_learner": self.profit_per_learner,
            "final": self.final,
        }


def round_seed(seed: int, round_no: int) -> int:
    """Stand-in for the block hash that seeds a round on-chain."""
    return (seed * 1_000_003 + round_no * 7_919) % (2**31 - 1)


def profiles_of(pop: Population, emb: np.ndarray) -> list[LearnerProfile]:
    return [
        LearnerProfile(
            address=pop.addresses[j],
            data_size=float(pop.train_size[j]),
            kappa=d.kappa,
            f_min=d.f_min,
            f_max=d.f_max,
            rate=d.rate,
            tolerated_time=d.tolerated_time,
            embedding=tuple(float(x) for x in emb[j]),
            active=bool(pop.active[j]),
        )
        for j, d in enumerate(pop.devices)
    ]


def make_reports(
    plan: Plan,
    measured: Mapping[str, tuple[float, ...]],
    misbehaving: set[str],
    blockchain: bool,
    observed_times: Mapping[str, float] | None = None,
) -> dict[str, MemberReport]:
    """Per-member reports; without blockchain misbehavers claim their coalition's best.

    ``observed_times``: when the head saw each member's update (misbehavers that do not
    disguise themselves finish early); absent members use the committed time.
    """
    out: dict[str, MemberReport] = {}
    for cp in plan.coalitions.values():
        best_loss = max((measured[m][0] for m in cp.members), default=0.0)
        best_time = min((cp.times[m] for m in cp.members), default=0.0)
        for m in cp.members:
            loss, gnorm = measured[m][0], measured[m][1]
            work = measured[m][2] if len(measured[m]) > 2 else None
            t = cp.times[m]  # honest: the cost model's time; disguised misbehaver: the committed time
            if observed_times is not None and m in observed_times:
                t = observed_times[m]
            if not blockchain and m in misbehaving:
                loss, t = best_loss, best_time
                work = None if work is None else max(measured[j][2] for j in cp.members)
            out[m] = MemberReport(loss_reduction=loss, grad_norm=gnorm, completion_time=t, work=work)
    return out


def run(
    coordinator: Coordinator,
    data: Dataset,
    cfg: RunConfig,
    seed: int,
    params: GameParams,
    scheme_name: str = "custom",
    on_round: Callable[[int], None] | None = None,
    stop: Callable[[], bool] | None = None,
) -> RunResult:
    """Simulate ``cfg.rounds`` rounds and collect per-round metrics.

    ``stop`` is asked before each round after the first; when it says so the run ends
    early and its result holds the completed rounds (``config["rounds_completed"]``)."""
    kind = cfg.kind()
    torch.manual_seed(seed)
    pop = make_population(data, cfg.n_learners, seed=seed, misbehave_rate=cfg.misbehave_rate,
                          classes_per_learner=cfg.classes_per_learner)
    trainer = Trainer(pop, cfg.learn, seed=seed)
    bind = getattr(coordinator, "bind_population", None)
    if bind is not None:
        bind({pop.addresses[j]: tuple(pop.classes[j]) for j in range(pop.n)})
    index = {a: j for j, a in enumerate(pop.addresses)}
    bad = {pop.addresses[j] for j in np.flatnonzero(pop.misbehaving)}
    active_idx = [int(j) for j in np.flatnonzero(pop.active)]
    passive_idx = [int(j) for j in np.flatnonzero(~pop.active)]
    profit = {a: 0.0 for a in pop.addresses}
    paid = {a: 0.0 for a in pop.addresses}
    history: list[dict] = []
    for r in range(1, cfg.rounds + 1):
        if history and stop is not None and stop():
            break  # interrupted: report the rounds completed so far
        emb = trainer.embeddings()
        profiles = profiles_of(pop, emb)
        plan = coordinator.plan_round(profiles, r, round_seed(seed, r))
        partition = {index[h]: [index[m] for m in cp.members] for h, cp in plan.coalitions.items() if cp.members}
        bad_iters = 0 if kind == "free-rider" else cfg.lazy_iters
        iters = {j: (bad_iters if pop.addresses[j] in bad else params.tau) for ms in partition.values() for j in ms}
        inflate = {j for j in iters if pop.addresses[j] in bad} if kind == "noisy" else set()
        results = trainer.train_round(partition, iters, inflate, committed=params.tau)
        # evidence of work = the share of spot-checked steps that re-executed (docs/fml.md)
        measured = {
            pop.addresses[j]: (res.loss_reduction[j], res.grad_norm[j], res.verified.get(j, res.own_gain[j]))
            for res in results.values()
            for j in res.loss_reduction
        }
        observed = None
        if kind == "lazy":
            observed = {}
            for cp in plan.coalitions.values():
                for m in cp.members:
                    if m in bad:
                        j = index[m]
                        q_cyc = cycles_per_round(float(pop.train_size[j]), params) * iters[j] / params.tau
                        observed[m] = completion_time(q_cyc, cp.frequencies[m], pop.devices[j].rate, params)
        reports = make_reports(plan, measured, bad, cfg.blockchain, observed)
        settle = coordinator.settle_round(plan, reports, r)

        # books: payout minus the energy really spent (misbehavers save energy)
        actual_t, energy_round = [], 0.0
        for cp in plan.coalitions.values():
            for m in cp.members:
                j = index[m]
                d = pop.devices[j]
                q_cyc = cycles_per_round(float(pop.train_size[j]), params) * iters[j] / params.tau
                e = energy_cost(cp.frequencies[m], q_cyc, d.kappa, params)
                energy_round += e
                profit[m] += settle.payouts.get(m, 0.0) - e
                paid[m] += settle.payouts.get(m, 0.0)
                actual_t.append(completion_time(q_cyc, cp.frequencies[m], d.rate, params))
        # passive learners download the meta-model of the most similar head
        heads = [h for h, cp in plan.coalitions.items() if cp.members]
        if heads and passive_idx:
            sims = cosine_matrix(emb[passive_idx], emb[[index[h] for h in heads]])
            for row, j in enumerate(passive_idx):
                trainer.give_model(j, index[heads[int(np.argmax(sims[row]))]])
        ev = trainer.evaluate(active_idx, seed=round_seed(seed, r) + 1)
        shots = trainer.evaluate_few_shot(passive_idx) if passive_idx else {}
        lat = [max(cp.times[m] for m in cp.members) for cp in plan.coalitions.values() if cp.members]
        history.append(
            {
                "round": r,
                "acc": float(ev["acc"].mean()),
                "loss": float(ev["loss"].mean()),
                "global_acc": float(ev["global_acc"].mean()),
                "global_loss": float(ev["global_loss"].mean()),
                "passive_acc": {str(k): float(v.mean()) for k, v in shots.items()},
                "avg_completion_time": float(np.mean(actual_t)) if actual_t else 0.0,
                "avg_coalition_latency": float(np.mean(lat)) if lat else 0.0,
                "msp_utility": float(sum(cp.msp_utility for cp in plan.coalitions.values() if cp.members)),
                "payout_total": float(sum(settle.payouts.values())),
                "energy_total": energy_round,
                "participants": int(sum(len(cp.members) for cp in plan.coalitions.values())),
                "sitting_out": _reason_counts(plan),
                "coalition_sizes": sorted((len(cp.members) for cp in plan.coalitions.values()), reverse=True),
                "incentives": [round(cp.incentive, 4) for _, cp in sorted(plan.coalitions.items())],
                "mean_q_misbehaving": _mean([settle.q[m] for m in settle.q if m in bad]),
                "mean_q_honest": _mean([settle.q[m] for m in settle.q if m not in bad]),
                "mean_work_factor_misbehaving": _mean([e / 1e6 for m, e in _factors(settle).items() if m in bad]),
                "mean_work_factor_honest": _mean([e / 1e6 for m, e in _factors(settle).items() if m not in bad]),
                "mean_reputation_misbehaving": _mean([settle.global_reputation.get(m, np.nan) for m in bad]),
                "mean_reputation_honest": _mean([settle.global_reputation.get(pop.addresses[j], np.nan)
                                                 for j in active_idx if pop.addresses[j] not in bad]),
            }
        )
        if on_round is not None:
            on_round(r)
    act_addr = [pop.addresses[j] for j in active_idx]
    last = history[-1]
    final = {
        "acc": last["acc"],
        "loss": last["loss"],
        "global_acc": last["global_acc"],
        "passive_acc": last["passive_acc"],
        "profit_per_active_learner": _mean([profit[a] for a in act_addr]),
        "profit_per_misbehaving": _mean([profit[a] for a in bad]),
        "profit_per_honest": _mean([profit[a] for a in act_addr if a not in bad]),
        "payout_per_misbehaving": _mean([paid[a] for a in bad]),
        "payout_per_honest": _mean([paid[a] for a in act_addr if a not in bad]),
        "reputation_misbehaving": last["mean_reputation_misbehaving"],
        "reputation_honest": last["mean_reputation_honest"],
        "avg_completion_time": _mean([h["avg_completion_time"] for h in history]),
        "avg_msp_utility": _mean([h["msp_utility"] for h in history]),
    }
    return RunResult(
        scheme=scheme_name,
        seed=seed,
        config={
            "n_learners": cfg.n_learners,
            "n_coalitions": cfg.n_coalitions,
            "rounds": cfg.rounds,
            "misbehave_rate": cfg.misbehave_rate,
            "lazy_iters": cfg.lazy_iters,
            "blockchain": cfg.blockchain,
            "disguise": cfg.disguise,
            "misbehaviour_kind": kind,
            "rounds_completed": len(history),
            "alpha": cfg.learn.alpha,
            "beta": cfg.learn.beta,
            "delta": cfg.learn.delta,
            "batch": cfg.learn.batch,
            "personal_steps": cfg.learn.personal_steps,
            "classes_per_learner": cfg.classes_per_learner,
        },
        rounds=history,
        profit_per_learner=profit,
        final=final,
    )


def _reason_counts(plan: Plan) -> dict[str, int]:
    """How many active learners sit this round out, by reason (no_coalition / negative_utility)."""
    reasons = getattr(plan.raw, "sit_out_reasons", None) or {}
    out: dict[str, int] = {}
    for a in plan.sit_outs:
        code = str(reasons.get(a, "other")).split(":")[0]
        out[code] = out.get(code, 0) + 1
    return out


def _factors(settle: Settlement) -> dict[str, int]:
    """Work factors (ppm) of a settlement, offline (RoundSettlement) or on chain (round view)."""
    raw = settle.raw
    if raw is None:
        return {}
    if isinstance(raw, dict):
        return dict(raw.get("work_factors", {}))
    return dict(getattr(raw, "work_factors", {}))


def _mean(xs: Sequence[float]) -> float:
    xs = [x for x in xs if x == x]
    return float(np.mean(xs)) if xs else float("nan")
