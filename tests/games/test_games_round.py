"""plan_round / settle_round: invariants, determinism, quantisation, settlement by hand."""
import json
import math

import pytest

from pocnet.games import (
    GameParams,
    LearnerProfile,
    MemberReport,
    ReputationHistory,
    RoundPlan,
    plan_round,
    quantize,
    settle_round,
)
from pocnet.games.coalition import is_nash_stable
from pocnet.games.reputation import contributions, overall_reputation, reputation_fn, reputation_matrix
from pocnet.games.scenario import synthetic_learners
from pocnet.games.stackelberg import KKTCase

P = GameParams()
LEARNERS = synthetic_learners(40, 11, P, data_range=(200, 3000))


def test_plan_invariants():
    plan = plan_round(LEARNERS, {}, None, 5, P)
    active = sorted(p.address for p in LEARNERS if p.active)
    assert plan.passive == tuple(sorted(p.address for p in LEARNERS if not p.active))
    placed = sorted([a for m in plan.partition.values() for a in m] + list(plan.sitting_out))
    assert placed == active
    assert len(plan.heads) == P.n_coalitions and list(plan.heads) == sorted(plan.heads)
    prof = {p.address: p for p in LEARNERS}
    for h, members in plan.partition.items():
        assert h in members and list(members) == sorted(members)
        assert P.C_min <= plan.incentives[h] <= P.C_max
        assert math.fsum(plan.weights[a] for a in members) == pytest.approx(1.0)
        assert plan.deadlines[h] == prof[h].tolerated_time
        for a in members:
            assert prof[a].f_min <= plan.frequencies[a] <= prof[a].f_max
            assert plan.predicted_times[a] <= plan.deadlines[h] + 1e-9
            assert plan.cases[a] in KKTCase.__members__ and plan.cases[a] != "INFEASIBLE"
    # stable for the incentives learners assumed and the history rule
    act = [p for p in LEARNERS if p.active]
    _, overall = reputation_matrix([p.address for p in act], list(plan.heads), {},
                                   {p.address: p.embedding for p in LEARNERS}, P)
    assert is_nash_stable(act, list(plan.heads), overall, plan.formation_partition(), P, plan.formation_incentives, plan.left)
    assert plan.formation_incentives == {h: P.C_max for h in plan.heads}  # round 1


def test_plan_is_deterministic_and_seeded():
    a = plan_round(LEARNERS, {}, None, 5, P)
    b = plan_round(list(reversed(LEARNERS)), {}, {}, 5, P)
    assert a.to_dict(quantized=True) == b.to_dict(quantized=True)
    assert json.dumps(a.to_dict(), sort_keys=True) == json.dumps(b.to_dict(), sort_keys=True)
    others = [plan_round(LEARNERS, {}, None, s, P).partition for s in range(6, 12)]
    assert any(o != a.partition for o in others)


def test_plan_roundtrip_and_quantisation():
    plan = plan_round(LEARNERS, {}, None, 5, P)
    assert RoundPlan.from_dict(json.loads(json.dumps(plan.to_dict()))) == plan
    q = plan.to_dict(quantized=True)
    assert all(isinstance(v, int) for v in q["incentives"].values())
    h = plan.heads[0]
    assert q["incentives"][h] == quantize(plan.incentives[h])
    back = RoundPlan.from_dict(json.loads(json.dumps(q)))
    assert back.incentives[h] == pytest.approx(plan.incentives[h], abs=1e-6)
    assert back.to_dict(quantized=True) == q  # stable under a second round trip


def reports_for(plan, skip=(), fast=()):
    out = {}
    for i, a in enumerate(sorted(plan.frequencies)):
        if a in skip:
            continue
        t = plan.predicted_times[a] * (0.5 if a in fast else 1.0) + 0.01 * (i % 3)
        out[a] = MemberReport(loss_reduction=0.01 * (i % 5) - 0.005, grad_norm=1.0, completion_time=t)
    return out


def test_settle_by_hand():
    plan = RoundPlan.from_dict(plan_round(LEARNERS, {}, None, 5, P).to_dict(quantized=True))
    h = plan.heads[0]
    members = plan.partition[h]
    missing, liar = members[0], members[1]
    reports = reports_for(plan, skip={missing}, fast={liar})
    st = settle_round(plan, reports, {}, 1, P)
    assert st.flags[missing] == "missing" and st.flags[liar] == "misreport"
    valid = [a for a in members if a not in (missing, liar)]
    q = contributions([reports[a].loss_reduction for a in valid], [reports[a].completion_time for a in valid], P)
    for a, qa in zip(valid, q):
        assert st.q[a] == pytest.approx(qa)
    assert st.q[missing] == st.q[liar] == 0.0
    assert st.payouts[missing] == st.payouts[liar] == 0.0
    for a in members:
        last = st.histories[a].records[-1]
        assert (last.round, last.head, last.q) == (1, h, st.q[a])
        assert st.overall_reputation[a] == pytest.approx(overall_reputation(st.histories[a], h, plan.embeddings, P))
    rbar = sum(st.overall_reputation[a] for a in members) / len(members)
    share = P.R * reputation_fn(rbar, P) / len(members)
    for a in valid:
        assert st.reputation_shares[a] == pytest.approx(share)
        assert st.payouts[a] == pytest.approx(share + plan.competition_rewards[a])
    assert st.msp_spend[h] == pytest.approx(sum(st.payouts[a] for a in members))
    assert st.msp_spend[h] <= P.R + plan.incentives[h]
    # with one round of history, the global reputation is q itself
    assert st.global_reputation[valid[0]] == pytest.approx(st.q[valid[0]])
    assert all(0.0 <= v <= 1.0 for v in st.global_reputation.values())


def test_settle_errors():
    plan = plan_round(LEARNERS, {}, None, 5, P)
    with pytest.raises(ValueError, match="not a member"):
        settle_round(plan, {"ghost": MemberReport(0.1, 1.0, 3.0)}, {}, 1, P)
    member = plan.partition[plan.heads[0]][0]
    hist = {member: ReputationHistory.from_list([[3, plan.heads[0], 0.5]])}
    with pytest.raises(ValueError, match="round"):
        settle_round(plan, reports_for(plan), hist, 2, P)
    with pytest.raises(ValueError, match="completion_time"):
        MemberReport(0.1, 1.0, 0.0)


def test_rounds_chain():
    """Three rounds: histories feed the next plan, heads move to high R^g / T."""
    plan = plan_round(LEARNERS, {}, None, 1, P)
    hist: dict = {}
    for rnd in (1, 2, 3):
        st = settle_round(plan, reports_for(plan), hist, rnd, P)
        hist = st.histories
        plan = plan_round(LEARNERS, hist, plan.partition, 100 + rnd, P, prev_incentives=plan.incentives)
        placed = sorted([a for m in plan.partition.values() for a in m] + list(plan.sitting_out))
        assert placed == sorted(p.address for p in LEARNERS if p.active)
    assert any(len(h.records) == 3 for h in hist.values())
    assert set(plan.formation_incentives.values()) != {P.C_max} or len(plan.heads) == 0


def test_empty_and_tiny_populations():
    assert plan_round([p for p in LEARNERS if not p.active], {}, None, 1, P).heads == ()
    one = [LearnerProfile("solo", 500, 1e-26, 1e8, 2e9, 5e6, 10.0, (1.0, 0.0))]
    plan = plan_round(one, {}, None, 1, P)
    assert plan.partition == {"solo": ("solo",)} and plan.weights["solo"] == 1.0
    with pytest.raises(ValueError, match="duplicate"):
        plan_round(one + one, {}, None, 1, P)


def test_no_member_keeps_negative_utility_after_the_stackelberg_stage():
    """Individual rationality: every member but the head has U >= 0 at C_k*; leavers are recorded."""
    for n, seed in ((24, 3), (40, 11), (60, 7)):
        learners = synthetic_learners(n, seed, P, data_range=(200, 3000))
        plan = plan_round(learners, {}, None, 5, P)
        for h, members in plan.partition.items():
            for a in members:
                if a != h:
                    assert plan.expected_utilities[a] >= 0.0, (a, plan.expected_utilities[a])
        assert set(plan.sit_out_reasons) == set(plan.sitting_out)
        for a, h in plan.exited_from.items():
            assert plan.sit_out_reasons[a].startswith("negative_utility") and a not in plan.partition[h]
        assert sum(len(m) for m in plan.formation_partition().values()) == \
            sum(len(m) for m in plan.partition.values()) + len(plan.exited_from)
        back = RoundPlan.from_dict(json.loads(json.dumps(plan.to_dict(quantized=True))))
        assert back.sit_out_reasons == plan.sit_out_reasons and back.exited_from == plan.exited_from
