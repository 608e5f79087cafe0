"""Market rounds over REST on one in-process peer: lifecycle, bad txs -> 4xx with nothing stored."""
import time

import pytest
from fastapi.testclient import TestClient

from pocnet.ledger.tx import sign_tx
from pocnet.node.node import Node
from pocnet.node.setup_home import init_cluster_home
from tests.market.market_chain_support import MRPS, MSPS, OPENER

CHAIN = "market-api-test"


@pytest.fixture
def peer(tmp_path):
    funds = [(k.address, 10**12) for k in [OPENER] + MRPS[:2] + MSPS[:3]]
    init_cluster_home(tmp_path, 1, 29991, funds, chain_id=CHAIN, consensus={"block_interval_ms": 10})
    node = Node(tmp_path / "peer0")
    with TestClient(node.create_app()) as client:
        yield node, client


class Sender:
    def __init__(self, client):
        self.c, self.nonces = client, {}

    def post(self, key, tx_type, payload):
        n = self.nonces.get(key.address, 0)
        r = self.c.post("/txs", json=sign_tx(key, CHAIN, tx_type, n, payload).to_dict())
        if r.status_code == 202:
            self.nonces[key.address] = n + 1
        return r

    def ok(self, key, tx_type, payload):
        r = self.post(key, tx_type, payload)
        assert r.status_code == 202, r.text
        return r.json()["tx_hash"]

    def wait(self, hashes, timeout=20):
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if all(self.c.get(f"/txs/{h}").json()["status"] == "committed" for h in hashes):
                return
            time.sleep(0.02)
        raise AssertionError("txs not committed")

    def wait_phase(self, rid, phase, timeout=20):
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if self.c.get(f"/market/rounds/{rid}").json()["phase"] == phase:
                return
            time.sleep(0.02)
        raise AssertionError(f"round {rid} never reached {phase}")


def test_market_round_over_rest(peer):
    node, c = peer
    s = Sender(c)
    assert c.get("/market/rounds").json() == {"rounds": [], "total": 0}
    assert c.get("/market/params").json()["kappa_milli"] == 15_500
    s.wait([s.ok(OPENER, "market_open", {"leaders": [k.address for k in MRPS[:2]],
                                         "followers": [k.address for k in MSPS[:3]],
                                         "price_blocks": 1000, "demand_blocks": 1000})])
    listing = c.get("/market/rounds").json()
    assert listing["total"] == 1 and listing["rounds"][0]["phase"] == "pricing"
    assert c.get("/market/rounds", params={"phase": "settled"}).json()["total"] == 0
    assert c.get("/market/rounds", params={"participant": MSPS[2].address}).json()["total"] == 1

    def refused(key, tx_type, payload, status, field):
        before = c.get("/market/rounds/1").json()
        acct = c.get(f"/accounts/{key.address}").json()
        r = s.post(key, tx_type, payload)
        assert r.status_code == status, r.text
        body = r.json()
        assert set(body) == {"error", "field", "reason"} and body["field"] == field
        assert c.get("/market/rounds/1").json() == before
        after = c.get(f"/accounts/{key.address}").json()
        assert (after["balance"], after["pending_nonce"]) == (acct["balance"], acct["pending_nonce"])

    refused(MRPS[0], "market_price", {"round": 1, "price": 1_500_001}, 422, "payload.price")
    refused(MRPS[0], "market_price", {"round": 1, "price": 0}, 400, "payload.price")
    refused(MRPS[0], "market_price", {"round": 7, "price": 900_000}, 422, "payload.round")
    refused(MSPS[0], "market_demand", {"round": 1, "demands": [1, 2]}, 409, "payload.round")
    refused(MSPS[0], "market_demand", {"round": 1, "demands": [-1, 2]}, 400, "payload.demands[0]")
    refused(MSPS[0], "market_price", {"round": 1, "price": 900_000}, 403, "sender")

    s.wait([s.ok(MRPS[0], "market_price", {"round": 1, "price": 900_000}),
            s.ok(MRPS[1], "market_price", {"round": 1, "price": 800_000})])
    s.wait_phase(1, "demand")
    refused(MRPS[0], "market_price", {"round": 1, "price": 900_000}, 409, "payload.round")  # phase is over
    hs = [s.ok(k, "market_demand", {"round": 1, "demands": [300_000 + i, 350_000]}) for i, k in enumerate(MSPS[:3])]
    s.wait(hs)
    s.wait_phase(1, "settled")
    rec = c.get("/market/rounds/1").json()
    assert sum(rec["paid"].values()) == sum(sum(p) for p in rec["payments"].values()) > 0
    assert c.get("/market/rounds/2").status_code == 404
    assert c.get("/market/rounds", params={"phase": "nope"}).status_code == 400
