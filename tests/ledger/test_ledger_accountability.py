"""Equivocation evidence → jail, slash, reputation 0, counted once, expiry; unjail after the period."""
from __future__ import annotations

import pytest

from pocnet.ledger.block import proposal_signing_bytes, vote_signing_bytes
from pocnet.ledger.evidence import EvidenceInvalid, SignedPart, make_evidence, parse_evidence, verify_evidence
from pocnet.ledger.genesis import Genesis, ValidatorInfo
from pocnet.ledger.keys import KeyPair
from pocnet.ledger.state_machine import BlockContext, BlockInvalid, apply_block, genesis_state
from pocnet.ledger.tx import sign_tx
from pocnet.ledger.txtypes.accountability import active_validators, is_jailed

VALS = [KeyPair.from_seed(bytes([90 + i]) * 32) for i in range(4)]
IDS = [k.address for k in VALS]
CHAIN = "acct-test"
H1, H2 = "aa" * 32, "bb" * 32


def state(**consensus):
    g = Genesis(CHAIN, 0, tuple(ValidatorInfo(f"v{i}", k.address, "http://x") for i, k in enumerate(VALS)),
                {}, dict(consensus))
    return genesis_state(g)


def vote_ev(key=VALS[0], height=3, round_=0, kind="prevote", h1=H1, h2=H2):
    parts = [SignedPart(h, key.sign(vote_signing_bytes(CHAIN, kind, height, round_, h, key.address)))
             for h in (h1, h2)]
    return make_evidence(key.address, height, round_, kind, parts[1], parts[0])


def block(s, height, evidence=(), txs=()):
    view = apply_block(s, list(txs), BlockContext(CHAIN, height, "00" * 32, 1000 * height, IDS[1],
                                                  evidence=tuple(evidence)))
    s.apply_writes(view.writes)


def test_evidence_verifies_and_is_normalised():
    ev = vote_ev()
    verify_evidence(ev, CHAIN)
    assert ev.a.block_hash == H1 and parse_evidence(ev.to_dict()) == ev
    assert vote_ev().id == ev.id                       # one id per offence
    nil = vote_ev(h1=None)
    verify_evidence(nil, CHAIN)                        # a nil vote and a block vote conflict too
    k = VALS[2]
    props = [SignedPart(h, k.sign(proposal_signing_bytes(CHAIN, 4, 1, -1, h, k.address)), -1) for h in (H1, H2)]
    verify_evidence(make_evidence(k.address, 4, 1, "proposal", *props), CHAIN)
    with pytest.raises(EvidenceInvalid):
        verify_evidence(vote_ev(h2=H1), CHAIN)         # same message twice: no conflict
    with pytest.raises(EvidenceInvalid):
        verify_evidence(make_evidence(IDS[1], 3, 0, "prevote", ev.a, ev.b), CHAIN)  # not its signatures
    with pytest.raises(EvidenceInvalid):
        verify_evidence(ev, "other-chain")
    with pytest.raises(EvidenceInvalid):
        parse_evidence(dict(ev.to_dict(), step="commit"))


def test_evidence_jails_slashes_and_counts_once():
    s = state(jail_delay=2, jail_heights=5, slash_ppm=100_000, genesis_bond=1000)
    prov_before = s.get("prov", IDS[0])["reputation_ppm"]
    assert prov_before > 0
    block(s, 4, [vote_ev()])
    rec = s.get("vstate", IDS[0])
    assert rec["bond"] == 900 and rec["offences"] == 1 and rec["jailed_from"] == 6 and rec["unjail_after"] == 11
    assert s.get("meta", "burned") == 100
    assert s.get("prov", IDS[0])["reputation_ppm"] == 0
    assert s.get("evidence", vote_ev().id)["included_height"] == 4
    assert active_validators(s, 5, IDS) == tuple(IDS)          # effective two heights later
    assert active_validators(s, 6, IDS) == tuple(IDS[1:])
    with pytest.raises(BlockInvalid, match="already committed"):
        apply_block(s, [], BlockContext(CHAIN, 5, "00" * 32, 5000, IDS[1], evidence=(vote_ev(),)))


def test_expired_and_future_evidence_refused():
    s = state(evidence_max_age=10)
    with pytest.raises(BlockInvalid, match="older than"):
        apply_block(s, [], BlockContext(CHAIN, 20, "00" * 32, 1, IDS[1], evidence=(vote_ev(height=3),)))
    with pytest.raises(BlockInvalid, match="future"):
        apply_block(s, [], BlockContext(CHAIN, 3, "00" * 32, 1, IDS[1], evidence=(vote_ev(height=3),)))
    apply_block(s, [], BlockContext(CHAIN, 13, "00" * 32, 1, IDS[1], evidence=(vote_ev(height=3),)))


def test_unjail_only_after_the_period_then_active_two_heights_later():
    s = state(jail_delay=2, jail_heights=5)
    key = VALS[0]
    with pytest.raises(BlockInvalid, match="not jailed"):
        block(s, 2, txs=[sign_tx(key, CHAIN, "unjail", 0, {})])
    block(s, 4, [vote_ev()])
    with pytest.raises(BlockInvalid, match="jail period"):
        block(s, 8, txs=[sign_tx(key, CHAIN, "unjail", 0, {})])
    block(s, 11, txs=[sign_tx(key, CHAIN, "unjail", 0, {})])
    rec = s.get("vstate", IDS[0])
    assert rec["released_at"] == 13
    assert is_jailed(rec, 12) and not is_jailed(rec, 13)
    assert active_validators(s, 13, IDS) == tuple(IDS)
