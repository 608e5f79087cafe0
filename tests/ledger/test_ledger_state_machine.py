import pytest
from hypothesis import given, settings, strategies as st

from pocnet.ledger.errors import TxRejected
from pocnet.ledger.genesis import Genesis, ValidatorInfo
from pocnet.ledger.keys import KeyPair
from pocnet.ledger.state_machine import BlockContext, BlockInvalid, apply_block, genesis_state, select_txs
from pocnet.ledger.tx import parse_tx, sign_tx

KEYS = [KeyPair.from_seed(bytes([i + 1]) * 32) for i in range(4)]
CHAIN = "test-chain"


def make_genesis(balances=None):
    return Genesis(CHAIN, 0, (ValidatorInfo("v0", KEYS[0].address, "http://127.0.0.1:1"),),
                   balances or {KEYS[0].address: 1000, KEYS[1].address: 50})


def ctx(h=1):
    return BlockContext(CHAIN, h, "00" * 32, 1000 * h, KEYS[0].address)


def transfer(k, nonce, to, amount):
    return sign_tx(k, CHAIN, "transfer", nonce, {"to": to.address, "amount": amount})


def test_transfer_moves_balance_and_bumps_nonce():
    s = genesis_state(make_genesis())
    view = apply_block(s, [transfer(KEYS[0], 0, KEYS[2], 300), transfer(KEYS[0], 1, KEYS[1], 1)], ctx())
    s.apply_writes(view.writes)
    assert s.get("acct", KEYS[0].address) == {"balance": 699, "nonce": 2}
    assert s.get("acct", KEYS[2].address) == {"balance": 300, "nonce": 0}
    assert s.get("acct", KEYS[1].address) == {"balance": 51, "nonce": 0}


@pytest.mark.parametrize("payload,field", [
    ({"to": KEYS[1].address}, "payload.amount"),
    ({"to": KEYS[1].address, "amount": 0}, "payload.amount"),
    ({"to": KEYS[1].address, "amount": -5}, "payload.amount"),
    ({"to": KEYS[1].address, "amount": "5"}, "payload.amount"),
    ({"to": "zz", "amount": 5}, "payload.to"),
    ({"to": KEYS[1].address, "amount": 5, "memo": "x"}, "payload.memo"),
])
def test_bad_transfer_payloads_name_the_field(payload, field):
    s = genesis_state(make_genesis())
    tx = sign_tx(KEYS[0], CHAIN, "transfer", 0, payload)
    view = s.view()
    with pytest.raises(TxRejected) as e:
        from pocnet.ledger.state_machine import apply_tx
        apply_tx(view, tx, ctx())
    assert e.value.field == field
    assert view.writes == {}


def test_insufficient_balance_and_nonce_errors():
    from pocnet.ledger.state_machine import apply_tx
    s = genesis_state(make_genesis())
    view = s.view()
    with pytest.raises(TxRejected, match="insufficient balance"):
        apply_tx(view, transfer(KEYS[1], 0, KEYS[2], 51), ctx())
    with pytest.raises(TxRejected, match="skips ahead"):
        apply_tx(view, transfer(KEYS[1], 1, KEYS[2], 1), ctx())
    apply_tx(view, transfer(KEYS[1], 0, KEYS[2], 1), ctx())
    with pytest.raises(TxRejected, match="already used"):
        apply_tx(view, transfer(KEYS[1], 0, KEYS[2], 1), ctx())


def test_failed_tx_leaves_no_partial_write():
    """The recipient overflow check fails *after* the sender was debited: nothing may stick."""
    from pocnet.ledger.state_machine import apply_tx
    s = genesis_state(make_genesis({KEYS[0].address: 10, KEYS[1].address: 2**63 - 1}))
    view = s.view()
    with pytest.raises(TxRejected, match="overflow"):
        apply_tx(view, transfer(KEYS[0], 0, KEYS[1], 5), ctx())
    assert view.writes == {}


def test_block_with_invalid_tx_is_rejected_and_proposer_skips_it():
    s = genesis_state(make_genesis())
    good, bad = transfer(KEYS[0], 0, KEYS[2], 1), transfer(KEYS[1], 0, KEYS[2], 10_000)
    with pytest.raises(BlockInvalid):
        apply_block(s, [good, bad], ctx())
    view, included, rejected = select_txs(s, [good, bad], ctx(), 10)
    assert included == [good] and [t for t, _ in rejected] == [bad]


def test_task_is_queued_with_sequence():
    s = genesis_state(make_genesis())
    t1 = sign_tx(KEYS[0], CHAIN, "task", 0, {"work": 500, "demand": [10, 20], "deadline_ms": 5000})
    t2 = sign_tx(KEYS[1], CHAIN, "task", 0, {"work": 7, "demand": [1], "deadline_ms": 100})
    view = apply_block(s, [t1, t2], ctx(3))
    s.apply_writes(view.writes)
    tasks = [v for _, v in s.items("task")]
    assert sorted((t["seq"], t["work"], t["arrival_height"]) for t in tasks) == [(0, 500, 3), (1, 7, 3)]


@pytest.mark.parametrize("payload,field", [
    ({"work": 0, "demand": [1], "deadline_ms": 1}, "payload.work"),
    ({"work": 1, "demand": [], "deadline_ms": 1}, "payload.demand"),
    ({"work": 1, "demand": [1, -1], "deadline_ms": 1}, "payload.demand[1]"),
    ({"work": 1, "demand": [1]}, "payload.deadline_ms"),
])
def test_bad_task_payloads(payload, field):
    from pocnet.ledger.state_machine import check_payload
    with pytest.raises(TxRejected) as e:
        check_payload(sign_tx(KEYS[0], CHAIN, "task", 0, payload))
    assert e.value.field == field


def test_parse_tx_rejections():
    tx = transfer(KEYS[0], 0, KEYS[1], 5).to_dict()
    cases = [
        ({k: v for k, v in tx.items() if k != "nonce"}, "nonce", "required"),
        (dict(tx, extra=1), "extra", "unknown"),
        (dict(tx, nonce="1"), "nonce", "integer"),
        (dict(tx, nonce=-1), "nonce", "integer"),
        (dict(tx, payload={"to": KEYS[1].address, "amount": 5.0}), "payload.amount", "float"),
        (dict(tx, chain_id="other"), "chain_id", "wrong chain"),
        (dict(tx, sender="ab" * 31), "sender", "64"),
        (dict(tx, signature="00" * 64), "signature", "does not verify"),
        (dict(tx, payload={"to": KEYS[1].address, "amount": 6}), "signature", "does not verify"),
    ]
    for obj, field, reason in cases:
        with pytest.raises(TxRejected) as e:
            parse_tx(obj, chain_id=CHAIN)
        assert e.value.field == field and reason in e.value.reason, (obj, e.value)
    assert parse_tx(tx, chain_id=CHAIN).hash == transfer(KEYS[0], 0, KEYS[1], 5).hash


@settings(max_examples=40, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 1), st.integers(0, 3), st.integers(-5, 400)), max_size=12))
def test_random_transfers_conserve_supply_and_roots_agree(ops):
    """Two independent replays of the same block give the same root; supply is conserved."""
    g = make_genesis()
    nonces = {0: 0, 1: 0}
    txs = []
    for sender, to, amount in ops:
        payload = {"to": KEYS[to].address, "amount": amount}
        txs.append(sign_tx(KEYS[sender], CHAIN, "transfer", nonces[sender], payload))
        nonces[sender] += 1
    s1, s2 = genesis_state(g), genesis_state(g)
    v1, inc, _ = select_txs(s1, txs, ctx(), 100)
    v2 = apply_block(s2, inc, ctx())
    s1.apply_writes(v1.writes)
    s2.apply_writes(v2.writes)
    assert s1.root == s2.root
    total = sum(a["balance"] for _, a in s1.items("acct"))
    assert total == 1050
    assert all(a["balance"] >= 0 for _, a in s1.items("acct"))
