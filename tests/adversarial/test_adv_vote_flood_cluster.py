"""Multi-process: one validator's key floods two honest peers with distinct, validly signed
votes while the chain runs and while it is stalled; the chain keeps committing, and resumes
within seconds of the stall ending, with no restarts (issue 17, #2).

The flooder is this test process (a test-only client holding peer3's key), not a mode of
the production node. Multi-process: run it alone (timing-sensitive).
"""
import os
import random
import signal
import threading
import time

import httpx
import pytest

from pocnet.consensus.messages import Vote
from pocnet.ledger.keys import KeyPair
from pocnet.p2p.wire import sign_vote
from tests.cluster_helpers import Cluster

pytestmark = pytest.mark.slow


class Flooder(threading.Thread):
    def __init__(self, c: Cluster, key: KeyPair, targets: list[int]) -> None:
        super().__init__(daemon=True)
        self.c, self.key, self.targets = c, key, targets
        self.stop_flag = threading.Event()
        self.sent = 0
        self.http = httpx.Client(timeout=10)

    def run(self) -> None:
        rng = random.Random(17)
        while not self.stop_flag.is_set():
            try:
                h = max(self.c.height(i) for i in self.targets)
            except Exception:  # noqa: BLE001
                h = 0
            msgs = [sign_vote(self.key, self.c.genesis.chain_id,
                              Vote(rng.choice(["prevote", "precommit"]), h + rng.choice([1, 2]),
                                   rng.randrange(0, 300), rng.randbytes(32).hex(), self.key.address))
                    for _ in range(1000)]
            for i in self.targets:
                try:
                    self.c.post_p2p(i, self.key, {"msgs": msgs, "txs": []}, self.http)
                except httpx.HTTPError:
                    pass
            self.sent += len(msgs)


def test_vote_flood_running_and_stalled(tmp_path, port_block):
    c = Cluster(tmp_path / "net", port_block(4)).start_all()
    try:
        c.wait_height(3, timeout=90)
        byz = KeyPair.load(c.home / "peer3" / "node_key.json")
        f = Flooder(c, byz, [0, 1])
        f.start()
        # running: the chain keeps committing under the flood
        h0 = c.height(0)
        c.wait_height(h0 + 3, peers=[0, 1, 2], timeout=60)
        # stalled: peer3 paused, peer2 cut off -> only peers 0 and 1 -> no quorum
        os.kill(c.procs[3].pid, signal.SIGSTOP)
        c.cut(2, [0, 1, 3])
        for i in (0, 1):
            c.cut(i, [2])
        time.sleep(3)
        stalled_at = max(c.height(i) for i in (0, 1))
        time.sleep(12)
        assert max(c.height(i) for i in (0, 1)) <= stalled_at + 1  # really stalled
        sent_during = f.sent
        # stall ends (peer2 reconnects); peer3 stays paused, the flood goes on
        for i in (0, 1, 2):
            c.cut(i, [])
        t_heal = time.monotonic()
        c.wait_height(stalled_at + 2, peers=[0, 1, 2], timeout=30)
        resumed_s = time.monotonic() - t_heal
        f.stop_flag.set()
        f.join(30)
        stats = c.http.get(c.urls[0] + "/p2p/stats").json()["stats"]
        print(f"flood: {f.sent} votes sent to each of 2 peers ({sent_during} before the stall ended); "
              f"resumed {resumed_s:.1f} s after the stall; peer0 dropped "
              f"{stats.get('dropped_vote_slot_full', 0)} slot-full, {stats.get('dropped_vote_far_round', 0)} far-round")
        assert resumed_s < 30
        assert f.sent >= 20_000
        os.kill(c.procs[3].pid, signal.SIGCONT)
        c.wait_height(stalled_at + 3, timeout=60)
        c.assert_same_chain()
    finally:
        for p in c.procs.values():
            try:
                os.kill(p.pid, signal.SIGCONT)
            except OSError:
                pass
        c.stop_all()
