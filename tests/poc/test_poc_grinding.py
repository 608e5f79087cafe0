"""The grinding experiment (bench/bench_grinding.py) on a short run: grinding the old
prev_hash seed pays, the beacon leaves the adversary at its fair share."""
import importlib.util
import sys
from pathlib import Path

SPEC = importlib.util.spec_from_file_location("bench_grinding", Path(__file__).parents[2] / "bench" / "bench_grinding.py")
bench = importlib.util.module_from_spec(SPEC)
sys.modules["bench_grinding"] = bench
SPEC.loader.exec_module(bench)  # type: ignore[union-attr]


def test_grinding_prev_hash_pays_beacon_does_not():
    rep = bench.run_all(400, ks=(1, 16))
    rows = {(r["seed"], r["K"], r["withhold"]): r for r in rep["rows"]}
    fair = rows[("VRF beacon", 1, "")]["fair_share"]
    assert rows[("prev_hash seed", 16, "")]["share"] > 2.5 * fair
    assert abs(rows[("prev_hash seed", 1, "")]["z"]) < 4
    assert abs(rows[("VRF beacon", 1, "")]["z"]) < 4
    # withholding costs the adversary its own block: it cannot raise its share that way
    assert rows[("VRF beacon", 1, "self")]["share"] <= fair
    assert rows[("VRF beacon", 1, "self")]["withheld"] > 0
