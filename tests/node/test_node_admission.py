"""Admission control: a peer whose mempool holds admission_backlog_blocks blocks' worth of
txs sheds client submissions with 503 + Retry-After before reading them, while gossip from
peers is still admitted up to the hard cap (mempool_max_txs)."""
import pytest
from fastapi.testclient import TestClient

from pocnet.ledger.keys import KeyPair
from pocnet.ledger.tx import sign_tx
from pocnet.node.node import Node
from pocnet.node.setup_home import init_cluster_home

ALICE = KeyPair.from_seed(b"\x17" * 32)
BOB = KeyPair.from_seed(b"\x18" * 32)
MAX_BLOCK_TXS = 5  # soft limit = 2 blocks' worth = 10 txs


@pytest.fixture
def lone_peer(tmp_path):
    """peer0 of a 4-validator chain whose other peers never start: no quorum, so no block
    commits and the mempool only grows."""
    init_cluster_home(tmp_path, 4, 29870, [(ALICE.address, 10**6), (BOB.address, 10**6)],
                      chain_id="adm-test", consensus={"max_block_txs": MAX_BLOCK_TXS})
    node = Node(tmp_path / "peer0")
    with TestClient(node.create_app()) as client:
        yield node, client


def tx(nonce, key=ALICE):
    return sign_tx(key, "adm-test", "transfer", nonce, {"to": BOB.address if key is ALICE else ALICE.address,
                                                          "amount": 1})


def test_clients_are_shed_at_two_blocks_worth_with_retry_after(lone_peer):
    node, c = lone_peer
    assert node.admission_limit() == 2 * MAX_BLOCK_TXS
    for n in range(2 * MAX_BLOCK_TXS):
        assert c.post("/txs", json=tx(n).to_dict()).status_code == 202
    assert node.shedding()
    r = c.post("/txs", json=tx(2 * MAX_BLOCK_TXS).to_dict())
    assert r.status_code == 503
    assert r.headers["retry-after"].isdigit() and int(r.headers["retry-after"]) >= 1
    assert set(r.json()) == {"error", "field", "reason"} and r.json()["error"] == "overloaded"
    rb = c.post("/txs/batch", json=[tx(2 * MAX_BLOCK_TXS).to_dict()])
    assert rb.status_code == 503 and "retry-after" in rb.headers
    assert len(node.mempool) == 2 * MAX_BLOCK_TXS  # nothing admitted while shedding


def test_shedding_happens_before_the_body_is_parsed(lone_peer):
    node, c = lone_peer
    for n in range(2 * MAX_BLOCK_TXS):
        node.submit_tx_obj(tx(n).to_dict())
    # a malformed body would be a 400 if it were read; shedding answers first
    r = c.post("/txs/batch", content=b"[not json", headers={"content-type": "application/json"})
    assert r.status_code == 503


def test_gossip_is_admitted_past_the_client_limit_up_to_the_hard_cap(lone_peer):
    node, c = lone_peer
    for n in range(2 * MAX_BLOCK_TXS):
        node.submit_tx_obj(tx(n).to_dict())
    assert node.shedding()
    out = node.submit_tx_obj(tx(0, key=BOB).to_dict(), from_peer=True)
    assert not out.duplicate and len(node.mempool) == 2 * MAX_BLOCK_TXS + 1
    node.mempool.max_txs = len(node.mempool)
    from pocnet.node.mempool import MempoolFull
    with pytest.raises(MempoolFull):
        node.submit_tx_obj(tx(1, key=BOB).to_dict(), from_peer=True)


def test_batch_items_past_the_limit_get_per_item_503(lone_peer):
    node, c = lone_peer
    r = c.post("/txs/batch", json=[tx(n).to_dict() for n in range(2 * MAX_BLOCK_TXS + 3)])
    assert r.status_code == 200
    statuses = [res.get("status", "pending") for res in r.json()["results"]]
    assert statuses[:2 * MAX_BLOCK_TXS] == ["pending"] * (2 * MAX_BLOCK_TXS)
    assert statuses[2 * MAX_BLOCK_TXS:] == [503] * 3
