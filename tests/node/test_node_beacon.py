"""The VRF beacon in headers: built by the proposer, checked by every peer's Chain."""
from __future__ import annotations

import dataclasses

import pytest

from pocnet.ledger.beacon import beacon_input, check_beacon, make_beacon, BeaconInvalid
from pocnet.ledger.block import Block
from pocnet.ledger.genesis import Genesis, ValidatorInfo
from pocnet.ledger.keys import KeyPair
from pocnet.ledger.state_machine import BlockInvalid
from pocnet.ledger.storage import Storage, sqlite_url
from pocnet.node.chain import Chain

KEYS = [KeyPair.from_seed(bytes([i + 1]) * 32) for i in range(4)]


def genesis() -> Genesis:
    vals = tuple(ValidatorInfo(f"v{i}", k.address, f"http://127.0.0.1:{27000 + i}") for i, k in enumerate(KEYS))
    return Genesis("beacon-test", 1_000, vals, {KEYS[0].address: 10**6})


def chains(tmp_path, n: int = 2) -> list[Chain]:
    g = genesis()
    return [Chain(g, Storage(sqlite_url(tmp_path / f"c{i}.db")), None, signer=KEYS[i]) for i in range(n)]


def test_beacon_chains_and_differs_every_height(tmp_path) -> None:
    a, b = chains(tmp_path)
    assert a.head_beacon == genesis().initial_beacon and len(a.head_beacon) == 128
    seen = set()
    for h in range(1, 6):
        prop, _ = a.build_block(0, KEYS[0].address, 2_000 + h, [], 10)
        hdr = prop.block.header
        check_beacon(KEYS[0].address, "beacon-test", h, a.head_beacon, hdr.beacon, hdr.beacon_proof)
        view_b = b.verify_block(prop.block)            # the other peer accepts it
        from pocnet.ledger.block import Commit
        a.commit(prop.block, prop.result, Commit(h, 0, prop.block.hash, ()))
        b.commit(prop.block, view_b, Commit(h, 0, prop.block.hash, ()))
        seen.add(hdr.beacon)
    assert len(seen) == 5
    assert a.head_beacon == b.head_beacon


def _tampered(block: Block, **changes) -> Block:
    return Block(dataclasses.replace(block.header, **changes), block.txs)


def test_bad_beacons_refused(tmp_path) -> None:
    a, b = chains(tmp_path)
    prop, _ = a.build_block(0, KEYS[0].address, 2_000, [], 10)
    good = prop.block
    hdr = good.header
    other_beacon, other_proof = make_beacon(bytes.fromhex(KEYS[0].seed_hex), "beacon-test", 1, "00" * 64)
    stolen_beacon, stolen_proof = make_beacon(bytes.fromhex(KEYS[1].seed_hex), "beacon-test", 1, a.head_beacon)
    flipped = hdr.beacon_proof[:70] + ("0" if hdr.beacon_proof[70] != "0" else "1") + hdr.beacon_proof[71:]
    cases = {
        "missing": dict(beacon="", beacon_proof=""),
        "missing proof": dict(beacon_proof=""),
        "wrong input": dict(beacon=other_beacon, beacon_proof=other_proof),       # over another prev beacon
        "other key": dict(beacon=stolen_beacon, beacon_proof=stolen_proof),       # not the proposer's VRF
        "flipped bit": dict(beacon_proof=flipped),
        "output not of proof": dict(beacon=other_beacon),
        "not hex": dict(beacon_proof="zz" * 80),
    }
    for change in cases.values():
        with pytest.raises(BlockInvalid, match="beacon"):
            b.verify_block(_tampered(good, **change))
    b.verify_block(good)


def test_only_own_key_can_build(tmp_path) -> None:
    a, _ = chains(tmp_path)
    from pocnet.node.chain import ChainError
    with pytest.raises(ChainError):
        a.build_block(0, KEYS[1].address, 2_000, [], 10)


def test_beacon_input_binds_chain_height_and_previous() -> None:
    base = beacon_input("c", 5, "ab" * 64)
    assert base != beacon_input("d", 5, "ab" * 64)
    assert base != beacon_input("c", 6, "ab" * 64)
    assert base != beacon_input("c", 5, "ac" * 64)
    with pytest.raises(BeaconInvalid):
        check_beacon(KEYS[0].address, "c", 5, "ab" * 64, "00" * 64, "00" * 80)
