"""Tasks that cannot grief (issue 17, #5) and bounded task state (#6).

The finding: eight cheap ``task`` txs (work 10^12, deadline 1 ms) were allocated to
validators, expired at once, and drove two validators' reputation from 1,000,000 to 0 ppm.
Old code: all eight pass check_tx and the reputations fall (the first test fails there).
Now: a task no provider could meet is refused at check_tx; a task its provider could
not meet never counts against it; a submitter's dispute cannot lower a reputation;
finished tasks leave state after ``task_retention_heights``.
"""
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pocnet.consensus.poc_selector import PocSelector
from pocnet.ledger.errors import Code, TxRejected
from pocnet.ledger.genesis import Genesis, ValidatorInfo
from pocnet.ledger.keys import KeyPair
from pocnet.ledger.state_machine import BlockContext, apply_block, check_tx, genesis_state
from pocnet.ledger.tx import sign_tx

VALS = [KeyPair.from_seed(bytes([60 + i]) * 32) for i in range(4)]
GRIEFER = KeyPair.from_seed(b"\x61" * 32)
GRIEFERS = [KeyPair.from_seed(bytes([0x70 + i]) * 32) for i in range(8)]
CHAIN = "grief-test"
PPM = 1_000_000


def make_state(capacities=(4, 4, 4, 4), **params):
    g = Genesis(CHAIN, 0, tuple(ValidatorInfo(f"v{i}", k.address, "http://x", c)
                                for i, (k, c) in enumerate(zip(VALS, capacities))),
                {k.address: 10**6 for k in [GRIEFER, *GRIEFERS]}, params)
    return genesis_state(g)


def commit(state, txs, height, ts, alloc=()):
    view = apply_block(state, txs, BlockContext(CHAIN, height, "00" * 32, ts, VALS[0].address, tuple(alloc)))
    state.apply_writes(view.writes)


def admitted(state, txs, height):
    """What mempool admission (check_tx) lets through, in order."""
    view = state.view()
    out = []
    for tx in txs:
        try:
            check_tx(view, tx, BlockContext(CHAIN, height, "00" * 32, 0, ""))
            out.append(tx)
        except TxRejected as exc:
            assert exc.code is Code.UNMET and exc.field == "payload.deadline_ms", exc
    return out


def reputations(state):
    return {a: p["reputation_ppm"] for a, p in state.items("prov")}


def test_eight_infeasible_tasks_leave_reputation_untouched():
    """The campaign's attack, through the real PoC selector."""
    sel = PocSelector()
    s = make_state()
    flood = [sign_tx(k, CHAIN, "task", 0, {"work": 10**12, "demand": [1], "deadline_ms": 1}) for k in GRIEFERS]
    commit(s, admitted(s, flood, 1), 1, 1000)
    for h in range(2, 8):
        commit(s, [], h, 1000 * h, sel.outcome(s, h, "00" * 32).allocation)
    assert all(r == PPM for r in reputations(s).values()), reputations(s)
    assert list(s.items("task")) == []


def test_feasibility_bound_is_the_largest_offered_capacity():
    s = make_state(capacities=(1, 2, 4, 8))
    ok = sign_tx(GRIEFER, CHAIN, "task", 0, {"work": 8_000, "demand": [1], "deadline_ms": 1_000})
    too_much = sign_tx(GRIEFER, CHAIN, "task", 0, {"work": 8_001, "demand": [1], "deadline_ms": 1_000})
    assert admitted(s, [ok], 1) == [ok]
    assert admitted(s, [too_much], 1) == []


def _queued(s, n, work, deadline_ms, height=1, ts=1000, nonce0=0):
    txs = [sign_tx(GRIEFER, CHAIN, "task", nonce0 + i, {"work": work, "demand": [1], "deadline_ms": deadline_ms})
           for i in range(n)]
    commit(s, txs, height, ts)
    return [t.hash for t in txs]


def test_only_tasks_a_provider_could_meet_count_against_it():
    s = make_state(capacities=(1, 8, 4, 4))
    slow, fast = VALS[0].address, VALS[1].address
    ids = _queued(s, 2, 4_000, 1_000)                  # feasible for `fast` only (1 x 1000 < 4000)
    commit(s, [], 2, 2000, [(ids[0], slow), (ids[1], fast)])
    assert s.get("task", ids[0])["meetable"] is False and s.get("task", ids[1])["meetable"] is True
    commit(s, [], 3, 10_000)                           # both expire undelivered
    assert s.get("prov", slow)["reputation_ppm"] == PPM
    assert s.get("prov", slow)["unmeetable_expired"] == 1 and s.get("prov", slow)["backlog"] == 0
    assert s.get("prov", fast)["reputation_ppm"] < PPM  # the control: a meetable miss does count


def test_claims_are_attested_disputed_or_stand_after_the_window():
    s = make_state(task_attest_heights=5)
    v = VALS[1]
    ids = _queued(s, 3, 1_000, 60_000)
    commit(s, [], 2, 2000, [(i, v.address) for i in ids])
    commit(s, [sign_tx(v, CHAIN, "task_result", n, {"task_id": i, "delivered_work": 1_000})
               for n, i in enumerate(ids)], 3, 3000)
    assert [s.get("task", i)["status"] for i in ids] == ["reported"] * 3
    assert s.get("prov", v.address)["delivered_total"] == 0 and s.get("prov", v.address)["backlog"] == 0
    # only the submitter attests, at most the claim
    with pytest.raises(TxRejected) as e:
        check_tx(s.view(), sign_tx(VALS[2], CHAIN, "task_attest", 0, {"task_id": ids[0], "delivered_work": 1_000}),
                 BlockContext(CHAIN, 4, "00" * 32, 0, ""))
    assert e.value.code is Code.FORBIDDEN
    with pytest.raises(TxRejected):
        check_tx(s.view(), sign_tx(GRIEFER, CHAIN, "task_attest", 3, {"task_id": ids[0], "delivered_work": 1_001}),
                 BlockContext(CHAIN, 4, "00" * 32, 0, ""))
    burned0 = s.get("meta", "burned", 0)
    commit(s, [sign_tx(GRIEFER, CHAIN, "task_attest", 3, {"task_id": ids[0], "delivered_work": 1_000}),
               sign_tx(GRIEFER, CHAIN, "task_attest", 4, {"task_id": ids[1], "delivered_work": 0})], 4, 4000)
    t0, t1 = s.get("task", ids[0]), s.get("task", ids[1])
    assert (t0["status"], t0["attested"], t1["status"]) == ("done", True, "disputed")
    prov = s.get("prov", v.address)
    # the dispute counts neither for nor against the provider; its fee is burned
    assert prov["due_total"] == 1_000 and prov["delivered_total"] == 1_000 and prov["disputes"] == 1
    assert prov["reputation_ppm"] == PPM
    assert s.get("meta", "burned", 0) == burned0 + 10
    # the third is never attested: the claim stands when the window (5 heights) ends
    commit(s, [], 7, 7000)
    assert s.get("task", ids[2])["status"] == "reported"
    commit(s, [], 8, 8000)
    t2 = s.get("task", ids[2])
    assert (t2["status"], t2["attested"], t2["delivered_work"]) == ("done", False, 1_000)
    assert s.get("prov", v.address)["delivered_total"] == 2_000


def test_finished_tasks_are_pruned_after_the_retention():
    s = make_state(task_retention_heights=10, task_attest_heights=2)
    v = VALS[1]
    ids = _queued(s, 4, 1_000, 60_000)
    short = _queued(s, 1, 40, 10, height=2, ts=1500, nonce0=4)
    commit(s, [], 3, 2000, [(i, v.address) for i in ids + short])
    commit(s, [sign_tx(v, CHAIN, "task_result", 0, {"task_id": ids[0], "delivered_work": 1_000})], 4, 2005)
    commit(s, [], 5, 3000)                             # `short` expires at height 5
    commit(s, [], 6, 4000)                             # ids[0]'s claim stands at height 6
    assert s.get("task", ids[0])["status"] == "done" and s.get("task", short[0])["status"] == "expired"
    commit(s, [], 14, 5000)
    assert s.get("task", short[0]) is not None
    commit(s, [], 15, 6000)                            # expired at 5 + retention 10
    assert s.get("task", short[0]) is None and s.get("task", ids[0]) is not None
    commit(s, [], 16, 7000)                            # done at 6 + retention 10
    assert s.get("task", ids[0]) is None
    # allocated tasks are never pruned, and the bookkeeping keys are gone
    assert {i for i, _ in s.items("task")} == set(ids[1:])
    assert list(s.items("taskq")) == []


@settings(max_examples=25, deadline=None)
@given(st.lists(st.tuples(st.integers(1, 5), st.integers(0, 2)), min_size=1, max_size=30))
def test_task_state_is_bounded_by_the_retention(plan):
    """Whatever tasks arrive and however they end, at height h only tasks finished after
    h - retention (or still open) are in state."""
    retention = 6
    s = make_state(task_retention_heights=retention, task_attest_heights=2)
    v = VALS[1]
    nonce, vnonce, h, ts = 0, 0, 1, 1000
    finished_at = {}
    for n_tasks, how in plan:
        ids = _queued(s, n_tasks, 100, 50 if how == 0 else 60_000, height=h, ts=ts, nonce0=nonce)
        nonce += n_tasks
        h, ts = h + 1, ts + 10
        commit(s, [], h, ts, [(i, v.address) for i in ids])
        h, ts = h + 1, ts + 10
        if how == 1:
            commit(s, [sign_tx(v, CHAIN, "task_result", vnonce + k, {"task_id": i, "delivered_work": 100})
                       for k, i in enumerate(ids)], h, ts)
            vnonce += len(ids)
        else:
            commit(s, [], h, ts + (100 if how == 0 else 0))
            ts += 100
        for _, t in s.items("task"):
            if t["status"] in ("done", "expired", "disputed"):
                finished_at.setdefault(t["id"], t["result_height"])
        assert all(finished_at[i] > h - retention for i, t in s.items("task") if i in finished_at)
