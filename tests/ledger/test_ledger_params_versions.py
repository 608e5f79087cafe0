"""Consensus parameters (one validated object) and protocol versions (registry, headers)."""
import dataclasses
import json

import pytest
from fastapi.testclient import TestClient

from pocnet.ledger.block import Block
from pocnet.ledger.genesis import Genesis, ValidatorInfo
from pocnet.ledger.keys import KeyPair
from pocnet.ledger.params import DEFAULTS, ConsensusParams, ParamsError
from pocnet.ledger.state_machine import BlockInvalid, tx_size
from pocnet.ledger.storage import Storage
from pocnet.ledger.tx import sign_tx
from pocnet.ledger.versions import UnknownVersion, rules_for, supported_versions
from pocnet.node.chain import Chain, ChainError
from pocnet.node.setup_home import DEFAULT_CONSENSUS, init_cluster_home

KEYS = [KeyPair.from_seed(bytes([i + 11]) * 32) for i in range(3)]
CHAIN = "params-test"


def genesis(**kw):
    base = dict(chain_id=CHAIN, genesis_time_ms=0,
                validators=(ValidatorInfo("v0", KEYS[0].address, "http://127.0.0.1:1"),),
                balances={KEYS[1].address: 10**9})
    base.update(kw)
    return Genesis(**base)


def chain(**kw):
    return Chain(genesis(**kw), Storage("sqlite://"), signer=KEYS[0])


def transfers(n, nonce0=0):
    return [sign_tx(KEYS[1], CHAIN, "transfer", nonce0 + i, {"to": KEYS[2].address, "amount": 1}) for i in range(n)]


def test_one_default_table_everywhere():
    p = ConsensusParams()
    assert p.to_dict() == DEFAULTS == DEFAULT_CONSENSUS
    assert p.timeout_propose_ms == 3000
    t = p.timeouts()
    assert (t.propose_ms, t.prevote_ms, t.precommit_ms, t.propose_delta_ms) == (3000, 1000, 1000, 500)
    # a genesis without `consensus` runs the same defaults the docs and `cluster up` write
    assert genesis().params == p


@pytest.mark.parametrize("consensus,key", [
    ({"timeout_propose_msec": 10}, "timeout_propose_msec"),
    ({"timeout_propose_ms": "3000"}, "timeout_propose_ms"),
    ({"timeout_propose_ms": 1.5}, "timeout_propose_ms"),
    ({"timeout_propose_ms": True}, "timeout_propose_ms"),
    ({"timeout_prevote_ms": 0}, "timeout_prevote_ms"),
    ({"max_block_txs": 0}, "max_block_txs"),
    ({"max_block_bytes": 10}, "max_block_bytes"),
])
def test_invalid_params_are_refused_naming_the_key(consensus, key):
    with pytest.raises(ParamsError) as ei:
        ConsensusParams.from_dict(consensus)
    assert ei.value.key == key
    d = genesis().to_dict()
    d["consensus"] = consensus
    with pytest.raises(ValueError, match=f"consensus.{key}"):
        Genesis.from_dict(d)


def test_partial_params_take_defaults():
    p = ConsensusParams.from_dict({"max_block_txs": 7})
    assert p.max_block_txs == 7 and p.timeout_propose_ms == DEFAULTS["timeout_propose_ms"]


def test_builder_and_verifier_enforce_max_block_txs():
    c = chain(consensus={"max_block_txs": 3})
    prop, _ = c.build_block(0, KEYS[0].address, 1000, transfers(5))
    assert len(prop.block.txs) == 3
    # a block over the limit built by someone else is refused by every peer
    big = chain(chain_id=CHAIN, consensus={"max_block_txs": 5})
    over, _ = big.build_block(0, KEYS[0].address, 1000, transfers(5))
    assert len(over.block.txs) == 5
    with pytest.raises(BlockInvalid, match="max_block_txs"):
        c.verify_block(over.block)
    c.verify_block(prop.block)


def test_builder_and_verifier_enforce_max_block_bytes():
    txs = transfers(40)
    size = tx_size(txs[0])
    limit = max(1024, size * 10)
    c = chain(consensus={"max_block_bytes": limit})
    prop, rejected = c.build_block(0, KEYS[0].address, 1000, txs)
    assert not rejected and sum(tx_size(t) for t in prop.block.txs) <= limit
    assert len(prop.block.txs) == limit // size
    big = chain(consensus={"max_block_bytes": 10 * limit})
    over, _ = big.build_block(0, KEYS[0].address, 1000, txs)
    with pytest.raises(BlockInvalid, match="max_block_bytes"):
        c.verify_block(over.block)


def test_headers_carry_version_and_unknown_version_is_refused():
    c = chain()
    prop, _ = c.build_block(0, KEYS[0].address, 1000, transfers(1))
    assert prop.block.header.version == 2 == c.version
    assert prop.block.header.to_dict()["version"] == 2
    c.verify_block(prop.block)
    h = prop.block.header
    for bad in (1, 99):
        forged = Block(dataclasses.replace(h, version=bad), prop.block.txs)
        with pytest.raises(BlockInvalid, match="version"):
            c.verify_block(forged)


def test_version_registry_and_upgrade_schedule():
    assert {1, 2} <= set(supported_versions())
    assert rules_for(1).version == 1 and rules_for(1).state_commitment == "flat"
    assert rules_for(2).state_commitment == "bucket-tree"
    with pytest.raises(UnknownVersion):
        rules_for(99)
    g = genesis(version=1, upgrades=((10, 2),))
    assert [g.version_at(h) for h in (1, 9, 10, 50)] == [1, 1, 2, 2]
    assert Genesis.from_dict(json.loads(json.dumps(g.to_dict()))).upgrades == ((10, 2),)
    # a peer follows the chain up to an upgrade it has no rules for, then halts
    c = Chain(genesis(upgrades=((2, 99),)), Storage("sqlite://"), signer=KEYS[0])
    with pytest.raises(ChainError, match="unknown protocol version 99"):
        c.rules(2)
    d = genesis().to_dict()
    d["upgrades"] = [[5, 2]]
    with pytest.raises(ValueError, match="upgrades"):
        Genesis.from_dict(d)


def test_unknown_genesis_version_stops_startup():
    with pytest.raises(ChainError, match="unknown protocol version 7"):
        chain(version=7)


def test_status_reports_version(tmp_path):
    from pocnet.node.node import Node
    init_cluster_home(tmp_path, 1, 29995, [], chain_id="status-version", poc_weights_sha256="")
    node = Node(tmp_path / "peer0")
    with TestClient(node.create_app()) as client:
        st = client.get("/status").json()
    assert st["version"] == 2 and {1, 2} <= set(st["supported_versions"])
    assert st["consensus_params"] == DEFAULTS


def test_node_with_bad_genesis_params_fails_at_startup(tmp_path):
    from pocnet.node.node import Node
    init_cluster_home(tmp_path, 1, 29994, [], chain_id="bad-params", poc_weights_sha256="")
    path = tmp_path / "peer0" / "genesis.json"
    d = json.loads(path.read_text())
    d["consensus"]["timeout_propose_ms"] = -1
    path.write_text(json.dumps(d))
    with pytest.raises(ValueError, match="consensus.timeout_propose_ms"):
        Node(tmp_path / "peer0")


def test_upgrade_from_flat_root_to_bucket_tree_replays_on_a_second_peer():
    """Version-1 blocks carry the flat root, blocks from the upgrade on the tree root; a
    second peer verifies both, and a peer restarted on the stored chain checks its head."""
    from pocnet.ledger.commitment import flat_root
    from pocnet.ledger.block import Commit

    g = genesis(version=1, upgrades=((3, 2),))
    store_a = Storage("sqlite://")
    a = Chain(g, store_a, signer=KEYS[0])
    b = Chain(g, Storage("sqlite://"), signer=KEYS[0])
    roots = []
    for h in range(1, 5):
        prop, _ = a.build_block(0, KEYS[0].address, 1000 * h, transfers(2, 2 * (h - 1)))
        res = b.verify_block(prop.block)
        assert res.state_root == prop.block.header.state_root
        for c, r in ((a, prop.result), (b, res)):
            c.commit(prop.block, r, Commit(h, 0, prop.block.hash, ()))
        roots.append(prop.block.header.state_root)
        assert a.state_root == b.state_root == prop.block.header.state_root
        leaves = a.state._tree.leaves_in_key_order()
        assert prop.block.header.state_root == (flat_root(leaves) if h < 3 else a.state.root)
    assert roots[1] != a.state.root and a.state.root == b.state.root
    again = Chain(g, store_a, signer=KEYS[0])
    assert again.state_root == roots[-1]
