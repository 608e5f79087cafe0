"""Sensitivity of "GFML is the most accurate" (issue 12 item 5): a grid decided before running.

Grid: classes per learner in {2, 4} x personalisation steps in {0, 1, 5}; schemes GFML,
fixed coalitions (+ Stackelberg), random coalitions (+ Stackelberg) and the oracle
diagnostic (coalitions from the true classes); seeds 0-4. For every cell: GFML minus each
other scheme paired by seed (same population and data), mean difference and 95 %
Student-t half-width of the final personalised accuracy and of its mean over the last
rounds (fml.report.paired_rows).

Jobs run seed-major (every cell gets seed 0, then seed 1, ...), each finished run is
appended to OUT/runs.jsonl at once, so an interrupted grid still holds whole seeds of
every cell; ``--summarise`` rebuilds the table and the plot from runs.jsonl.

    nice -n 19 .venv/bin/python bench/bench_fml_sensitivity.py --out bench/results_fml_sensitivity --jobs 2
    .venv/bin/python bench/bench_fml_sensitivity.py --out bench/results_fml_sensitivity --summarise
"""
from __future__ import annotations

import argparse
import json
import math
import multiprocessing
import time
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from dataclasses import replace
from pathlib import Path

CLASSES = (2, 4)
STEPS = (0, 1, 5)
SCHEMES = ("gfml", "fixed-stackelberg", "random-stackelberg", "oracle-stackelberg")
SEEDS = (0, 1, 2, 3, 4)


def _jobs(args) -> list[tuple[int, int, str, int]]:
    return [(c, s, k, seed) for seed in args.seeds for c in CLASSES for s in STEPS for k in SCHEMES]


def _cfg(args, classes: int, steps: int):
    from pocnet.fml.driver import RunConfig
    from pocnet.fml.perfedavg import PerFedAvgConfig

    return RunConfig(n_learners=args.learners, n_coalitions=args.coalitions, rounds=args.rounds,
                     classes_per_learner=classes, learn=replace(PerFedAvgConfig(), personal_steps=steps))


def run_grid(args) -> None:
    from pocnet.fml import cli
    from pocnet.fml.data import load_dataset

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    log = out / "runs.jsonl"
    done = set()
    if log.exists():
        for line in log.read_text().splitlines():
            r = json.loads(line)
            done.add((r["config"]["classes_per_learner"], r["config"]["personal_steps"], r["scheme"], r["seed"]))
    todo = [j for j in _jobs(args) if j not in done]
    print(f"{len(todo)} run(s) to do ({len(done)} already in {log})", flush=True)
    data = load_dataset(args.dataset)
    t0 = time.time()
    with ProcessPoolExecutor(max_workers=args.jobs, mp_context=multiprocessing.get_context("spawn"),
                             initializer=cli._init_worker, initargs=(data,)) as pool:
        pending = {pool.submit(cli._offline_job, "main", k, seed, _cfg(args, c, s)): (c, s, k, seed)
                   for c, s, k, seed in todo}
        left = set(pending)
        while left:
            finished, left = wait(left, return_when=FIRST_COMPLETED)
            for fut in finished:
                r = cli._clean(fut.result())
                with log.open("a") as fh:
                    fh.write(json.dumps(r) + "\n")
                print(f"{time.time() - t0:7.0f} s  done {pending[fut]}", flush=True)
    (out / "meta.json").write_text(json.dumps({"dataset": args.dataset, "learners": args.learners,
                                               "coalitions": args.coalitions, "rounds": args.rounds,
                                               "seeds": list(args.seeds), "elapsed_s": round(time.time() - t0, 1)}))


def summarise(args) -> None:
    from pocnet.fml.report import paired_rows

    out = Path(args.out)
    runs = [json.loads(line) for line in (out / "runs.jsonl").read_text().splitlines()]
    rows = []
    for c in CLASSES:
        for s in STEPS:
            cell = [r for r in runs if r["config"]["classes_per_learner"] == c and r["config"]["personal_steps"] == s]
            gfml = [r for r in cell if r["scheme"] == "gfml"]
            acc = sum(r["final"]["acc"] for r in gfml) / len(gfml) if gfml else math.nan
            for p in paired_rows(cell, "gfml"):
                rows.append({"classes": c, "steps": s, "scheme": p["scheme"], "seeds": p["seeds"], "gfml_acc": acc,
                             "acc": p["acc"], "acc_late": p["acc_late"]})
    (out / "sensitivity.json").write_text(json.dumps(rows, indent=1))

    def fmt(d: dict) -> str:
        return f"{100 * d['diff']:+.2f} ± {100 * d['ci95']:.2f} ({d['better_on']})"

    lines = ["| classes | steps | GFML final acc | GFML − scheme | final personalised acc (pp) | last-5-rounds acc (pp) | seeds |",
             "|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['classes']} | {r['steps']} | {100 * r['gfml_acc']:.1f} % | {r['scheme']} | {fmt(r['acc'])} | "
                     f"{fmt(r['acc_late'])} | {r['seeds']} |")
    (out / "sensitivity.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    _plot(rows, out / "sensitivity.png")


def _plot(rows: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    others = [k for k in SCHEMES if k != "gfml"]
    fig, axes = plt.subplots(1, len(CLASSES), figsize=(10, 3.8), sharey=True)
    for ax, c in zip(axes, CLASSES):
        for n, k in enumerate(others):
            pts = [r for r in rows if r["classes"] == c and r["scheme"] == k]
            xs = [STEPS.index(r["steps"]) + (n - 1) * 0.2 for r in pts]
            ax.errorbar(xs, [100 * r["acc_late"]["diff"] for r in pts],
                        yerr=[100 * (r["acc_late"]["ci95"] if math.isfinite(r["acc_late"]["ci95"]) else 0) for r in pts],
                        fmt="o", capsize=3, label=f"GFML − {k}")
        ax.axhline(0, color="grey", lw=0.8)
        ax.set_xticks(range(len(STEPS)), [str(s) for s in STEPS])
        ax.set_xlabel("personalisation steps")
        ax.set_title(f"{c} classes per learner")
    axes[0].set_ylabel("personalised accuracy, last 5 rounds (pp)\npaired by seed, 95 % CI")
    axes[-1].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", default="bench/results_fml_sensitivity")
    ap.add_argument("--dataset", default="fashion-mnist")
    ap.add_argument("--learners", type=int, default=20)
    ap.add_argument("--coalitions", type=int, default=2)
    ap.add_argument("--rounds", type=int, default=10)
    ap.add_argument("--seeds", type=lambda t: tuple(int(x) for x in t.split(",")), default=SEEDS)
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--summarise", action="store_true")
    args = ap.parse_args()
    summarise(args) if args.summarise else run_grid(args)


if __name__ == "__main__":
    main()
