"""Cost of one 300-tx gossip batch on a validator, with and without a flood of parked
nonce-gap txs (issue 17 #1). In-process: the peer's BFT driver ingests batches exactly as
POST /p2p/msgs hands them over (signature checks included), without HTTP.

    .venv/bin/python bench/bench_future_pool.py [--flood 20000]

The flood is 20,000 nonce-gap txs from one unfunded key plus 20,000 from 400 funded keys
(50 each). Prints the parked count and the median time of three 300-tx batches.
"""
from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

from pocnet.ledger.keys import KeyPair
from pocnet.ledger.tx import sign_tx
from pocnet.node.node import Node
from pocnet.node.setup_home import init_cluster_home

CHAIN = "bench-future"


def run(flood: int) -> tuple[int, float]:
    honest = [KeyPair.from_seed(i.to_bytes(4, "big") * 8) for i in range(300)]
    funded_attackers = [KeyPair.from_seed((10_000 + i).to_bytes(4, "big") * 8) for i in range(400)]
    unfunded = KeyPair.from_seed(b"\xaa" * 32)
    sink = KeyPair.from_seed(b"\x55" * 32).address
    with tempfile.TemporaryDirectory() as tmp:
        funds = [(k.address, 10**9) for k in honest + funded_attackers]
        init_cluster_home(Path(tmp), 4, 29970, funds, chain_id=CHAIN)
        node = Node(Path(tmp) / "peer0")
        d = node.driver
        peer = next(iter(d.peers))
        if flood:
            junk = [sign_tx(unfunded, CHAIN, "transfer", n, {"to": sink, "amount": 1}).to_dict()
                    for n in range(1, flood + 1)]
            per = max(1, flood // len(funded_attackers))
            junk += [sign_tx(k, CHAIN, "transfer", n, {"to": sink, "amount": 1}).to_dict()
                     for k in funded_attackers for n in range(2, 2 + per)]
            for i in range(0, len(junk), 2000):
                d.handle_batch(peer, [], junk[i:i + 2000])
        parked = len(d.future_txs)
        from pocnet.ledger import tx as txmod
        txmod._VERIFIED.clear()  # both scenarios sign the same honest txs: no cache hits
        times = []
        for nonce in range(3):
            batch = [sign_tx(k, CHAIN, "transfer", nonce, {"to": sink, "amount": 1}).to_dict() for k in honest]
            t0 = time.perf_counter()
            d.handle_batch(peer, [], batch)
            times.append(time.perf_counter() - t0)
        assert len(node.mempool) == 3 * len(honest), len(node.mempool)
        node.storage.close()
        return parked, statistics.median(times)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--flood", type=int, default=20_000)
    args = ap.parse_args()
    for flood in (0, args.flood):
        parked, t = run(flood)
        print(f"flood {flood:>6} nonce-gap txs: {parked:>6} parked; 300-tx gossip batch {t * 1000:8.1f} ms")


if __name__ == "__main__":
    main()
