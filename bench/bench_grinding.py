"""Grinding experiment: can the proposer of h bias who proposes h+1?

In-process, with the real header hashing, the real ECVRF (ledger/vrf.py) and the real
contribution-weighted sampling (consensus/poc_selector.weighted_order). Four validators
with fixed contributions; the adversary is one of them. Each height's round-0 proposer
is ranking_h[0]; the adversary wants to be the proposer of the next height.

* old seed (ranking_{h+1} drawn from prev_hash = hash of header h): when the adversary
  proposes h it builds K variants of its block (K-1 other tx subsets / timestamps give
  other header hashes) and publishes the first whose hash makes it proposer of h+1;
* beacon (ranking_{h+1} drawn from the VRF output in header h): the output is unique for
  its key and input, so K variants all give the same draw. Its only choice is to
  withhold: skip its turn when the draw does not favour it, so that the round-1
  proposer publishes height h with its own beacon (a new draw).

    .venv/bin/python bench/bench_grinding.py --heights 5000 --out bench/results_grinding.json
"""
from __future__ import annotations

import argparse
import json
import math
from dataclasses import dataclass

from pocnet.consensus.poc_selector import weighted_order
from pocnet.ledger.beacon import make_beacon
from pocnet.ledger.block import Header
from pocnet.ledger.keys import KeyPair

CHAIN = "grinding"
CONTRIBUTION = [2000, 1000, 4000, 8000]     # adversary = validator 0
KEYS = [KeyPair.from_seed(bytes([70 + i]) * 32) for i in range(4)]
IDS = [k.address for k in KEYS]
SEEDS = {k.address: bytes.fromhex(k.seed_hex) for k in KEYS}
WEIGHTS = [c + 1 for c in CONTRIBUTION]      # as poc_selector: contribution + 1
ADV = IDS[0]
COLLUDER = IDS[1]


@dataclass
class Result:
    mode: str
    k: int
    withhold: str          # "", "self" or "coalition" (adversary + colluder)
    heights: int
    adversary_blocks: int  # blocks proposed by the beneficiaries (adversary, + colluder for "coalition")
    withheld: int
    fair: float

    @property
    def share(self) -> float:
        return self.adversary_blocks / self.heights


def ranking(seed: str) -> tuple[str, ...]:
    return weighted_order(IDS, WEIGHTS, seed)


def header(height: int, prev_hash: str, ts: int, proposer: str, variant: int, beacon: str = "",
           proof: str = "") -> Header:
    # variant stands for a different tx subset: it changes tx_root (and so the header hash)
    return Header(CHAIN, height, 0, prev_hash, ts, proposer, f"{variant:064x}", "0" * 64, "0" * 64,
                  beacon, proof)


def run_old_seed(heights: int, k: int) -> Result:
    prev_hash, ts, adv = "0" * 64, 1_000, 0
    for h in range(1, heights + 1):
        proposer = ranking(prev_hash)[0]
        tries = k if proposer == ADV else 1
        chosen = None
        for v in range(tries):
            hdr = header(h, prev_hash, ts + v % 50, proposer, v)   # tx subsets x timestamps
            chosen = hdr
            if proposer == ADV and ranking(hdr.hash)[0] == ADV:
                break
        assert chosen is not None
        adv += proposer == ADV
        prev_hash, ts = chosen.hash, ts + 1_000
    return Result("prev_hash seed", k, "", heights, adv, 0, WEIGHTS[0] / sum(WEIGHTS))


def run_beacon(heights: int, withhold: str) -> Result:
    """withhold "": honest; "self": the adversary skips its turn unless the next draw is its own;
    "coalition": it skips unless the next draw is its own or its colluder's (score: both)."""
    wins = {ADV} if withhold != "coalition" else {ADV, COLLUDER}
    fair = sum(w for i, w in zip(IDS, WEIGHTS) if i in wins) / sum(WEIGHTS)
    prev_beacon, adv, withheld = "11" * 64, 0, 0
    for h in range(1, heights + 1):
        order = ranking(prev_beacon)
        proposer = order[0]
        beacon, _ = make_beacon(SEEDS[proposer], CHAIN, h, prev_beacon)
        if withhold and proposer == ADV and ranking(beacon)[0] not in wins:
            withheld += 1                     # skip its turn: round 1's proposer publishes h
            proposer = order[1]
            beacon, _ = make_beacon(SEEDS[proposer], CHAIN, h, prev_beacon)
        adv += proposer in wins
        prev_beacon = beacon
    return Result("VRF beacon", 1, withhold, heights, adv, withheld, fair)


def run_all(heights: int, ks: tuple[int, ...] = (1, 16, 256)) -> dict:
    results = [run_old_seed(heights, k) for k in ks]
    results += [run_beacon(heights, ""), run_beacon(heights, "self"), run_beacon(heights, "coalition")]
    rows = []
    for r in results:
        se = math.sqrt(r.fair * (1 - r.fair) / heights)
        rows.append({"seed": r.mode, "K": r.k, "withhold": r.withhold, "beneficiary_blocks": r.adversary_blocks,
                     "fair_share": r.fair, "share": r.share, "share_over_fair": r.share / r.fair,
                     "withheld": r.withheld, "binomial_se": se, "z": (r.share - r.fair) / se})
    return {"heights": heights, "contribution": CONTRIBUTION, "rows": rows}


def table(rep: dict) -> str:
    lines = [f"contributions {rep['contribution']} (adversary first, colluder second), {rep['heights']} heights",
             "| seed of ranking h+1 | adversary's strategy | share of | fair share | measured share | ÷ fair | z |",
             "|---|---|---|---|---|---|---|"]
    for r in rep["rows"]:
        strat = (f"grind K = {r['K']} block variants" if r["seed"] == "prev_hash seed"
                 else {"": "any K: all variants give one draw",
                       "self": f"withhold unless the draw is its own ({r['withheld']} withheld)",
                       "coalition": f"withhold unless the draw is its or its colluder's ({r['withheld']} withheld)",
                       }[r["withhold"]])
        who = "adversary + colluder" if r["withhold"] == "coalition" else "adversary"
        lines.append(f"| {r['seed']} | {strat} | {who} | {r['fair_share']:.4f} | {r['share']:.4f} | "
                     f"{r['share_over_fair']:.2f} | {r['z']:+.1f} |")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--heights", type=int, default=5000)
    ap.add_argument("--out", default=None)
    args = ap.parse_args()
    rep = run_all(args.heights)
    print(table(rep))
    if args.out:
        with open(args.out, "w") as fh:
            json.dump(rep, fh, indent=2)


if __name__ == "__main__":
    main()
