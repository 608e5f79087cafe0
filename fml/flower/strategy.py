"""GFML as a Flower Strategy: the chain plans and settles, the strategy moves the models.

Per round (``Strategy.start`` calls these in order):

* ``configure_train``: embeddings -> ``OnChainCoordinator.plan_round`` (``fml_register`` /
  ``fml_open_round`` / ``fml_join`` / ``fml_close_registration``; the state machine picks
  heads, coalitions, frequencies and incentives) -> one train message per member with its
  coalition's model (its head's), its committed iteration count, frequency and time;
* ``aggregate_train``: the members' models go through ``Trainer.train_round`` (Per-FedAvg
  HF aggregation weighted by data size, leave-one-out personalised loss, update norms,
  evidence of work: the code the in-process simulation runs), ``fml.driver.make_reports``
  turns them into the heads' reports and ``OnChainCoordinator.settle_round`` submits
  ``fml_report`` / ``fml_close_round``: payouts and reputations are the chain's;
* ``configure_evaluate`` / ``aggregate_evaluate``: every active learner scores its
  personalised model on its own test split.

Heads are logical: the strategy aggregates for them and signs their reports with their
keys (derived from the run's key seed, as fml.onchain derives them). A member whose update
does not arrive before the round's timeout (slow, crashed, killed) is not reported: the chain
flags it ``missing`` (no payout, q = 0, its reputation falls) and the round still closes.
"""
from __future__ import annotations

import logging
from dataclasses import replace
from typing import Any, Iterable

import numpy as np
import torch
from flwr.app import ArrayRecord, ConfigRecord, Message, MetricRecord, RecordDict
from flwr.serverapp import Grid
from flwr.serverapp.strategy import Strategy

from pocnet.fml.driver import Plan, profiles_of, make_reports, round_seed
from pocnet.fml.flower.client_app import noise_record
from pocnet.fml.flower.common import check_signed, from_arrays, group_by_node, key_of, learner_key, model_digest, to_arrays
from pocnet.fml.learners import Population
from pocnet.fml.model import Params, select
from pocnet.fml.onchain import OnChainCoordinator
from pocnet.fml.flower.spot import chain_is_sound, draw_challenges, verify_member
from pocnet.fml.perfedavg import sampling_noise
from pocnet.fml.training import Trainer
from pocnet.games.params import GameParams

log = logging.getLogger("pocnet.fml.flower.strategy")


class GfmlStrategy(Strategy):
    """GFML rounds with Flower learners; see the module docstring."""

    def __init__(self, coord: OnChainCoordinator, trainer: Trainer, pop: Population, params: GameParams,
                 seed: int, nodes: dict[int, int], key_seed: int = 0, challenge_timeout: float = 120.0) -> None:
        self.coord, self.trainer, self.pop, self.params = coord, trainer, pop, params
        self.seed, self.key_seed = seed, key_seed
        self.nodes = dict(nodes)  # learner index -> Flower node id (several learners may share a node)
        self.index = {a: j for j, a in enumerate(pop.addresses)}
        self.addresses = {j: learner_key(key_seed, j).address for j in range(pop.n)}
        self.lost: set[int] = set()  # learners whose update never came: not asked again
        self.challenge_timeout = challenge_timeout
        self.history: list[dict[str, Any]] = []
        self._round: dict[str, Any] = {}
        self._emb = np.zeros((0, 0))
        self._grid: Grid | None = None

    def summary(self) -> None:
        log.info("GFML on chain: %d learners, %d nodes, tau=%d", self.pop.n, len(set(self.nodes.values())),
                 int(self.params.tau))

    def _per_node(self, parts: dict[int, RecordDict], message_type: str) -> list[Message]:
        """One message per SuperNode holding every addressed learner's records (``name.j`` keys)."""
        by_node = group_by_node(self.nodes, parts)
        out = []
        for nid, learners in sorted(by_node.items()):
            content = RecordDict({"config": ConfigRecord({"learners": learners})})
            for j in learners:
                for name, rec in parts[j].items():
                    content[key_of(name, j)] = rec
            out.append(Message(content, dst_node_id=nid, message_type=message_type))
        return out

    # ------------------------------------------------------------------ training
    def configure_train(self, server_round: int, arrays: ArrayRecord, config: ConfigRecord,
                        grid: Grid) -> Iterable[Message]:
        self._grid = grid  # aggregate_train sends the spot-check challenges through it
        tr, pop = self.trainer, self.pop
        self._emb = tr.embeddings()  # as fml.driver.run: before training, also for the passive learners
        profiles = profiles_of(pop, self._emb)
        plan = self.coord.plan_round(profiles, server_round, round_seed(self.seed, server_round))
        partition = {self.index[h]: [self.index[m] for m in cp.members] for h, cp in plan.coalitions.items() if cp.members}
        order = [(h, ms) for h, ms in sorted(partition.items()) if ms]
        flat_members = [m for _, ms in order for m in ms]
        starts = {m: h for h, ms in order for m in ms}
        tau = int(self.params.tau)
        gen_state = tr.gen.get_state()  # replayed in aggregate_train so the head side draws as in simulate
        noise = sampling_noise(len(flat_members), tau, tr.cfg.batch, tr.gen)
        cps = {self.index[m]: cp for cp in plan.coalitions.values() for m in cp.members}
        parts: dict[int, RecordDict] = {}
        start_digest: dict[int, str] = {}
        for k, m in enumerate(flat_members):
            if m not in self.nodes or m in self.lost:
                continue
            cp = cps[m]
            name = pop.addresses[m]
            start = to_arrays(select(tr.models, [starts[m]]))
            start_digest[m] = model_digest(start)
            parts[m] = RecordDict({
                "arrays": ArrayRecord(start),
                "noise": noise_record(noise[:, :, k, :]),
                "config": ConfigRecord({"round": server_round, "iters": tau, "frequency": float(cp.frequencies[name]),
                                        "time": float(cp.times[name]), "head": cp.head, "learner": m}),
            })
        messages = self._per_node(parts, "train")
        self._round = {"plan": plan, "partition": partition, "members": flat_members, "gen_state": gen_state,
                       "sent": set(parts), "noise": noise, "start_digest": start_digest}
        log.info("round %d: %d coalitions, %d members, %d train messages to %d nodes", server_round, len(order),
                 len(flat_members), len(parts), len(messages))
        return messages

    def aggregate_train(self, server_round: int, replies: Iterable[Message]) -> tuple[ArrayRecord | None, MetricRecord | None]:
        st = self._round
        plan: Plan = st["plan"]
        got: dict[int, tuple[Params, float]] = {}
        commits: dict[int, list[str]] = {}
        for msg in replies:
            if msg.has_error():
                log.warning("round %d: a node failed: %s", server_round, msg.error.reason)
                continue
            src = msg.metadata.src_node_id
            for j in (int(x) for x in msg.content["config"]["learners"]):
                try:
                    arrs = msg.content[key_of("arrays", j)].to_numpy_ndarrays()
                    cfg = msg.content[key_of("config", j)]
                    commit = [str(c) for c in cfg["commit"]]
                    arrival = float(msg.content[key_of("metrics", j)]["arrival_s"])
                except (KeyError, TypeError, ValueError) as exc:
                    log.warning("round %d: malformed update for learner %d from node %s: %s", server_round, j, src, exc)
                    continue
                if j not in st["sent"] or self.nodes.get(j) != src \
                        or not check_signed(self.addresses[j], server_round, j, arrs, str(cfg["sig"]), commit):
                    log.warning("round %d: update claiming learner %d refused (not asked, wrong node or bad signature)",
                                server_round, j)
                    continue
                got[j] = (from_arrays(arrs), arrival)
                commits[j] = commit
        missing = [m for m in st["members"] if m not in got]
        self.lost |= set(missing)
        verified = self._spot_check(server_round, got, commits)
        alive = {h: [m for m in ms if m in got] for h, ms in st["partition"].items()}
        n_planned, tau, tr = len(st["members"]), int(self.params.tau), self.trainer

        def from_learners(stack, sampler, who, it, cfg, gen):  # noqa: ANN001, ANN202 (local_train's signature)
            sampling_noise(n_planned, tau, cfg.batch, gen)  # consume the draws the learners used
            return tuple(torch.cat([got[int(m)][0][i] for m in who]) for i in range(len(stack)))

        tr.gen.set_state(st["gen_state"])
        results = tr.train_round({h: ms for h, ms in alive.items() if ms}, {m: tau for m in got}, set(), local=from_learners)
        addr = self.pop.addresses
        # evidence of work = the share of spot-checked steps that re-executed (as fml.driver.run reports it)
        measured = {addr[j]: (res.loss_reduction[j], res.grad_norm[j], verified[j])
                    for res in results.values() for j in res.loss_reduction}
        observed = {addr[j]: t for j, (_, t) in got.items()}
        arrived = Plan(round_no=plan.round_no, sit_outs=plan.sit_outs, raw=plan.raw, coalitions={
            h: replace(cp, members=tuple(m for m in cp.members if m in measured)) for h, cp in plan.coalitions.items()})
        reports = make_reports(arrived, measured, set(), True, observed)
        settle = self.coord.settle_round(plan, reports, server_round)
        # passive learners download the meta-model of the most similar head (as fml.driver.run)
        from pocnet.games.reputation import cosine_matrix
        heads = [h for h, cp in plan.coalitions.items() if cp.members]
        passive = [int(j) for j in np.flatnonzero(~self.pop.active)]
        if heads and passive:
            emb = self._emb
            sims = cosine_matrix(emb[passive], emb[[self.index[h] for h in heads]])
            for row, j in enumerate(passive):
                tr.give_model(j, self.index[heads[int(np.argmax(sims[row]))]])
        self.history.append({
            "round": server_round, "round_id": self.coord.round_ids[server_round],
            "coalitions": {h: list(cp.members) for h, cp in sorted(plan.coalitions.items())},
            "incentives": {h: cp.incentive for h, cp in sorted(plan.coalitions.items())},
            "missing": sorted(addr[m] for m in missing),
            "verified": {addr[j]: v for j, v in sorted(verified.items())},
            "flags": self._flags(settle.raw),
            "q": dict(settle.q), "payouts": dict(settle.payouts), "reputation": dict(settle.global_reputation),
        })
        metrics = MetricRecord({"members": len(st["members"]), "arrived": len(got), "missing": len(missing),
                                "payout_total": float(sum(settle.payouts.values()))})
        return ArrayRecord(to_arrays(tr.global_model)), metrics

    def _spot_check(self, server_round: int, got: dict[int, tuple[Params, float]],
                    commits: dict[int, list[str]]) -> dict[int, float]:
        """The heads' spot checks (``fml.flower.spot``): per member ``SPOT_CHECKS`` steps drawn as
        ``Trainer.train_round`` draws them (same generator; every planned member in the round's
        order, so the draws match the driver's when nobody is missing), revealed by the learner,
        checked against its signed chain and re-executed. Work = share of the challenged steps
        that re-executed; a chain that does not run from the model the learner was sent to the
        update it sent, or a challenge not answered in time, fails."""
        st, tr, tau = self._round, self.trainer, int(self.params.tau)
        steps = draw_challenges(st["members"], tau, tr.challenge_gen)
        sound = {j for j in got if chain_is_sound(commits[j], tau, st["start_digest"].get(j, ""), to_arrays(got[j][0]))}
        for j in sorted(set(got) - sound):
            log.warning("round %d: learner %d's checkpoint chain does not run from its start model to its update",
                        server_round, j)
        parts = {j: RecordDict({"challenge": ConfigRecord({"round": server_round, "steps": steps[j], "last": True})})
                 for j in sorted(sound) if steps[j]}
        revealed: dict[int, dict[int, tuple[list[np.ndarray], list[np.ndarray]]]] = {j: {} for j in got}
        msgs = self._per_node(parts, "query.challenge")
        if msgs and self._grid is not None:
            for reply in self._grid.send_and_receive(msgs, timeout=self.challenge_timeout):
                if reply.has_error():
                    log.warning("round %d: a node did not answer its spot checks: %s", server_round, reply.error.reason)
                    continue
                src, recs = reply.metadata.src_node_id, reply.content.array_records
                for name in recs:
                    kind, _, rest = name.partition(".")
                    js, _, ts = rest.partition(".")
                    if kind != "before" or not (js.isdigit() and ts.isdigit()):
                        continue
                    j, t = int(js), int(ts)
                    if j in revealed and self.nodes.get(j) == src and f"after.{j}.{t}" in recs:
                        revealed[j][t] = (recs[name].to_numpy_ndarrays(), recs[f"after.{j}.{t}"].to_numpy_ndarrays())
        index = {m: k for k, m in enumerate(st["members"])}
        out = {j: (verify_member(j, steps[j], commits[j], revealed[j], st["noise"][:, :, index[j], :], tr.sampler, tr.cfg)
                   if j in sound else 0.0) for j in got}
        log.info("round %d: spot checks (share of challenged steps re-executed) %s", server_round,
                 {j: out[j] for j in sorted(out)})
        return out

    def _flags(self, raw: Any) -> dict[str, str]:
        """The chain's flags (missing / misreport) by learner name, from the closed round's view."""
        flags = raw.get("flags", {}) if isinstance(raw, dict) else {}
        return {self.coord.to_name.get(a, a): str(f) for a, f in sorted(flags.items()) if f}

    # ------------------------------------------------------------------ evaluation
    def configure_evaluate(self, server_round: int, arrays: ArrayRecord, config: ConfigRecord,
                           grid: Grid) -> Iterable[Message]:
        active = [int(j) for j in np.flatnonzero(self.pop.active)]
        gen = torch.Generator().manual_seed(round_seed(self.seed, server_round) + 1)  # as Trainer.evaluate
        u = torch.rand(len(active), self.trainer.cfg.batch, generator=gen)
        parts = {j: RecordDict({"arrays": ArrayRecord(to_arrays(select(self.trainer.models, [j]))),
                                "noise": noise_record(u[k])})
                 for k, j in enumerate(active) if j in self.nodes and j not in self.lost}
        return self._per_node(parts, "evaluate")

    def aggregate_evaluate(self, server_round: int, replies: Iterable[Message]) -> MetricRecord | None:
        rows = [rec for msg in replies if not msg.has_error()
                for name, rec in msg.content.metric_records.items() if name.startswith("metrics.")]
        if not rows:
            return None
        agg = {k: float(np.mean([float(r[k]) for r in rows])) for k in ("acc", "loss", "global_acc", "global_loss")}
        agg["learners"] = len(rows)
        if self.history and self.history[-1]["round"] == server_round:
            self.history[-1].update(agg)
        return MetricRecord(agg)
