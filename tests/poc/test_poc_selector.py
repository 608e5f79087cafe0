"""PoC proposer selection on committed state, provider/task-result txs, weights pinning."""
import json

import pytest

from pocnet.consensus.poc_selector import PocSelector, poc_inputs, weighted_order
from pocnet.ledger.errors import Code, TxRejected
from pocnet.ledger.genesis import Genesis, ValidatorInfo
from pocnet.ledger.keys import KeyPair
from pocnet.ledger.state_machine import BlockContext, apply_block, apply_tx, genesis_state
from pocnet.ledger.tx import sign_tx

VALS = [KeyPair.from_seed(bytes([40 + i]) * 32) for i in range(4)]
USER = KeyPair.from_seed(b"\x33" * 32)
CHAIN = "poc-test"


def make_state(capacities=(1, 2, 4, 8)):
    g = Genesis(CHAIN, 0, tuple(ValidatorInfo(f"v{i}", k.address, "http://x", c)
                                for i, (k, c) in enumerate(zip(VALS, capacities))), {USER.address: 10**9})
    return genesis_state(g)


def commit(state, txs, height, ts, selector=None, prev="00" * 32):
    alloc = selector.outcome(state, height, prev).allocation if selector else ()
    view = apply_block(state, txs, BlockContext(CHAIN, height, prev, ts, VALS[0].address, alloc))
    state.apply_writes(view.writes)


def test_weighted_order_is_a_deterministic_permutation_favouring_weight():
    ids = ["a", "b", "c", "d"]
    first = [weighted_order(ids, [1, 1, 1, 97], f"{i:064x}")[0] for i in range(300)]
    assert first.count("d") > 250
    assert weighted_order(ids, [5, 1, 1, 1], "ab" * 32) == weighted_order(ids, [5, 1, 1, 1], "ab" * 32)
    assert sorted(weighted_order(ids, [0 + 1] * 4, "cd" * 32)) == ids


def test_tasks_enter_poc_only_two_heights_after_commit_and_are_capped_per_submitter():
    s = make_state()
    txs = [sign_tx(USER, CHAIN, "task", n, {"work": 100 + n, "demand": [1, 2, 3], "deadline_ms": 10_000})
           for n in range(20)]
    commit(s, txs, 1, 1000)
    assert poc_inputs(s, 2)[0] == []
    tasks, providers, idle = poc_inputs(s, 3)
    assert len(tasks) == 16 and len(providers) == 4 and idle == []
    assert tasks[0].arrival == 0


def test_allocation_recorded_and_results_feed_reputation():
    sel = PocSelector()
    s = make_state()
    txs = [sign_tx(USER, CHAIN, "task", n, {"work": 500, "demand": [100, 200, 300], "deadline_ms": 1000})
           for n in range(6)]
    commit(s, txs, 1, 1000, sel)
    commit(s, [], 2, 2000, sel)
    out = sel.outcome(s, 3, "00" * 32)
    assert len(out.allocation) == 6 and sorted(out.ranking) == sorted(v.address for v in VALS)
    commit(s, [], 3, 3000, sel)
    allocated = [t for _, t in s.items("task") if t["status"] == "allocated"]
    assert len(allocated) == 6
    owner = allocated[0]["assigned_to"]
    key = next(k for k in VALS if k.address == owner)
    other = next(k for k in VALS if k.address != owner)
    view = s.view()
    with pytest.raises(TxRejected) as e:
        apply_tx(view, sign_tx(other, CHAIN, "task_result", 0, {"task_id": allocated[0]["id"], "delivered_work": 1}),
                 BlockContext(CHAIN, 4, "00" * 32, 3500, owner))
    assert e.value.field == "sender" and e.value.code is Code.FORBIDDEN
    with pytest.raises(TxRejected):
        apply_tx(view, sign_tx(key, CHAIN, "task_result", 0, {"task_id": allocated[0]["id"], "delivered_work": 501}),
                 BlockContext(CHAIN, 4, "00" * 32, 3500, owner))
    commit(s, [sign_tx(key, CHAIN, "task_result", 0, {"task_id": allocated[0]["id"], "delivered_work": 500})], 4, 3500)
    # a claim: nothing credited until the submitter attests it (or its window ends)
    assert s.get("task", allocated[0]["id"])["status"] == "reported"
    assert s.get("prov", owner)["delivered_total"] == 0
    commit(s, [sign_tx(USER, CHAIN, "task_attest", 6, {"task_id": allocated[0]["id"], "delivered_work": 500})],
           5, 3600)
    prov = s.get("prov", owner)
    assert prov["delivered_total"] == 500 and prov["history"] == [500] and prov["reputation_ppm"] == 1_000_000
    assert s.get("task", allocated[0]["id"])["attested"] is True
    # the rest expire (deadline 1000 ms after allocation at t=3000): reputation drops
    commit(s, [], 6, 10_000)
    assert all(t["status"] in ("done", "expired") for _, t in s.items("task"))
    reps = {a: p["reputation_ppm"] for a, p in s.items("prov")}
    assert all(r < 1_000_000 for a, r in reps.items() if s.get("prov", a)["due_total"] > 500)


def test_provider_update_only_for_validators():
    s = make_state()
    view = s.view()
    with pytest.raises(TxRejected) as e:
        apply_tx(view, sign_tx(USER, CHAIN, "provider_update", 0, {"capacity": 3}), BlockContext(CHAIN, 1, "0" * 64, 1, ""))
    assert e.value.code is Code.FORBIDDEN
    apply_tx(view, sign_tx(VALS[1], CHAIN, "provider_update", 0, {"capacity": 0}), BlockContext(CHAIN, 1, "0" * 64, 1, ""))
    s.apply_writes(view.writes)
    assert poc_inputs(s, 5)[2] == [VALS[1].address]


def test_peer_refuses_weights_that_differ_from_genesis(tmp_path):
    from pocnet.node.node import Node
    from pocnet.node.setup_home import init_cluster_home
    init_cluster_home(tmp_path, 1, 29990, [], chain_id="w")
    g = json.loads((tmp_path / "peer0" / "genesis.json").read_text())
    assert len(g["poc_weights_sha256"]) == 64
    g["poc_weights_sha256"] = "ab" * 32
    (tmp_path / "peer0" / "genesis.json").write_text(json.dumps(g))
    with pytest.raises(ValueError, match="refusing to start"):
        Node(tmp_path / "peer0")


def test_ranking_weights_lag_one_height_and_follow_the_seed():
    """ranking_h is weighted by the contribution recorded at h-1 (computed from state h-2),
    so txs in block h-1 cannot move it; the seed (beacon of h-1) alone draws the sample."""
    sel = PocSelector()
    s = make_state()
    ids = sorted(v.address for v in VALS)
    assert s.get("poc", "weights") is None
    out1 = sel.outcome(s, 1, "aa" * 64)           # nothing recorded yet: equal weights
    assert sorted(out1.ranking) == ids
    heavy = VALS[3].address
    view = s.view()
    ctx = BlockContext(CHAIN, 1, "00" * 32, 1000, VALS[0].address, (),
                       tuple(sorted({a: (10**9 if a == heavy else 0) for a in ids}.items())))
    from pocnet.ledger.state_machine import run_begin_block
    run_begin_block(view, ctx)
    s.apply_writes(view.writes)
    assert s.get("poc", "weights")["contribution"][heavy] == 10**9
    firsts = [sel.outcome(s, 2, f"{i:0128x}").ranking[0] for i in range(40)]
    assert firsts.count(heavy) >= 39
    # a provider_update committed now changes this height's contribution, not the ranking
    seed = "bb" * 64
    before = sel.outcome(s, 2, seed)
    commit(s, [sign_tx(VALS[3], CHAIN, "provider_update", 0, {"capacity": 0})], 2, 2000)
    after = sel.outcome(s, 3, seed)
    assert after.ranking == before.ranking
    assert after.contribution[heavy] == 0


def test_task_fee_escrowed_paid_pro_rata_and_burned():
    sel = PocSelector()
    s = make_state()
    assert s.get("meta", "task_fee") == 10
    bal0 = s.get("acct", USER.address)["balance"]
    txs = [sign_tx(USER, CHAIN, "task", n, {"work": 500, "demand": [100, 200, 300], "deadline_ms": 1000})
           for n in range(2)]
    commit(s, txs, 1, 1000, sel)
    assert s.get("acct", USER.address)["balance"] == bal0 - 20
    commit(s, [], 2, 2000, sel)
    commit(s, [], 3, 3000, sel)
    allocated = sorted((t for _, t in s.items("task") if t["status"] == "allocated"), key=lambda t: t["seq"])
    assert len(allocated) == 2 and all(t["fee"] == 10 for t in allocated)
    t0 = allocated[0]
    key = next(k for k in VALS if k.address == t0["assigned_to"])
    before = (s.get("acct", key.address) or {"balance": 0})["balance"]
    commit(s, [sign_tx(key, CHAIN, "task_result", 0, {"task_id": t0["id"], "delivered_work": 250})], 4, 3500)
    commit(s, [sign_tx(USER, CHAIN, "task_attest", 2, {"task_id": t0["id"], "delivered_work": 250})], 5, 3600)
    assert s.get("acct", key.address)["balance"] == before + 5       # half delivered: half the fee
    assert s.get("meta", "burned") == 5
    commit(s, [], 6, 10_000)                                          # the other task expires
    assert s.get("meta", "burned") == 15


def test_task_fee_needs_balance_and_is_a_genesis_parameter():
    poor = KeyPair.from_seed(b"\x34" * 32)
    s = make_state()
    with pytest.raises(TxRejected) as e:
        apply_tx(s.view(), sign_tx(poor, CHAIN, "task", 0, {"work": 5, "demand": [1], "deadline_ms": 9}),
                 BlockContext(CHAIN, 1, "00" * 32, 1000, VALS[0].address))
    assert e.value.code is Code.UNMET and "task fee" in e.value.reason
    g = Genesis(CHAIN, 0, (ValidatorInfo("v", VALS[0].address, "http://x"),), {}, {"task_fee": 0})
    free = genesis_state(g)
    apply_tx(free.view(), sign_tx(poor, CHAIN, "task", 0, {"work": 5, "demand": [1], "deadline_ms": 9}),
             BlockContext(CHAIN, 1, "00" * 32, 1000, VALS[0].address))
