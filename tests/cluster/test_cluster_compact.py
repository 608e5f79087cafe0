"""Compact proposals across 4 real peer processes: a peer that gets no gossiped txs rebuilds
every proposal by pulling the txs (authenticated POST /p2p/txs) and commits the same chain;
when nobody serves pulls it falls back to the full block."""
import pytest

from pocnet.ledger.keys import KeyPair
from pocnet.ledger.tx import sign_tx
from tests.cluster_helpers import Cluster
from tests.proc_helpers import wait_until

pytestmark = pytest.mark.slow


@pytest.fixture
def cluster(tmp_path, port_block):
    c = Cluster(tmp_path / "net", port_block(4)).start_all()
    yield c
    c.stop_all()


def _stats(c: Cluster, i: int) -> dict:
    return c.http.get(c.urls[i] + "/p2p/stats").json()["stats"]


def _submit(c: Cluster, key: KeyPair, start: int, count: int, peers: list[int]) -> list[str]:
    bob = KeyPair.from_seed(b"\x42" * 32).address
    txs = [sign_tx(key, c.genesis.chain_id, "transfer", start + k, {"to": bob, "amount": 1}) for k in range(count)]
    # each batch to one peer in turn (consecutive nonces of one sender stay on one peer per batch)
    for n, i in enumerate(range(0, count, 10)):
        r = c.http.post(c.urls[peers[n % len(peers)]] + "/txs/batch", json=[t.to_dict() for t in txs[i:i + 10]])
        assert r.status_code == 200 and all("tx_hash" in x for x in r.json()["results"]), r.text
        last = txs[min(i + 9, count - 1)].hash
        wait_until(lambda last=last: all(c.http.get(f"{c.urls[p]}/txs/{last}").status_code == 200
                                         for p in peers), 30, 0.05)
    return [t.hash for t in txs]


def test_a_peer_without_tx_gossip_pulls_and_commits_the_same_blocks(cluster):
    c = cluster
    # peer3 drops every tx gossiped to it; clients never submit to it
    r = c.http.post(c.urls[3] + "/debug/faults", json={"cut": [], "drop_txs_from": c.ids[:3]})
    assert r.status_code == 200, r.text
    hashes = _submit(c, c.faucet, 0, 60, [0, 1, 2])
    wait_until(lambda: c.committed_everywhere(hashes), 90, 0.3)
    s3 = _stats(c, 3)
    assert s3.get("dropped_txs_by_fault_filter", 0) > 0, s3
    assert s3.get("compact_pulled_txs", 0) > 0, s3
    served = sum(_stats(c, i).get("compact_served_txs", 0) for i in range(3))
    assert served >= s3["compact_pulled_txs"]
    c.wait_height(c.height(0), timeout=30)
    assert c.assert_same_chain() >= 2


def test_when_no_peer_serves_pulls_the_full_block_is_fetched(cluster):
    c = cluster
    for i in range(3):
        assert c.http.post(c.urls[i] + "/debug/faults", json={"cut": [], "refuse_pulls": True}).status_code == 200
    c.http.post(c.urls[3] + "/debug/faults", json={"cut": [], "drop_txs_from": c.ids[:3]})
    hashes = _submit(c, c.faucet, 0, 40, [0, 1, 2])
    wait_until(lambda: c.committed_everywhere(hashes), 90, 0.3)
    s3 = _stats(c, 3)
    assert s3.get("compact_fallback_full", 0) > 0, s3
    assert s3.get("compact_pulled_txs", 0) == 0, s3
    c.wait_height(c.height(0), timeout=30)
    assert c.assert_same_chain() >= 2
