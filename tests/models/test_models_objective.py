"""Eq. 1 (total latency) and eqs. 2-3 (diversity)."""
import math

import numpy as np
from hypothesis import given, settings, strategies as st

from pocnet.models.objective import (batch_total_latency, completion_times, diversity_score, one_hot,
                              total_latency)
from pocnet.models.scenario import generate_scenario, scenario_from_chain


def _scn():
    tasks = [{"task_id": "a", "work": 10, "demand": [1, 0, 0], "arrival": 0, "deadline": 5},
             {"task_id": "b", "work": 4, "demand": [1, 0, 0], "arrival": 2, "deadline": 5},
             {"task_id": "c", "work": 3, "demand": [1, 0, 0], "arrival": 3, "deadline": 5}]
    provs = [{"provider_id": "fast", "capacity": 2, "backlog": 4, "history": [], "reputation_ppm": 1},
             {"provider_id": "slow", "capacity": 1, "backlog": 0, "history": [], "reputation_ppm": 1}]
    return scenario_from_chain(tasks, provs)


def test_eq1_by_hand():
    s = _scn()
    # fast: free at 0 + ceil(4/2)=2; a: start 2, proc 5 -> C=7 (lat 7); c: start 7, proc ceil(3/2)=2 -> 9 (lat 6)
    # slow: b: start 2, proc 4 -> 6 (lat 4)
    assert completion_times(s, [0, 1, 0]).tolist() == [7, 6, 9]
    assert total_latency(s, [0, 1, 0]) == 7 + 4 + 6
    # all on slow: a 0->10, b 10->14, c 14->17 -> 10 + 12 + 14
    assert total_latency(s, [1, 1, 1]) == 36


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 10_000), b=st.integers(1, 6))
def test_batch_matches_single(seed, b):
    s = generate_scenario(seed, (1, 20), (1, 5))
    rng = np.random.default_rng(seed)
    allocs = rng.integers(0, s.n_providers, size=(b, s.n_tasks))
    assert batch_total_latency(s, allocs).tolist() == [total_latency(s, a) for a in allocs]


def test_diversity_eq2_eq3():
    assert diversity_score(np.array([[1, 0, 0], [1, 0, 0]])) == 0.0
    assert math.isclose(diversity_score(one_hot([0, 1], 3)), math.sqrt(2))
    # three tasks: two identical, one different -> (0 + sqrt2 + sqrt2) / 3
    assert math.isclose(diversity_score(one_hot([0, 0, 2], 3)), 2 * math.sqrt(2) / 3)
    assert diversity_score(np.zeros((1, 3))) == 0.0
