"""Differential: the portable game math (what the chain runs) against the old platform-float path.

The chain's result is defined by games.pmath; the offline simulation may use
libm/numpy. These properties bound how far apart the two are on whole rounds:
the same partition, heads, cases and flags, and every float within a relative
REL_BOUND (the figure docs/games.md quotes).
"""
from __future__ import annotations

import math

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from pocnet.games.params import GameParams
from pocnet.games.round import MemberReport, plan_round, settle_round
from pocnet.games.scenario import synthetic_learners
from tests.platform_math import platform_math

REL_BOUND = 1e-12  # observed max ~1e-15 (a few ulp); the bound leaves room, a real divergence is far above it


def _round_pair(n: int, k: int, seed: int):
    params = GameParams(n_coalitions=k)
    learners = synthetic_learners(n, seed, params, n_clusters=k, active_share=0.9, data_range=(100, 1500))
    rng = np.random.default_rng(seed)

    def run():
        plan = plan_round(learners, {}, None, seed, params)
        reports = {a: MemberReport(float(rng.uniform(-0.01, 0.05)), 1.0,
                                   plan.predicted_times[a] * float(rng.uniform(0.999, 1.3)))
                   for a in sorted(plan.frequencies)}
        st1 = settle_round(plan, reports, {}, 1, params)
        plan2 = plan_round(learners, st1.histories, plan.partition, seed + 1, params, plan.incentives)
        return plan, st1, plan2

    state = rng.bit_generator.state
    portable = run()
    rng.bit_generator.state = state
    with platform_math():
        platform = run()
    return portable, platform


def _max_rel(a: dict, b: dict) -> float:
    worst = 0.0
    for key in a:
        x, y = a[key], b[key]
        if isinstance(x, dict):
            worst = max(worst, _max_rel(x, y))
        elif isinstance(x, float):
            assert math.isfinite(x) == math.isfinite(y)
            if x != y:
                worst = max(worst, abs(x - y) / max(abs(x), abs(y)))
        elif isinstance(x, list) and x and isinstance(x[0], float):
            worst = max(worst, max((abs(p - q) / max(abs(p), abs(q)) if p != q else 0.0) for p, q in zip(x, y)))
        else:
            assert x == y, key
    return worst


@settings(max_examples=12, deadline=None)
@given(st.integers(min_value=8, max_value=60), st.integers(min_value=1, max_value=5), st.integers(0, 10**6))
def test_whole_rounds_agree_within_bound(n, k, seed):
    (p1, s1, q1), (p2, s2, q2) = _round_pair(n, k, seed)
    for a, b in ((p1, p2), (q1, q2)):
        da, db = a.to_dict(), b.to_dict()
        for exact in ("heads", "partition", "cases", "sitting_out", "passive", "left"):
            assert da[exact] == db[exact]
        assert _max_rel(da, db) <= REL_BOUND
    da, db = s1.to_dict(), s2.to_dict()
    assert da["flags"] == db["flags"]
    assert _max_rel(da, db) <= REL_BOUND
