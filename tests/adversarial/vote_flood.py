"""One validator's key floods two honest peers with distinct, validly signed votes while the
chain runs and while it is stalled (issue 17, #3): the scenario shared by the slow test
(tests/adversarial/test_adv_vote_flood_cluster.py, CI volume) and the 10^6-vote bench
(bench/bench_vote_flood.py).

The votes are signed before each phase in worker processes (PyNaCl), already encoded as
``POST /p2p/msgs`` bodies of 1,000 votes, so the flood rate is bounded by what the
receivers accept, not by Python signing speed. One sender thread per target peer posts
them with the flooder's (peer3's) authenticated envelope. The flooder is test code
holding peer3's key, not a mode of the production node.
"""
from __future__ import annotations

import json
import multiprocessing as mp
import os
import random
import signal
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

BATCH = 1000


def _sign_bodies(args: tuple[str, str, str, int, list[int], int, int]) -> list[bytes]:
    """Worker: ``n`` votes at heights drawn from ``heights``, rounds 0..max_round, as bodies."""
    from pocnet.consensus.messages import Vote
    from pocnet.ledger.keys import KeyPair
    from pocnet.p2p.wire import sign_vote
    seed_hex, chain_id, _validator, n, heights, max_round, seed = args
    key = KeyPair.from_seed(bytes.fromhex(seed_hex))
    rng = random.Random(seed)
    bodies = []
    for start in range(0, n, BATCH):
        msgs = [sign_vote(key, chain_id, Vote(rng.choice(("prevote", "precommit")), rng.choice(heights),
                                              rng.randrange(0, max_round + 1), rng.randbytes(32).hex(),
                                              key.address))
                for _ in range(min(BATCH, n - start))]
        bodies.append(json.dumps({"msgs": msgs, "txs": []}, separators=(",", ":")).encode())
    return bodies


def presign(key: Any, chain_id: str, n: int, heights: list[int], max_round: int, seed: int,
            procs: int = 2) -> tuple[list[bytes], float]:
    """``n`` distinct signed votes as bodies of BATCH votes; (bodies, wall seconds)."""
    t = time.monotonic()
    per = [n // procs + (1 if i < n % procs else 0) for i in range(procs)]
    jobs = [(key.seed_hex, chain_id, key.address, k, heights, max_round, seed * 100 + i) for i, k in enumerate(per)]
    with mp.get_context("spawn").Pool(procs) as pool:
        parts = pool.map(_sign_bodies, jobs)
    return [b for part in parts for b in part], time.monotonic() - t


class Sender(threading.Thread):
    """Posts queued bodies to one peer as fast as it accepts them (paces on 429)."""

    def __init__(self, c: Any, i: int, key: Any) -> None:
        super().__init__(daemon=True)
        from pocnet.p2p.auth import EnvelopeSigner
        self.c, self.i = c, i
        self.signer = EnvelopeSigner(key, c.genesis.chain_id)
        self.queue: deque[bytes] = deque()
        self.stop_flag = threading.Event()
        self.sent_votes = 0
        self.refused = 0
        self.busy = False
        self.http = httpx.Client(timeout=30)

    def run(self) -> None:
        while not self.stop_flag.is_set():
            try:
                body = self.queue.popleft()
            except IndexError:
                self.busy = False
                time.sleep(0.02)
                continue
            self.busy = True
            headers = {"content-type": "application/json"}
            headers.update(self.signer.headers(self.c.ids[self.i], "POST", "/p2p/msgs", body))
            try:
                r = self.http.post(self.c.urls[self.i] + "/p2p/msgs", content=body, headers=headers)
            except httpx.HTTPError:
                self.refused += 1
                continue
            if r.status_code == 429:
                self.queue.appendleft(body)
                time.sleep(float(r.headers.get("retry-after", "0.05") or 0.05))
                continue
            if r.status_code >= 300:
                self.refused += 1
                continue
            self.sent_votes += BATCH

    def drain(self, timeout: float) -> bool:
        end = time.monotonic() + timeout
        while (self.queue or self.busy) and time.monotonic() < end:
            time.sleep(0.05)
        return not self.queue


@dataclass
class FloodResult:
    votes_signed: int = 0
    sign_s: list[float] = field(default_factory=list)
    sent_running: int = 0          # votes accepted per target peer while the chain ran
    heights_during_running: int = 0
    running_s: float = 0.0
    sent_stalled: int = 0          # ... while the chain was stalled
    stalled_s: float = 0.0
    sent_total: int = 0
    resumed_s: float = 0.0         # stall end -> next commit on peers 0-2, flood still going
    stall_total_s: float = 0.0     # how long the chain was stalled (signing + flooding + 3 s)
    stats: dict[str, Any] = field(default_factory=dict)

    def summary(self) -> str:
        d = self.stats
        return (f"{self.votes_signed:,} distinct signed votes (signed in {', '.join(f'{s:.1f}' for s in self.sign_s)} s "
                f"before each phase), each sent to 2 peers: {self.sent_running:,} while running "
                f"({self.running_s:.1f} s, chain +{self.heights_during_running} heights), {self.sent_stalled:,} while "
                f"stalled ({self.stalled_s:.1f} s; stall {self.stall_total_s:.1f} s in all), {self.sent_total:,} in all; resumed {self.resumed_s:.1f} s after "
                f"the stall ended (flood still running); peer0 dropped {d.get('dropped_vote_slot_full', 0):,} "
                f"slot-full, {d.get('dropped_vote_far_round', 0):,} far-round")


def run_control(c: Any, stall_s: float) -> float:
    """The same stall, held ``stall_s`` seconds, with no flood: seconds from the stall's end
    to the next commit (Tendermint's timeouts grow by timeout_delta per round, so a long
    stall alone makes the first height after it slower)."""
    c.wait_height(3, timeout=90)
    os.kill(c.procs[3].pid, signal.SIGSTOP)
    try:
        c.cut(2, [0, 1, 3])
        for i in (0, 1):
            c.cut(i, [2])
        time.sleep(3)
        stalled_at = max(c.height(i) for i in (0, 1))
        time.sleep(max(0.0, stall_s - 3))
        assert max(c.height(i) for i in (0, 1)) <= stalled_at + 1, "not really stalled"
        for i in (0, 1, 2):
            c.cut(i, [])
        t_heal = time.monotonic()
        c.wait_height(stalled_at + 2, peers=[0, 1, 2], timeout=120)
        return time.monotonic() - t_heal
    finally:
        os.kill(c.procs[3].pid, signal.SIGCONT)


def run_flood(c: Any, n_votes: int, procs: int = 2, log: Any = print) -> FloodResult:
    """The scenario on a started 4-peer cluster ``c`` (tests.cluster_helpers.Cluster)."""
    from pocnet.ledger.keys import KeyPair
    res = FloodResult()
    c.wait_height(3, timeout=90)
    byz = KeyPair.load(Path(c.home) / "peer3" / "node_key.json")
    senders = [Sender(c, i, byz) for i in (0, 1)]
    for s in senders:
        s.start()
    try:
        # running: votes for the next heights the chain will reach, rounds 0..300
        n_run = n_votes // 2
        h = max(c.height(i) for i in range(4))
        bodies, t = presign(byz, c.genesis.chain_id, n_run, list(range(h + 1, h + 40)), 300, 1, procs)
        res.sign_s.append(t)
        res.votes_signed += n_run
        h0, t0 = c.height(0), time.monotonic()
        for s in senders:
            s.queue.extend(bodies)
        for s in senders:
            assert s.drain(600), "running-phase flood not delivered in 600 s"
        res.running_s = time.monotonic() - t0
        res.sent_running = min(s.sent_votes for s in senders)
        res.heights_during_running = c.height(0) - h0
        log(f"running phase: {res.sent_running:,} votes in {res.running_s:.1f} s, chain +{res.heights_during_running}")
        c.wait_height(h0 + 3, peers=[0, 1, 2], timeout=60)
        # stalled: peer3 paused, peer2 cut off -> peers 0 and 1 alone have no quorum
        os.kill(c.procs[3].pid, signal.SIGSTOP)
        c.cut(2, [0, 1, 3])
        for i in (0, 1):
            c.cut(i, [2])
        time.sleep(3)
        t_stall = time.monotonic() - 3
        stalled_at = max(c.height(i) for i in (0, 1))
        n_stall = n_votes - n_run
        bodies, t = presign(byz, c.genesis.chain_id, n_stall, [stalled_at + 1, stalled_at + 2], 300, 2, procs)
        res.sign_s.append(t)
        res.votes_signed += n_stall
        before = [s.sent_votes for s in senders]
        t1 = time.monotonic()
        tail = max(1, len(bodies) // 10)  # the last 10 % go on after the stall ends
        for s in senders:
            s.queue.extend(bodies[:-tail])
        for s in senders:
            assert s.drain(900), "stalled-phase flood not delivered in 900 s"
        res.stalled_s = time.monotonic() - t1
        res.sent_stalled = min(s.sent_votes - b for s, b in zip(senders, before))
        assert max(c.height(i) for i in (0, 1)) <= stalled_at + 1, "not really stalled"
        log(f"stalled phase: {res.sent_stalled:,} votes in {res.stalled_s:.1f} s at height {stalled_at}")
        # the stall ends (peer2 reconnects; peer3 stays paused); the flood goes on
        for s in senders:
            s.queue.extend(bodies[-tail:])
        for i in (0, 1, 2):
            c.cut(i, [])
        t_heal = time.monotonic()
        res.stall_total_s = t_heal - t_stall
        c.wait_height(stalled_at + 2, peers=[0, 1, 2], timeout=120)
        res.resumed_s = time.monotonic() - t_heal
        for s in senders:
            s.drain(300)
        res.sent_total = min(s.sent_votes for s in senders)
        res.stats = c.http.get(c.urls[0] + "/p2p/stats").json()["stats"]
        os.kill(c.procs[3].pid, signal.SIGCONT)
        c.wait_height(stalled_at + 3, timeout=60)
        c.assert_same_chain()
        return res
    finally:
        for s in senders:
            s.stop_flag.set()
        for p in c.procs.values():
            try:
                os.kill(p.pid, signal.SIGCONT)
            except OSError:
                pass
