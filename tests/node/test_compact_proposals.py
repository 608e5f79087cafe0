"""Compact proposals (p2p/compact.py, node/bft.py): rebuild from the mempool, pull on miss,
fall back to the full block; the block and its hash are those of the full proposal."""
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pocnet.consensus.messages import Proposal
from pocnet.ledger.block import Block, Header
from pocnet.ledger.keys import KeyPair
from pocnet.ledger.merkle import merkle_root
from pocnet.ledger.tx import compute_tx_hash, sign_tx
from pocnet.node.sim import DriverSimConfig, run_driver_sim
from pocnet.p2p.compact import assemble, check_pulled, compact_block_dict, missing_txs, parse_compact
from pocnet.p2p.wire import BadMessage, parse_proposal, sign_proposal

CHAIN = "compact-test"
KEYS = [KeyPair.from_seed(bytes([i + 1]) * 32) for i in range(4)]


def _txs(n: int, seed: int = 0) -> list:
    rng = random.Random(seed)
    sink = KeyPair.from_seed(b"\x77" * 32).address
    nonces = [0] * len(KEYS)
    out = []
    for _ in range(n):
        k = rng.randrange(len(KEYS))
        out.append(sign_tx(KEYS[k], CHAIN, "transfer", nonces[k], {"to": sink, "amount": rng.randint(1, 99)}))
        nonces[k] += 1
    return out


def _block(txs: list) -> Block:
    header = Header(CHAIN, 5, 0, "ab" * 32, 1_700_000_000_000, KEYS[0].address,
                    merkle_root([t.hash for t in txs]), "cd" * 32, "ef" * 32, 1)
    return Block(header, tuple(txs))


def test_compact_round_trip_rebuilds_the_same_block():
    txs = _txs(30)
    block = _block(txs)
    d = compact_block_dict(block)
    assert "txs" not in d and len(d["tx_hashes"]) == 30
    cb = parse_compact(d)
    pool = {t.hash: t for t in txs}
    assert missing_txs(cb, pool.get) == []
    rebuilt = assemble(cb, pool.get)
    assert rebuilt.hash == block.hash == cb.hash
    assert [t.hash for t in rebuilt.txs] == [t.hash for t in txs]  # the proposer's order
    assert rebuilt.to_dict() == block.to_dict()


def test_missing_txs_are_listed_in_block_order_and_assemble_refuses_without_them():
    txs = _txs(10)
    cb = parse_compact(compact_block_dict(_block(txs)))
    pool = {t.hash: t for i, t in enumerate(txs) if i not in (2, 7)}
    assert missing_txs(cb, pool.get) == [txs[2].hash, txs[7].hash]
    with pytest.raises(KeyError):
        assemble(cb, pool.get)


@settings(max_examples=60, deadline=None)
@given(st.integers(0, 25), st.sets(st.integers(0, 24)), st.integers(0, 2**16))
def test_property_any_mempool_subset_plus_pulled_gives_the_proposed_block(n, held, seed):
    txs = _txs(n, seed)
    block = _block(txs)
    cb = parse_compact(compact_block_dict(block))
    pool = {t.hash: t for i, t in enumerate(txs) if i in held}
    missing = missing_txs(cb, pool.get)
    assert set(missing) == {t.hash for i, t in enumerate(txs) if i not in held}
    # the proposer answers the pull with the txs' JSON; the receiver checks them
    served = [t.to_dict() for t in txs if t.hash in set(missing)]
    pulled = check_pulled(served, missing, CHAIN)
    assert set(pulled) == set(missing)
    rebuilt = assemble(cb, lambda h: pool.get(h) or pulled.get(h))
    assert rebuilt.hash == block.hash and rebuilt.txs == block.txs


def test_parse_compact_refuses_a_hash_list_that_does_not_match_the_tx_root():
    txs = _txs(6)
    d = compact_block_dict(_block(txs))
    d["tx_hashes"] = list(reversed(d["tx_hashes"]))  # reordered: the header's tx_root says otherwise
    with pytest.raises(BadMessage, match="tx_root"):
        parse_compact(d)
    d = compact_block_dict(_block(txs))
    d["tx_hashes"] = d["tx_hashes"][:-1]
    with pytest.raises(BadMessage, match="tx_root"):
        parse_compact(d)


@pytest.mark.parametrize("mutate", [
    lambda d: d.update(txs=[]),                              # unknown field
    lambda d: d.pop("evidence"),
    lambda d: d.update(tx_hashes="00" * 32),
    lambda d: d["tx_hashes"].append("XY" * 32),              # not lowercase hex
    lambda d: d["tx_hashes"].append("ab" * 31),              # wrong length
    lambda d: d["header"].pop("tx_root"),
    lambda d: d.update(evidence=[{"bogus": 1}]),
])
def test_parse_compact_refuses_malformed_input(mutate):
    d = compact_block_dict(_block(_txs(3)))
    mutate(d)
    with pytest.raises(BadMessage):
        parse_compact(d)


def test_parse_compact_bounds_the_hash_list():
    d = compact_block_dict(_block(_txs(5)))
    with pytest.raises(BadMessage):
        parse_compact(d, max_txs=4)


def test_check_pulled_keeps_only_asked_for_correctly_signed_txs():
    txs = _txs(4)
    wanted = [txs[0].hash, txs[1].hash]
    forged = dict(txs[1].to_dict(), signature="00" * 64)  # a different tx (hash) with a bad signature
    forged_hash = compute_tx_hash(forged)
    got = check_pulled([txs[0].to_dict(), txs[2].to_dict(), forged, "junk", txs[0].to_dict()],
                       wanted + [forged_hash], CHAIN)
    assert set(got) == {txs[0].hash}          # txs[2] not asked for; forged fails its signature
    assert check_pulled(None, wanted, CHAIN) == {}
    other_chain = sign_tx(KEYS[0], "other-chain", "transfer", 0, {"to": KEYS[1].address, "amount": 1})
    assert check_pulled([other_chain.to_dict()], [other_chain.hash], CHAIN) == {}


def test_wire_proposal_carries_exactly_one_of_full_and_compact_block():
    block = _block(_txs(3))
    validators = frozenset(k.address for k in KEYS)
    p = Proposal(5, 0, block.hash, -1, KEYS[0].address)
    compact = sign_proposal(KEYS[0], CHAIN, p, compact_block_dict(block), compact=True)
    full = sign_proposal(KEYS[0], CHAIN, p, block.to_dict())
    assert "cblock" in compact and "block" not in compact
    assert compact["signature"] == full["signature"]  # the signature names the block hash only
    assert parse_proposal(compact, CHAIN, validators) == parse_proposal(full, CHAIN, validators) == p
    with pytest.raises(BadMessage):
        parse_proposal(dict(compact, block=block.to_dict()), CHAIN, validators)
    with pytest.raises(BadMessage):
        parse_proposal({k: v for k, v in compact.items() if k != "cblock"}, CHAIN, validators)


# ---------------------------------------------------------------- real drivers, virtual time
def _ok(r):
    assert not r.problems, r.problems
    assert r.completed, (r.heights, r.txs_committed, r.txs_accepted)


def test_sim_peers_rebuild_compact_proposals_from_their_mempools():
    r = run_driver_sim(DriverSimConfig(seed=11, txs=60, heights=3))
    _ok(r)
    assert sum(s.get("compact_rebuilt", 0) for s in r.driver_stats.values()) > 0


def test_sim_a_peer_without_tx_gossip_pulls_the_txs_and_commits_the_same_blocks():
    r = run_driver_sim(DriverSimConfig(seed=12, txs=60, heights=3, no_tx_gossip_to=("v3",)))
    _ok(r)  # includes: same block hash and state root at every height on every node
    v3 = r.driver_stats["v3"]
    assert v3.get("compact_pulled_txs", 0) > 0 and v3.get("compact_completed_by_pull", 0) > 0, v3
    assert len({tuple(h) for h in r.hashes.values()}) == 1


def test_sim_when_pulls_fail_the_peer_falls_back_to_the_full_block():
    names = ("v0", "v1", "v2")
    r = run_driver_sim(DriverSimConfig(seed=13, txs=60, heights=3, no_tx_gossip_to=("v3",), refuse_pulls=names))
    _ok(r)
    v3 = r.driver_stats["v3"]
    assert v3.get("compact_fallback_full", 0) > 0, v3
    assert v3.get("compact_pulled_txs", 0) == 0
