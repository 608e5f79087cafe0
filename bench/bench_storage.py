"""CPU cost of persisting a committed block: ``Storage.save_block`` of full transfer blocks.

Scenario (what bench_cluster.py commits): ``--senders`` funded accounts sending 1-unit
transfers to one sink, ``--txs`` per block; the state writes are the real ones
(``apply_block``). Each block is saved into a fresh SQLite file (WAL, as a node opens it);
the figure is process CPU time (user + system) of ``save_block`` divided by the txs saved,
so the machine's load changes it little. The first ``--warmup`` blocks are not counted.

    .venv/bin/python bench/bench_storage.py [--txs 2000] [--blocks 12] [--senders 600] [--json out.json]

``--url`` saves into another database (e.g. a PostgreSQL URL) instead of a temporary SQLite file.
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from pocnet.ledger.block import Block, Commit, CommitSig, Header  # noqa: E402
from pocnet.ledger.genesis import Genesis, ValidatorInfo  # noqa: E402
from pocnet.ledger.keys import KeyPair  # noqa: E402
from pocnet.ledger.state_machine import BlockContext, apply_block, genesis_state  # noqa: E402
from pocnet.ledger.storage import Storage, sqlite_url  # noqa: E402
from pocnet.ledger.tx import sign_tx  # noqa: E402

CHAIN = "bench-storage"


def build_blocks(n_blocks: int, txs_per_block: int, n_senders: int):  # noqa: ANN201
    """(genesis state, [(block, writes)]) for ``n_blocks`` full transfer blocks."""
    val = KeyPair.from_seed(b"\x51" * 32)
    sink = KeyPair.from_seed(b"\x55" * 32).address
    senders = [KeyPair.from_seed(i.to_bytes(4, "big") * 8) for i in range(1, n_senders + 1)]
    g = Genesis(CHAIN, 0, (ValidatorInfo("v0", val.address, "http://127.0.0.1:1"),),
                {k.address: 10**12 for k in senders})
    state = genesis_state(g)
    start_state = genesis_state(g)
    nonces = [0] * n_senders
    out = []
    j = 0
    prev = "0" * 64
    for h in range(1, n_blocks + 1):
        txs = []
        for _ in range(txs_per_block):
            i = j % n_senders
            txs.append(sign_tx(senders[i], CHAIN, "transfer", nonces[i], {"to": sink, "amount": 1}))
            nonces[i] += 1
            j += 1
        view = apply_block(state, txs, BlockContext(CHAIN, h, prev, 1000 * h, val.address))
        state.apply_writes(view.writes)
        header = Header(CHAIN, h, 0, prev, 1000 * h, val.address, "ab" * 32, state.root, "cd" * 32, 1,
                        "ef" * 64, "01" * 80, "")
        block = Block(header, tuple(txs), Commit(h, 0, header.hash, tuple(
            CommitSig(val.address, "aa" * 64) for _ in range(3))))
        out.append((block, dict(view.writes)))
        prev = block.hash
    return start_state, out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--txs", type=int, default=2000, help="txs per block")
    ap.add_argument("--blocks", type=int, default=12)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--senders", type=int, default=600)
    ap.add_argument("--url", default=None, help="SQLAlchemy URL (default: a temporary SQLite file)")
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args()

    state, blocks = build_blocks(args.blocks, args.txs, args.senders)
    with tempfile.TemporaryDirectory() as tmp:
        st = Storage(args.url or sqlite_url(Path(tmp) / "chain.db"))
        st.init_genesis("00" * 32, state)
        per_tx = []
        for n, (block, writes) in enumerate(blocks):
            c0 = time.process_time()
            st.save_block(block, writes)
            dt = time.process_time() - c0
            if n >= args.warmup:
                per_tx.append(dt / len(block.txs) * 1e6)
        assert st.head_height() == args.blocks
        last = blocks[-1][0]
        found = st.get_tx(last.txs[-1].hash)
        assert found is not None and found[1:] == (last.height, len(last.txs) - 1)
        assert len(st.has_txs(t.hash for t in last.txs)) == len(last.txs)
        st.close()
    res = {"txs_per_block": args.txs, "blocks_counted": len(per_tx), "state_writes_per_block": len(blocks[-1][1]),
           "cpu_us_per_tx_median": round(statistics.median(per_tx), 2),
           "cpu_us_per_tx_min": round(min(per_tx), 2), "cpu_us_per_tx_max": round(max(per_tx), 2)}
    print(json.dumps(res))
    if args.json:
        args.json.write_text(json.dumps(res, indent=1) + "\n")


if __name__ == "__main__":
    main()
