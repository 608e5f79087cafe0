"""Time ECVRF prove / verify (ledger/vrf.py) as the block proposer and every peer run them.

    .venv/bin/python bench/bench_vrf.py [--n 2000]
"""
from __future__ import annotations

import argparse
import statistics
import time

from pocnet.ledger import vrf


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=2000)
    n = ap.parse_args().n
    seed = bytes(range(32))
    pk = vrf.public_key(seed)
    alphas = [f"pocnet-test|{h}|{'ab' * 32}".encode() for h in range(n)]
    proofs, tp, tv = [], [], []
    for a in alphas:
        t0 = time.perf_counter()
        proofs.append(vrf.prove(seed, a))
        tp.append(time.perf_counter() - t0)
    for a, pi in zip(alphas, proofs):
        t0 = time.perf_counter()
        vrf.verify(pk, a, pi)
        tv.append(time.perf_counter() - t0)
    for name, ts in (("prove", tp), ("verify", tv)):
        ts.sort()
        print(f"{name:6s} n={n} median {statistics.median(ts) * 1e3:.3f} ms  "
              f"p95 {ts[int(0.95 * n)] * 1e3:.3f} ms")


if __name__ == "__main__":
    main()
