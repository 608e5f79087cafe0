"""REST API: happy path and every class of bad input, in-process (TestClient)."""
import json

import pytest
from fastapi.testclient import TestClient

from pocnet.ledger.keys import KeyPair
from pocnet.ledger.tx import sign_tx
from pocnet.node.node import Node
from pocnet.node.setup_home import FAUCET_FILE, init_cluster_home
from tests.proc_helpers import wait_for

ALICE = KeyPair.from_seed(b"\x07" * 32)
BOB = KeyPair.from_seed(b"\x08" * 32)


@pytest.fixture
def peer(tmp_path):
    init_cluster_home(tmp_path, 1, 29999, [(ALICE.address, 1_000)], chain_id="api-test",
                      consensus={"block_interval_ms": 10})
    node = Node(tmp_path / "peer0")
    with TestClient(node.create_app()) as client:
        yield node, client


def tx(key=ALICE, nonce=0, payload=None, chain="api-test", tx_type="transfer"):
    return sign_tx(key, chain, tx_type, nonce, payload if payload is not None else {"to": BOB.address, "amount": 10})


def test_transfer_commits_and_is_queryable(peer):
    node, c = peer
    t = tx()
    r = c.post("/txs", json=t.to_dict())
    assert r.status_code == 202 and r.json()["tx_hash"] == t.hash
    assert wait_for(lambda: c.get(f"/txs/{t.hash}").json()["status"] == "committed")
    info = c.get(f"/txs/{t.hash}").json()
    assert info["height"] >= 1
    assert c.get(f"/accounts/{ALICE.address}").json() == {"address": ALICE.address, "balance": 990, "nonce": 1,
                                                           "pending_nonce": 1}
    assert c.get(f"/accounts/{BOB.address}").json()["balance"] == 10
    blk = c.get(f"/blocks/{info['height']}").json()
    assert t.hash in [__import__("pocnet.ledger.tx", fromlist=["x"]).compute_tx_hash(d) for d in blk["txs"]]
    assert set(blk["header"]) >= {"height", "prev_hash", "tx_root", "state_root", "proposer", "timestamp_ms"}
    assert blk["commit"]["block_hash"] == blk["hash"]
    latest = c.get("/blocks/latest").json()
    assert latest["header"]["height"] == c.get("/status").json()["height"]
    st = c.get("/status").json()
    assert {"chain_id", "height", "latest_hash", "peer_id"} <= set(st)
    page = c.get("/blocks", params={"from": 1, "limit": 2}).json()["blocks"]
    assert [b["header"]["height"] for b in page] == [1, 2][:len(page)]
    # blocks are served from their stored JSON text: exactly the committed block, as JSON
    stored = node.chain.storage.get_block(info["height"])
    assert blk == stored.to_dict() and c.get(f"/blocks/{info['height']}").headers["content-type"] == "application/json"
    assert page[0] == node.chain.storage.get_block(1).to_dict()
    assert c.get("/blocks", params={"from": 10**6}).json() == {"blocks": [], "head": node.chain.height}
    assert c.get("/health").json()["ok"] is True
    assert c.get("/docs").status_code == 200 and "/txs" in c.get("/openapi.json").json()["paths"]


def test_duplicate_submission_is_idempotent(peer):
    _, c = peer
    t = tx()
    assert c.post("/txs", json=t.to_dict()).status_code == 202
    r = c.post("/txs", json=t.to_dict())
    assert r.status_code in (202, 409)


def test_task_tx_is_listed(peer):
    _, c = peer
    t = tx(payload={"work": 40, "demand": [5, 6], "deadline_ms": 1000}, tx_type="task")
    assert c.post("/txs", json=t.to_dict()).status_code == 202
    assert wait_for(lambda: c.get("/tasks").json()["total"] == 1)
    task = c.get("/tasks").json()["tasks"][0]
    assert task["work"] == 40 and task["status"] == "queued" and task["submitter"] == ALICE.address


def raw(c, body: bytes):
    return c.post("/txs", content=body, headers={"content-type": "application/json"})


def signed_dict_with(**changes):
    d = tx().to_dict()
    d.update(changes)
    return d


BAD_INPUTS = [
    ("malformed json", lambda: b'{"chain_id": ', 400, "$", "malformed"),
    ("not an object", lambda: b"[1,2]", 400, "$", "object"),
    ("missing field", lambda: json.dumps({k: v for k, v in tx().to_dict().items() if k != "payload"}).encode(),
     400, "payload", "required"),
    ("extra field", lambda: json.dumps(signed_dict_with(fee=1)).encode(), 400, "fee", "unknown"),
    ("wrong type", lambda: json.dumps(signed_dict_with(nonce="0")).encode(), 400, "nonce", "integer"),
    ("float in payload", lambda: json.dumps(signed_dict_with(payload={"to": BOB.address, "amount": 10.0})).encode(),
     400, "$", "float"),
    ("float nonce", lambda: json.dumps(signed_dict_with(nonce=0.0)).encode(), 400, "$", "float"),
    ("unknown type", lambda: json.dumps(tx(tx_type="mint").to_dict()).encode(), 400, "type", "unknown"),
    ("wrong chain", lambda: json.dumps(tx(chain="other").to_dict()).encode(), 400, "chain_id", "wrong chain"),
    ("bad signature", lambda: json.dumps(signed_dict_with(signature="ab" * 64)).encode(), 400, "signature", "verify"),
    ("tampered payload", lambda: json.dumps(signed_dict_with(payload={"to": BOB.address, "amount": 11})).encode(),
     400, "signature", "verify"),
    ("sender not a key", lambda: json.dumps(signed_dict_with(sender="xyz")).encode(), 400, "sender", "hex"),
    ("skipped nonce", lambda: json.dumps(tx(nonce=5).to_dict()).encode(), 409, "nonce", "skips"),
    ("insufficient balance", lambda: json.dumps(tx(payload={"to": BOB.address, "amount": 10**6}).to_dict()).encode(),
     422, "payload.amount", "insufficient"),
    ("zero amount", lambda: json.dumps(tx(payload={"to": BOB.address, "amount": 0}).to_dict()).encode(),
     400, "payload.amount", "positive"),
    ("negative amount", lambda: json.dumps(tx(payload={"to": BOB.address, "amount": -3}).to_dict()).encode(),
     400, "payload.amount", "positive"),
    ("body over 64 KiB", lambda: json.dumps(signed_dict_with(payload={"to": "a" * 70_000})).encode(),
     413, "$", "limit"),
]


@pytest.mark.parametrize("name,body,status,field,reason", BAD_INPUTS, ids=[b[0] for b in BAD_INPUTS])
def test_bad_input_refused_with_named_field(peer, name, body, status, field, reason):
    node, c = peer
    before = (node.chain.height, len(node.mempool), node.chain.state.root)
    r = raw(c, body())
    assert r.status_code == status, r.text
    err = r.json()
    assert err["field"] == field and reason in err["reason"], err
    assert len(node.mempool) == before[1]
    assert node.chain.state.get("acct", BOB.address) is None  # nothing stored
    assert c.get("/health").status_code == 200  # still serving


def test_reused_nonce_refused(peer):
    node, c = peer
    t = tx()
    assert c.post("/txs", json=t.to_dict()).status_code == 202
    assert wait_for(lambda: c.get(f"/txs/{t.hash}").json()["status"] == "committed")
    other = tx(nonce=0, payload={"to": BOB.address, "amount": 11})
    r = c.post("/txs", json=other.to_dict())
    assert r.status_code == 409 and r.json()["field"] == "nonce" and "already used" in r.json()["reason"]
    r = c.post("/txs", json=t.to_dict())
    assert r.status_code == 409 and "already committed" in r.json()["reason"]


def test_query_errors(peer):
    _, c = peer
    r = c.get("/accounts/nothex")
    assert r.status_code == 400 and r.json()["field"] == "address"
    r = c.get("/blocks/999999")
    assert r.status_code == 404 and r.json()["field"] == "height"
    assert c.get("/txs/" + "0" * 64).status_code == 404
    r = c.get("/blocks", params={"from": 0})
    assert r.status_code == 400 and r.json()["field"] == "from"
    r = c.get("/blocks", params={"limit": "many"})
    assert r.status_code == 400 and r.json()["field"] == "limit"


def test_batch_endpoint_reports_per_tx(peer):
    _, c = peer
    good = [tx(nonce=i, payload={"to": BOB.address, "amount": 1}) for i in range(3)]
    body = [t.to_dict() for t in good] + [dict(good[0].to_dict(), nonce=9)]
    res = c.post("/txs/batch", json=body).json()["results"]
    assert [r.get("tx_hash") for r in res[:3]] == [t.hash for t in good]
    assert res[3]["field"] == "[3].nonce" or res[3]["field"] == "[3].signature"


def test_faucet_key_exists(tmp_path):
    init_cluster_home(tmp_path, 1, 29998, [], chain_id="x")
    assert KeyPair.load(tmp_path / FAUCET_FILE).address
