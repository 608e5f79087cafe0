"""State root cost at 10k and 400k state entries: the flat root (protocol version 1,
before) against the bucketed tree (version 2, ledger/commitment.py).

    .venv/bin/python bench/bench_state_root.py [--sizes 10000 400000] [--block-keys 4000]

Per size: building the commitment from scratch (a peer's startup rebuild), the root of
the committed state (what GET /status computed before; O(1) now), one block's root
update (``--block-keys`` written keys: half updated accounts, half new ones; a preview
as proposer/verifiers compute it, then the commit), and ``GET /status`` on a real Node
whose genesis holds that many accounts (in-process HTTP, median of 20), with the Node's
startup time. "before" is protocol version 1's flat root (``State.flat_root_with``:
the same copy-sort-hash that the pre-tree ``State.root`` / ``root_with`` ran).
CPU seconds (process_time) are given with wall time because the machine is shared.
"""
from __future__ import annotations

import argparse
import hashlib
import os
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any, Callable

from pocnet.ledger.state import State


def _timed(fn: Callable[[], Any], repeat: int) -> tuple[float, float]:
    """(median wall s, median CPU s) of ``repeat`` calls."""
    walls, cpus = [], []
    for _ in range(repeat):
        w, c = time.perf_counter(), time.process_time()
        fn()
        walls.append(time.perf_counter() - w)
        cpus.append(time.process_time() - c)
    return statistics.median(walls), statistics.median(cpus)


def _addr(i: int) -> str:
    return hashlib.sha256(i.to_bytes(8, "big")).hexdigest()


def state_bench(n: int, block_keys: int) -> dict[str, Any]:
    items = {("acct", _addr(i)): {"balance": 10**9 + i, "nonce": i % 7} for i in range(n)}
    out: dict[str, Any] = {"entries": n}
    holder: dict[str, State] = {}
    out["rebuild_tree"] = _timed(lambda: holder.__setitem__("s", State(items)), 1)
    s = holder["s"]
    out["status_root_before"] = _timed(lambda: s.flat_root_with({}), 3)
    out["status_root_after"] = _timed(lambda: s.root, 3)
    upd = {("acct", _addr(i * 97 % n)): {"balance": 5, "nonce": 99} for i in range(block_keys // 2)}
    new = {("acct", _addr(n + i)): {"balance": 1, "nonce": 0} for i in range(block_keys - len(upd))}
    writes = {**upd, **new}
    out["block_before"] = _timed(lambda: s.flat_root_with(writes), 3)
    out["block_preview_after"] = _timed(lambda: s.preview(writes), 3)

    def preview_and_commit() -> None:
        upd_ = s.preview(writes)
        s.apply_writes(writes, upd_)
    out["block_preview_commit_after"] = _timed(preview_and_commit, 1)
    assert s.root == State({**items, **writes}).root
    return out


def status_bench(n: int) -> dict[str, Any]:
    from fastapi.testclient import TestClient

    from pocnet.node.node import Node
    from pocnet.node.setup_home import init_cluster_home
    with tempfile.TemporaryDirectory() as tmp:
        init_cluster_home(Path(tmp), 1, 29960, [(_addr(i), 10**9) for i in range(n)],
                          chain_id="bench-stateroot", poc_weights_sha256="")
        w, c = time.perf_counter(), time.process_time()
        node = Node(Path(tmp) / "peer0")
        first = (time.perf_counter() - w, time.process_time() - c)
        node.storage.close()
        w, c = time.perf_counter(), time.process_time()
        node = Node(Path(tmp) / "peer0")  # a restart: load stored state + rebuild the tree
        restart = (time.perf_counter() - w, time.process_time() - c)
        with TestClient(node.create_app()) as client:
            client.get("/status")
            res = _timed(lambda: client.get("/status").raise_for_status(), 20)
        node.storage.close()
    return {"node_first_start": first, "node_restart": restart, "http_status": res, "state_entries": len(node.chain.state)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[10_000, 400_000])
    ap.add_argument("--block-keys", type=int, default=4000)
    ap.add_argument("--no-node", action="store_true", help="skip the real-Node /status measurement")
    args = ap.parse_args()
    print(f"load average at start: {os.getloadavg()}")
    for n in args.sizes:
        r = state_bench(n, args.block_keys)
        if not args.no_node:
            r.update(status_bench(n))
        print(f"--- {n:,} entries (block: {args.block_keys} written keys)")
        for k, v in r.items():
            if isinstance(v, tuple):
                print(f"  {k:28s} wall {v[0] * 1e3:10.2f} ms   cpu {v[1] * 1e3:10.2f} ms")
            else:
                print(f"  {k:28s} {v}")
    print(f"load average at end: {os.getloadavg()}")


if __name__ == "__main__":
    main()
