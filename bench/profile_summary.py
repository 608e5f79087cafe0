"""Summarise py-spy collapsed stacks of a peer (``bench_cluster.py --profile DIR``) into cost buckets.

Each sample is charged to the first bucket whose marker occurs in its stack, checked from the
innermost frame outwards, so e.g. JSON encoding inside a storage write counts as JSON.
Idle samples (the event loop waiting in select) and the one-off numba warm-up thread are
left out. With ``--cpu-us-per-tx`` (from the benchmark JSON) each bucket is also given in
µs of CPU per committed tx.

Run:  .venv/bin/python bench/profile_summary.py DIR/peer0.txt [--cpu-us-per-tx 1234]
"""
from __future__ import annotations

import argparse
import collections
from pathlib import Path

# (bucket, markers) — a frame matches if any marker is a substring of it
BUCKETS: list[tuple[str, tuple[str, ...]]] = [
    ("ed25519 verify (libsodium)", ("crypto_sign_open", "ledger/keys.py")),
    ("JSON encode (stdlib json)", ("json/encoder.py",)),
    ("JSON encode (orjson)", ("encoding.py:canonical_json", "canonical_json (ledger/encoding.py")),
    ("JSON decode + strict checks", ("json/decoder.py", "json/__init__.py", "loads_strict", "_check_tree",
                                     "_unique_keys", "_bounded_int")),
    ("sqlite / sqlalchemy writes", ("sqlalchemy/", "sqlite3")),
    ("privval fsync (vote durability)", ("node/privval.py",)),
    ("state commitment (merkle)", ("ledger/commitment.py", "ledger/merkle.py")),
    ("state machine (check/apply)", ("ledger/state_machine.py", "ledger/state.py", "ledger/txtypes/", "ledger/app.py")),
    ("mempool", ("node/mempool.py",)),
    ("consensus engine / bft driver", ("consensus/", "node/bft.py", "node/chain.py")),
    ("gossip client (httpx)", ("httpx/", "httpcore/", "p2p/")),
    ("HTTP server (uvicorn/starlette/fastapi/h11)", ("uvicorn/", "starlette/", "fastapi/", "h11/", "pydantic")),
    ("metrics", ("prometheus_client", "node/metrics.py")),
    ("asyncio loop", ("asyncio/",)),
]
IDLE = ("EpollSelector.select", "selectors.py")
SKIP = ("switch_kernel.py:", "warm_up (games/switch_kernel.py")


def summarise(path: Path) -> tuple[int, collections.Counter[str]]:
    counts: collections.Counter[str] = collections.Counter()
    total = 0
    for line in path.read_text().splitlines():
        stack, _, n_txt = line.rpartition(" ")
        if not n_txt.isdigit():
            continue
        frames = stack.split(";")
        if any(m in frames[-1] for m in IDLE) or any(any(m in f for m in SKIP) for f in frames):
            continue
        n = int(n_txt)
        total += n
        for frame in reversed(frames):
            hit = next((b for b, markers in BUCKETS if any(m in frame for m in markers)), None)
            if hit:
                counts[hit] += n
                break
        else:
            counts["other"] += n
    return total, counts


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("files", nargs="+", type=Path)
    ap.add_argument("--cpu-us-per-tx", type=float, default=None)
    args = ap.parse_args()
    total, counts = 0, collections.Counter[str]()
    for f in args.files:
        t, c = summarise(f)
        total += t
        counts.update(c)
    print("| bucket | share of busy samples | µs/tx/peer |\n|---|---|---|")
    for bucket, n in counts.most_common():
        us = f"{args.cpu_us_per_tx * n / total:.0f}" if args.cpu_us_per_tx else "-"
        print(f"| {bucket} | {100 * n / total:.1f} % | {us} |")
    print(f"\n{total} busy samples from {len(args.files)} file(s)")


if __name__ == "__main__":
    main()
