"""Head selection and the switch rule: Nash stability, coverage, termination, and
agreement with a plain sequential reference implementation of Algorithm 1."""
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pocnet.games.coalition import (
    form_coalitions,
    is_nash_stable,
    prepare_formation,
    random_groups,
    run_switch_rule,
    select_heads,
    self_feasible,
    stability_violations,
)
from pocnet.games.cost import cycles_per_round, transmission_time
from pocnet.games.params import GameParams
from pocnet.games.profile import LearnerProfile
from pocnet.games.reputation import similarity
from pocnet.games.scenario import synthetic_learners
from pocnet.games.stackelberg import Follower, follower_best_response, learner_utility

# wide draws so that some learners cannot meet some deadlines and some sit out
WIDE = GameParams(tolerated_time_range_s=(1.5, 15.0), rate_range_bps=(1e6, 10e6))


def scenario(n, k, seed, params=WIDE, data_range=(50, 4000)):
    learners = synthetic_learners(n, seed, params, dim=4, n_clusters=max(1, k), data_range=data_range,
                                  active_share=1.0)
    rng = np.random.default_rng(seed + 1)
    heads = [learners[i].address for i in sorted(rng.choice(n, size=k, replace=False))]
    rep = rng.uniform(0.0, 1.0, size=(n, k))
    initial = {}
    for p in learners:
        j = int(rng.integers(-1, k))  # -1: starts out
        if j >= 0:
            initial[p.address] = heads[j]
    return learners, heads, rep, initial


def reference_switch_rule(learners, heads, rep, initial, params, incentive):
    """Algorithm 1 step 3 written as plainly as possible with the scalar game functions."""
    prof = {p.address: p for p in learners}
    r = {(p.address, h): float(rep[i, k]) for i, p in enumerate(learners) for k, h in enumerate(heads)}
    where = {a: initial.get(a) for a in prof}
    for h in heads:
        where[h] = h
    left = {a: set() for a in prof}

    def utility(a, h):
        members = [b for b in prof if where[b] == h and b != a] + [a]
        head = prof[h]
        sd = {b: similarity(prof[b].embedding, head.embedding) * prof[b].data_size for b in members}
        total = math.fsum(sd.values())
        w = sd[a] / total if total > 0 else 0.0
        p = prof[a]
        m = Follower(a, cycles_per_round(p.data_size, params), p.kappa, p.f_min, p.f_max,
                     transmission_time(p.rate, params), min(1.0, w), r[(a, h)])
        c = incentive[h] if isinstance(incentive, dict) else incentive
        br = follower_best_response(c, m, head.tolerated_time, params)
        if not br.feasible:
            return -math.inf
        rbar = math.fsum(r[(b, h)] for b in members) / len(members)
        return learner_utility(br.frequency, c, m, len(members), rbar, params)

    sweeps = 0
    while True:
        sweeps += 1
        moved = False
        for a in sorted(prof):
            if a in heads:
                continue
            cur_h = where[a]
            cur = utility(a, cur_h) if cur_h is not None else 0.0
            best_h, best_v = None, -math.inf
            for h in sorted(heads):
                if h == cur_h or h in left[a]:
                    continue
                v = utility(a, h)
                if v > best_v:
                    best_h, best_v = h, v
            if best_v >= 0 and best_v > cur + params.epsilon:
                dst = best_h
            elif cur_h is not None and 0.0 > cur + params.epsilon:
                dst = None
            else:
                continue
            if cur_h is not None:
                left[a].add(cur_h)
            where[a] = dst
            moved = True
        if not moved:
            return where, left, sweeps, utility


@pytest.mark.parametrize("seed", range(16))
def test_matches_sequential_reference(seed):
    n, k = 14 + seed, 1 + seed % 4
    learners, heads, rep, initial = scenario(n, k, seed)
    if seed % 2:  # per-coalition incentives, as in rounds after the first
        rng = np.random.default_rng(seed)
        incentives = {h: float(rng.uniform(WIDE.C_min, WIDE.C_max)) for h in heads}
    else:
        incentives = {h: WIDE.C_max for h in heads}
    res = form_coalitions(learners, heads, rep, initial, WIDE, incentives)
    where, left, sweeps, utility = reference_switch_rule(learners, heads, rep, initial, WIDE, incentives)
    for h in heads:
        assert set(res.partition[h]) == {a for a, x in where.items() if x == h}
    assert set(res.sitting_out) == {a for a, x in where.items() if x is None}
    assert {a: set(s) for a, s in res.left.items()} == {a: s for a, s in left.items() if s}
    assert res.sweeps == sweeps
    # independent stability check with the scalar functions: no allowed switch gains > eps
    for a in where:
        if a in heads:
            continue
        cur = utility(a, where[a]) if where[a] is not None else 0.0
        assert cur >= -WIDE.epsilon or where[a] is None
        for h in heads:
            if h != where[a] and h not in left[a]:
                assert utility(a, h) <= cur + WIDE.epsilon
        assert res.utilities.get(a, 0.0) == pytest.approx(cur, abs=1e-9) or where[a] is None


@settings(max_examples=40, deadline=None)
@given(st.integers(3, 40), st.integers(1, 6), st.integers(0, 10_000), st.sampled_from([(50, 400), (50, 4000)]))
def test_partition_is_nash_stable_disjoint_and_covering(n, k, seed, data_range):
    k = min(k, n)
    learners, heads, rep, initial = scenario(n, k, seed, data_range=data_range)
    res = form_coalitions(learners, heads, rep, initial, WIDE)
    placed = [a for m in res.partition.values() for a in m] + list(res.sitting_out)
    assert sorted(placed) == sorted(p.address for p in learners)  # disjoint and covering
    for h in heads:
        assert h in res.partition[h]
    assert res.moves <= (2 * k + 1) * n  # the history rule's bound
    assert is_nash_stable(learners, heads, rep, res.partition, WIDE, left=res.left)
    fa = prepare_formation(learners, heads, rep, WIDE)
    col = {h: j for j, h in enumerate(fa.heads)}
    coalition_of = {a: h for h, m in res.partition.items() for a in m}
    assign = np.array([col[coalition_of[a]] if a in coalition_of else -1 for a in fa.addresses])
    left = np.zeros(fa.rep.shape, dtype=bool)
    for a, hs in res.left.items():
        for h in hs:
            left[fa.addresses.index(a), col[h]] = True
    assert stability_violations(fa, assign, left) == []
    for a, u in res.utilities.items():
        assert u >= -WIDE.epsilon or a in heads  # nobody but a head stays at a loss


def test_instability_is_detected():
    learners, heads, rep, initial = scenario(30, 3, 5)
    res = form_coalitions(learners, heads, rep, initial, WIDE)
    assert res.moves > 0
    # the starting partition was left by someone: it is not stable
    start = {h: [a for a, x in initial.items() if x == h and a not in heads] + [h] for h in heads}
    assert not is_nash_stable(learners, heads, rep, start, WIDE)


def test_formation_is_deterministic_and_input_order_free():
    learners, heads, rep, initial = scenario(60, 4, 9)
    a = form_coalitions(learners, heads, rep, initial, WIDE)
    perm = list(reversed(range(len(learners))))
    hperm = list(reversed(range(len(heads))))
    b = form_coalitions([learners[i] for i in perm], [heads[j] for j in hperm], rep[np.ix_(perm, hperm)],
                        initial, WIDE)
    assert a == b


def test_bad_inputs():
    learners, heads, rep, initial = scenario(10, 2, 1)
    with pytest.raises(ValueError, match="heads"):
        form_coalitions(learners, ["nobody"], rep[:, :1], initial, WIDE)
    with pytest.raises(ValueError, match="reputation"):
        form_coalitions(learners, heads, rep[:, :1], initial, WIDE)
    passive = [LearnerProfile(**{**learners[0].__dict__, "active": False})] + learners[1:]
    with pytest.raises(ValueError, match="passive"):
        form_coalitions(passive, heads, rep, initial, WIDE)


def test_select_heads_rule():
    p = GameParams()
    base = dict(data_size=100, kappa=1e-26, f_min=1e8, f_max=2e9, rate=5e6, embedding=(1.0, 0.0))
    profiles = {
        "a": LearnerProfile("a", tolerated_time=10.0, **base),
        "b": LearnerProfile("b", tolerated_time=5.0, **base),
        "c": LearnerProfile("c", tolerated_time=5.0, **base),
        "d": LearnerProfile("d", tolerated_time=8.0, **base),
        "e": LearnerProfile("e", tolerated_time=1.0, **base),  # t_com = 2 s > 1 s: cannot be a head
    }
    rg = {"a": 0.9, "b": 0.5, "c": 0.5, "d": 0.1}
    # a: 0.9/10 = 0.09 ; b, c: 0.5/5 = 0.1 (tie -> b) ; d: 0.1/8
    assert select_heads([["a", "b", "c"], ["a", "d"], ["e"]], profiles, rg, p) == ["b", "a", "c"]
    assert not self_feasible(profiles["e"], p)
    assert select_heads([["e"]], {"e": profiles["e"]}, {}, p) == [None]


def test_random_groups_seeded():
    addrs = [f"x{i}" for i in range(10)]
    g1 = random_groups(addrs, 3, 7)
    assert g1 == random_groups(list(reversed(addrs)), 3, 7)
    assert sorted(a for g in g1 for a in g) == sorted(addrs)
    assert [len(g) for g in g1] == [4, 3, 3]
    assert g1 != random_groups(addrs, 3, 8)


def test_switch_rule_runs_at_scale():
    """1,000 x 20 from a random start reaches a verified Nash-stable partition."""
    p = GameParams()
    learners = synthetic_learners(1000, 3, p, n_clusters=20, active_share=1.0, data_range=(50, 1500))
    rng = np.random.default_rng(3)
    heads = [learners[i].address for i in rng.choice(1000, 20, replace=False)]
    rep = rng.uniform(0, 1, size=(1000, 20))
    fa = prepare_formation(learners, heads, rep, p)
    assign, left, sweeps, moves = run_switch_rule(fa, rng.integers(0, 20, size=1000))
    assert moves > 0 and stability_violations(fa, assign, left) == []


def test_matches_reference_on_a_longer_run():
    """Enough learners for many sweeps (the compiled kernel against the scalar reference)."""
    learners, heads, rep, initial = scenario(160, 8, 99, data_range=(50, 1500))
    rng = np.random.default_rng(5)
    incentives = {h: float(rng.uniform(WIDE.C_min, WIDE.C_max)) for h in heads}
    res = form_coalitions(learners, heads, rep, initial, WIDE, incentives)
    where, left, sweeps, _ = reference_switch_rule(learners, heads, rep, initial, WIDE, incentives)
    assert res.sweeps == sweeps and res.sweeps >= 4
    for h in heads:
        assert set(res.partition[h]) == {a for a, x in where.items() if x == h}
