"""On-chain GFML coordination: the same driver loop, with the chain deciding.

:class:`OnChainCoordinator` implements the driver's ``Coordinator`` protocol by
submitting signed ``fml_*`` transactions to a running cluster and reading the
plan and settlement back from committed state (docs/fmlchain.md):

* round start: learners register once (capabilities), the MSP opens a round
  (escrowing the budget), every active learner joins with its embedding, the MSP
  closes registration — the *state machine* selects heads, forms coalitions and
  solves the Stackelberg game, seeded from the block hash;
* round end: each head reports its members' loss reduction, gradient norm and
  completion time, the MSP closes the round — contributions, reputations and
  payouts are computed and credited by every peer.

The driver's learner names (``mml000``...) are mapped to Ed25519 keys derived
from ``key_seed``; everything crossing the boundary is translated both ways.
"""
from __future__ import annotations

import hashlib
import logging
import random
from dataclasses import replace
from typing import Mapping, Sequence

from pocnet.fml.chain_client import (FmlChainClient, join_payload, open_round_payload, register_payload,
                              report_payloads, round_payload)
from pocnet.fml.driver import CoalitionPlan, Plan, Settlement
from pocnet.fml.schemes import plan_from_round_plan
from pocnet.games.params import GameParams
from pocnet.games.profile import LearnerProfile
from pocnet.games.round import MemberReport
from pocnet.ledger.keys import KeyPair

log = logging.getLogger("pocnet.fml.onchain")


class OnChainCoordinator:
    def __init__(self, urls: Sequence[str], msp: KeyPair, params: GameParams, budget_tokens: float = 1000.0,
                 key_seed: int = 0) -> None:
        self.clients = [FmlChainClient(u) for u in urls]
        self.msp = msp
        self.params = params
        self.budget_tokens = budget_tokens
        self.key_seed = key_seed
        self.keys: dict[str, KeyPair] = {}
        self.to_name: dict[str, str] = {}
        self.registered: set[str] = set()
        self.round_ids: dict[int, int] = {}
        self.rng = random.Random(key_seed)
        self.txs_sent = 0

    # -- name <-> key mapping
    def key_of(self, name: str) -> KeyPair:
        k = self.keys.get(name)
        if k is None:
            seed = hashlib.sha256(f"pocnet-fml-learner:{self.key_seed}:{name}".encode()).digest()
            k = self.keys[name] = KeyPair.from_seed(seed)
            self.to_name[k.address] = name
        return k

    def _client(self) -> FmlChainClient:
        """Spread learners' txs over the peers, as independent devices would."""
        return self.rng.choice(self.clients)

    def _submit(self, key: KeyPair, tx_type: str, payload: dict, wait: bool = False):  # noqa: ANN202
        self.txs_sent += 1
        return self.clients[0].submit(key, tx_type, payload, wait=wait, timeout_s=60) if wait else \
            self._client().submit(key, tx_type, payload)

    def _wait_all(self, txs) -> None:  # noqa: ANN001
        for tx in txs:
            self.clients[0].peer.wait_committed(tx.hash, 60)

    # -- Coordinator protocol
    def plan_round(self, learners: Sequence[LearnerProfile], round_no: int, seed: int) -> Plan:
        pending = []
        for prof in learners:
            if prof.address not in self.registered:
                chain_prof = replace(prof, address=self.key_of(prof.address).address)
                pending.append(self._submit(self.key_of(prof.address), "fml_register", register_payload(chain_prof)))
                self.registered.add(prof.address)
        dim = len(learners[0].embedding)
        open_tx = self._submit(self.msp, "fml_open_round",
                               open_round_payload(self.budget_tokens, dim, n_coalitions=int(self.params.n_coalitions),
                                                  tau=int(self.params.tau)), wait=True)
        self._wait_all(pending)
        rid = self.clients[0].round_id_of(open_tx)
        self.round_ids[round_no] = rid
        joins = [self._submit(self.key_of(p.address), "fml_join", join_payload(rid, p.embedding))
                 for p in learners if p.active]
        self._wait_all(joins)
        self._submit(self.msp, "fml_close_registration", round_payload(rid), wait=True)
        rp = self.clients[0].plan(rid)
        plan = plan_from_round_plan(rp, round_no)
        return self._to_names(plan)

    def settle_round(self, plan: Plan, reports: Mapping[str, MemberReport], round_no: int) -> Settlement:
        rid = self.round_ids[round_no]
        sent = []
        for head, cp in plan.coalitions.items():
            mine = {self.key_of(m).address: reports[m] for m in cp.members if m in reports}
            for payload in report_payloads(rid, mine):
                sent.append(self._submit(self.key_of(head), "fml_report", payload))
        self._wait_all(sent)
        self._submit(self.msp, "fml_close_round", round_payload(rid), wait=True)
        r = self.clients[0].round(rid)
        scale = float(r.get("scale", 1_000_000))
        name = self.to_name.get
        q = {name(a, a): v / scale for a, v in r.get("contributions", {}).items()}
        payouts = {name(a, a): v / 1_000_000 for a, v in r.get("payouts", {}).items()}  # micro-tokens -> tokens
        rep = {name(a, a): v["global"] / scale for a, v in r.get("reputations", {}).items()}
        raw = dict(r, work_factors={name(a, a): v for a, v in r.get("work_factors", {}).items()})
        return Settlement(q=q, payouts=payouts, global_reputation=rep, raw=raw)

    def _to_names(self, plan: Plan) -> Plan:
        def n(a: str) -> str:
            return self.to_name.get(a, a)

        coalitions = {}
        for h, cp in plan.coalitions.items():
            coalitions[n(h)] = CoalitionPlan(
                head=n(h), members=tuple(n(m) for m in cp.members), incentive=cp.incentive, deadline=cp.deadline,
                frequencies={n(a): v for a, v in cp.frequencies.items()},
                times={n(a): v for a, v in cp.times.items()},
                weights={n(a): v for a, v in cp.weights.items()},
                reputations={n(a): v for a, v in cp.reputations.items()},
                msp_utility=cp.msp_utility)
        raw = plan.raw
        if raw is not None and getattr(raw, "sit_out_reasons", None):  # reasons by learner name, as sit_outs
            raw = replace(raw, sit_out_reasons={n(a): r for a, r in raw.sit_out_reasons.items()})
        return Plan(round_no=plan.round_no, coalitions=coalitions,
                    sit_outs=tuple(n(a) for a in plan.sit_outs), raw=raw)

    def reputations(self) -> dict[str, int]:
        """Every learner's global reputation (×1e6) as each peer reports it (for agreement checks)."""
        return {name: self.clients[0].reputation(k.address)["global_reputation"] for name, k in self.keys.items()}

    def close(self) -> None:
        for c in self.clients:
            c.close()
