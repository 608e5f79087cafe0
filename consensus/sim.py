"""Deterministic in-process simulation of N engines over a lossy, reordering network.

Everything random comes from one `random.Random(seed)`, and events are ordered by
(simulated time, sequence number), so a seed reproduces a run exactly. The
simulator plays the node's part: it answers RequestProposal, fires timers,
applies decisions (advance_to), fetches blocks on NeedBlock, periodically
re-gossips everything each engine holds at its height (`Engine.rebroadcast`, what
keeps Algorithm 1 live over a lossy link) and block-syncs a peer that is a height
behind by handing it a commit certificate (`Engine.on_commit`). Byzantine peers run
an honest engine for bookkeeping and corrupt what it sends.

Network model (partial synchrony): before GST (`drop_until_ms`) messages may be
dropped or take a long path; partitions drop cross-group traffic while active;
otherwise every message takes a uniform delay in `delay_ms`, so delivery order is
random; duplicates are optional.

Run a seed sweep: `python -m pocnet.consensus.sim --seeds 200` (see docs/consensus.md).
"""

from __future__ import annotations

import argparse
import heapq
import random
import time
from dataclasses import dataclass, field, replace
from typing import Callable, cast

from pocnet.consensus.engine import Engine
from pocnet.consensus.messages import (
    PRECOMMIT,
    PREVOTE,
    Action,
    BroadcastProposal,
    BroadcastVote,
    Decide,
    Equivocation,
    NeedBlock,
    Proposal,
    RequestProposal,
    ScheduleTimeout,
    Timeout,
    TimeoutConfig,
    Vote,
)
from pocnet.consensus.proposer import HashOrderSelector, SelectionContext, proposer_for

HONEST = "honest"
SILENT = "silent"  # crashed / mute from the start
EQUIVOCATE = "equivocate"  # a second proposal / vote version to a random subset of peers
FORGE = "forge"  # floods conflicting votes on its own id: random hashes, nil, future rounds/heights
PROMISCUOUS = "promiscuous"  # votes for every value it has seen proposed at the height, to everyone
BYZANTINE_MODES = (SILENT, EQUIVOCATE, FORGE, PROMISCUOUS)

GENESIS_HASH = "genesis"


@dataclass(frozen=True)
class Partition:
    """Between start_ms (incl.) and end_ms (excl.) messages between different groups are
    dropped; a node listed in no group is isolated."""

    start_ms: int
    end_ms: int
    groups: tuple[frozenset[str], ...]

    def separates(self, a: str, b: str, t: int) -> bool:
        if not self.start_ms <= t < self.end_ms:
            return False
        ga = next((i for i, g in enumerate(self.groups) if a in g), None)
        gb = next((i for i, g in enumerate(self.groups) if b in g), None)
        return ga is None or gb is None or ga != gb


@dataclass(frozen=True)
class SimConfig:
    n: int = 4
    heights: int = 3
    seed: int = 0
    drop: float = 0.0
    drop_until_ms: int | None = None  # "GST": no drops or slow paths from then on (None = never)
    delay_ms: tuple[int, int] = (1, 40)
    duplicate: float = 0.0  # probability a delivered message is delivered twice
    slow: float = 0.0  # probability a message sent before GST takes a long path (≤ slow_ms)
    slow_ms: int = 5000
    partitions: tuple[Partition, ...] = ()
    byzantine: tuple[tuple[str, str], ...] = ()  # (validator id, mode)
    byz_invalid_alt: bool = False  # equivocating proposer's second value is an invalid block
    invalid_values: frozenset[str] = frozenset()
    timeouts: TimeoutConfig = TimeoutConfig(300, 100, 200, 100, 200, 100)
    gossip_interval_ms: int = 250
    apply_ms: int = 5
    max_events: int = 300_000
    max_time_ms: int = 600_000
    start_height: int = 1


@dataclass
class SimResult:
    honest: tuple[str, ...]
    decisions: dict[str, dict[int, str]]
    certificates: dict[str, dict[int, Decide]]
    decide_time_ms: dict[str, dict[int, int]]
    evidence: dict[str, tuple[Equivocation, ...]]
    max_round: int
    events: int
    time_ms: int
    completed: bool
    invalid_decisions: list[tuple[str, int, str]] = field(default_factory=list)

    def conflicts(self) -> list[tuple[int, str, str, str, str]]:
        """(height, node_a, hash_a, node_b, hash_b) for every disagreement between honest nodes."""
        out = []
        first: dict[int, tuple[str, str]] = {}
        for node in self.honest:
            for h, v in sorted(self.decisions[node].items()):
                if h not in first:
                    first[h] = (node, v)
                elif first[h][1] != v:
                    out.append((h, first[h][0], first[h][1], node, v))
        return out

    def agreement(self) -> bool:
        return not self.conflicts()

    def min_decided(self) -> int:
        """Number of heights every honest node has decided."""
        return min(len(self.decisions[n]) for n in self.honest)


class _Peer:
    def __init__(self, pid: str, mode: str, engine: Engine) -> None:
        self.id = pid
        self.mode = mode
        self.engine = engine
        self.decisions: dict[int, Decide] = {}
        self.decide_time: dict[int, int] = {}
        self.splits: dict[tuple[int, int, str], frozenset[str]] = {}
        self.alts: dict[tuple[int, int], str] = {}


class Simulation:
    def __init__(self, cfg: SimConfig) -> None:
        self.cfg = cfg
        self.rng = random.Random(cfg.seed)
        self.ids = tuple(f"v{i}" for i in range(cfg.n))
        modes = dict(cfg.byzantine)
        unknown = set(modes) - set(self.ids)
        if unknown or any(m not in BYZANTINE_MODES for m in modes.values()):
            raise ValueError(f"bad byzantine spec {cfg.byzantine}")
        self.selector = HashOrderSelector()
        self.peers: dict[str, _Peer] = {}
        for pid in self.ids:
            mode = modes.get(pid, HONEST)
            peer = _Peer(pid, mode, None)  # type: ignore[arg-type]
            peer.engine = Engine(pid, self.ids, self._proposer_fn(peer), cfg.timeouts, cfg.start_height)
            self.peers[pid] = peer
        self.honest = tuple(p for p in self.ids if self.peers[p].mode == HONEST)
        self.now = 0
        self.events = 0
        self._seq = 0
        self._queue: list[tuple[int, int, str, str, object]] = []
        self._sync_sent: dict[tuple[str, int], int] = {}
        self._invalid = set(cfg.invalid_values)
        self._max_round = 0
        self._finished: set[str] = set()

    # ------------------------------------------------------------------ plumbing

    def _proposer_fn(self, peer: _Peer) -> Callable[[int, int], str]:
        cache: dict[int, tuple[str, ...]] = {}

        def fn(height: int, round: int) -> str:
            if height not in cache:
                prev = peer.decisions.get(height - 1)
                prev_hash = prev.block_hash if prev is not None else GENESIS_HASH
                cache[height] = self.selector.ranking(height, SelectionContext(prev_hash, self.ids))
            return proposer_for(cache[height], round)

        return fn

    def _push(self, at: int, kind: str, dst: str, payload: object) -> None:
        self._seq += 1
        heapq.heappush(self._queue, (at, self._seq, kind, dst, payload))

    def valid(self, block_hash: str) -> bool:
        return block_hash not in self._invalid and not block_hash.startswith("bad")

    def _send(self, src: str, dst: str, msg: object) -> None:
        """One point-to-point message through the faulty network."""
        if any(p.separates(src, dst, self.now) for p in self.cfg.partitions):
            return
        cfg = self.cfg
        dropping = cfg.drop > 0 and (cfg.drop_until_ms is None or self.now < cfg.drop_until_ms)
        if dropping and self.rng.random() < cfg.drop:
            return
        self._push(self.now + self._delay(), "msg", dst, (src, msg))
        if cfg.duplicate and self.rng.random() < cfg.duplicate:
            self._push(self.now + self._delay(), "msg", dst, (src, msg))

    def _delay(self) -> int:
        cfg = self.cfg
        before_gst = cfg.drop_until_ms is None or self.now < cfg.drop_until_ms
        if cfg.slow and before_gst and self.rng.random() < cfg.slow:
            return self.rng.randint(cfg.delay_ms[0], cfg.slow_ms)
        return self.rng.randint(*cfg.delay_ms)

    def _others(self, pid: str) -> list[str]:
        return [q for q in self.ids if q != pid]

    # ------------------------------------------------------------------ sending (honest and Byzantine)

    def _split(self, peer: _Peer, key: tuple[int, int, str]) -> frozenset[str]:
        """The equivocator's audience for its second version of one (height, round, message
        type): a random non-empty proper subset, drawn independently per message type so
        that, e.g., its prevotes and precommits reach different coalitions."""
        if key not in peer.splits:
            others = self._others(peer.id)
            self.rng.shuffle(others)
            peer.splits[key] = frozenset(others[: self.rng.randint(1, max(1, len(others) - 1))])
        return peer.splits[key]

    def _broadcast(self, peer: _Peer, msg: Proposal | Vote) -> None:
        self._broadcast_to(peer, msg, self._others(peer.id))

    def _broadcast_to(self, peer: _Peer, msg: Proposal | Vote, targets: list[str]) -> None:
        if peer.mode == SILENT:
            return
        if peer.mode == HONEST:
            for q in targets:
                self._send(peer.id, q, msg)
        elif peer.mode == EQUIVOCATE:
            self._broadcast_equivocating(peer, msg, targets)
        elif peer.mode == PROMISCUOUS:
            self._broadcast_promiscuous(peer, msg, targets)
        else:
            self._broadcast_forging(peer, msg, targets)

    def _broadcast_equivocating(self, peer: _Peer, msg: Proposal | Vote, targets: list[str]) -> None:
        """Proposal v to some peers, v' (random claimed POL round) to the rest; each vote
        likewise split between its real value and v' (or a random hash)."""
        hr = (msg.height, msg.round)
        alt = peer.alts.get(hr)
        if isinstance(msg, Proposal):
            if alt is None:
                alt = peer.alts[hr] = ("bad:" if self.cfg.byz_invalid_alt else "") + f"{msg.block_hash}'"
            other: Proposal | Vote = replace(msg, block_hash=alt, pol_round=self.rng.randint(-1, msg.round - 1))
            half = self._split(peer, (msg.height, msg.round, "proposal"))
        else:
            other = replace(msg, block_hash=alt if msg.block_hash is not None and alt else f"rnd{self.rng.random():.6f}")
            half = self._split(peer, (msg.height, msg.round, msg.kind))
        for q in targets:
            self._send(peer.id, q, other if q in half else msg)

    def _broadcast_promiscuous(self, peer: _Peer, msg: Proposal | Vote, targets: list[str]) -> None:
        """Each vote is cast for every value seen proposed at that height and for nil, in
        random order: the Byzantine helps every candidate towards a quorum (the strongest
        single-validator attack on locks, since conflicting votes for known blocks count)."""
        batch: list[Proposal | Vote] = [msg]
        if isinstance(msg, Vote):
            seen = sorted({m.block_hash for m in peer.engine.rebroadcast() if isinstance(m, Proposal)})
            batch += [replace(msg, block_hash=h) for h in [*seen, None] if h != msg.block_hash]
        for q in targets:
            self.rng.shuffle(batch)
            for m in batch:
                self._send(peer.id, q, m)

    def _broadcast_forging(self, peer: _Peer, msg: Proposal | Vote, targets: list[str]) -> None:
        """The real message plus, in random order, conflicting votes on its own id (random
        hashes, nil, the other kind, future rounds and heights) and unsolicited proposals."""
        r = self.rng
        for q in targets:
            batch: list[Proposal | Vote] = [msg]
            if isinstance(msg, Vote):
                batch.append(replace(msg, block_hash=f"rnd{r.random():.6f}"))
                batch.append(replace(msg, block_hash=None))
                batch.append(replace(msg, kind=PRECOMMIT if msg.kind == PREVOTE else PREVOTE, block_hash=f"rnd{r.random():.6f}"))
                batch.append(replace(msg, round=msg.round + r.randint(1, 3), block_hash=f"rnd{r.random():.6f}"))
                batch.append(replace(msg, height=msg.height + 1, round=r.randint(0, 2)))
                batch.append(Proposal(msg.height, msg.round, f"rnd{r.random():.6f}", -1, peer.id))
                batch.append(replace(msg, round=msg.round + 10_000))
            r.shuffle(batch)
            for m in batch:
                self._send(peer.id, q, m)

    def _gossip(self, peer: _Peer) -> None:
        """Periodic anti-entropy: everything the peer holds at its height goes to one random
        peer (honest peers relay others' signed messages unchanged; Byzantine ones corrupt
        only their own)."""
        dst = self.rng.choice(self._others(peer.id))
        for m in peer.engine.rebroadcast():
            mine = (m.proposer if isinstance(m, Proposal) else m.validator) == peer.id
            if mine and peer.mode != HONEST:
                self._broadcast_to(peer, m, [dst])
            else:
                self._send(peer.id, dst, m)

    # ------------------------------------------------------------------ action handling

    def _handle(self, peer: _Peer, actions: list[Action]) -> None:
        for a in actions:
            if isinstance(a, BroadcastProposal):
                self._broadcast(peer, a.proposal)
            elif isinstance(a, BroadcastVote):
                self._broadcast(peer, a.vote)
            elif isinstance(a, ScheduleTimeout):
                self._push(self.now + a.timeout.duration_ms, "timeout", peer.id, a.timeout)
            elif isinstance(a, RequestProposal):
                value = f"b{a.height}.{a.round}.{peer.id}"
                self._handle(peer, peer.engine.set_proposal_value(a.height, a.round, value))
            elif isinstance(a, Decide):
                peer.decisions[a.height] = a
                peer.decide_time[a.height] = self.now
                target = range(self.cfg.start_height, self.cfg.start_height + self.cfg.heights)
                if peer.mode == HONEST and all(h in peer.decisions for h in target):
                    self._finished.add(peer.id)
                self._max_round = max(self._max_round, a.round)
                self._push(self.now + self.cfg.apply_ms, "advance", peer.id, a.height + 1)
            elif isinstance(a, NeedBlock):
                if self.valid(a.block_hash):
                    lo, hi = self.cfg.delay_ms
                    self._push(self.now + 2 * self.rng.randint(lo, hi), "block", peer.id, (a.height, a.block_hash))
            else:  # pragma: no cover - exhaustive over Action
                raise TypeError(a)

    def _deliver(self, dst: _Peer, src: str, msg: object) -> None:
        eng = dst.engine
        if isinstance(msg, Proposal):
            self._handle(dst, eng.on_proposal(msg, self.valid(msg.block_hash)))
        elif isinstance(msg, Vote):
            self._handle(dst, eng.on_vote(msg))
        elif isinstance(msg, Decide):  # block sync: the block plus its commit certificate
            if msg.height != eng.height or eng.decided is not None:
                return
            if self.valid(msg.block_hash):
                self._handle(dst, eng.on_block_available(msg.block_hash))
            self._handle(dst, eng.on_commit(msg))
            return
        else:  # pragma: no cover
            raise TypeError(msg)
        self._maybe_sync(dst, src, msg)

    def _maybe_sync(self, dst: _Peer, src: str, msg: Proposal | Vote) -> None:
        """A peer that hears a higher height gets the sender's commit certificate for its
        current height (what block sync does in the node), at most once per gossip interval."""
        h = dst.engine.height
        sender = self.peers[src]
        if msg.height <= h or sender.mode != HONEST or h not in sender.decisions:
            return
        key = (dst.id, h)
        last = self._sync_sent.get(key)
        if last is not None and self.now - last < self.cfg.gossip_interval_ms:
            return
        self._sync_sent[key] = self.now
        self._send(src, dst.id, sender.decisions[h])

    # ------------------------------------------------------------------ main loop

    def _done(self) -> bool:
        return len(self._finished) == len(self.honest)

    def run(self) -> SimResult:
        cfg = self.cfg
        for pid in self.ids:
            peer = self.peers[pid]
            if peer.mode != SILENT:
                self._handle(peer, peer.engine.start())
                self._push(self.rng.randint(0, cfg.gossip_interval_ms), "gossip", pid, None)
        completed = self._done()
        while self._queue and not completed:
            at, _, kind, dst, payload = heapq.heappop(self._queue)
            if at > cfg.max_time_ms or self.events >= cfg.max_events:
                break
            self.now = at
            self.events += 1
            peer = self.peers[dst]
            if peer.mode == SILENT:
                continue
            if kind == "msg":
                src, msg = cast(tuple[str, object], payload)
                self._deliver(peer, src, msg)
            elif kind == "timeout":
                self._handle(peer, peer.engine.on_timeout(cast(Timeout, payload)))
            elif kind == "advance":
                self._handle(peer, peer.engine.advance_to(cast(int, payload)))
            elif kind == "block":
                height, block_hash = cast(tuple[int, str], payload)
                if peer.engine.height == height:
                    self._handle(peer, peer.engine.on_block_available(block_hash))
            elif kind == "gossip":
                self._gossip(peer)
                self._push(self.now + cfg.gossip_interval_ms, "gossip", dst, None)
            completed = self._done()
        return self._result(completed)

    def _result(self, completed: bool) -> SimResult:
        decisions = {p: {h: d.block_hash for h, d in self.peers[p].decisions.items()} for p in self.honest}
        invalid = [(p, h, v) for p in self.honest for h, v in decisions[p].items() if not self.valid(v)]
        return SimResult(
            honest=self.honest,
            decisions=decisions,
            certificates={p: dict(self.peers[p].decisions) for p in self.honest},
            decide_time_ms={p: dict(self.peers[p].decide_time) for p in self.honest},
            evidence={p: tuple(self.peers[p].engine.evidence) for p in self.honest},
            max_round=self._max_round,
            events=self.events,
            time_ms=self.now,
            completed=completed,
            invalid_decisions=invalid,
        )


def run(cfg: SimConfig) -> SimResult:
    return Simulation(cfg).run()


def random_config(seed: int, n: int = 4, heights: int = 3) -> SimConfig:
    """The adversarial mix of the safety sweep: lossy/reordering links until GST, f Byzantine
    peers of a seed-chosen mode, sometimes a partition."""
    r = random.Random(seed * 7919 + 17)
    f = (n - 1) // 3
    byz_ids = r.sample([f"v{i}" for i in range(n)], f)
    byz = tuple((b, r.choice(BYZANTINE_MODES)) for b in byz_ids)
    parts: tuple[Partition, ...] = ()
    if r.random() < 0.3:
        ids = [f"v{i}" for i in range(n)]
        r.shuffle(ids)
        k = r.randint(1, n - 1)
        start = r.randint(0, 2000)
        parts = (Partition(start, start + r.randint(500, 4000), (frozenset(ids[:k]), frozenset(ids[k:]))),)
    return SimConfig(
        n=n,
        heights=heights,
        seed=seed,
        drop=r.choice([0.0, 0.05, 0.2, 0.4]),
        drop_until_ms=r.choice([3000, 8000]),
        delay_ms=(1, r.choice([20, 100, 400])),
        duplicate=r.choice([0.0, 0.1]),
        slow=r.choice([0.0, 0.05, 0.2, 0.5]),
        slow_ms=r.choice([1000, 5000]),
        gossip_interval_ms=r.choice([250, 1000, 3000]),
        partitions=parts,
        byzantine=byz,
        byz_invalid_alt=r.random() < 0.5,
        max_time_ms=120_000,
    )


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="seed sweep of the consensus simulation")
    ap.add_argument("--seeds", type=int, default=200)
    ap.add_argument("--n", type=int, default=4)
    ap.add_argument("--heights", type=int, default=3)
    args = ap.parse_args(argv)
    t0 = time.perf_counter()
    forks = incomplete = 0
    rounds: list[int] = []
    events = 0
    for seed in range(args.seeds):
        res = run(random_config(seed, args.n, args.heights))
        forks += not res.agreement() or bool(res.invalid_decisions)
        incomplete += not res.completed
        rounds.append(res.max_round)
        events += res.events
    dt = time.perf_counter() - t0
    print(
        f"seeds={args.seeds} n={args.n} heights={args.heights} forks={forks} incomplete={incomplete} "
        f"max_round={max(rounds)} events={events} wall={dt:.1f}s"
    )
    return 1 if forks else 0


if __name__ == "__main__":
    raise SystemExit(main())
