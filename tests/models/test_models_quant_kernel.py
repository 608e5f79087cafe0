"""The numba integer kernel (models/quant_kernel.py) against the previous numpy
implementation (models_quant_reference.py): identical allocations and logits,
bit for bit, on generated scenarios and on arbitrary inputs up to the 2^40 bound."""
import numpy as np
import numba
from hypothesis import HealthCheck, given, settings, strategies as st
from models_quant_reference import allocate_int_logits_ref, pair_features_ref

from pocnet.models import quant_kernel as qk
from pocnet.models.features import (FEAT_CLIP, LOOK_MS, ONE, TIME_SCALE, WORK_SCALE, graph_with_self_loops, pair_features,
                             relative_capacity, task_features)
from pocnet.models.objective import initial_free, proc_times
from pocnet.models.quant import allocate_int, allocate_int_logits, load_quant, warm_up
from pocnet.models.scenario import (DEMAND_MAX, SIM_DEN, SIM_NUM, TIME_WINDOW_MS, VALUE_LIMIT, generate_scenario,
                             scenario_from_chain)

BIG = VALUE_LIMIT - 1


def assert_same(scn) -> None:
    q = load_quant()
    a, lg = allocate_int_logits(q, scn)
    ar, lr = allocate_int_logits_ref(q, scn)
    assert a.dtype == np.int64 and lg.dtype == np.int64
    assert np.array_equal(a, ar) and np.array_equal(lg, lr)


@numba.njit(cache=False)
def _floor_ops(a, b, s):  # pragma: no cover - compiled
    return a // b, a >> s


def test_numba_int_division_and_shift_floor_like_python():
    for a in (-7, -1, -4096, -(1 << 62) + 3, 0, 5, 7, (1 << 62) - 1):
        for b in (1, 2, 3, 7, 4096):
            for s in (0, 1, 5, 12):
                assert _floor_ops(np.int64(a), np.int64(b), np.int64(s)) == (a // b, a >> s)


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 2**31), n=st.integers(1, 64), m=st.integers(1, 8))
def test_kernel_equals_reference_generated(seed, n, m):
    assert_same(generate_scenario(seed, (n, n), (m, m)))


def test_kernel_equals_reference_64x8_and_default_sizes():
    for k in range(10):
        assert_same(generate_scenario(31_000 + k, 64, 8))
        assert_same(generate_scenario(41_000 + k))


_val = st.one_of(st.integers(0, 300), st.integers(0, BIG), st.integers(BIG - 1000, BIG), st.just(BIG))


@st.composite
def raw_scenarios(draw):
    n, m = draw(st.integers(1, 64)), draw(st.integers(1, 8))
    tasks = [{"task_id": f"t{i}", "work": draw(_val), "arrival": draw(_val), "deadline": draw(_val),
              "demand": draw(st.lists(st.integers(0, 1000), min_size=3, max_size=3))} for i in range(n)]
    provs = [{"provider_id": f"p{k}", "capacity": max(1, draw(_val)), "backlog": draw(_val),
              "history": draw(st.lists(_val, max_size=8)), "reputation_ppm": draw(st.integers(0, 10**6))}
             for k in range(m)]
    return scenario_from_chain(tasks, provs)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(scn=raw_scenarios())
def test_kernel_equals_reference_arbitrary_and_extreme(scn):
    assert_same(scn)


def test_all_values_at_the_bound():
    tasks = [{"task_id": f"t{i}", "work": BIG - i, "arrival": BIG - 64 + i // 3, "deadline": BIG,
              "demand": [1000, 1000, 1000]} for i in range(64)]
    provs = [{"provider_id": f"p{k}", "capacity": 1 + k * (BIG // 8), "backlog": BIG, "history": [BIG] * 8,
              "reputation_ppm": 10**6} for k in range(8)]
    scn = scenario_from_chain(tasks, provs)
    assert_same(scn)
    provs1 = [dict(p, capacity=1) for p in provs]   # slowest providers: largest queue times
    assert_same(scenario_from_chain(tasks, provs1))


def test_pair_features_reference_is_features_module():
    """The reference copy still matches the shared features.pair_features (float path, solvers)."""
    scn = generate_scenario(7, 30, 5)
    proc, free, capq = proc_times(scn), initial_free(scn).copy(), relative_capacity(scn)
    for i in range(scn.n_tasks):
        assert np.array_equal(pair_features(free, i, scn.arrival, proc, capq),
                              pair_features_ref(free, i, scn.arrival, list(proc), capq))
        free[i % scn.n_providers] += 3


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(scn=st.one_of(raw_scenarios(), st.integers(0, 2**31).map(generate_scenario)))
def test_task_inputs_equal_shared_features_and_graph(scn):
    """The kernel's GNN inputs == features.task_features and the self-looped task graph (float path's inputs)."""
    n = scn.n_tasks
    h, ptr, idx, deg = qk.task_inputs(scn.work, scn.demand, scn.arrival, scn.deadline, int(scn.capacity.sum()),
                                      ONE, FEAT_CLIP, WORK_SCALE, TIME_SCALE, DEMAND_MAX, LOOK_MS, TIME_WINDOW_MS,
                                      SIM_NUM, SIM_DEN)
    assert np.array_equal(h, task_features(scn))
    src, dst = graph_with_self_loops(scn)
    adj = np.zeros((n, n), dtype=np.int64)
    adj[dst, src] = 1
    assert np.array_equal(deg, adj.sum(axis=1))
    for i in range(n):
        assert idx[ptr[i]:ptr[i + 1]].tolist() == np.nonzero(adj[i])[0].tolist()


def test_linear_and_gnn_primitives_with_negative_values():
    rng = np.random.default_rng(0)
    for _ in range(20):
        x = rng.integers(-(1 << 20), 1 << 20, size=(9, 5), dtype=np.int64)
        w = rng.integers(-(1 << 14), 1 << 14, size=(4, 5), dtype=np.int64)
        b = rng.integers(-(1 << 14), 1 << 14, size=4, dtype=np.int64)
        assert np.array_equal(qk.linear(x, w, b, True, 12), (x @ w.T + (b << 12)) >> 12)
        src = rng.integers(0, 9, size=30, dtype=np.int64)   # with duplicate edges
        dst = rng.integers(0, 9, size=30, dtype=np.int64)
        loops = np.arange(9, dtype=np.int64)
        src, dst = np.concatenate([src, loops]), np.concatenate([dst, loops])
        adj = np.zeros((9, 9), dtype=np.int64)
        adj[dst, src] = 1
        deg = adj.sum(axis=1)
        ptr, idx, kdeg = qk._csr(adj.astype(np.uint8))
        assert np.array_equal(kdeg, deg)
        wg = np.ascontiguousarray(w.T)
        ref = np.maximum(0, (adj @ ((x @ wg) >> 12)) // deg[:, None] + b)
        assert np.array_equal(qk.gnn_layer(x, ptr, idx, kdeg, wg, b, 12), ref)


def test_empty_and_warm_up():
    warm_up()
    scn = generate_scenario(3, 8, 3)
    empty = scenario_from_chain([], [{"provider_id": "p", "capacity": 1, "backlog": 0, "history": [],
                                      "reputation_ppm": 0}])
    a, lg = allocate_int_logits(load_quant(), empty)
    assert a.shape == (0,) and lg.shape == (0, 1)
    assert np.array_equal(allocate_int(None, scn), allocate_int_logits_ref(load_quant(), scn)[0])


def test_task_sort_key_fast_path_matches_generic():
    from pocnet.models.poc import PocTask
    from pocnet.models.scenario import task_sort_key

    class ItemRecord:  # not a dict, no attributes: item access only (generic path)
        def __init__(self, d):
            self.d = d

        def __getitem__(self, k):
            return self.d[k]

    t = PocTask("t7", 5, (3, 2, 1), 10, 20)
    d = {"task_id": "t7", "work": 5, "demand": [3, 2, 1], "arrival": 10, "deadline": 20}
    assert task_sort_key(t) == task_sort_key(d) == task_sort_key(ItemRecord(d)) == (10, "t7", 5, 20, (3, 2, 1))
