"""Record the head's work measurements and the pay at stake, per member and round, to compare
settlement rules on the same traces (docs/fml.md "Settlement on evidence of work").

Runs GFML offline with head-measured reports and writes one JSON line per member-round:
round, head, member, misbehaving, work (float, as measured), the competition reward and the
reputation share the old rule pays (work factor 1), the energy really spent, and the work
factor the current rule gave. ``--evaluate`` replays candidate rules (games.settlement) on
the traces: honest pay kept vs the old rule, profit honest vs misbehaving. The replay does
not feed the factors back into reputations and coalitions, which a full run does.

    nice -n 19 .venv/bin/python bench/bench_fml_work_traces.py --kind noisy --rate 0.5 --seed 0 --out T.jsonl
    .venv/bin/python bench/bench_fml_work_traces.py --evaluate T1.jsonl T2.jsonl ...
"""
from __future__ import annotations

import argparse
import json
from collections import defaultdict

import torch


def record(a) -> None:
    from pocnet.fml import driver
    from pocnet.fml.data import load_dataset
    from pocnet.fml.schemes import OfflineCoordinator
    from pocnet.games.params import GameParams

    torch.set_num_threads(1)
    p = GameParams(n_learners=a.learners, n_coalitions=a.coalitions)
    coord = OfflineCoordinator("gfml", p)
    rows: list[dict] = []
    state: dict = {}
    orig_reports, orig_settle = driver.make_reports, coord.settle_round

    def spy_reports(plan, measured, bad, chain, observed=None):  # noqa: ANN001, ANN202
        state["plan"], state["measured"], state["bad"] = plan, measured, bad
        return orig_reports(plan, measured, bad, chain, observed)

    def spy_settle(plan, reports, r):  # noqa: ANN001, ANN202
        s = orig_settle(plan, reports, r)
        raw = s.raw
        for h, cp in plan.coalitions.items():
            share = None
            for m in cp.members:
                e = raw.work_factors.get(m, 0)
                if e > 0:
                    share = raw.reputation_shares[m] * 1e6 / e
            for m in cp.members:
                rows.append({"seed": a.seed, "kind": a.kind, "rate": a.rate, "round": r, "head": h, "member": m,
                             "bad": m in state["bad"], "work": state["measured"][m][2],
                             "vgn": state["vgn"][m], "norm": state["norm"][m],
                             "flag": raw.flags.get(m), "comp_old": plan.raw.competition_rewards.get(m, 0.0),
                             "share_old": share, "factor": raw.work_factors.get(m, 0) / 1e6})
        return s

    from pocnet.fml.training import Trainer

    orig_train = Trainer.train_round

    def spy_train(self, *args, **kw):  # noqa: ANN001, ANN002, ANN003, ANN202
        res = orig_train(self, *args, **kw)
        state["vgn"] = {self.pop.addresses[j]: v for r in res.values() for j, v in r.val_grad_norm.items()}
        state["norm"] = {self.pop.addresses[j]: v for r in res.values() for j, v in r.grad_norm.items()}
        return res

    Trainer.train_round = spy_train
    driver.make_reports = spy_reports
    coord.settle_round = spy_settle
    data = load_dataset("fashion-mnist")
    cfg = driver.RunConfig(n_learners=a.learners, n_coalitions=a.coalitions, rounds=a.rounds, misbehave_rate=a.rate,
                           misbehaviour_kind=a.kind)
    res = driver.run(coord, data, cfg, a.seed, p)
    print(f"{a.kind} {a.rate} seed {a.seed}: profit honest {res.final['profit_per_honest']:.2f} "
          f"misbehaving {res.final['profit_per_misbehaving']:.2f}")
    with open(a.out, "w") as fh:
        for r in rows:
            fh.write(json.dumps(r) + "\n")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--kind", default="noisy")
    ap.add_argument("--rate", type=float, default=0.5)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--rounds", type=int, default=20)
    ap.add_argument("--learners", type=int, default=20)
    ap.add_argument("--coalitions", type=int, default=2)
    ap.add_argument("--out", default="traces.jsonl")
    ap.add_argument("--evaluate", nargs="*")
    a = ap.parse_args()
    if a.evaluate:
        evaluate(a.evaluate)
    else:
        record(a)


def evaluate(paths: list[str]) -> None:
    from pocnet.games import settlement

    for path in paths:
        rows = [json.loads(x) for x in open(path)]
        by_round: dict[int, list[dict]] = defaultdict(list)
        for r in rows:
            by_round[r["round"]].append(r)
        prev: dict[str, int] = {}
        pay_new = defaultdict(float)
        pay_old = defaultdict(float)
        bad = {}
        for rn in sorted(by_round):
            rs = by_round[rn]
            coals: dict[str, list[dict]] = defaultdict(list)
            for r in rs:
                coals[r["head"]].append(r)
            allwork = {r["member"]: int(r["work"] * 1e6) for r in rs if not r["flag"]}
            for _h, ms in coals.items():
                work = {r["member"]: int(r["work"] * 1e6) for r in ms if not r["flag"]}
                f = settlement.work_factors_round(work, allwork, prev) if hasattr(settlement, "work_factors_round") \
                    else settlement.work_factors(work, prev)
                sc = settlement.work_scores_round(work, allwork, prev) if hasattr(settlement, "work_scores_round") \
                    else settlement.work_scores(work, prev)
                prev.update(sc)
                share = next((r["share_old"] for r in ms if r["share_old"] is not None), 0.0)
                for r in ms:
                    old = r["comp_old"] + share
                    bad[r["member"]] = r["bad"]
                    if r["flag"]:
                        continue
                    pay_old[r["member"]] += old
                    pay_new[r["member"]] += old * f[r["member"]] / 1e6
        hon = [m for m in bad if not bad[m]]
        mis = [m for m in bad if bad[m]]
        keep = sum(pay_new[m] for m in hon) / max(1e-9, sum(pay_old[m] for m in hon))
        worst = min((pay_new[m] / pay_old[m] for m in hon if pay_old[m] > 0), default=float("nan"))
        mkeep = sum(pay_new[m] for m in mis) / max(1e-9, sum(pay_old[m] for m in mis)) if mis else float("nan")
        print(f"{path}: honest keep {keep:.3f} (worst honest {worst:.3f}); misbehaving keep {mkeep:.3f}")


if __name__ == "__main__":
    main()
