"""Timing of one large FML round through apply_block (not a test; docs/fmlchain.md quotes it).

Run: PYTHONPATH=. .venv/bin/python tests/fmlchain/bench_fmlchain_big_round.py 1024
"""
import json
import random
import sys
import time

from pocnet.fml.chain_client import join_payload, open_round_payload, register_payload, report_payloads, round_payload
from pocnet.games.params import GameParams
from pocnet.games.profile import LearnerProfile
from pocnet.games.round import RoundPlan
from pocnet.ledger.keys import KeyPair
from pocnet.ledger.txtypes import fml_codec as fc
from pocnet.node.fml_api import round_view
from tests.fmlchain.fmlchain_support import MSP, LocalChain, as_on_chain, honest_reports


def main(n: int, dim: int = 64, k: int = 16) -> None:
    rng = random.Random(1)
    keys = [KeyPair.from_seed(rng.randbytes(32)) for _ in range(n)]
    profs = [LearnerProfile(key.address, float(rng.randint(200, 900)), 1e-26, rng.uniform(1e8, 5e8),
                            rng.uniform(1e9, 2e9), rng.uniform(2e6, 1e7), rng.uniform(5, 15),
                            tuple(rng.uniform(0, 1) for _ in range(dim))) for key in keys]
    c = LocalChain()

    def timed(label, txs):
        t = time.perf_counter()
        c.block(txs)
        print(f"{label}: {len(txs)} txs in {time.perf_counter() - t:.2f} s")

    timed("register+open", [c.tx(key, "fml_register", register_payload(p)) for key, p in zip(keys, profs)]
          + [c.tx(MSP, "fml_open_round", open_round_payload(1000, dim, n_coalitions=k))])
    timed("join", [c.tx(key, "fml_join", join_payload(1, p.embedding)) for key, p in zip(keys, profs)])
    timed("close registration (plan)", [c.tx(MSP, "fml_close_registration", round_payload(1))])
    plan = RoundPlan.from_dict(c.state.get(fc.NS_PLAN, fc.round_key(1)))
    by_addr = {key.address: key for key in keys}
    chain_profs = [as_on_chain(p) for p in profs]
    reports = [c.tx(by_addr[h], "fml_report", p) for h in plan.heads
               for p in report_payloads(1, honest_reports(plan, GameParams(n_coalitions=k), chain_profs, h))]
    timed("reports", reports)
    timed("close round (settle)", [c.tx(MSP, "fml_close_round", round_payload(1))])
    print(f"GET /fml/rounds/1 answer: {len(json.dumps(round_view(c.state, 1))) / 1e6:.2f} MB")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 1024)
