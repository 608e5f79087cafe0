"""Baseline planners compose games/ correctly; reports with and without blockchain."""
import pytest

from pocnet.fml.driver import CoalitionPlan, Plan, make_reports
from pocnet.fml.schemes import PAPER_SCHEMES, SCHEMES, OfflineCoordinator, class_clusters
from pocnet.games.params import GameParams
from pocnet.games.round import MemberReport
from pocnet.games.scenario import synthetic_learners

P = GameParams(n_coalitions=3)


def _learners(seed=0):
    return synthetic_learners(24, seed, P)


def _reports(plan, loss=lambda a: 0.1):
    return {a: MemberReport(loss(a), 1.0, cp.times[a]) for cp in plan.coalitions.values() for a in cp.members}


@pytest.mark.parametrize("key", list(SCHEMES))
def test_every_scheme_plans_and_settles(key):
    coord = OfflineCoordinator(key, P)
    ls = _learners()
    coord.bind_population({p.address: (i % 10, (i * 3 + 1) % 10) for i, p in enumerate(ls)})
    active = {p.address for p in ls if p.active}
    for r in (1, 2):
        plan = coord.plan_round(ls, r, seed=100 + r)
        members = [a for cp in plan.coalitions.values() for a in cp.members]
        assert len(members) == len(set(members)) and set(members) <= active
        for h, cp in plan.coalitions.items():
            assert h in cp.members
            assert P.C_min - 1e-9 <= cp.incentive <= P.C_max + 1e-9
            for a in cp.members:
                if a != h:
                    assert cp.times[a] <= cp.deadline + 1e-9  # nobody kept who misses the deadline
        st = coord.settle_round(plan, _reports(plan), r)
        assert set(st.q) == set(members) and all(0 <= q <= 1 for q in st.q.values())
        assert all(v >= 0 for v in st.payouts.values())
    n_coal = len(plan.coalitions)
    if SCHEMES[key].coalitions == "single":
        assert n_coal == 1
    else:
        assert 1 <= n_coal <= P.n_coalitions
    if SCHEMES[key].incentives == "fixed":
        assert all(cp.incentive == P.C_max for cp in plan.coalitions.values())


def test_fixed_coalitions_do_not_change():
    coord = OfflineCoordinator("fixed-stackelberg", P)
    ls = _learners(1)
    parts = []
    for r in (1, 2, 3):
        plan = coord.plan_round(ls, r, seed=r)
        coord.settle_round(plan, _reports(plan), r)
        parts.append(sorted(plan.coalitions))
    assert parts[0] == parts[1] == parts[2]
    from pocnet.games.coalition import self_feasible

    eligible = sorted((p for p in ls if p.active and self_feasible(p, P)), key=lambda p: (p.tolerated_time, p.address))
    assert parts[0] == sorted(p.address for p in eligible[: P.n_coalitions])

def test_gfml_is_games_plan_round():
    import pocnet.games.round as gr

    ls = _learners(2)
    coord = OfflineCoordinator("gfml", P)
    plan = coord.plan_round(ls, 1, seed=7)
    ref = gr.plan_round(ls, {}, None, 7, P)
    assert plan.raw == ref


def test_low_contribution_lowers_q_and_reputation():
    coord = OfflineCoordinator("random-stackelberg", P)
    ls = _learners(3)
    bad = None
    for r in range(1, 4):
        plan = coord.plan_round(ls, r, seed=r)
        cp = max(plan.coalitions.values(), key=lambda c: len(c.members))
        if bad is None:
            bad = [a for a in cp.members if a != cp.head][0]
        st = coord.settle_round(plan, _reports(plan, loss=lambda a, bad=bad: 0.0 if a == bad else 0.2), r)
    others = [v for a, v in st.global_reputation.items() if a != bad]
    assert st.global_reputation[bad] < sum(others) / len(others)


def _plan():
    cp = CoalitionPlan("h", ("a", "b", "h"), 10.0, 9.0, {"a": 1e9, "b": 1e9, "h": 1e9},
                       {"a": 4.0, "b": 6.0, "h": 5.0}, {}, {}, 0.0)
    return Plan(1, {"h": cp}, ())


def test_reports_with_blockchain_are_measured():
    rep = make_reports(_plan(), {"a": (0.0, 1.0), "b": (0.3, 1.0), "h": (0.1, 1.0)}, {"a"}, blockchain=True)
    assert rep["a"].loss_reduction == 0.0 and rep["a"].completion_time == 4.0


def test_reports_without_blockchain_misbehaver_claims_best():
    rep = make_reports(_plan(), {"a": (0.0, 1.0), "b": (0.3, 1.0), "h": (0.1, 1.0)}, {"a"}, blockchain=False)
    assert rep["a"].loss_reduction == 0.3 and rep["a"].completion_time == 4.0
    assert rep["b"].loss_reduction == 0.3 and rep["h"].loss_reduction == 0.1


def test_all_means_the_ten_paper_schemes():
    assert len(PAPER_SCHEMES) == 10 and "oracle-stackelberg" not in PAPER_SCHEMES


def test_class_clusters_recover_disjoint_class_groups():
    # three tasks: classes {0,1}, {2,3}, {4,5}; learners hold two classes of one task
    classes = {f"l{i:02d}": [(i % 3) * 2, (i % 3) * 2 + 1] for i in range(12)}
    groups = class_clusters(classes, 3)
    assert sorted(sorted(g) for g in groups) == sorted(
        sorted(a for a in classes if int(a[1:]) % 3 == t) for t in range(3))
    assert class_clusters(classes, 3) == groups  # deterministic
    assert sum(len(g) for g in class_clusters(classes, 5)) == 12  # every learner placed, no empty group
    assert class_clusters({}, 3) == []


def test_oracle_partition_follows_true_classes_and_stays():
    ls = _learners(4)
    active = [p for p in ls if p.active]
    classes = {p.address: ([0, 1] if i % 3 == 0 else [2, 3] if i % 3 == 1 else [4, 5]) for i, p in enumerate(ls)}
    coord = OfflineCoordinator("oracle-stackelberg", P)
    coord.bind_population(classes)
    plans = []
    for r in (1, 2):
        plan = coord.plan_round(ls, r, seed=r)
        coord.settle_round(plan, _reports(plan), r)
        plans.append(plan)
    assert sorted(plans[0].coalitions) == sorted(plans[1].coalitions)
    for cp in plans[0].coalitions.values():
        assert len({tuple(classes[a]) for a in cp.members}) == 1  # one task per coalition
    assert {a for cp in plans[0].coalitions.values() for a in cp.members} <= {p.address for p in active}


def test_oracle_without_classes_is_a_clear_error():
    coord = OfflineCoordinator("oracle-stackelberg", P)
    with pytest.raises(ValueError, match="true classes"):
        coord.plan_round(_learners(), 1, seed=1)
