"""Solve + check random bandwidth-market instances (Sec. VI-A draws) and report convergence, check gains and time.

    nice -n 19 .venv/bin/python bench/bench_market.py --n 6 --m 4 --seeds 20 --d-scale 1,2 --json out.json
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import time

import numpy as np

from pocnet.games import market as mk


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=6)
    ap.add_argument("--m", type=int, default=4)
    ap.add_argument("--seeds", type=int, default=20)
    ap.add_argument("--d-scale", default="1,2", help="multiply the drawn twin sizes D_i (2: bounds bind often)")
    ap.add_argument("--kappa", type=float, default=15.5)
    ap.add_argument("--json", default=None)
    a = ap.parse_args()
    rows = []
    for ds in [float(x) for x in a.d_scale.split(",")]:
        for seed in range(a.seeds):
            inst = mk.random_instance(np.random.default_rng(seed), a.n, a.m, kappa=a.kappa)
            inst = dataclasses.replace(inst, D_mb=tuple(x * ds for x in inst.D_mb))
            t0 = time.perf_counter()
            eq = mk.solve(inst)
            t1 = time.perf_counter()
            ch = mk.check_equilibrium(inst, eq.prices, eq.demands)
            t2 = time.perf_counter()
            rows.append({"d_scale": ds, "seed": seed, "solve_s": t1 - t0, "check_s": t2 - t1,
                         "iterations": eq.iterations, "converged": eq.converged, "passed": ch.ok,
                         "max_leader_gain": ch.max_leader_gain, "max_follower_gain": ch.max_follower_gain,
                         "binding": sum(eq.delay_binding), "out": sum(s == "out" for s in eq.status)})
            print(json.dumps(rows[-1]))
    for ds in sorted({r["d_scale"] for r in rows}):
        rs = [r for r in rows if r["d_scale"] == ds]
        print(f"d_scale {ds}: {sum(r['passed'] for r in rs)}/{len(rs)} passed the check, "
              f"{sum(r['converged'] for r in rs)} converged, {sum(r['binding'] > 0 for r in rs)} with a binding bound, "
              f"{sum(r['out'] > 0 for r in rs)} with an MSP out; solve median {np.median([r['solve_s'] for r in rs]):.2f} s "
              f"max {max(r['solve_s'] for r in rs):.2f} s; check median {np.median([r['check_s'] for r in rs]):.2f} s; "
              f"max gains {max(r['max_leader_gain'] for r in rs):.1e} / {max(r['max_follower_gain'] for r in rs):.1e}")
    if a.json:
        with open(a.json, "w") as f:
            json.dump({"args": vars(a), "rows": rows}, f, indent=1)


if __name__ == "__main__":
    main()
