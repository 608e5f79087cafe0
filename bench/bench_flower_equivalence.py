"""Flower learners vs the in-process GFML driver: same seeds, same chain outcome?

The chain draws each round's seed from the previous block hash (timestamps, validator
keys), so two runs on two fresh clusters get different heads and coalitions whatever the
learners do. The comparison therefore holds the chain fixed:

1. a Flower run (``pocnet.fml.flower.local``: SuperLink + one SuperNode per learner, a
   fresh 4-peer cluster) is recorded on chain A;
2. the same run is replayed in-process with ``fml.driver.run`` (the loop
   ``pocnet fml simulate --on-chain`` runs) against chain A's record: every round, the
   driver's embeddings must equal what the learners joined with (x 1e6), and the driver's
   head reports (loss reduction, update norm, evidence of work, completion time, as
   ``fml_report`` payloads) must equal what the strategy reported; the chain's plan,
   payouts and reputations are a function of exactly those, so they follow;
3. optionally (``--simulate``) a ``pocnet fml simulate --on-chain`` run on its own fresh
   cluster B, to show what a different chain seed changes.

    nice -n 19 .venv/bin/python bench/bench_flower_equivalence.py --learners 40 --rounds 5 --out eq
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Mapping, Sequence


from pocnet.fml.chain_client import FmlChainClient, report_payloads
from pocnet.fml.data import load_dataset
from pocnet.fml.driver import Plan, RunConfig, Settlement, run
from pocnet.fml.onchain import OnChainCoordinator
from pocnet.fml.schemes import plan_from_round_plan
from pocnet.games.params import GameParams
from pocnet.games.profile import LearnerProfile
from pocnet.games.quantize import quantize
from pocnet.games.round import MemberReport, RoundPlan
from pocnet.ledger.txtypes.fml_codec import SCALE
from pocnet.node.cluster import LocalCluster

REPO = Path(__file__).resolve().parents[1]


def read_chain(home: Path, base_port: int) -> tuple[list[dict], dict[str, int], bool]:
    """Every closed round (view + raw plan), final global reputations, and whether all peers agree."""
    with LocalCluster(home, 4, base_port) as lc:
        views = []
        for url in lc.urls:
            c = FmlChainClient(url)
            rs = sorted(c.rounds(phase="closed", limit=1000), key=lambda r: int(r["id"]))
            views.append([c.round(int(r["id"]), raw=True) for r in rs])
            c.close()
        c = FmlChainClient(lc.urls[0])
        learners = sorted({a for v in views[0] for a in v.get("reputations", {})})
        reps = {a: int(c.reputation(a)["global_reputation"]) for a in learners}
        c.close()
    return views[0], reps, all(v == views[0] for v in views)


class ReplayCoordinator(OnChainCoordinator):
    """The on-chain coordinator with the chain's answers read from a record instead of asked for."""

    def __init__(self, record: list[dict], params: GameParams, key_seed: int = 0) -> None:
        super().__init__([], None, params, key_seed=key_seed)  # type: ignore[arg-type]
        self.record = record
        self.checks: list[dict[str, Any]] = []

    def plan_round(self, learners: Sequence[LearnerProfile], round_no: int, seed: int) -> Plan:
        view = self.record[round_no - 1]
        rp = RoundPlan.from_dict(view["raw"]["plan"])
        self.round_ids[round_no] = int(view["id"])
        joined = {a: [quantize(float(x), SCALE) for x in e] for a, e in rp.embeddings.items()}
        mine = {self.key_of(p.address).address: [quantize(float(x), SCALE) for x in p.embedding]
                for p in learners if p.active}
        same = sum(joined.get(a) == e for a, e in mine.items())
        self.checks.append({"round": round_no, "embeddings_equal": same, "embeddings": len(mine)})
        return self._to_names(plan_from_round_plan(rp, round_no))

    def settle_round(self, plan: Plan, reports: Mapping[str, MemberReport], round_no: int) -> Settlement:
        view = self.record[round_no - 1]
        rid = int(view["id"])
        mine = {}
        for cp in plan.coalitions.values():
            sub = {self.key_of(m).address: reports[m] for m in cp.members if m in reports}
            for payload in report_payloads(rid, sub):
                for item in payload["reports"]:
                    mine[item.pop("member")] = item
        fields = ("loss_reduction", "grad_norm", "completion_ms", "work")
        recorded = {a: {k: r[k] for k in fields if k in r} for a, r in view["reports"].items()}
        same = sum(recorded.get(a) == r for a, r in mine.items())
        self.checks[-1].update(reports_equal=same, reports=len(mine), recorded=len(recorded))
        name = lambda a: self.to_name.get(a, a)  # noqa: E731
        return Settlement(q={name(a): v / 1e6 for a, v in view["contributions"].items()},
                          payouts={name(a): v / 1e6 for a, v in view["payouts"].items()},
                          global_reputation={name(a): v["global"] / 1e6 for a, v in view["reputations"].items()},
                          raw=view)


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--learners", type=int, default=40)
    ap.add_argument("--coalitions", type=int, default=4)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--data-limit", type=int, default=0)
    ap.add_argument("--base-port", type=int, default=28650)
    ap.add_argument("--port", type=int, default=29300, help="SuperLink port (SuperNodes: port+100+learner)")
    ap.add_argument("--learners-per-node", type=int, default=1, help="learners hosted by one SuperNode")
    ap.add_argument("--simulate", action="store_true", help="also run `pocnet fml simulate --on-chain` on its own chain")
    ap.add_argument("--skip-flower", action="store_true", help="reuse OUT/flower from an earlier run")
    ap.add_argument("--out", type=Path, required=True)
    a = ap.parse_args()
    a.out.mkdir(parents=True, exist_ok=True)
    py = sys.executable
    common = ["--learners", str(a.learners), "--coalitions", str(a.coalitions), "--rounds", str(a.rounds)]
    lim = ["--data-limit", str(a.data_limit)] if a.data_limit else []
    times: dict[str, float] = {}
    if not a.skip_flower:
        t = time.time()
        subprocess.run([py, "-m", "pocnet.fml.flower.local", "--seed", str(a.seed), "--base-port", str(a.base_port + 10),
                        "--round-timeout", "1800", "--port", str(a.port),
                        "--learners-per-node", str(a.learners_per_node), "--out", str(a.out / "flower"), *common, *lim], check=True, cwd=REPO)
        times["flower_s"] = time.time() - t
    fl = json.loads((a.out / "flower" / "flower-result.json").read_text())
    record, reps, agree = read_chain(a.out / "flower" / "chain", a.base_port + 10)  # the ports its genesis holds
    t = time.time()
    params = GameParams(n_learners=a.learners, n_coalitions=a.coalitions)
    replay = ReplayCoordinator(record, params)
    cfg = RunConfig(n_learners=a.learners, n_coalitions=a.coalitions, rounds=a.rounds)
    res = run(replay, load_dataset("fashion-mnist", a.data_limit or None), cfg, a.seed, params, scheme_name="gfml")
    times["replay_s"] = time.time() - t
    rows = []
    for r, chk in enumerate(replay.checks, start=1):
        v = record[r - 1]
        rows.append({**chk, "coalitions": len(v["coalitions"]), "members": len(v["members"]),
                     "payout_total": sum(v["payouts"].values()) / 1e6,
                     "acc_flower": fl["rounds"][r - 1].get("acc"), "acc_driver": res.rounds[r - 1]["acc"],
                     "global_acc_flower": fl["rounds"][r - 1].get("global_acc"),
                     "global_acc_driver": res.rounds[r - 1]["global_acc"]})
    out: dict[str, Any] = {"rows": rows, "peers_agree": agree, "reputations_ppm": reps, "times_s": times,
                           "flower_elapsed_s": fl.get("elapsed_s")}
    if a.simulate:
        t = time.time()
        subprocess.run([py, "-m", "pocnet.node.cli", "fml", "simulate", "--on-chain", "--fresh", "--schemes", "gfml",
                        "--seeds", str(a.seed), "--base-port", str(a.base_port + 30), "--out", str(a.out / "sim"),
                        *common, *lim], check=True, cwd=REPO)
        times["simulate_s"] = time.time() - t
        sim = json.loads((a.out / "sim" / "report.json").read_text())["runs"][0]
        out["simulate"] = [{"round": h["round"], "coalition_sizes": h["coalition_sizes"], "payout_total": h["payout_total"],
                            "acc": h["acc"]} for h in sim["rounds"]]
        out["simulate_reputations_ppm"] = sim["chain"]["reputations_ppm"]
    (a.out / "equivalence.json").write_text(json.dumps(out, indent=1))
    print("| round | coalitions | members | embeddings equal | head reports equal | payout total (tokens) "
          "| personalised acc Flower / driver | un-personalised acc Flower / driver |")
    print("|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['round']} | {r['coalitions']} | {r['members']} | {r['embeddings_equal']}/{r['embeddings']} "
              f"| {r['reports_equal']}/{r['reports']} | {r['payout_total']:.6f} | {r['acc_flower']:.4f} / {r['acc_driver']:.4f} "
              f"| {r['global_acc_flower']:.4f} / {r['global_acc_driver']:.4f} |")
    if a.simulate:
        for s in out["simulate"]:
            print(f"simulate --on-chain (own chain) round {s['round']}: sizes {s['coalition_sizes']} "
                  f"payout {s['payout_total']:.6f} acc {s['acc']:.4f}")
    print(f"peers agree: {agree}; times: {json.dumps({k: round(v) for k, v in times.items()})}")
    ok = all(r["embeddings_equal"] == r["embeddings"] and r["reports_equal"] == r["reports"] == r["recorded"] for r in rows)
    return 0 if ok and agree else 1


if __name__ == "__main__":
    sys.exit(main())
