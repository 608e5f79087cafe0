"""Distributions of the head's evidence-of-work signals, honest vs misbehaving members.

Runs GFML offline and records, for every member of every coalition and round, three
candidate signals as a ratio to a coalition reference: the update length along the
member's own validation descent direction (``work``, what the settlement uses) over the
coalition's upper quartile, the update norm (``grad_norm``) over the coalition median,
and the leave-one-out loss reduction. Prints percentiles per group (honest / misbehaving).

    nice -n 19 .venv/bin/python bench/bench_fml_evidence.py --kind disguised --rate 0.25 --rounds 8
"""
from __future__ import annotations

import argparse

import numpy as np
import torch

from pocnet.fml import driver
from pocnet.fml.data import load_dataset
from pocnet.fml.schemes import OfflineCoordinator
from pocnet.games.params import GameParams


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--kind", default="disguised", choices=driver.KINDS)
    ap.add_argument("--rate", type=float, default=0.25)
    ap.add_argument("--rounds", type=int, default=8)
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args()
    torch.set_num_threads(1)
    rows: list[tuple[bool, float, float]] = []
    orig = driver.make_reports

    def spy(plan, measured, bad, chain, observed=None):  # noqa: ANN001, ANN202
        for cp in plan.coalitions.values():
            work = [measured[m][2] for m in cp.members]
            norm = [measured[m][1] for m in cp.members]
            uq, med = float(np.quantile(work, 0.75)), float(np.median(norm))
            srt = sorted(work)
            second = srt[-2] if len(srt) >= 3 else srt[-1]
            for m in cp.members:
                rows.append((m in bad, measured[m][2] / uq if uq > 0 else 0.0, measured[m][1] / med if med > 0 else 0.0,
                             measured[m][2] / second if second > 0 else 0.0))
        return orig(plan, measured, bad, chain, observed)

    driver.make_reports = spy
    data = load_dataset("fashion-mnist")
    cfg = driver.RunConfig(rounds=a.rounds, misbehave_rate=a.rate, misbehaviour_kind=a.kind)
    p = GameParams()
    res = driver.run(OfflineCoordinator("gfml", p), data, cfg, a.seed, p)
    arr = np.array(rows)
    print(f"kind={a.kind} rate={a.rate} rounds={a.rounds} seed={a.seed} member-rounds={len(arr)}")
    print(f"profit honest {res.final['profit_per_honest']:.2f}  misbehaving {res.final['profit_per_misbehaving']:.2f}")
    for name, col in (("work / upper quartile", 1), ("grad_norm / median", 2), ("work / second largest", 3)):
        for label, mask in (("honest", arr[:, 0] == 0), ("misbehaving", arr[:, 0] == 1)):
            v = arr[mask, col]
            if len(v):
                q = np.percentile(v, [5, 10, 50, 90])
                print(f"{name:22s} {label:12s} p5 {q[0]:.2f} p10 {q[1]:.2f} p50 {q[2]:.2f} p90 {q[3]:.2f}")


if __name__ == "__main__":
    main()
