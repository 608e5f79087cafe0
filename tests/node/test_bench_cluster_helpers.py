"""Pure helpers of bench/bench_cluster.py: the per-height identity check and the peak pick."""
import importlib.util
import sys
from pathlib import Path

SPEC = importlib.util.spec_from_file_location("bench_cluster", Path(__file__).parents[2] / "bench" / "bench_cluster.py")
bench = importlib.util.module_from_spec(SPEC)
sys.modules["bench_cluster"] = bench
SPEC.loader.exec_module(bench)  # type: ignore[union-attr]


def _chain(n: int, tag: str = "") -> dict[int, tuple[str, str]]:
    return {h: (f"hash{h}{tag}", f"root{h}{tag}") for h in range(1, n + 1)}


def test_identical_chains_checked_up_to_the_slowest_peer():
    res = bench.identity_check({"peer0": _chain(12), "peer1": _chain(10), "peer2": _chain(11)})
    assert res["ok"] and res["checked_heights"] == 10 and res["max_head"] == 12
    assert res["mismatch_count"] == 0


def test_a_different_hash_or_state_root_at_one_height_is_reported():
    bad = _chain(10)
    bad[7] = ("hash7", "otherroot")
    res = bench.identity_check({"peer0": _chain(10), "peer1": bad})
    assert not res["ok"] and res["mismatch_count"] == 1
    assert res["mismatches"][0]["height"] == 7
    assert res["mismatches"][0]["peers"]["peer1"] == ["hash7", "otherroot"]


def test_a_height_a_peer_did_not_return_is_a_mismatch():
    gap = _chain(10)
    del gap[4]
    res = bench.identity_check({"peer0": _chain(10), "peer1": gap})
    assert not res["ok"] and [m["height"] for m in res["mismatches"]] == [4]


def test_no_peers_or_empty_chains_are_not_ok():
    assert not bench.identity_check({})["ok"]
    assert not bench.identity_check({"peer0": {}, "peer1": {}})["ok"]


def test_peak_is_the_highest_committed_rate_of_the_search():
    runs = [{"committed_tx_per_s": 1490.0}, {"committed_tx_per_s": 1830.5}, {"committed_tx_per_s": 1760.0}]
    assert bench.peak_of(runs) == 1830.5
