"""Unique chain ids (issue 17, #5): two default networks used to share ``pocnet-local``,
so a tx committed on one was replayed and committed on the other."""
import re

from fastapi.testclient import TestClient

from pocnet.ledger.genesis import Genesis
from pocnet.ledger.keys import KeyPair
from pocnet.ledger.tx import sign_tx
from pocnet.node.node import Node
from pocnet.node.setup_home import init_cluster_home

ALICE = KeyPair.from_seed(b"\x07" * 32)
BOB = KeyPair.from_seed(b"\x08" * 32)


def test_default_genesis_chain_ids_differ_and_are_derived(tmp_path):
    a = init_cluster_home(tmp_path / "a", 4, 29990, [(ALICE.address, 1000)])
    b = init_cluster_home(tmp_path / "b", 4, 29990, [(ALICE.address, 1000)])
    assert a.chain_id != b.chain_id
    for g in (a, b):
        assert re.fullmatch(r"pocnet-[0-9a-f]{12}", g.chain_id)
        assert g.chain_id == g.derived_chain_id()
        assert Genesis.load(tmp_path / ("a" if g is a else "b") / "genesis.json").chain_id == g.chain_id


def test_explicit_chain_id_is_kept(tmp_path):
    assert init_cluster_home(tmp_path, 1, 29990, [], chain_id="my-net").chain_id == "my-net"


def test_replay_across_two_default_networks_fails(tmp_path):
    """Same funded key on two default single-peer networks: a tx committed on A is refused by B."""
    init_cluster_home(tmp_path / "a", 1, 29990, [(ALICE.address, 1000)])
    init_cluster_home(tmp_path / "b", 1, 29991, [(ALICE.address, 1000)])
    na, nb = Node(tmp_path / "a" / "peer0"), Node(tmp_path / "b" / "peer0")
    with TestClient(na.create_app()) as ca, TestClient(nb.create_app()) as cb:
        t = sign_tx(ALICE, ca.get("/status").json()["chain_id"], "transfer", 0, {"to": BOB.address, "amount": 7})
        assert ca.post("/txs", json=t.to_dict()).status_code == 202
        r = cb.post("/txs", json=t.to_dict())
        assert r.status_code == 400 and r.json()["field"] == "chain_id"
        assert cb.get(f"/accounts/{BOB.address}").json()["balance"] == 0
