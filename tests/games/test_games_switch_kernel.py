"""The compiled switch rule (games.switch_kernel) against the previous numpy implementation
(tests/games/games_switch_reference.py): identical assignment, no-return history, sweeps
and moves, hence identical partitions and sit-outs, on seeded and hypothesis inputs and
on the benchmark's scenarios at small N."""
import copy

import numpy as np
import pytest
from games_switch_reference import reference_form_coalitions, reference_run_switch_rule
from hypothesis import given, settings
from hypothesis import strategies as st

from pocnet.games.coalition import _initial_assignment, form_coalitions, prepare_formation, random_groups, run_switch_rule
from pocnet.games.coalition import select_heads, stability_violations
from pocnet.games.params import GameParams
from pocnet.games.round import MemberReport, formation_inputs, plan_round, settle_round
from pocnet.games.scenario import synthetic_learners

WIDE = GameParams(tolerated_time_range_s=(1.5, 15.0), rate_range_bps=(1e6, 10e6))


def _same(fa, assign0):
    got = run_switch_rule(fa, assign0)
    want = reference_run_switch_rule(fa, assign0)
    assert np.array_equal(got[0], want[0]), "assignment differs"
    assert np.array_equal(got[1], want[1]), "no-return history differs"
    assert got[2:] == want[2:], f"(sweeps, moves) {got[2:]} != {want[2:]}"
    return got


def _random_case(n, k, seed, data_range, params=WIDE, start_out=True, per_head_inc=True):
    learners = synthetic_learners(n, seed, params, dim=4, n_clusters=max(1, k), data_range=data_range,
                                  active_share=1.0)
    rng = np.random.default_rng(seed + 7)
    heads = [learners[i].address for i in sorted(rng.choice(n, size=k, replace=False))]
    rep = rng.uniform(0.0, 1.0, size=(n, k))
    lo = -1 if start_out else 0
    initial = {}
    for p in learners:
        j = int(rng.integers(lo, k))
        if j >= 0:
            initial[p.address] = heads[j]
    inc = {h: float(rng.uniform(params.C_min, params.C_max)) for h in heads} if per_head_inc else None
    return learners, heads, rep, initial, inc


@settings(max_examples=60, deadline=None)
@given(st.integers(2, 60), st.integers(1, 8), st.integers(0, 100_000),
       st.sampled_from([(50, 400), (50, 4000), (100, 1500)]), st.booleans(), st.booleans())
def test_kernel_matches_numpy_reference(n, k, seed, data_range, start_out, per_head_inc):
    k = min(k, n)
    learners, heads, rep, initial, inc = _random_case(n, k, seed, data_range, WIDE, start_out, per_head_inc)
    fa = prepare_formation(learners, heads, rep, WIDE, inc)
    _same(fa, _initial_assignment(fa, initial))
    # and through the public entry point: the whole FormationResult (partition, sit-outs, left, utilities)
    assert form_coalitions(learners, heads, rep, initial, WIDE, inc) == reference_form_coalitions(
        learners, heads, rep, initial, WIDE, inc)


@pytest.mark.parametrize("seed", range(8))
def test_kernel_matches_reference_with_default_params_and_ties(seed):
    """Default parameters; equal reputations (as in round 1) make utilities tie across coalitions."""
    n, k = 150 + 20 * seed, 3 + seed
    p = GameParams()
    learners, heads, rep, initial, inc = _random_case(n, k, seed, (100, 1500), p, seed % 2 == 0, seed % 3 == 0)
    if seed % 2:
        rep = np.full_like(rep, p.lam * p.r_th)
    fa = prepare_formation(learners, heads, rep, p, inc)
    _same(fa, _initial_assignment(fa, initial))


def test_kernel_matches_reference_without_pruning():
    """theta < 0 switches the kernel's upper-bound pruning off: the full evaluation path must agree too."""
    learners, heads, rep, initial, inc = _random_case(80, 5, 3, (50, 4000))
    fa = prepare_formation(learners, heads, rep, WIDE, inc)
    params = copy.copy(WIDE)
    object.__setattr__(params, "theta", -4.0)  # bypasses validation on purpose (test only)
    fa.params = params
    _, _, sweeps, moves = _same(fa, _initial_assignment(fa, initial))
    assert moves > 0 and sweeps >= 2


def _bench_case(n, k, scenario, seed):
    """The three scenarios of bench/bench_coalition.py, built the same way."""
    params = GameParams(n_coalitions=k)
    learners = synthetic_learners(n, seed, params, n_clusters=k, active_share=1.0, data_range=(100, 1500))
    prof = {p.address: p for p in learners}
    rng = np.random.default_rng(seed)
    if scenario == "round2":
        plan = plan_round(learners, {}, None, seed, params)
        reports = {
            a: MemberReport(float(rng.uniform(0.0, 0.05)), 1.0, plan.predicted_times[a] * float(rng.uniform(1.0, 1.3)))
            for a in sorted(plan.frequencies)
        }
        settled = settle_round(plan, reports, {}, 1, params)
        fi = formation_inputs(learners, settled.histories, plan.partition, seed + 1, params, plan.incentives)
        return learners, list(fi.heads), fi.overall, fi.initial, params, fi.incentives
    groups = random_groups(list(prof), k, seed)
    heads_by_group = select_heads(groups, prof, {}, params)
    initial = {a: h for g, h in zip(groups, heads_by_group) if h for a in g}
    heads = [h for h in heads_by_group if h]
    if scenario == "round1":
        rep = np.full((n, len(heads)), params.lam * params.r_th)
    else:
        rep = rng.uniform(0.0, 1.0, size=(n, len(heads)))
    return learners, heads, rep, initial, params, None


@pytest.mark.parametrize("scenario", ["round1", "round2", "mixed"])
@pytest.mark.parametrize("n,k", [(300, 10), (600, 20)])
def test_kernel_matches_reference_on_bench_scenarios(scenario, n, k):
    learners, heads, rep, initial, params, inc = _bench_case(n, k, scenario, seed=1)
    fa = prepare_formation(learners, heads, rep, params, inc)
    assign, left, sweeps, moves = _same(fa, _initial_assignment(fa, initial))
    assert moves > 0 and stability_violations(fa, assign, left) == []


def test_exact_ties_go_to_the_first_coalition_in_head_order():
    """Identical learners starting out: every coalition offers bit-identical utilities, so the
    first learner joins the first head's coalition (np.argmax's first maximum), and so on."""
    from pocnet.games.profile import LearnerProfile

    p = GameParams()
    base = dict(data_size=800, kappa=p.kappa, f_min=2e8, f_max=2e9, rate=8e6, tolerated_time=20.0,
                embedding=(1.0, 0.5))
    learners = [LearnerProfile(f"L{i:03d}", **base) for i in range(40)]
    heads = ["L001", "L005", "L009", "L017"]
    rep = np.full((40, 4), 0.3)
    fa = prepare_formation(learners, heads, rep, p)
    assign, _, _, moves = _same(fa, _initial_assignment(fa, {}))
    assert moves > 0
    assert assign[0] == 0  # L000: four equal options, the first one wins


def test_compiled_code_has_no_fused_or_fast_math():
    """IEEE as written: no FMA instructions, no fast-math flags, no libm/SVML exp (the portable pmath one).

    Cached code cannot be inspected, so the kernel is compiled afresh here (a few seconds).
    """
    import re

    import numba

    from pocnet.games import switch_kernel as sk

    fresh = numba.njit(cache=False, fastmath=False, error_model="numpy")(sk.switch_rule_kernel.py_func)
    learners, heads, rep, initial, inc = _random_case(20, 3, 1, (50, 400))
    fa = prepare_formation(learners, heads, rep, WIDE, inc)
    import pocnet.games.coalition as gc

    saved = gc.switch_rule_kernel
    try:
        gc.switch_rule_kernel = fresh
        got = run_switch_rule(fa, _initial_assignment(fa, initial))
    finally:
        gc.switch_rule_kernel = saved
    want = reference_run_switch_rule(fa, _initial_assignment(fa, initial))
    assert np.array_equal(got[0], want[0]) and got[2:] == want[2:]
    (asm,) = fresh.inspect_asm().values()
    (ir,) = fresh.inspect_llvm().values()
    assert not re.search(r"\bv?f(n)?m(add|sub)\w*", asm)
    assert not re.search(r"\b(fast|contract|reassoc|afn|nnan|ninf|nsz|arcp)\b", ir)
    assert not re.search(r"svml|_ZGV", asm + ir)
    assert not re.search(r"@llvm\.(exp|log|pow)|@(exp|log|log1p|pow)\(", ir)
    assert "pmath" in ir  # the portable exp is what the kernel calls
