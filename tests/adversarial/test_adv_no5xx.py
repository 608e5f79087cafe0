"""No 5xx for any input (issue 17, #7): every request the campaign found answering 500,
plus duplicate keys, wrong Content-Type and slow clients. In-process unless noted."""
import json
import socket
import threading
import time

import pytest
import uvicorn
from fastapi.testclient import TestClient

from pocnet.ledger.encoding import MAX_JSON_DEPTH
from pocnet.ledger.keys import KeyPair
from pocnet.ledger.tx import sign_tx
from pocnet.node import server as server_mod
from pocnet.node.node import Node
from pocnet.node.setup_home import init_cluster_home
from pocnet.p2p.auth import EnvelopeSigner

ALICE = KeyPair.from_seed(b"\x07" * 32)
BOB = KeyPair.from_seed(b"\x08" * 32)
JSON = {"content-type": "application/json"}


@pytest.fixture
def peer(tmp_path):
    init_cluster_home(tmp_path, 1, 29997, [(ALICE.address, 1_000)], chain_id="no5xx")
    node = Node(tmp_path / "peer0")
    with TestClient(node.create_app(), raise_server_exceptions=False) as client:
        yield node, client


def _tx(nonce=0, **payload):
    return sign_tx(ALICE, "no5xx", "transfer", nonce, payload or {"to": BOB.address, "amount": 1}).to_dict()


def _assert_4xx(r, field=None):
    assert 400 <= r.status_code < 500, (r.status_code, r.text[:200])
    body = r.json()
    assert {"error", "field", "reason"} <= set(body)
    if field is not None:
        assert body["field"] == field


@pytest.mark.parametrize("h", [2**63, 2**63 + 1, 2**64, 10**30, -(2**63) - 1])
def test_huge_block_height_is_404(peer, h):
    _, c = peer
    r = c.get(f"/blocks/{h}")
    assert r.status_code in (400, 404), r.text
    _assert_4xx(r)
    _assert_4xx(c.get("/blocks", params={"from": 2**63}))


@pytest.mark.parametrize("raw", [
    "[" * 5000 + "]" * 5000,                       # RecursionError in the parser
    "[" * (MAX_JSON_DEPTH + 1) + "]" * (MAX_JSON_DEPTH + 1),
    '{"a":' * 2000 + "1" + "}" * 2000,
    "1" * 5000,                                    # over the interpreter's 4,300-digit limit
    '{"nonce": ' + "9" * 4400 + "}",
    '"\\ud800"',                                   # lone surrogate
    '{"a": 1, "a": 2}',                            # duplicate key
    "\xff\xfe",
])
@pytest.mark.parametrize("route", ["/txs", "/txs/batch"])
def test_pathological_json_is_400(peer, raw, route):
    _, c = peer
    body = raw if route == "/txs" or not raw.startswith("[") else raw
    _assert_4xx(c.post(route, content=body.encode("utf-8", "surrogatepass"), headers=JSON))


def test_lone_surrogate_inside_a_signed_tx(peer):
    _, c = peer
    good = _tx()
    bad = dict(good, type="transfer\ud800")
    raw = json.dumps(bad)  # ensure_ascii escapes it as \ud800: valid JSON text
    _assert_4xx(c.post("/txs", content=raw, headers=JSON))


def test_duplicate_keys_refused(peer):
    _, c = peer
    t = _tx()
    raw = json.dumps(t)[:-1] + ', "nonce": 5}'
    r = c.post("/txs", content=raw, headers=JSON)
    _assert_4xx(r)
    assert "duplicate" in r.json()["reason"]


@pytest.mark.parametrize("ctype", [None, "text/plain", "application/x-www-form-urlencoded", "application/jsonx"])
def test_wrong_content_type_is_415(peer, ctype):
    _, c = peer
    headers = {"content-type": ctype} if ctype else {}
    raw = json.dumps(_tx()).encode()
    for route in ("/txs", "/txs/batch"):
        r = c.post(route, content=raw, headers=headers)
        assert r.status_code == 415, (route, ctype, r.status_code)
        _assert_4xx(r, "content-type")
    assert c.post("/txs", content=raw, headers={"content-type": "application/json; charset=utf-8"}).status_code == 202


def test_batch_reports_each_item_even_when_one_is_bad(peer):
    _, c = peer
    items = [_tx(0), {"chain_id": "no5xx", "type": "transfer\ud800"}, _tx(1), "junk", _tx(2, to=BOB.address, amount=10**30)]
    raw = json.dumps(items)
    r = c.post("/txs/batch", content=raw, headers=JSON)
    assert r.status_code == 400  # the lone surrogate makes the whole document refused before any item runs
    items[1] = {"chain_id": "no5xx", "type": "transfer"}
    r = c.post("/txs/batch", json=items)
    assert r.status_code == 200
    res = r.json()["results"]
    assert len(res) == 5
    assert "tx_hash" in res[0] and "tx_hash" in res[2]
    assert res[1]["status"] == 400 and res[3]["status"] == 400 and 400 <= res[4]["status"] < 500


def test_malformed_debug_and_p2p_bodies(tmp_path, monkeypatch):
    monkeypatch.setenv("POCNET_DEBUG_API", "1")
    init_cluster_home(tmp_path, 2, 29995, [], chain_id="no5xx-2")
    node = Node(tmp_path / "peer0")
    # /p2p/* needs a signed envelope (tests/adversarial/test_adv_p2p_auth.py): these bodies are
    # sent by the other validator, so they get past authentication and reach the parser
    signer = EnvelopeSigner(KeyPair.load(tmp_path / "peer1" / "node_key.json"), "no5xx-2")

    def auth(route, raw):
        return signer.headers(node.key.address, "POST", route, raw.encode()) if route.startswith("/p2p") else {}

    with TestClient(node.create_app(), raise_server_exceptions=False) as c:
        for route in ("/debug/faults", "/p2p/msgs"):
            bad = ["[]", "1", '"x"', "null", "{", '{"cut": 5}' if route == "/debug/faults" else '{"from": 1}',
                   '{"cut": [1]}' if route == "/debug/faults" else '{"from": "x", "msgs": 5}']
            for raw in bad:
                r = c.post(route, content=raw, headers=JSON | auth(route, raw))
                assert 400 <= r.status_code < 500, (route, raw, r.status_code, r.text[:200])
                assert r.status_code != 401, (route, raw, r.text[:200])
            r = c.post(route, content="{}", headers={"content-type": "text/plain"} | auth(route, "{}"))
            assert r.status_code == 415


def test_slow_header_client_is_disconnected(monkeypatch):
    """A client that never finishes its headers is dropped after the header timeout."""
    monkeypatch.setattr(server_mod.HeaderTimeoutH11, "header_timeout_s", 0.5)
    from fastapi import FastAPI
    app = FastAPI()

    @app.get("/ok")
    async def ok():
        return {"ok": True}

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    cfg = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", **server_mod.uvicorn_settings())
    srv = uvicorn.Server(cfg)
    th = threading.Thread(target=srv.run, daemon=True)
    th.start()
    try:
        deadline = time.monotonic() + 10
        while not srv.started and time.monotonic() < deadline:
            time.sleep(0.02)
        slow = socket.create_connection(("127.0.0.1", port))
        slow.sendall(b"GET /ok HTTP/1.1\r\nHost: x\r\n")  # headers never finished
        slow.settimeout(5)
        t0 = time.monotonic()
        assert slow.recv(1024) == b""  # closed by the server
        assert time.monotonic() - t0 < 4
        fast = socket.create_connection(("127.0.0.1", port))
        fast.sendall(b"GET /ok HTTP/1.1\r\nHost: x\r\n\r\n")
        fast.settimeout(5)
        assert b"200 OK" in fast.recv(1024)
        fast.close()
        slow.close()
    finally:
        srv.should_exit = True
        th.join(10)
