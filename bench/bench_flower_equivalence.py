"""Flower learners vs `pocnet fml simulate --on-chain`: same seeds, same chain outcome?

Runs both (each with its own fresh local 4-peer cluster), then restarts each chain and
compares, round by round, what the chain recorded: coalitions (heads and members),
incentives, payouts, contributions, flags and every learner's final reputation, plus
the accuracies each run reported. Prints a markdown table (docs/fml.md § Flower learners)::

    nice -n 19 .venv/bin/python bench/bench_flower_equivalence.py --learners 40 --rounds 5 --out eq
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

from pocnet.fml.chain_client import FmlChainClient
from pocnet.node.cluster import LocalCluster

REPO = Path(__file__).resolve().parents[1]


def chain_rounds(home: Path, base_port: int) -> tuple[list[dict], dict[str, int]]:
    """Every closed round's view and every learner's global reputation, read back from a stopped chain."""
    with LocalCluster(home, 4, base_port) as lc:
        views = []
        for url in lc.urls:
            c = FmlChainClient(url)
            rs = sorted(c.rounds(phase="closed", limit=1000), key=lambda r: int(r["id"]))
            views.append([c.round(int(r["id"])) for r in rs])
            c.close()
        assert all(v == views[0] for v in views), f"peers of {home} disagree"
        c = FmlChainClient(lc.urls[0])
        learners = sorted({a for v in views[0] for a in v.get("reputations", {})})
        reps = {a: int(c.reputation(a)["global_reputation"]) for a in learners}
        c.close()
    return views[0], reps


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--learners", type=int, default=40)
    ap.add_argument("--coalitions", type=int, default=4)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--data-limit", type=int, default=0)
    ap.add_argument("--base-port", type=int, default=28650)
    ap.add_argument("--out", type=Path, required=True)
    a = ap.parse_args()
    a.out.mkdir(parents=True, exist_ok=True)
    py = sys.executable
    common = ["--learners", str(a.learners), "--coalitions", str(a.coalitions), "--rounds", str(a.rounds)]
    lim = ["--data-limit", str(a.data_limit)] if a.data_limit else []
    times = {}
    t = time.time()
    subprocess.run([py, "-m", "pocnet.node.cli", "fml", "simulate", "--on-chain", "--fresh", "--schemes", "gfml",
                    "--seeds", str(a.seed), "--base-port", str(a.base_port), "--out", str(a.out / "sim"), *common, *lim],
                   check=True, cwd=REPO)
    times["simulate"] = time.time() - t
    t = time.time()
    subprocess.run([py, "-m", "pocnet.fml.flower.local", "--seed", str(a.seed), "--base-port", str(a.base_port + 10),
                    "--round-timeout", "1800", "--out", str(a.out / "flower"), *common, *lim], check=True, cwd=REPO)
    times["flower"] = time.time() - t
    sim_run = json.loads((a.out / "sim" / "report.json").read_text())["runs"][0]
    fl = json.loads((a.out / "flower" / "flower-result.json").read_text())
    sv, sreps = chain_rounds(a.out / "sim" / "chain", a.base_port + 20)
    fv, freps = chain_rounds(a.out / "flower" / "chain", a.base_port + 30)
    keys = ("coalitions", "members", "reports", "payouts", "contributions", "flags", "reputations")
    rows = []
    for r, (s, f) in enumerate(zip(sv, fv), start=1):
        same = {k: s.get(k) == f.get(k) for k in keys}
        same["plan"] = same["coalitions"] and same["members"]
        same["payouts"] = same["payouts"] and same["reports"]
        same["contributions"] = same["contributions"] and same["reputations"]
        n_members = len(s.get("members", {}))
        sacc = sim_run["rounds"][r - 1]["acc"]
        facc = fl["rounds"][r - 1].get("acc", float("nan"))
        rows.append((r, len(s.get("coalitions", [])), n_members, same["plan"], same["payouts"], same["contributions"],
                     same["flags"], sum(s["payouts"].values()) / 1e6, sum(f["payouts"].values()) / 1e6, sacc, facc))
    out = {"rounds_compared": len(rows), "rounds": rows, "reputations_equal": sreps == freps,
           "n_reputations": len(sreps), "times_s": times}
    (a.out / "equivalence.json").write_text(json.dumps(out, indent=1))
    print("| round | coalitions | members | plan equal | reports + payouts equal | q + reputations equal | flags equal "
          "| payout total sim / flower (tokens) | personalised acc sim / flower |")
    print("|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r[0]} | {r[1]} | {r[2]} | {r[3]} | {r[4]} | {r[5]} | {r[6]} | {r[7]:.6f} / {r[8]:.6f} "
              f"| {r[9]:.4f} / {r[10]:.4f} |")
    print(f"final global reputations equal for all {len(sreps)} learners: {sreps == freps}; "
          f"wall: simulate {times['simulate']:.0f} s, flower {times['flower']:.0f} s")
    return 0 if all(all(r[3:7]) for r in rows) and sreps == freps else 1


if __name__ == "__main__":
    sys.exit(main())
