"""4 real peers, peer0 equivocates (test-only wrapper): evidence committed on every honest
peer within 5 heights, peer0 jailed (out of the ranking and the votes), unjail after the period."""
import pytest

from pocnet.ledger.keys import KeyPair
from pocnet.ledger.tx import sign_tx
from pocnet.node.config import NODE_KEY_FILE
from tests.cluster_helpers import FAST_CONSENSUS, Cluster
from tests.proc_helpers import wait_until

pytestmark = pytest.mark.slow

JAIL = dict(FAST_CONSENSUS, jail_delay=2, jail_heights=8, slash_ppm=100_000, genesis_bond=1000)


@pytest.fixture
def cluster(tmp_path, port_block):
    c = Cluster(tmp_path / "net", port_block(4), consensus=JAIL, byzantine={"peer0": "equivocate"})
    yield c.start_all()
    c.stop_all()


def evidence(c: Cluster, i: int) -> list[dict]:
    return c.http.get(c.urls[i] + "/evidence").json()["evidence"]


def validator(c: Cluster, i: int, addr: str) -> dict:
    v = c.http.get(c.urls[i] + "/validators", params={"last": 1}).json()
    return next(r for r in v["validators"] if r["address"] == addr)


def test_equivocation_jails_slashes_and_unjails(cluster):
    c, bad = cluster, cluster.ids[0]
    honest = [1, 2, 3]
    wait_until(lambda: c.http.get(c.urls[0] + "/p2p/stats").json()["stats"].get("byzantine_equivocate", 0) > 0,
               120, 0.3)
    wait_until(lambda: all(any(e["validator"] == bad for e in evidence(c, i)) for i in honest), 60, 0.3)
    evs = [e for e in evidence(c, 1) if e["validator"] == bad]
    first = min(evs, key=lambda e: e["included_height"])
    assert first["included_height"] - first["height"] <= 5, first
    for i in honest:  # the same evidence, included at the same height, on every peer
        assert any(e == first for e in evidence(c, i)), i
    jailed_from = first["included_height"] + JAIL["jail_delay"]
    c.wait_height(jailed_from + 4, peers=honest, timeout=60)
    for i in honest:
        rec = validator(c, i, bad)
        assert rec["bond"] <= 900 and rec["offences"] >= 1
        assert rec["provider"]["reputation_ppm"] == 0      # no tasks run here to raise it again
    top = c.assert_same_chain(peers=honest)
    # while jailed: not a proposer, not in any commit certificate
    release_seen = None
    for h in range(jailed_from, top + 1):
        b = c.block(1, h)
        assert b["header"]["proposer"] != bad, h
        assert all(s["validator"] != bad for s in b["commit"]["signatures"]), h
    assert validator(c, 1, bad)["jailed"] and validator(c, 1, bad)["power"] == 0
    # unjail after the period: refused before, accepted after, active two heights later
    key = KeyPair.load(c.home / "peer0" / NODE_KEY_FILE)
    unjail_after = validator(c, 1, bad)["jailed_until"]
    c.wait_height(unjail_after, peers=honest, timeout=90)
    nonce = c.http.get(f"{c.urls[1]}/accounts/{bad}").json()["pending_nonce"]
    r = c.http.post(c.urls[1] + "/txs", json=sign_tx(key, c.genesis.chain_id, "unjail", nonce, {}).to_dict())
    assert r.status_code == 202, r.text

    def released():
        nonlocal release_seen
        rec = validator(c, 1, bad)
        if rec["released_at"] is not None:
            release_seen = rec
        return release_seen is not None
    wait_until(released, 60, 0.3)
    c.wait_height(release_seen["released_at"], peers=honest, timeout=60)
    c.assert_same_chain(peers=honest)
    for i in honest:
        assert validator(c, i, bad)["released_at"] == release_seen["released_at"]
