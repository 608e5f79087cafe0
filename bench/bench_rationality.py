"""Individual rationality after the Stackelberg stage, over random instances.

For each instance (synthetic learners, round 1): how many non-head members would have
negative utility at the leader's C_k* without the exit rule (what the formation leaves), how
many leave under the rule (games.rationality), heads with negative utility, and the MSP
utility with and without the exits.

    .venv/bin/python bench/bench_rationality.py --sizes 20,40,60,80 --seeds 15
"""
from __future__ import annotations

import argparse
import math

from pocnet.games import GameParams, plan_round
from pocnet.games.cost import cycles_per_round, transmission_time
from pocnet.games.reputation import similarity
from pocnet.games.scenario import synthetic_learners
from pocnet.games.stackelberg import Follower, coalition_weights, make_game, solve_coalition


def without_exits(plan, profiles, params):  # noqa: ANN001, ANN201
    """(negative non-head members, members, MSP utility sum) solving the formed partition as is."""
    neg = total = 0
    msp = 0.0
    for h, members in plan.formation_partition().items():
        sims = [similarity(profiles[a].embedding, profiles[h].embedding) for a in members]
        w = coalition_weights(sims, [profiles[a].data_size for a in members])
        fs = [Follower(a, cycles_per_round(profiles[a].data_size, params), profiles[a].kappa, profiles[a].f_min,
                       profiles[a].f_max, transmission_time(profiles[a].rate, params), wi,
                       plan.reputations.get(a, params.r_th * params.lam)) for a, wi in zip(members, w)]
        sol = solve_coalition(make_game(h, profiles[h].tolerated_time, fs), params)
        msp += sol.msp_utility
        for a in members:
            if a != h:
                total += 1
                neg += sol.learner_utilities[a] < 0
    return neg, total, msp


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", default="20,40,60,80")
    ap.add_argument("--seeds", type=int, default=15)
    a = ap.parse_args()
    p = GameParams()
    rows = []
    for n in (int(x) for x in a.sizes.split(",")):
        for seed in range(a.seeds):
            learners = synthetic_learners(n, seed, p)
            profiles = {q.address: q for q in learners}
            plan = plan_round(learners, {}, None, seed, p)
            neg, total, msp_before = without_exits(plan, profiles, p)
            heads_neg = sum(plan.expected_utilities[h] < 0 for h in plan.heads)
            left_neg = sum(plan.expected_utilities[m] < 0 for h, ms in plan.partition.items() for m in ms if m != h)
            rows.append((n, seed, neg, total, len(plan.exited_from), heads_neg, left_neg, msp_before,
                         math.fsum(plan.msp_utilities.values())))
    inst = len(rows)
    print(f"instances {inst}: sizes {a.sizes}, seeds 0..{a.seeds - 1}")
    print(f"without exits: {sum(r[2] for r in rows)} of {sum(r[3] for r in rows)} non-head members negative, "
          f"in {sum(r[2] > 0 for r in rows)} of {inst} instances")
    print(f"with exits: {sum(r[4] for r in rows)} members leave (in {sum(r[4] > 0 for r in rows)} instances); "
          f"negative members left: {sum(r[6] for r in rows)}; heads negative: {sum(r[5] for r in rows)}")
    print(f"MSP utility summed over instances: {sum(r[7] for r in rows):.1f} without exits, "
          f"{sum(r[8] for r in rows):.1f} with")


if __name__ == "__main__":
    main()
