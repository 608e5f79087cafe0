"""Proof of contribution on a 4-peer cluster: same proposer everywhere, capacity earns proposals."""
import random
import time
from collections import Counter

import pytest

from pocnet.ledger.keys import KeyPair
from pocnet.ledger.tx import sign_tx
from tests.cluster_helpers import Cluster

pytestmark = pytest.mark.slow

CAPACITIES = [1, 2, 4, 8]


class Market:
    """Submits a task stream and lets providers report results for tasks allocated to them."""

    def __init__(self, c: Cluster) -> None:
        self.c = c
        self.keys = {KeyPair.load(c.home / n / "node_key.json").address: KeyPair.load(c.home / n / "node_key.json")
                     for n in c.names}
        self.nonce: Counter = Counter()
        self.reported: set[str] = set()
        self.stopped: set[str] = set()
        self.rng = random.Random(7)

    def send(self, key: KeyPair, tx_type: str, payload: dict, peer: int | None = None) -> None:
        """Submit to peer 0 (the one whose state the market reads), with the nonce it expects:
        a task_result can be dropped from mempools if its task expires first."""
        i = 0 if peer is None else peer
        nonce = self.c.http.get(f"{self.c.urls[i]}/accounts/{key.address}").json()["pending_nonce"]
        tx = sign_tx(key, self.c.genesis.chain_id, tx_type, nonce, payload)
        r = self.c.http.post(self.c.urls[i] + "/txs", json=tx.to_dict())
        assert r.status_code == 202, r.text
        self.nonce[key.address] += 1

    def step(self) -> None:
        for _ in range(3):
            self.send(self.c.faucet, "task", {"work": self.rng.randint(200, 2000),
                                             "demand": [self.rng.randint(0, 1000) for _ in range(3)],
                                             "deadline_ms": 3000})
        tasks = self.c.http.get(self.c.urls[0] + "/tasks", params={"status": "allocated", "limit": 1000}).json()
        for t in tasks["tasks"]:
            if t["id"] in self.reported or t["assigned_to"] in self.stopped:
                continue
            # peer 0 said the task is allocated; another peer may not have that block yet
            self.send(self.keys[t["assigned_to"]], "task_result", {"task_id": t["id"], "delivered_work": t["work"]},
                      peer=0)
            self.reported.add(t["id"])

    def run_until_height(self, h: int, timeout: float = 120) -> None:
        deadline = time.monotonic() + timeout
        while self.c.height(0) < h:
            assert time.monotonic() < deadline, "cluster too slow"
            self.step()
            time.sleep(0.15)


def proposer_counts(c: Cluster, lo: int, hi: int) -> Counter:
    return Counter(c.block(0, h)["header"]["proposer"] for h in range(lo, hi + 1))


def test_poc_proposers_follow_contribution(tmp_path, port_block):
    c = Cluster(tmp_path / "net", port_block(4), capacities=CAPACITIES).start_all()
    try:
        assert c.genesis.poc_weights_sha256, "genesis must pin the shipped PoC weights"
        m = Market(c)
        m.run_until_height(8)           # warm-up: histories and reputations form
        start = c.height(0) + 1
        m.run_until_height(start + 45)
        phase1 = proposer_counts(c, start, start + 45)
        ids = c.ids
        big, small = ids[CAPACITIES.index(8)], ids[CAPACITIES.index(1)]
        assert phase1[big] > phase1[small], (phase1, CAPACITIES)

        # the biggest provider withdraws its capacity and stops delivering
        m.stopped.add(big)
        m.send(m.keys[big], "provider_update", {"capacity": 0})
        m.run_until_height(c.height(0) + 8)
        start2 = c.height(0) + 1
        m.run_until_height(start2 + 45)
        phase2 = proposer_counts(c, start2, start2 + 45)
        share1, share2 = phase1[big] / sum(phase1.values()), phase2[big] / sum(phase2.values())
        assert share2 < share1, (phase1, phase2)

        # every peer computed the same proposer and PoC digest at every height
        top = c.assert_same_chain()
        digests = {c.block(i, top)["header"]["poc_digest"] for i in range(4)}
        assert len(digests) == 1
        prov = c.http.get(c.urls[1] + "/status").json()
        assert prov["height"] >= top
        print("phase1", {CAPACITIES[ids.index(k)]: v for k, v in phase1.items()},
              "phase2", {CAPACITIES[ids.index(k)]: v for k, v in phase2.items()})
    finally:
        c.stop_all()
