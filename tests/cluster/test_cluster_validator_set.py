"""A fifth peer joins a running 4-peer cluster by transaction, then a genesis validator leaves.

The fifth peer is set up the way an operator would (``pocnet init --genesis --peer``), syncs as
a full node, joins with ``pocnet tx validator-join`` (submitted to itself, so its own tx gossip
reaches the validators), then proposes and signs commits; peer1 leaves with ``pocnet tx
validator-leave``, stops voting two heights after the commit and gets its bond back after the
unbonding period. Every peer (including the one that left, which keeps following as a full node)
has identical block hashes and state roots at every height; the chain never stalls.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from pocnet.ledger.keys import KeyPair
from pocnet.node.config import NODE_KEY_FILE
from tests.cluster_helpers import FAST_CONSENSUS, Cluster
from tests.proc_helpers import ROOT, start_peer, stop, wait_http, wait_until

pytestmark = pytest.mark.slow

PARAMS = dict(FAST_CONSENSUS, min_bond=1000, genesis_bond=1000, unbonding_heights=6, min_validators=4)


def cli(*args: str) -> dict:
    out = subprocess.run([sys.executable, "-m", "pocnet.node", *args], cwd=ROOT, capture_output=True, text=True,
                         env=dict(os.environ, PYTHONPATH=str(ROOT)), timeout=120)
    assert out.returncode == 0, out.stderr
    try:
        return json.loads(out.stdout)
    except ValueError:
        return {"stdout": out.stdout}


@pytest.fixture
def cluster(tmp_path, port_block):
    base = port_block(5)
    c = Cluster(tmp_path / "net", base, consensus=PARAMS)
    c.fifth_port = base + 4
    yield c.start_all()
    c.stop_all()


def rows(c: Cluster, url: str) -> dict[str, dict]:
    v = c.http.get(url + "/validators", params={"last": 1}).json()
    return {r["address"]: r for r in v["validators"]}


def test_fifth_peer_joins_and_a_validator_leaves(cluster, tmp_path):
    c = cluster
    c.wait_height(2, timeout=60)
    home5 = tmp_path / "peer5"
    url5 = f"http://127.0.0.1:{c.fifth_port}"
    cli("init", "--home", str(home5), "--genesis", str(c.home / "genesis.json"), "--peer", c.urls[0],
        "--port", str(c.fifth_port), "--name", "peer5")
    addr5 = KeyPair.load(home5 / NODE_KEY_FILE).address
    proc5 = start_peer(home5)
    try:
        wait_http(url5, 60)
        urls = c.urls + [url5]
        # a full node: syncs, does not vote
        wait_until(lambda: c.http.get(url5 + "/status").json()["height"] >= c.height(0) - 1 >= 2, 60, 0.3)
        assert c.http.get(url5 + "/status").json()["consensus"]["is_validator"] is False
        cli("tx", "send", "--key", str(c.home / "faucet.json"), "--to", addr5, "--amount", "5000",
            "--node", c.urls[0])
        wait_until(lambda: c.http.get(f"{url5}/accounts/{addr5}").json()["balance"] == 5000, 60, 0.3)
        joined = cli("tx", "validator-join", "--key", str(home5 / NODE_KEY_FILE), "--url", url5, "--bond", "2000",
                     "--node", url5)
        join_h = joined["height"]
        c.wait_height(join_h + 2, timeout=60)
        for u in urls:
            wait_until(lambda u=u: c.http.get(u + "/status").json()["height"] >= join_h + 1, 60, 0.3)
            r = rows(c, u)[addr5]
            assert r["bond"] == 2000 and r["active_from"] == join_h + 2 and r["url"] == url5, r
        assert c.http.get(f"{url5}/accounts/{addr5}").json()["balance"] == 3000   # bond locked
        # it proposes and signs commit certificates
        def took_part() -> bool:
            top = c.height(0)
            blocks = [c.block(0, h) for h in range(join_h + 2, top + 1)]
            return (any(b["header"]["proposer"] == addr5 for b in blocks)
                    and any(s["validator"] == addr5 for b in blocks for s in b["commit"]["signatures"]))
        wait_until(took_part, 120, 0.5)
        assert c.http.get(url5 + "/status").json()["consensus"]["is_validator"] is True
        # peer routes are authenticated (docs/p2p-auth.md): before its join the validators did not
        # know its key, so its join tx reached them by the public /txs/batch fallback; as a
        # validator its signed /p2p/msgs batches (votes, proposals) are accepted
        st5 = c.http.get(url5 + "/p2p/stats").json()["stats"]
        assert st5.get("gossip_sent_txs_public", 0) >= 1 and st5.get("gossip_sent_msgs", 0) > 0, st5
        assert rows(c, c.urls[0])[addr5]["power"] == 1
        # a refused leave says why (still 5 members: allowed), a bad join says why
        bad = subprocess.run([sys.executable, "-m", "pocnet.node", "tx", "validator-join", "--key",
                              str(home5 / NODE_KEY_FILE), "--url", url5, "--bond", "2000", "--node", url5],
                             cwd=ROOT, capture_output=True, text=True, env=dict(os.environ, PYTHONPATH=str(ROOT)))
        assert bad.returncode != 0 and "already a validator" in bad.stderr, bad.stderr
        # peer1 leaves
        leaver = c.ids[1]
        bal_before = c.http.get(f"{c.urls[0]}/accounts/{leaver}").json()["balance"]
        left = cli("tx", "validator-leave", "--key", str(c.home / "peer1" / NODE_KEY_FILE), "--node", c.urls[1])
        leave_h = left["height"]
        r = rows(c, c.urls[0])[leaver]
        assert r["active_until"] == leave_h + 2 and r["unbond_at"] == leave_h + 2 + PARAMS["unbonding_heights"]
        c.wait_height(r["unbond_at"] + 3, timeout=120)
        wait_until(lambda: c.http.get(url5 + "/status").json()["height"] >= r["unbond_at"] + 3, 60, 0.3)
        for h in range(leave_h + 2, r["unbond_at"] + 4):
            b = c.block(0, h)
            assert b["header"]["proposer"] != leaver, h
            assert all(s["validator"] != leaver for s in b["commit"]["signatures"]), h
        assert c.http.get(f"{c.urls[0]}/accounts/{leaver}").json()["balance"] == bal_before + 1000
        assert rows(c, c.urls[0])[leaver]["power"] == 0 and rows(c, c.urls[0])[leaver]["bond"] == 0
        assert c.http.get(c.urls[1] + "/status").json()["consensus"]["is_validator"] is False
        # identical hashes and state roots at every height on all five peers
        top = min(c.http.get(u + "/status").json()["height"] for u in urls)
        for h in range(1, top + 1):
            blocks = [c.http.get(f"{u}/blocks/{h}").json() for u in urls]
            assert len({b["hash"] for b in blocks}) == 1, f"fork at height {h}"
            assert len({b["header"]["state_root"] for b in blocks}) == 1, f"state roots differ at {h}"
        assert top >= r["unbond_at"] + 3
    finally:
        stop(proc5)
