"""10^6 distinct validly signed votes from one validator key against a 4-peer cluster,
half while the chain runs and half while it is stalled (issue 17, #3).

    .venv/bin/python bench/bench_vote_flood.py [--votes 1000000]   # alone on the machine

Run from the repository root (it uses the test cluster helpers). The scenario is
tests/adversarial/vote_flood.py: votes pre-signed in worker processes before each
phase, posted in 1,000-vote bodies to peers 0 and 1 with peer3's authenticated
envelope; the stall is peer3 SIGSTOPped and peer2 cut off; the last 10 % of the flood
goes on after the stall ends. Prints the volumes, the chain's progress while running,
the time from the stall's end to the next commit and the peers' drop counters.
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.adversarial.vote_flood import run_control, run_flood  # noqa: E402
from tests.cluster_helpers import Cluster  # noqa: E402
from tests.conftest import free_port_block  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--votes", type=int, default=1_000_000)
    ap.add_argument("--procs", type=int, default=2, help="signing worker processes")
    ap.add_argument("--control", type=float, metavar="STALL_S",
                    help="no flood: the same stall held STALL_S s; print the time to resume")
    args = ap.parse_args()
    print(f"load average at start: {os.getloadavg()}", flush=True)
    t = time.monotonic()
    with tempfile.TemporaryDirectory() as tmp:
        c = Cluster(Path(tmp) / "net", free_port_block(4)).start_all()
        try:
            if args.control is not None:
                print(f"control (no flood): stall of {args.control:.1f} s, resumed "
                      f"{run_control(c, args.control):.1f} s after it ended")
            else:
                print(run_flood(c, args.votes, args.procs, log=lambda m: print(m, flush=True)).summary())
        finally:
            c.stop_all()
    print(f"total wall {time.monotonic() - t:.0f} s; load average at end: {os.getloadavg()}")


if __name__ == "__main__":
    main()
