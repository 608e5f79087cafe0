"""Time to a Nash-stable partition by the switch rule, N learners x K coalitions.

Scenarios (all learners active, addresses in order, seeded):
  round1 - every learner a newcomer (overall reputation lam * r_th for all),
           K heads picked by the head rule from a seeded random partition,
           which is also the starting partition (docs/model.md Algorithm 1, round 1);
  round2 - the round after: round 1 planned with plan_round and settled with
           seeded synthetic reports (loss reduction U[0, 0.05], completion time
           = predicted x U[1, 1.3]); formation starts from round 1's partition
           with re-selected heads and the reputations that settlement produced;
  mixed  - as round1, but each (learner, head) reputation drawn U[0, 1]
           (a stress case, not run by default: minutes at K >= 50).
Data sizes U[100, 1500] samples; other draws as games/scenario.py.

    PYTHONPATH=. .venv/bin/python bench/bench_coalition.py            # round1 + round2 grid
    PYTHONPATH=. .venv/bin/python bench/bench_coalition.py --n 10000 --k 100 --scenario round1

Prints a table, then the JSON rows (wall and CPU seconds: the CPU time is
less distorted when other processes load the machine). Timed: prepare_formation (per-pair
constants) + run_switch_rule (to stability) + building the result, i.e. one
form_coalitions call. Each result is re-checked for Nash stability (untimed).
The numba kernel is compiled (or loaded from its cache) once before the runs;
that first-call cost is printed separately.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import time

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import numpy as np  # noqa: E402

from pocnet.games.coalition import (  # noqa: E402
    _initial_assignment,
    _result,
    prepare_formation,
    random_groups,
    run_switch_rule,
    select_heads,
    stability_violations,
)
from pocnet.games.params import GameParams  # noqa: E402
from pocnet.games.round import MemberReport, formation_inputs, plan_round, settle_round  # noqa: E402
from pocnet.games.scenario import synthetic_learners  # noqa: E402
from pocnet.games.switch_kernel import warm_up  # noqa: E402


def one_run(n: int, k: int, scenario: str, seed: int, epsilon: float = GameParams.epsilon) -> dict:
    params = GameParams(n_coalitions=k, epsilon=epsilon)
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
        heads, initial, rep = list(fi.heads), fi.initial, fi.overall
        incentives = fi.incentives
    else:
        groups = random_groups(list(prof), k, seed)
        heads_by_group = select_heads(groups, prof, {}, params)
        initial = {a: h for g, h in zip(groups, heads_by_group) if h for a in g}
        heads = [h for h in heads_by_group if h]
        incentives = None
        if scenario == "round1":
            rep = np.full((n, len(heads)), params.lam * params.r_th)
        else:
            rep = rng.uniform(0.0, 1.0, size=(n, len(heads)))
    c0 = time.process_time()
    t0 = time.perf_counter()
    fa = prepare_formation(learners, heads, rep, params, incentives)
    t1 = time.perf_counter()
    assign0 = _initial_assignment(fa, initial)
    assign, left, sweeps, moves = run_switch_rule(fa, assign0)
    t2 = time.perf_counter()
    result = _result(fa, assign, left, sweeps, moves)
    t3 = time.perf_counter()
    c3 = time.process_time()
    stable = stability_violations(fa, assign, left) == []
    return {
        "scenario": scenario,
        "epsilon": epsilon,
        "n": n,
        "k": len(heads),
        "prepare_s": round(t1 - t0, 4),
        "switch_s": round(t2 - t1, 4),
        "total_s": round(t3 - t0, 4),
        "cpu_s": round(c3 - c0, 4),
        "sweeps": sweeps,
        "moves": moves,
        "sitting_out": len(result.sitting_out),
        "nash_stable": stable,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, nargs="*", default=[1000, 2500, 5000, 10000])
    ap.add_argument("--k", type=int, nargs="*", default=[10, 50, 100])
    ap.add_argument("--scenario", nargs="*", default=["round1", "round2"],
                    choices=["round1", "round2", "mixed"])
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--epsilon", type=float, default=GameParams.epsilon, help="switch threshold (default 1e-9)")
    ap.add_argument("--json-out", default=None, help="also write the rows to this file")
    args = ap.parse_args()
    t0 = time.perf_counter()
    warm_up()  # compile or load the numba kernel once, outside the timed runs
    warm_s = time.perf_counter() - t0
    print(f"kernel warm-up (numba compile or cache load): {warm_s:.2f} s")
    rows = []
    print(f"{'scenario':8} {'N':>6} {'K':>4} {'total s':>8} {'cpu s':>7} {'switch s':>8} {'sweeps':>6} {'moves':>7} {'out':>6} stable")
    for scenario in args.scenario:
        for n in args.n:
            for k in args.k:
                r = one_run(n, k, scenario, args.seed, args.epsilon)
                rows.append(r)
                print(f"{r['scenario']:8} {r['n']:>6} {r['k']:>4} {r['total_s']:>8.3f} {r['cpu_s']:>7.3f} {r['switch_s']:>8.3f} "
                      f"{r['sweeps']:>6} {r['moves']:>7} {r['sitting_out']:>6} {r['nash_stable']}", flush=True)
    import numba

    meta = {"python": platform.python_version(), "numpy": np.__version__, "numba": numba.__version__,
            "cpus": os.cpu_count(), "load_avg_1m": round(os.getloadavg()[0], 2), "warm_up_s": round(warm_s, 3)}
    print(json.dumps({"meta": meta, "rows": rows}))
    if args.json_out:
        with open(args.json_out, "w", encoding="utf-8") as fh:
            json.dump({"meta": meta, "rows": rows}, fh, indent=2)


if __name__ == "__main__":
    main()
