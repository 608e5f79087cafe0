"""REST API of the FML rounds on a single in-process peer (TestClient)."""
import time

import pytest
from fastapi.testclient import TestClient

from pocnet.fml.chain_client import join_payload, open_round_payload, register_payload, report_payloads, round_payload, tokens
from pocnet.games.params import GameParams
from pocnet.games.round import RoundPlan
from pocnet.ledger.tx import sign_tx
from pocnet.node.node import Node
from pocnet.node.setup_home import init_cluster_home
from tests.fmlchain.fmlchain_support import DIM, LEARNERS, MSP, as_on_chain, honest_reports, key_of, profiles

CHAIN = "fml-api-test"


@pytest.fixture
def peer(tmp_path):
    init_cluster_home(tmp_path, 1, 29997, [(MSP.address, tokens(1000))], chain_id=CHAIN,
                      consensus={"block_interval_ms": 10})
    node = Node(tmp_path / "peer0")
    with TestClient(node.create_app()) as client:
        yield node, client


class Submitter:
    def __init__(self, client):
        self.c = client
        self.nonces = {}

    def __call__(self, key, tx_type, payload):
        n = self.nonces.get(key.address, 0)
        t = sign_tx(key, CHAIN, tx_type, n, payload)
        r = self.c.post("/txs", json=t.to_dict())
        assert r.status_code == 202, r.text
        self.nonces[key.address] = n + 1
        return t.hash

    def wait(self, hashes, timeout=20):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if all(self.c.get(f"/txs/{h}").json()["status"] == "committed" for h in hashes):
                return
            time.sleep(0.02)
        raise AssertionError("txs not committed")


def test_round_lifecycle_over_rest(peer):
    node, c = peer
    send = Submitter(c)
    profs = profiles(5)
    hs = [send(LEARNERS[i], "fml_register", register_payload(p)) for i, p in enumerate(profs)]
    open_tx = send(MSP, "fml_open_round", open_round_payload(100.0, DIM, n_coalitions=2))
    send.wait(hs + [open_tx])

    listing = c.get("/fml/rounds").json()
    assert listing["total"] == 1 and listing["rounds"][0]["open_tx"] == open_tx
    assert c.get("/fml/rounds", params={"open_tx": open_tx}).json()["rounds"][0]["id"] == 1
    assert c.get("/fml/rounds", params={"phase": "closed"}).json()["total"] == 0
    r1 = c.get("/fml/rounds/1").json()
    assert r1["phase"] == "registration" and r1["budget"] == tokens(100) and r1["params"] == {"n_coalitions": 2}
    assert r1["game_params"]["n_coalitions"] == 2 and r1["coalitions"] == [] and r1["scale"] == 1_000_000

    send.wait([send(LEARNERS[i], "fml_join", join_payload(1, p.embedding)) for i, p in enumerate(profs)])
    assert sorted(c.get("/fml/rounds/1").json()["joined"]) == sorted(k.address for k in LEARNERS[:5])
    send.wait([send(MSP, "fml_close_registration", round_payload(1))])

    r1 = c.get("/fml/rounds/1", params={"raw": "true"}).json()
    assert r1["phase"] == "training" and r1["seed"] is not None
    plan = RoundPlan.from_dict(r1["raw"]["plan"])
    assert [co["head"] for co in r1["coalitions"]] == list(plan.heads)
    assert {co["head"]: co["members"] for co in r1["coalitions"]} == {h: list(m) for h, m in plan.partition.items()}
    assert set(r1["frequencies"]) == set(r1["members"]) and set(r1["incentives"]) == set(plan.heads)
    assert all(5_000_000 <= v <= 15_000_000 for v in r1["incentives"].values())  # C in micro-tokens

    chain_profs = [as_on_chain(p) for p in profs]
    txs = []
    for h in plan.heads:
        for p in report_payloads(1, honest_reports(plan, GameParams(n_coalitions=2), chain_profs, h)):
            txs.append(send(key_of(h), "fml_report", p))
    send.wait(txs)
    assert len(c.get("/fml/rounds/1").json()["reports"]) == 5
    send.wait([send(MSP, "fml_close_round", round_payload(1))])

    r1 = c.get("/fml/rounds/1").json()
    assert r1["phase"] == "closed" and r1["flags"] == {}
    assert sum(r1["payouts"].values()) == r1["paid"] and r1["paid"] + r1["refund"] == tokens(100)
    a = LEARNERS[0].address
    assert c.get(f"/accounts/{a}").json()["balance"] == r1["payouts"][a]
    rep = c.get(f"/reputation/{a}").json()
    assert rep["rounds"] == 1 and rep["global_reputation"] == r1["reputations"][a]["global"]
    assert rep["history"][0]["round"] == 1 and rep["history"][0]["payout"] == r1["payouts"][a]
    learner = c.get(f"/fml/learners/{a}").json()
    assert learner["capabilities"] == register_payload(profs[0])
    assert learner["reputation"]["history"] == rep["history"]


def test_fml_query_errors(peer):
    _, c = peer
    r = c.get("/fml/rounds/7")
    assert r.status_code == 404 and r.json()["field"] == "round_id"
    assert c.get("/fml/rounds/0").status_code == 404
    r = c.get("/fml/rounds/seven")
    assert r.status_code == 400 and r.json()["field"] == "round_id"
    r = c.get("/fml/rounds", params={"phase": "done"})
    assert r.status_code == 400 and r.json()["field"] == "phase"
    r = c.get("/fml/learners/nothex")
    assert r.status_code == 400 and r.json()["field"] == "address"
    r = c.get(f"/fml/learners/{LEARNERS[0].address}")
    assert r.status_code == 404
    newcomer = c.get(f"/reputation/{LEARNERS[0].address}").json()
    assert newcomer["newcomer"] is True and newcomer["global_reputation"] == 500_000 and newcomer["history"] == []
    assert c.get("/reputation/zz").status_code == 400


def test_refused_fml_tx_gets_a_status_and_field(peer):
    _, c = peer
    t = sign_tx(LEARNERS[0], CHAIN, "fml_join", 0, join_payload(1, [0.1] * DIM))
    r = c.post("/txs", json=t.to_dict())
    assert r.status_code == 403 and r.json()["field"] == "sender"
    t = sign_tx(MSP, CHAIN, "fml_close_round", 0, round_payload(3))
    r = c.post("/txs", json=t.to_dict())
    assert r.status_code == 422 and r.json()["field"] == "payload.round"
