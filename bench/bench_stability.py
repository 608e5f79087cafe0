"""Stability without the no-return rule: how often a learner gains by returning, and the
bounded final pass (games.stability) that allows returns.

Part 1 (--instances): random round-1 instances (synthetic learners, seeded head draw),
formed by the switch rule with its history rule; counts instances where some learner
gains by going back to a coalition it left (max gain), then runs the final pass.
Part 2 (--n/--k): the same at scale, timed (wall and CPU).

    .venv/bin/python bench/bench_stability.py --instances 60
    .venv/bin/python bench/bench_stability.py --instances 0 --n 10000 --k 100 --seeds 1,2,3
"""
from __future__ import annotations

import argparse
import os
import time

os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np  # noqa: E402

from pocnet.games.coalition import (_initial_assignment, prepare_formation, random_groups, run_switch_rule,  # noqa: E402
                                    select_heads)
from pocnet.games.params import GameParams  # noqa: E402
from pocnet.games.scenario import synthetic_learners  # noqa: E402
from pocnet.games.stability import gains_by_returning, stabilise_with_returns  # noqa: E402
from pocnet.games.switch_kernel import warm_up  # noqa: E402


def instance(n: int, k: int, seed: int, max_passes: int, data_range=(200, 3000)) -> dict:
    params = GameParams(n_coalitions=k)
    learners = synthetic_learners(n, seed, params, n_clusters=k, active_share=1.0, data_range=data_range)
    prof = {p.address: p for p in learners}
    groups = random_groups(list(prof), k, seed)
    heads_by_group = select_heads(groups, prof, {}, params)
    initial = {a: h for g, h in zip(groups, heads_by_group) if h for a in g}
    heads = [h for h in heads_by_group if h]
    rep = np.full((n, len(heads)), params.lam * params.r_th)
    fa = prepare_formation(learners, heads, rep, params, None)
    c0, t0 = time.process_time(), time.perf_counter()
    assign, _, sweeps, moves = run_switch_rule(fa, _initial_assignment(fa, initial))
    t1 = time.perf_counter()
    gains = gains_by_returning(fa, assign)
    t2 = time.perf_counter()
    res = stabilise_with_returns(fa, assign, max_passes)
    t3, c3 = time.perf_counter(), time.process_time()
    return {"n": n, "k": len(heads), "seed": seed, "violations": len(gains),
            "max_gain": max((g[3] for g in gains), default=0.0), "formation_s": t1 - t0,
            "pass_s": t3 - t2, "cpu_s": c3 - c0, "passes": res.passes, "pass_moves": res.moves,
            "stable": res.stable}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--instances", type=int, default=60)
    ap.add_argument("--n", type=int, default=10000)
    ap.add_argument("--k", type=int, default=100)
    ap.add_argument("--seeds", default="")
    ap.add_argument("--max-passes", type=int, default=10)
    a = ap.parse_args()
    warm_up()
    if a.instances:
        rows = []
        sizes = (20, 40, 60, 80)
        for i in range(a.instances):
            rows.append(instance(sizes[i % 4], 4, i // 4, a.max_passes))
        bad = [r for r in rows if r["violations"]]
        print(f"{len(bad)} of {len(rows)} instances (N in {sizes}, K=4) have a learner that gains by returning; "
              f"max gain {max((r['max_gain'] for r in rows), default=0):.3f}")
        st = [r for r in rows if r["stable"]]
        print(f"final pass (<= {a.max_passes} passes): truly Nash-stable in {len(st)} of {len(rows)}; "
              f"passes mean {np.mean([r['passes'] for r in rows]):.2f} max {max(r['passes'] for r in rows)}, "
              f"moves mean {np.mean([r['pass_moves'] for r in rows]):.1f}")
        print(f"  of the {len(bad)} unstable ones: {sum(r['stable'] for r in bad)} reach stability")
    for s in (int(x) for x in a.seeds.split(",") if x.strip()):
        r = instance(a.n, a.k, s, a.max_passes, data_range=(100, 1500))
        print(f"N={r['n']} K={r['k']} seed={s}: violations {r['violations']} (max gain {r['max_gain']:.3f}); "
              f"formation {r['formation_s']:.2f} s; final pass {r['pass_s']:.2f} s, {r['passes']} passes, "
              f"{r['pass_moves']} moves, stable={r['stable']}; cpu {r['cpu_s']:.2f} s", flush=True)


if __name__ == "__main__":
    main()
