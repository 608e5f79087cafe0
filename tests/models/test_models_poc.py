"""Consensus ranking: rule, determinism, integer-only path, golden vectors."""
import hashlib
import json
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given, settings, strategies as st

from pocnet.models.poc import MAX_TASKS, PocProvider, PocTask, compute_ranking, inputs_from_scenario, tie_key
from pocnet.models.quant import load_quant, weights_sha256

ROOT = Path(__file__).resolve().parents[2]
GOLDEN = Path(__file__).resolve().parent / "golden_poc.json"


def make_inputs(seed: int, n: int = 20, m: int = 5):
    from pocnet.models.scenario import generate_scenario
    return inputs_from_scenario(generate_scenario(seed, n, m))


def test_contribution_rule_matches_allocation():
    tasks, provs = make_inputs(1)
    r = compute_ranking(tasks, provs, "ab" * 32)
    ordered = sorted(tasks, key=lambda t: (t.arrival, t.task_id))
    pv = sorted(provs, key=lambda p: p.provider_id)
    absorbed = [0] * len(pv)
    for t, k in zip(ordered, r.allocation):
        absorbed[k] += t.work
    assert r.contribution == {p.provider_id: absorbed[k] * p.reputation_ppm // 1_000_000 for k, p in enumerate(pv)}
    keys = [(-r.contribution[pid], tie_key("ab" * 32, pid)) for pid in r.ranking]
    assert keys == sorted(keys) and sorted(r.ranking) == sorted(p.provider_id for p in provs)


def test_no_tasks_uses_history_and_hash_ties():
    provs = [PocProvider("a", 1, 0, (5, 5), 1_000_000), PocProvider("b", 1, 0, (10,), 1_000_000),
             PocProvider("c", 1, 0, (1,), 500_000), PocProvider("d", 1, 0, (), 0)]
    r = compute_ranking([], provs, "00")
    assert r.allocation == () and r.contribution == {"a": 10, "b": 10, "c": 0, "d": 0}
    assert set(r.ranking[:2]) == {"a", "b"} and set(r.ranking[2:]) == {"c", "d"}
    h = {pid: hashlib.sha256(("00" + pid).encode()).hexdigest() for pid in "abcd"}
    assert r.ranking[:2] == tuple(sorted("ab", key=h.get)) and r.ranking[2:] == tuple(sorted("cd", key=h.get))
    # a different prev_hash can reorder the ties, never the contribution order
    for ph in ("01", "02", "03", "04"):
        rr = compute_ranking([], provs, ph)
        assert set(rr.ranking[:2]) == {"a", "b"}


def test_task_limit_oldest_64():
    tasks, provs = make_inputs(2, n=64, m=4)
    extra = [PocTask(f"z{i}", 50, (1, 1, 1), 10**9 + i, 10**9 + i) for i in range(10)]
    assert compute_ranking(tasks + extra, provs, "x") == compute_ranking(tasks, provs, "x")
    assert len(compute_ranking(tasks + extra, provs, "x").allocation) == MAX_TASKS


@settings(max_examples=15, deadline=None)
@given(seed=st.integers(0, 10**6), rot=st.integers(0, 7))
def test_deterministic_and_input_order_invariant(seed, rot):
    tasks, provs = make_inputs(seed, n=12, m=4)
    a = compute_ranking(tasks, provs, "cafe")
    k = rot % len(provs)
    b = compute_ranking(list(reversed(tasks)), provs[k:] + provs[:k], "cafe")
    assert a == b
    assert len(a.digest) == 64


def test_rejects_bad_reputation_and_duplicates():
    p = PocProvider("a", 1, 0, (), 1_000_001)
    with pytest.raises(ValueError):
        compute_ranking([], [p], "")
    q = PocProvider("a", 1, 0, (), 1)
    with pytest.raises(ValueError):
        compute_ranking([], [q, q], "")


def test_consensus_path_imports_no_float_libraries():
    code = ("import sys; from models.poc import compute_ranking, PocTask, PocProvider;"
            "r = compute_ranking([PocTask('t', 5, (1, 2, 3), 0, 9)], [PocProvider('p', 1, 0, (1,), 10**6)], 'h');"
            "bad = [m for m in ('torch', 'dgl', 'deap', 'pocnet.models.net', 'pocnet.models.dgl_compat') if m in sys.modules];"
            "print(bad)")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True,
                         env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"})
    assert out.stdout.strip() == "[]"


def test_shipped_weights_small_and_pinned():
    g = json.loads(GOLDEN.read_text())
    path = ROOT / "models" / "weights" / "student_q.json"
    assert path.stat().st_size < 1_000_000
    assert weights_sha256() == weights_sha256(path) == g["weights_sha256"]
    q = load_quant()
    assert all(v.dtype.kind == "i" for v in q.tensors.values())
    lut = q.lut.tolist()
    assert lut == sorted(lut) and lut[0] >= 0 and lut[-1] <= 1 << q.frac_bits


def test_golden_vectors():
    g = json.loads(GOLDEN.read_text())
    for case in g["cases"]:
        tasks = [PocTask(t["task_id"], t["work"], tuple(t["demand"]), t["arrival"], t["deadline"])
                 for t in case["tasks"]]
        provs = [PocProvider(p["provider_id"], p["capacity"], p["backlog"], tuple(p["history"]),
                             p["reputation_ppm"]) for p in case["providers"]]
        r = compute_ranking(tasks, provs, case["prev_hash"])
        assert list(r.allocation) == case["allocation"]
        assert r.contribution == case["contribution"]
        assert list(r.ranking) == case["ranking"]
        assert r.digest == case["digest"]


def test_extreme_values_do_not_overflow():
    big = (1 << 40) - 1
    tasks = [PocTask(f"t{i}", big - i, (1000, 1000, 1000), big - 64 + i, big) for i in range(64)]
    provs = [PocProvider(f"p{k}", 1 + k * (big // 8), big, (big,) * 8, 1_000_000) for k in range(8)]
    r = compute_ranking(tasks, provs, "ff")
    assert r == compute_ranking(tasks, provs, "ff")
    assert len(r.allocation) == 64 and all(0 <= k < 8 for k in r.allocation)
    assert sum(r.contribution.values()) == sum(t.work for t in tasks)


def test_duplicate_task_ids_do_not_depend_on_input_order():
    provs = [PocProvider("a", 1, 0, (), 1_000_000), PocProvider("b", 3, 0, (), 1_000_000)]
    t1, t2 = PocTask("dup", 90, (1, 2, 3), 5, 9), PocTask("dup", 10, (3, 2, 1), 5, 9)
    assert compute_ranking([t1, t2], provs, "h") == compute_ranking([t2, t1], provs, "h")


def test_explicit_weights_give_same_result_and_digest():
    tasks, provs = make_inputs(5, n=15, m=4)
    assert compute_ranking(tasks, provs, "aa", weights=load_quant()) == compute_ranking(tasks, provs, "aa")
