"""Convergence and check-pass rate of the market solver over a fixed random instance set.

The set is the property test's space (tests/market/test_market_game.py): N in 2..4, M in 2..3,
twin sizes D x {1, 2, 3}, kappa in {15.5, 1}, drawn from one master seed, so two versions of the
solver can be compared on the same instances (run this file from each checkout):

    nice -n 19 .venv/bin/python bench/bench_market_convergence.py --count 1600 --check-first 600
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import time
from typing import Any, Iterator

import numpy as np

from pocnet.games import market as mk


def instance_set(count: int, master: int = 20261201) -> Iterator[tuple[int, dict[str, Any]]]:
    rng = np.random.default_rng(master)
    for k in range(count):
        yield k, {"seed": int(rng.integers(0, 2**32 - 1)), "n": int(rng.integers(2, 5)), "m": int(rng.integers(2, 4)),
                  "d_scale": float(rng.choice([1.0, 2.0, 3.0])), "kappa": float(rng.choice([15.5, 1.0]))}


def build(seed: int, n: int, m: int, d_scale: float, kappa: float) -> mk.MarketInstance:
    inst = mk.random_instance(np.random.default_rng(seed), n, m, kappa=kappa)
    return dataclasses.replace(inst, D_mb=tuple(x * d_scale for x in inst.D_mb))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--count", type=int, default=1600, help="instances to solve")
    ap.add_argument("--check-first", type=int, default=600, help="run the equilibrium check on the first K")
    ap.add_argument("--master", type=int, default=20261201)
    ap.add_argument("--json", default=None)
    a = ap.parse_args()
    not_converged, failed_check = [], []
    checked = 0
    max_gain = 0.0
    t0 = time.process_time()
    for k, params in instance_set(a.count, a.master):
        inst = build(**params)
        eq = mk.solve(inst)
        if not eq.converged:
            not_converged.append({"k": k, **params})
            print(json.dumps({"not_converged": not_converged[-1]}), flush=True)
        if k < a.check_first:
            ch = mk.check_equilibrium(inst, eq.prices, eq.demands)
            checked += 1
            max_gain = max(max_gain, ch.max_leader_gain, ch.max_follower_gain)
            if not ch.ok:
                failed_check.append({"k": k, **params})
                print(json.dumps({"failed_check": failed_check[-1]}), flush=True)
    out = {"instances": a.count, "not_converged": len(not_converged), "checked": checked,
           "failed_check": len(failed_check), "max_check_gain": max_gain,
           "cpu_s": round(time.process_time() - t0, 1), "not_converged_cases": not_converged,
           "failed_check_cases": failed_check}
    print(json.dumps({k: v for k, v in out.items() if not k.endswith("_cases")}))
    if a.json:
        with open(a.json, "w") as f:
            json.dump(out, f, indent=1)


if __name__ == "__main__":
    main()
