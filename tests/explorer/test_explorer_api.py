"""Observation endpoints in-process: /metrics, /events, GET /txs search, /genesis, /net_info,
/validators, offline /docs and the packaged explorer assets."""
import re

import pytest
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from pocnet.ledger import txindex
from pocnet.ledger.keys import KeyPair
from pocnet.ledger.storage import Storage
from pocnet.ledger.tx import sign_tx
from pocnet.node.node import Node
from pocnet.node.setup_home import init_cluster_home
from pocnet.node.web import STATIC_DIR
from tests.proc_helpers import wait_for

ALICE = KeyPair.from_seed(b"\x07" * 32)
BOB = KeyPair.from_seed(b"\x08" * 32)
CHAIN = "obs-test"


def _peer(home):
    init_cluster_home(home, 1, 29998, [(ALICE.address, 10_000), (BOB.address, 10_000)], chain_id=CHAIN)
    node = Node(home / "peer0")
    node.config.block_interval_ms = 10
    return node


@pytest.fixture
def peer(tmp_path):
    node = _peer(tmp_path)
    with TestClient(node.create_app()) as client:
        yield node, client


def submit(c, key, nonce, tx_type="transfer", payload=None):
    payload = payload if payload is not None else {"to": BOB.address if key is ALICE else ALICE.address,
                                                   "amount": 1}
    t = sign_tx(key, CHAIN, tx_type, nonce, payload)
    r = c.post("/txs", json=t.to_dict())
    assert r.status_code == 202, r.text
    return t.hash


def committed(c, h):
    return c.get(f"/txs/{h}").json().get("status") == "committed"


def samples(text):
    out = {}
    for fam in text_string_to_metric_families(text):
        for s in fam.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def test_metrics_prometheus_text(peer):
    node, c = peer
    hashes = [submit(c, ALICE, n) for n in range(3)]
    bad = sign_tx(ALICE, CHAIN, "transfer", 7, {"to": BOB.address, "amount": 1})  # nonce gap
    assert c.post("/txs", json=bad.to_dict()).status_code == 409
    assert wait_for(lambda: all(committed(c, h) for h in hashes))
    r = c.get("/metrics")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/plain")
    s = samples(r.text)
    assert s[("pocnet_height", ())] == node.chain.height >= 1
    assert s[("pocnet_txs_admitted_total", (("source", "client"),))] == 3
    assert s[("pocnet_txs_refused_total", (("reason", "409_nonce"), ("source", "client")))] == 1
    assert s[("pocnet_txs_committed_total", ())] == 3
    assert s[("pocnet_commit_latency_seconds_count", ())] == 3
    assert s[("pocnet_blocks_committed_total", ())] == node.chain.height
    assert s[("pocnet_signature_verifications_total", ())] >= 3
    assert ("pocnet_mempool_bytes", ()) in s and ("pocnet_mempool_txs", ()) in s
    assert ("pocnet_poc_ranking_seconds_count", ()) in s
    assert ("pocnet_fml_solver_seconds_count", (("step", "plan"),)) in s
    assert ("pocnet_block_interval_seconds_bucket", (("le", "+Inf"),)) in s
    for name in {k[0] for k in s}:  # Prometheus naming: snake case, pocnet_ prefix
        assert re.fullmatch(r"pocnet_[a-z0-9_]+", name), name


def test_metrics_registry_is_per_node(tmp_path):
    a, b = _peer(tmp_path / "a"), _peer(tmp_path / "b")
    with TestClient(a.create_app()) as ca, TestClient(b.create_app()) as cb:
        h = submit(ca, ALICE, 0)
        assert wait_for(lambda: committed(ca, h))
        sa, sb = samples(ca.get("/metrics").text), samples(cb.get("/metrics").text)
    assert sa[("pocnet_txs_admitted_total", (("source", "client"),))] == 1
    assert ("pocnet_txs_admitted_total", (("source", "client"),)) not in sb


def test_mempool_bytes_counts_pending_txs(peer):
    node, c = peer
    node.config.empty_block_interval_ms = 10**6
    with node.chain.lock:  # hold block production so the tx stays pending while we scrape
        t = sign_tx(ALICE, CHAIN, "transfer", 0, {"to": BOB.address, "amount": 1})
        node.submit_tx_obj(t.to_dict())
        s = samples(node.metrics.exposition().decode())
        from pocnet.ledger.encoding import canonical_json
        assert s[("pocnet_mempool_txs", ())] == 1
        assert s[("pocnet_mempool_bytes", ())] == len(canonical_json(t.to_dict()))


def read_events(c, n_events, **params):
    """The first n_events SSE events as (event, id, data-json) tuples."""
    import json
    out, cur = [], {}
    headers = params.pop("headers", {})
    with c.stream("GET", "/events", params=params, headers=headers) as s:
        assert s.status_code == 200 and s.headers["content-type"].startswith("text/event-stream")
        for line in s.iter_lines():
            if line.startswith("event: "):
                cur["event"] = line[7:]
            elif line.startswith("id: "):
                cur["id"] = line[4:]
            elif line.startswith("data: "):
                cur["data"] = json.loads(line[6:])
            elif line == "" and "event" in cur:
                out.append((cur["event"], cur.get("id"), cur["data"]))
                cur = {}
                if len(out) >= n_events:
                    break
    return out


def test_events_replay_filter_and_resume(peer):
    node, c = peer
    hashes = [submit(c, ALICE, 0), submit(c, BOB, 0),
              submit(c, ALICE, 1, "task", {"work": 40, "demand": [5, 6], "deadline_ms": 1000})]
    assert wait_for(lambda: all(committed(c, h) for h in hashes))
    head = node.chain.height
    ev = read_events(c, head + 3, from_height=1)
    blocks = [e for e in ev if e[0] == "new_block"]
    txs = [e for e in ev if e[0] == "tx"]
    assert [int(b[1]) for b in blocks] == list(range(1, head + 1))
    assert sorted(t[2]["tx_hash"] for t in txs) == sorted(hashes)
    for kind, _, data in ev:  # every tx event precedes its block's new_block event
        if kind == "new_block":
            assert all(t[2]["tx_hash"] in data["tx_hashes"] for t in txs if t[2]["height"] == data["height"])
    only = read_events(c, 1, from_height=1, types="task", events="tx")
    assert [(e[0], e[2]["type"], e[2]["tx_hash"]) for e in only] == [("tx", "task", hashes[2])]
    bob = read_events(c, 1, from_height=1, sender=BOB.address, events="tx")
    assert bob[0][2]["tx_hash"] == hashes[1]
    # resume after block h: Last-Event-ID replays from h+1
    h_task = c.get(f"/txs/{hashes[2]}").json()["height"]
    resumed = read_events(c, 1, headers={"Last-Event-ID": str(h_task - 1)}, events="new_block")
    assert int(resumed[0][1]) == h_task


def test_events_live_block(peer):
    node, c = peer
    start = node.chain.height
    ev = read_events(c, 1, events="new_block")  # live only: the next empty or non-empty block
    assert int(ev[0][1]) > start


def test_events_bad_params(peer):
    _, c = peer
    for params in ({"types": "nope"}, {"sender": "xyz"}, {"events": "blocks"}, {"from_height": "0"}):
        r = c.get("/events", params=params)
        assert r.status_code == 400 and set(r.json()) == {"error", "field", "reason"}, (params, r.text)


def test_tx_search_filters_and_pages(peer):
    node, c = peer
    hashes = [submit(c, ALICE, n) for n in range(7)] + [submit(c, BOB, 0)]
    assert wait_for(lambda: all(committed(c, h) for h in hashes))
    seen, cursor = [], None
    while True:
        params = {"sender": ALICE.address, "limit": 3, **({"cursor": cursor} if cursor else {})}
        page = c.get("/txs", params=params).json()
        assert len(page["txs"]) <= 3
        seen += page["txs"]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert [t["tx_hash"] for t in seen] == hashes[6::-1]  # newest first, all of alice's, once
    assert all(t["tx"]["sender"] == ALICE.address and t["type"] == "transfer" for t in seen)
    asc = c.get("/txs", params={"order": "asc", "limit": 100}).json()["txs"]
    assert [t["tx_hash"] for t in asc if t["sender"] == ALICE.address] == hashes[:7]
    h0 = seen[-1]["height"]
    rng = c.get("/txs", params={"from_height": h0, "to_height": h0}).json()["txs"]
    assert rng and all(t["height"] == h0 for t in rng)
    assert c.get("/txs", params={"type": "task"}).json() == {"txs": [], "next_cursor": None}


@pytest.mark.parametrize("params,field", [
    ({"limit": "0"}, "limit"), ({"limit": "101"}, "limit"), ({"limit": "ten"}, "limit"),
    ({"sender": "abc"}, "sender"), ({"type": "bogus"}, "type"), ({"from_height": "-1"}, "from_height"),
    ({"from_height": "5", "to_height": "2"}, "to_height"), ({"cursor": "12"}, "cursor"),
    ({"cursor": "a.b"}, "cursor"), ({"order": "up"}, "order")])
def test_tx_search_bad_query_is_400(peer, params, field):
    _, c = peer
    r = c.get("/txs", params=params)
    assert r.status_code == 400
    assert r.json()["field"] == field and set(r.json()) == {"error", "field", "reason"}


def test_tx_index_backfills_an_older_database(tmp_path):
    node = _peer(tmp_path)
    with TestClient(node.create_app()) as c:
        hashes = [submit(c, ALICE, n) for n in range(5)]
        assert wait_for(lambda: all(committed(c, h) for h in hashes))
    url = node.config.database_url(node.home)
    st = Storage(url)
    with st.engine.begin() as conn:  # a database from before the index: no rows, no watermark
        conn.execute(txindex.tx_index.delete())
        conn.execute(__import__("sqlalchemy").text("DELETE FROM meta WHERE key = 'tx_index_height'"))
    st.close()
    st = Storage(url)  # reopening rebuilds the index from the stored blocks
    found, _ = txindex.search(st, txindex.TxQuery(sender=ALICE.address, limit=100, descending=False))
    assert [t["tx_hash"] for t in found] == hashes
    assert st.get_meta("tx_index_height") == str(st.head_height())
    st.close()


def test_genesis_net_info_validators(peer):
    node, c = peer
    g = c.get("/genesis").json()
    assert g["hash"] == node.genesis.hash and g["genesis"]["chain_id"] == CHAIN
    assert wait_for(lambda: node.chain.height >= 2)
    ni = c.get("/net_info").json()
    assert ni["peer_id"] == node.key.address and ni["peers"] == [] and ni["n_peers"] == 0
    v = c.get("/validators", params={"last": 5}).json()
    assert v["window"]["blocks"] == min(5, v["head"])
    assert v["validators"][0]["proposed"] == v["window"]["blocks"]
    assert set(v["validators"][0]) >= {"provider", "poc_contribution", "tasks", "proposer_share"}
    assert c.get("/validators", params={"last": 0}).status_code == 400


def test_docs_and_explorer_are_served_offline(peer):
    _, c = peer
    for path in ("/docs", "/explorer"):
        r = c.get(path)
        assert r.status_code == 200
        # nothing loaded from another host: every src/href is a local path
        urls = re.findall(r"""(?:src|href)\s*=\s*["']([^"']+)""", r.text)
        assert urls and all(u.startswith(("/", "#", "data:")) for u in urls), urls
        assert "cdn" not in r.text.lower() and "https://" not in r.text and "http://" not in r.text
        for u in urls:
            if u.startswith("/static/"):
                assert c.get(u).status_code == 200, u
    assert c.get("/redoc").status_code == 404  # dropped: it needs fonts and JS from a CDN
    assert "/metrics" in c.get("/openapi.json").json()["paths"]


def test_static_assets_carry_licences():
    for f in ("vendor/swagger-ui/LICENSE", "vendor/uplot/LICENSE", "VENDORED.md",
              "vendor/swagger-ui/swagger-ui-bundle.js", "vendor/uplot/uPlot.iife.min.js"):
        assert (STATIC_DIR / f).is_file(), f
    for f in STATIC_DIR.rglob("*"):  # our own explorer files reference no remote host
        if f.suffix in (".html", ".js", ".css") and "vendor" not in f.parts:
            text = f.read_text()
            assert not re.search(r"https?://(?!127\.0\.0\.1|localhost)", text), f
