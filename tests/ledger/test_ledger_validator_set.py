"""validator_join / validator_leave: bond locked from balance, effect two heights after commit,
unbonding, refusals; property: the set of h never depends on blocks after h-2."""
from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pocnet.ledger.errors import Code, TxRejected
from pocnet.ledger.evidence import SignedPart, make_evidence
from pocnet.ledger.block import vote_signing_bytes
from pocnet.ledger.genesis import Genesis, ValidatorInfo
from pocnet.ledger.keys import KeyPair
from pocnet.ledger.params import ConsensusParams, ParamsError
from pocnet.ledger.state_machine import BlockContext, apply_block, genesis_state, validate_tx
from pocnet.ledger.tx import sign_tx
from pocnet.ledger.txtypes.validators import validators_at

VALS = [KeyPair.from_seed(bytes([120 + i]) * 32) for i in range(4)]
IDS = [k.address for k in VALS]
NEW = [KeyPair.from_seed(bytes([140 + i]) * 32) for i in range(3)]
CHAIN = "vset-test"
RICH = 10**6


def state(n: int = 4, **consensus):
    g = Genesis(CHAIN, 0, tuple(ValidatorInfo(f"v{i}", k.address, f"http://127.0.0.1:{9000 + i}")
                                for i, k in enumerate(VALS[:n])),
                {k.address: RICH for k in NEW + VALS}, dict(consensus))
    return genesis_state(g)


def nonce(s, key) -> int:
    acct = s.get("acct", key.address)
    return acct["nonce"] if acct else 0


def join_tx(s, key, bond=1000, url=None, **extra):
    payload = {"validator": key.address, "url": url or f"http://127.0.0.1:{9100 + NEW.index(key)}",
               "bond": bond, **extra}
    return sign_tx(key, CHAIN, "validator_join", nonce(s, key), payload)


def leave_tx(s, key):
    return sign_tx(key, CHAIN, "validator_leave", nonce(s, key), {})


def block(s, height, txs=(), evidence=()):
    view = apply_block(s, list(txs), BlockContext(CHAIN, height, "00" * 32, 1000 * height, IDS[0],
                                                  evidence=tuple(evidence)))
    s.apply_writes(view.writes)


def refused(s, tx) -> TxRejected:
    with pytest.raises(TxRejected) as exc:
        validate_tx(s.view(), tx)
    return exc.value


def test_genesis_validators_are_bonded_members():
    s = state()
    assert validators_at(s, 1) == tuple(IDS)
    rec = s.get("vstate", IDS[0])
    assert rec["bond"] == 1000 and rec["active_from"] == 1 and rec["url"] == "http://127.0.0.1:9000"


def test_join_takes_effect_two_heights_after_commit_and_locks_the_bond():
    s = state()
    block(s, 1)
    block(s, 2, [join_tx(s, NEW[0], bond=1500, capacity=7)])
    assert s.get("acct", NEW[0].address)["balance"] == RICH - 1500
    assert s.get("vstate", NEW[0].address)["bond"] == 1500
    assert s.get("prov", NEW[0].address)["capacity"] == 7         # a PoC provider too
    assert validators_at(s, 3) == tuple(IDS)                      # known at commit: not yet
    assert validators_at(s, 4) == tuple(IDS) + (NEW[0].address,)


def test_leave_unbonds_after_the_period():
    s = state(unbonding_heights=5)
    block(s, 1, [join_tx(s, NEW[0])])
    block(s, 2)
    block(s, 3, [leave_tx(s, VALS[1])])
    assert validators_at(s, 4) == (IDS[0], IDS[1], IDS[2], IDS[3], NEW[0].address)
    assert validators_at(s, 5) == (IDS[0], IDS[2], IDS[3], NEW[0].address)
    rec = s.get("vstate", IDS[1])
    assert rec["active_until"] == 5 and rec["unbond_at"] == 10
    for h in range(4, 10):
        block(s, h)
    assert s.get("acct", IDS[1])["balance"] == RICH               # bond still locked
    block(s, 10)
    assert s.get("acct", IDS[1])["balance"] == RICH + 1000       # genesis bond returned
    assert s.get("vstate", IDS[1])["bond"] == 0
    assert s.get("unbond", "10") is None


def test_offence_while_unbonding_is_slashed_from_the_bond():
    s = state(unbonding_heights=5, slash_ppm=100_000)
    block(s, 1, [join_tx(s, NEW[0])])
    block(s, 2, [leave_tx(s, VALS[1])])
    k = VALS[1]
    parts = [SignedPart(h, k.sign(vote_signing_bytes(CHAIN, "prevote", 2, 0, h, k.address))) for h in ("aa" * 32, "bb" * 32)]
    block(s, 5, evidence=[make_evidence(k.address, 2, 0, "prevote", *parts)])
    for h in range(6, 10):
        block(s, h)
    assert s.get("acct", IDS[1])["balance"] == RICH + 900


@pytest.mark.parametrize("case, field, code", [
    ("small bond", "payload.bond", Code.UNMET),
    ("poor", "payload.bond", Code.UNMET),
    ("other key", "payload.validator", Code.FORBIDDEN),
    ("duplicate", "payload.validator", Code.CONFLICT),
    ("same url", "payload.url", Code.CONFLICT),
    ("bad url", "payload.url", Code.MALFORMED),
])
def test_bad_joins_are_refused(case, field, code):
    s = state()
    key = NEW[0]
    tx = {"small bond": lambda: join_tx(s, key, bond=999),
          "poor": lambda: join_tx(s, key, bond=RICH + 1),
          "other key": lambda: sign_tx(key, CHAIN, "validator_join", 0,
                                       {"validator": NEW[1].address, "url": "http://h:1", "bond": 1000}),
          "duplicate": lambda: sign_tx(VALS[0], CHAIN, "validator_join", 0,
                                       {"validator": IDS[0], "url": "http://h:1", "bond": 1000}),
          "same url": lambda: join_tx(s, key, url="http://127.0.0.1:9002"),
          "bad url": lambda: join_tx(s, key, url="ftp://x"),
          }[case]()
    err = refused(s, tx)
    assert err.field == field and err.code is code, err


def test_bad_leaves_are_refused():
    s = state()
    err = refused(s, leave_tx(s, NEW[0]))
    assert err.field == "sender" and "not a validator" in err.reason
    err = refused(s, leave_tx(s, VALS[0]))                       # 4 -> 3 < min_validators 4
    assert "below min_validators 4" in err.reason
    block(s, 1, [join_tx(s, NEW[0])])
    block(s, 2, [leave_tx(s, VALS[0])])
    err = refused(s, leave_tx(s, VALS[0]))
    assert err.code is Code.CONFLICT and "already leaving" in err.reason
    assert "below min_validators" in refused(s, leave_tx(s, VALS[1])).reason


def test_full_set_and_solo_chain_refuse_joins():
    s = state(max_validators=4)
    assert "max_validators 4" in refused(s, join_tx(s, NEW[0])).reason
    s = state(n=1, min_validators=1)
    assert "solo" in refused(s, join_tx(s, NEW[0])).reason


def test_rejoin_only_after_the_bond_is_back():
    s = state(unbonding_heights=3)
    block(s, 1, [join_tx(s, NEW[0])])
    block(s, 2, [leave_tx(s, NEW[0])])           # in from height 3, out from height 4
    assert [h for h in range(1, 10) if NEW[0].address in validators_at(s, h)] == [3]
    assert "still unbonding" in refused(s, join_tx(s, NEW[0])).reason
    for h in range(3, 8):
        block(s, h)
    assert s.get("acct", NEW[0].address)["balance"] == RICH
    block(s, 8, [join_tx(s, NEW[0])])
    assert validators_at(s, 10)[-1] == NEW[0].address
    assert s.get("meta", "validator_ids").count(NEW[0].address) == 1


def test_params_consistency():
    with pytest.raises(ParamsError, match="genesis_bond"):
        ConsensusParams.from_dict({"genesis_bond": 10, "min_bond": 100})
    with pytest.raises(ParamsError, match="min_validators"):
        ConsensusParams.from_dict({"min_validators": 10, "max_validators": 5})


OPS = st.lists(st.tuples(st.sampled_from(["join", "leave", "none"]), st.integers(0, 6)), max_size=25)


@settings(max_examples=60, deadline=None)
@given(OPS)
def test_set_of_h_is_fixed_two_heights_ahead_and_never_below_minimum(ops):
    """Whatever txs blocks h-1 and later carry, validators_at(h) computed from the state after
    h-2 is the set actually in force; the staying set never drops below min_validators."""
    s = state(min_validators=3, unbonding_heights=2)
    keys = VALS + NEW
    predicted: dict[int, tuple[str, ...]] = {}
    for h, (op, who) in enumerate(ops, start=1):
        predicted[h + 1] = validators_at(s, h + 1)     # from state after h-1
        key = keys[who]
        tx = join_tx(s, key) if op == "join" and key in NEW else leave_tx(s, key) if op == "leave" else None
        txs = []
        if tx is not None:
            try:
                validate_tx(s.view(), tx)
                txs = [tx]
            except TxRejected:
                pass
        block(s, h, txs)
        if h in predicted:
            assert validators_at(s, h) == predicted[h]
        assert len(validators_at(s, h + 2)) >= 3
    total = sum((s.get("acct", k.address) or {"balance": 0})["balance"] + s.get("vstate", k.address, {}).get("bond", 0)
                for k in keys)
    assert total == RICH * len(keys) + 1000 * 4              # bonds move, never appear or vanish


def test_leaver_gets_no_new_tasks_and_a_rejoin_offers_capacity_again():
    s = state(unbonding_heights=2)
    block(s, 1, [join_tx(s, NEW[0], capacity=9)])
    block(s, 2, [leave_tx(s, NEW[0])])
    assert s.get("prov", NEW[0].address)["capacity"] == 0
    for h in range(3, 7):
        block(s, h)
    block(s, 7, [join_tx(s, NEW[0], capacity=5)])
    assert s.get("prov", NEW[0].address)["capacity"] == 5
