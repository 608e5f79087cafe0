"""Mempool admission cost: the application's check_tx versus executing the tx (the old path).

Scenario: an FML round with N learners joined (default 40, as the golden history) and a
pending ``fml_close_registration``, plus T pending transfers. Timed, per call:

* ``admit close``  — admitting the close_registration into the pending view:
  ``check_tx`` (preconditions only) vs ``apply_tx`` (what the mempool ran before: the full
  handler, i.e. ``games.plan_round``);
* ``recheck``      — rebuilding the pending view after a commit (every pending tx
  re-admitted), the cost each block paid while a close was pending.

    PYTHONPATH=. .venv/bin/python bench/bench_mempool_admission.py [--learners 40] [--transfers 1000]
"""
from __future__ import annotations

import argparse
import statistics
import time

from pocnet.fml.chain_client import join_payload, open_round_payload, register_payload, round_payload
from pocnet.ledger.genesis import Genesis, ValidatorInfo
from pocnet.ledger.keys import KeyPair
from pocnet.ledger.state_machine import BlockContext, apply_block, apply_tx, check_tx, genesis_state
from pocnet.ledger.tx import sign_tx

CHAIN = "bench-admission"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--learners", type=int, default=40)
    ap.add_argument("--transfers", type=int, default=1000)
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args()

    msp = KeyPair.from_seed(b"\x51" * 32)
    learners = [KeyPair.from_seed(i.to_bytes(2, "big") * 16) for i in range(1, args.learners + 1)]
    payer = KeyPair.from_seed(b"\x77" * 32)
    g = Genesis(CHAIN, 0, (ValidatorInfo("v0", msp.address, "http://127.0.0.1:1"),),
                {msp.address: 10**15, payer.address: 10**12})
    state = genesis_state(g)
    nonces: dict[str, int] = {}

    def tx(key: KeyPair, kind: str, payload: dict):  # noqa: ANN202
        n = nonces.get(key.address, 0)
        nonces[key.address] = n + 1
        return sign_tx(key, CHAIN, kind, n, payload)

    def ctx(h: int) -> BlockContext:
        return BlockContext(CHAIN, h, f"{h:064x}", 1000 * h, msp.address)

    from tests.fmlchain.fmlchain_support import profiles  # seeded FORMULAS-range learners
    import tests.fmlchain.fmlchain_support as support
    support.LEARNERS[:] = learners
    profs = profiles(args.learners, dim=8)
    blocks = [[tx(k, "fml_register", register_payload(p)) for k, p in zip(learners, profs)]
              + [tx(msp, "fml_open_round", open_round_payload(100.0, 8, n_coalitions=4))],
              [tx(k, "fml_join", join_payload(1, p.embedding)) for k, p in zip(learners, profs)]]
    for h, txs in enumerate(blocks, 1):
        state.apply_writes(apply_block(state, txs, ctx(h)).writes)
    close = tx(msp, "fml_close_registration", round_payload(1))
    transfers = [tx(payer, "transfer", {"to": msp.address, "amount": 1}) for _ in range(args.transfers)]
    pending_ctx = ctx(3)

    def timed(fn) -> float:  # noqa: ANN001
        out = []
        for _ in range(args.repeat):
            t0 = time.perf_counter()
            fn()
            out.append(time.perf_counter() - t0)
        return statistics.median(out)

    def admit(path) -> None:  # noqa: ANN001
        path(state.view(), close, pending_ctx)

    def recheck(path) -> None:  # noqa: ANN001
        view = state.view()
        path(view, close, pending_ctx)
        for t in transfers:
            path(view, t, pending_ctx)

    admit(apply_tx)  # warm the coalition kernel (compile/cache load) before timing
    rows = [("admit close", timed(lambda: admit(check_tx)), timed(lambda: admit(apply_tx))),
            (f"recheck close + {args.transfers} transfers", timed(lambda: recheck(check_tx)),
             timed(lambda: recheck(apply_tx)))]
    print(f"{args.learners} learners joined, median of {args.repeat}")
    print(f"{'':38s} {'check_tx':>12s} {'apply (old)':>12s}")
    for name, new, old in rows:
        print(f"{name:38s} {new * 1e3:10.3f} ms {old * 1e3:10.3f} ms")


if __name__ == "__main__":
    main()
