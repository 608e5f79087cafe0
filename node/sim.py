"""Seeded simulation of N *production* BFT drivers (node/bft.py) under virtual time.

``consensus/sim.py`` simulates the pure engine and plays the node's part itself.
This module runs the real thing instead: each validator is a real :class:`Node`
(chain, application, mempool, in-memory SQLite storage) driven by the real
:class:`BftDriver` — Ed25519 signing and verification of every proposal and
vote, block building and re-execution, commit certificates, the mempool and tx
gossip, the heartbeat relay, candidate fetches and block sync. Only three things
are injected, through the driver's constructor:

* **timers**: every driver runs on one :class:`VirtualTimeLoop`, an asyncio loop
  whose clock jumps to the next scheduled timer instead of sleeping, so
  ``asyncio.sleep``, ``call_later`` and ``wait_for`` run in virtual time;
* **clock**: :class:`SimClock` reads that loop (plus a per-node skew) for block
  timestamps;
* **transport**: :class:`SimTransport` delivers messages through a seeded
  network (delays, losses before GST, partitions, crashed peers), JSON-copied as
  on the wire; the catch-up requests (heights, blocks, candidates) read the
  other nodes' chains after a sampled round trip.

One ``random.Random(seed)`` drives the network, the faults and the tx workload,
and validator keys are derived from the seed; within a process a seed reproduces
its run. Checked per run: agreement (same block at every height on every honest
node), valid commit certificates (against the validator set of each height), identical
state roots, liveness (every live node reaches the target height), and that every accepted
tx is committed. ``joiners`` / ``set_changes`` run extra full nodes that join the set by a
``validator_join`` tx, and validators that leave by ``validator_leave``.

    python -m pocnet.node.sim --seeds 200            # sweep, prints a summary
"""
from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import logging
import random
import selectors
import tempfile
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from pocnet.ledger.block import Block
from pocnet.ledger.errors import TxRejected
from pocnet.ledger.genesis import Genesis, ValidatorInfo
from pocnet.ledger.keys import KeyPair
from pocnet.ledger.tx import sign_tx
from pocnet.ledger.txtypes.validators import validators_at
from pocnet.consensus.engine import quorum_size
from pocnet.node.bft import BftDriver
from pocnet.node.config import GENESIS_FILE, NODE_KEY_FILE, NodeConfig
from pocnet.node.mempool import Mempool
from pocnet.node.node import Node
from pocnet.node.privval import PrivValState
from pocnet.p2p.blocks import parse_block
from pocnet.p2p.sync import check_certificate
from pocnet.p2p.transport import TransportError

EPOCH_MS = 1_700_000_000_000
# Loopback-scale timeouts (virtual ms): the driver's real pacing, shrunk so a run is short.
SIM_CONSENSUS = {"timeout_propose_ms": 400, "timeout_prevote_ms": 200, "timeout_precommit_ms": 200,
                 "timeout_delta_ms": 100, "block_interval_ms": 20, "empty_block_interval_ms": 300}


# --------------------------------------------------------------------------- virtual time
class _VirtualSelector(selectors.DefaultSelector):
    """Never blocks: when nothing is ready, advance the loop's clock by the timeout."""

    loop: "VirtualTimeLoop"

    def select(self, timeout: float | None = None) -> list:
        ready = super().select(0)
        if ready:
            return ready
        if timeout is None:
            raise RuntimeError("simulation deadlock: no timer scheduled and nothing ready")
        self.loop.advance(timeout)
        return []


class VirtualTimeLoop(asyncio.SelectorEventLoop):
    """An asyncio loop on virtual time (starts at 0 s; only timers move it)."""

    def __init__(self) -> None:
        self._virtual_now = 0.0
        sel = _VirtualSelector()
        super().__init__(sel)
        sel.loop = self

    def time(self) -> float:
        return self._virtual_now

    def advance(self, dt: float) -> None:
        if dt > 0:
            self._virtual_now += dt


class SimClock:
    def __init__(self, loop: VirtualTimeLoop, skew_ms: int = 0) -> None:
        self.loop = loop
        self.skew_ms = skew_ms

    def now_ms(self) -> int:
        return EPOCH_MS + int(self.loop.time() * 1000) + self.skew_ms

    def monotonic(self) -> float:
        return self.loop.time()


class MemoryPrivVal(PrivValState):
    """What the validator signed at the current height, kept in memory (a simulated crash
    keeps it, as the real file survives a process crash)."""

    def __init__(self) -> None:  # no file
        self.height = 0
        self.signed = {}
        self.locked_value = None
        self.locked_round = -1

    def _persist(self) -> None:
        pass


# --------------------------------------------------------------------------- network
@dataclass(frozen=True)
class Partition:
    start_ms: int
    end_ms: int
    groups: tuple[frozenset[str], ...]  # node names ("v0", ...); a node in no group is isolated

    def separates(self, a: str, b: str, t_ms: int) -> bool:
        if not self.start_ms <= t_ms < self.end_ms:
            return False
        ga = next((i for i, g in enumerate(self.groups) if a in g), None)
        gb = next((i for i, g in enumerate(self.groups) if b in g), None)
        return ga is None or gb is None or ga != gb


@dataclass(frozen=True)
class DriverSimConfig:
    n: int = 4
    heights: int = 3                       # every live node must commit this many heights
    seed: int = 0
    delay_ms: tuple[int, int] = (1, 30)
    drop: float = 0.0                      # loss probability before GST
    gst_ms: int = 0                        # no losses from then on
    partitions: tuple[Partition, ...] = ()
    crashed: tuple[str, ...] = ()          # never start (at most f)
    restart: tuple[tuple[str, int, int], ...] = ()  # (node, crash at ms, back at ms)
    skew_ms: int = 0                       # max |clock skew| per node
    txs: int = 20                          # transfers, submitted at random times
    senders: int = 3                       # each sends its txs (consecutive nonces) to one node
    tx_window_ms: int = 600
    max_time_ms: int = 60_000
    consensus: dict[str, int] = field(default_factory=lambda: dict(SIM_CONSENSUS))
    # changing validator set: `joiners` extra nodes ("j0", ...) start as full nodes (funded in
    # genesis, not validators); set_changes = ((node, "join" | "leave", at ms), ...) sends that
    # node's validator_join / validator_leave tx (to a steady validator) at that virtual time
    joiners: int = 0
    set_changes: tuple[tuple[str, str, int], ...] = ()
    # compact proposals: these nodes never receive gossiped txs (they must pull what a
    # proposal names), and these nodes refuse to serve pulls (forcing the full-block fallback)
    no_tx_gossip_to: tuple[str, ...] = ()
    refuse_pulls: tuple[str, ...] = ()


class SimNetwork:
    def __init__(self, loop: VirtualTimeLoop, rng: random.Random, cfg: DriverSimConfig) -> None:
        self.loop, self.rng, self.cfg = loop, rng, cfg
        self.nodes: dict[str, Node] = {}        # by address
        self.names: dict[str, str] = {}         # address -> "v<i>"
        self.down: set[str] = set()             # addresses of crashed / not-yet-restarted nodes
        self.delivered = 0
        self.dropped = 0

    def now_ms(self) -> int:
        return int(self.loop.time() * 1000)

    def reachable(self, a: str, b: str) -> bool:
        if a in self.down or b in self.down:
            return False
        t = self.now_ms()
        return not any(p.separates(self.names[a], self.names[b], t) for p in self.cfg.partitions)

    def delay_s(self) -> float:
        lo, hi = self.cfg.delay_ms
        return self.rng.randint(lo, hi) / 1000

    def send(self, src: str, dst: str, msgs: list[Any], txs: list[Any]) -> None:
        if not self.reachable(src, dst):
            self.dropped += 1
            return
        if self.cfg.drop and self.now_ms() < self.cfg.gst_ms and self.rng.random() < self.cfg.drop:
            self.dropped += 1
            return
        if txs and self.names[dst] in self.cfg.no_tx_gossip_to:
            txs = []
            if not msgs:
                return
        body = json.loads(json.dumps({"msgs": msgs, "txs": txs}))  # what POST /p2p/msgs carries
        self.loop.call_later(self.delay_s(), self._arrive, src, dst, body)

    def _arrive(self, src: str, dst: str, body: dict[str, Any]) -> None:
        if dst in self.down:
            return
        self.delivered += 1
        driver = self.nodes[dst].driver
        assert isinstance(driver, BftDriver)
        driver.handle_batch(src, body["msgs"], body["txs"])

    async def round_trip(self, a: str, b: str) -> None:
        await asyncio.sleep(2 * self.delay_s())
        if not self.reachable(a, b):
            raise TransportError(f"{self.names[b]} unreachable from {self.names[a]}")


class SimTransport:
    """In-memory transport of one node (the Transport protocol of p2p/transport.py)."""

    def __init__(self, net: SimNetwork, me: str) -> None:
        self.net, self.me = net, me

    def _peers(self) -> list[str]:
        return [a for a in self.net.nodes if a != self.me]

    def broadcast(self, msg: dict[str, Any], only: set[str] | None = None) -> None:
        for pid in self._peers():
            if only is None or pid in only:
                self.net.send(self.me, pid, [msg], [])

    def broadcast_txs(self, txs: list[dict[str, Any]]) -> None:
        for pid in self._peers():
            self.net.send(self.me, pid, [], txs)

    async def start(self) -> None:
        return None

    async def stop(self) -> None:
        return None

    def add_peer(self, peer_id: str, url: str) -> None:
        return None  # the simulated network already reaches every node

    async def heights(self) -> dict[str, int]:
        out = {}
        for pid in self._peers():
            try:
                await self.net.round_trip(self.me, pid)
            except TransportError:
                continue
            out[pid] = self.net.nodes[pid].chain.height
        return out

    async def get_blocks(self, peer_id: str, start: int, limit: int) -> list[Block]:
        await self.net.round_trip(self.me, peer_id)
        peer = self.net.nodes[peer_id]
        dicts = json.loads(json.dumps(peer.storage.get_block_dicts(start, limit)))
        return [parse_block(d, peer.genesis.chain_id, lambda _h: None, verify_signatures=False) for d in dicts]

    async def get_candidate(self, peer_id: str, block_hash: str) -> Any | None:
        try:
            await self.net.round_trip(self.me, peer_id)
        except TransportError:
            return None
        driver = self.net.nodes[peer_id].driver
        assert isinstance(driver, BftDriver)
        c = driver.candidates.get(block_hash)
        return json.loads(json.dumps(c[0].to_dict())) if c else None

    async def get_txs(self, peer_id: str, hashes: list[str]) -> Any | None:
        try:
            await self.net.round_trip(self.me, peer_id)
        except TransportError:
            return None
        if self.net.names[peer_id] in self.net.cfg.refuse_pulls:
            return None
        driver = self.net.nodes[peer_id].driver
        assert isinstance(driver, BftDriver)
        return json.loads(json.dumps(driver.serve_txs(hashes)))


# --------------------------------------------------------------------------- one run
@dataclass
class DriverSimResult:
    seed: int
    heights: dict[str, int]                 # node name -> committed height
    hashes: dict[str, list[str]]            # node name -> block hash per height
    roots: dict[str, list[str]]
    live: tuple[str, ...]
    completed: bool
    time_ms: int
    max_round: int
    txs_accepted: int
    txs_committed: int
    delivered: int
    dropped: int
    problems: list[str] = field(default_factory=list)
    final_set: tuple[str, ...] = ()          # names of the voting set after the last height
    signers: dict[str, int] = field(default_factory=dict)  # name -> commit signatures on chain
    driver_stats: dict[str, dict[str, int]] = field(default_factory=dict)  # name -> driver counters

    @property
    def ok(self) -> bool:
        return self.completed and not self.problems


def _key(seed: int, i: int) -> KeyPair:
    return KeyPair.from_seed(hashlib.sha256(f"pocnet-sim/{seed}/{i}".encode()).digest())


def _make_homes(root: Path, cfg: DriverSimConfig, senders: list[KeyPair]) -> list[Path]:
    keys = [_key(cfg.seed, i) for i in range(cfg.n)]
    vals = tuple(ValidatorInfo(f"v{i}", k.address, f"sim://v{i}") for i, k in enumerate(keys))
    joiners = [_key(cfg.seed, 1000 + j) for j in range(cfg.joiners)]
    funds = {s.address: 10**12 for s in senders} | {k.address: 10**9 for k in joiners}
    genesis = Genesis(f"sim-{cfg.seed}", EPOCH_MS, vals, funds, dict(cfg.consensus))
    genesis.check()
    homes = []
    named = [(f"v{i}", k) for i, k in enumerate(keys)] + [(f"j{j}", k) for j, k in enumerate(joiners)]
    for name, k in named:
        home = root / name
        home.mkdir(parents=True)
        genesis.save(home / GENESIS_FILE)
        k.save(home / NODE_KEY_FILE)
        NodeConfig(name=name).save(home)
        homes.append(home)
    return homes


def run_driver_sim(cfg: DriverSimConfig) -> DriverSimResult:
    rng = random.Random(cfg.seed)
    loop = VirtualTimeLoop()
    net = SimNetwork(loop, rng, cfg)
    senders = [KeyPair.from_seed(hashlib.sha256(f"pocnet-sim/{cfg.seed}/sender{i}".encode()).digest())
               for i in range(cfg.senders)]
    level = logging.getLogger("pocnet").level
    logging.getLogger("pocnet").setLevel(logging.ERROR)
    try:
        with tempfile.TemporaryDirectory(prefix="pocnet-sim-") as tmp:
            homes = _make_homes(Path(tmp), cfg, senders)
            nodes = [Node(h, db_url="sqlite://") for h in homes]
            privvals: dict[str, MemoryPrivVal] = {}
            for node in nodes:
                addr = node.key.address
                net.nodes[addr] = node
                net.names[addr] = node.config.name
                privvals[addr] = MemoryPrivVal()
            skews = {a: rng.randint(-cfg.skew_ms, cfg.skew_ms) for a in net.nodes}

            def new_driver(addr: str) -> BftDriver:
                node = net.nodes[addr]
                node.driver = BftDriver(node, selector=node.poc, transport=SimTransport(net, addr),
                                        clock=SimClock(loop, skews[addr]), privval=privvals[addr])
                return node.driver

            crashed = {a for a, name in net.names.items() if name in cfg.crashed}
            net.down |= crashed
            for a in net.nodes:
                new_driver(a)
            try:
                return loop.run_until_complete(_run(cfg, loop, net, rng, senders, new_driver, crashed))
            finally:
                _shutdown(loop)
                for node in nodes:
                    node.storage.close()
    finally:
        logging.getLogger("pocnet").setLevel(level)


def _shutdown(loop: VirtualTimeLoop) -> None:
    pending = asyncio.all_tasks(loop)
    for t in pending:
        t.cancel()
    if pending:
        loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
    loop.close()


async def _run(cfg: DriverSimConfig, loop: VirtualTimeLoop, net: SimNetwork, rng: random.Random,
               senders: list[KeyPair], new_driver: Any, crashed: set[str]) -> DriverSimResult:
    runs: dict[str, asyncio.Task] = {}
    for addr, node in net.nodes.items():
        if addr not in crashed:
            runs[addr] = loop.create_task(node.driver.run())

    by_name = {name: a for a, name in net.names.items()}
    for name, down_ms, up_ms in cfg.restart:
        addr = by_name[name]

        def crash(addr: str = addr) -> None:
            net.down.add(addr)
            t = runs.pop(addr, None)
            if t is not None:
                t.cancel()

        def recover(addr: str = addr) -> None:
            net.down.discard(addr)
            node = net.nodes[addr]
            # a restarted process: same database and privval file, empty mempool, new driver
            node.mempool = Mempool(node.chain.app, node.chain.next_context, node.config.mempool_max_txs)
            runs[addr] = loop.create_task(new_driver(addr).run())

        loop.call_later(down_ms / 1000, crash)
        loop.call_later(up_ms / 1000, recover)

    accepted: list[str] = []
    live = [a for a in net.nodes if a not in crashed]
    restarted = {by_name[name] for name, _, _ in cfg.restart}
    steady = [a for a in live if a not in restarted]
    targets = {s.address: rng.choice(steady) for s in senders}
    nonces = {s.address: 0 for s in senders}
    times = sorted(rng.randint(0, cfg.tx_window_ms) for _ in range(cfg.txs))
    for at_ms in times:
        sender = rng.choice(senders)
        to = rng.choice(live)
        tx = sign_tx(sender, f"sim-{cfg.seed}", "transfer", nonces[sender.address],
                     {"to": to, "amount": rng.randint(1, 1000)})
        nonces[sender.address] += 1
        target = targets[sender.address]
        at = at_ms / 1000

        def submit(tx: Any = tx, target: str = target) -> None:
            if target in net.down:
                return
            try:
                net.nodes[target].submit_tx_obj(tx.to_dict())
                accepted.append(tx.hash)
            except TxRejected:
                pass  # e.g. a nonce gap on this peer; counted as not accepted

        loop.call_later(at, submit)

    set_nonces: dict[str, int] = {}
    refused_changes: list[str] = []
    for name, op, at_ms in cfg.set_changes:
        addr = by_name[name]
        key = net.nodes[addr].key
        n = set_nonces.get(addr, 0)
        set_nonces[addr] = n + 1
        payload = ({"validator": addr, "url": f"http://{name}.sim", "bond": net.nodes[addr].chain.params.min_bond}
                   if op == "join" else {})
        stx = sign_tx(key, f"sim-{cfg.seed}", f"validator_{op}", n, payload)

        def submit_change(tx: Any = stx) -> None:
            target = steady[0]   # one peer for all set changes: a leave is admitted after the join
            try:
                net.nodes[target].submit_tx_obj(tx.to_dict())
                accepted.append(tx.hash)
            except TxRejected as exc:
                refused_changes.append(f"{tx.type} of {net.names[tx.sender]} refused: {exc}")

        loop.call_later(at_ms / 1000, submit_change)

    target_h = cfg.heights
    done_after_txs = max([cfg.tx_window_ms] + [at for _, _, at in cfg.set_changes]) / 1000
    while loop.time() * 1000 < cfg.max_time_ms:
        await asyncio.sleep(0.05)
        if loop.time() < done_after_txs or net.down - crashed:
            continue
        if all(net.nodes[a].chain.height >= target_h for a in live) and \
                all(_committed(net.nodes[a], accepted) for a in live):
            break
    for t in runs.values():
        t.cancel()
    result = _check(cfg, net, live, accepted, loop)
    result.problems.extend(refused_changes)
    return result


def _committed(node: Node, hashes: list[str]) -> bool:
    return not len(node.mempool) and all(node.storage.get_tx(h) is not None for h in hashes)


def _check(cfg: DriverSimConfig, net: SimNetwork, live: list[str], accepted: list[str],
           loop: VirtualTimeLoop) -> DriverSimResult:
    problems: list[str] = []
    hashes: dict[str, list[str]] = {}
    roots: dict[str, list[str]] = {}
    signers: dict[str, int] = {}
    max_round = 0
    for addr in live:
        node = net.nodes[addr]
        name = net.names[addr]
        blocks = [node.storage.get_block(h) for h in range(1, node.chain.height + 1)]
        hashes[name] = [b.hash if b else "" for b in blocks]
        roots[name] = [b.header.state_root if b else "" for b in blocks]
        for b in blocks:
            if b is None:
                problems.append(f"{name}: missing block")
                continue
            max_round = max(max_round, b.header.round)
            # the set of each height, read from the final state: exact here (nobody is jailed
            # or rejoins during a simulated run, so no record is overwritten)
            vals = validators_at(node.chain.state, b.height)
            try:
                check_certificate(b, node.genesis.chain_id, set(vals), quorum_size(len(vals)))
            except Exception as exc:  # noqa: BLE001
                problems.append(f"{name}: block {b.height} certificate: {exc}")
            if addr == live[0] and b.commit is not None:
                for sig in b.commit.signatures:
                    signers[net.names[sig.validator]] = signers.get(net.names[sig.validator], 0) + 1
    for h in range(max((len(v) for v in hashes.values()), default=0)):
        seen = {v[h] for v in hashes.values() if len(v) > h}
        if len(seen) > 1:
            problems.append(f"disagreement at height {h + 1}: {sorted(seen)}")
        seen_roots = {v[h] for v in roots.values() if len(v) > h}
        if len(seen_roots) > 1:
            problems.append(f"state roots differ at height {h + 1}")
    heights = {net.names[a]: net.nodes[a].chain.height for a in live}
    committed = sum(1 for h in accepted if net.nodes[live[0]].storage.get_tx(h) is not None)
    completed = all(v >= cfg.heights for v in heights.values()) and committed == len(accepted)
    first = net.nodes[live[0]].chain
    final_set = tuple(net.names[a] for a in validators_at(first.state, first.height + 1))
    return DriverSimResult(cfg.seed, heights, hashes, roots, tuple(net.names[a] for a in live), completed,
                           int(loop.time() * 1000), max_round, len(accepted), committed, net.delivered,
                           net.dropped, problems, final_set, signers,
                           {net.names[a]: dict(getattr(net.nodes[a].driver, "stats", {})) for a in live})


# --------------------------------------------------------------------------- scenarios
def scenario(seed: int, n: int = 4) -> DriverSimConfig:
    """A seed's fault scenario: delays always; by seed class losses before GST, a crashed
    validator, a partition that heals, a crash-restart, clock skew."""
    rng = random.Random(10_000 + seed)
    kind = seed % 5
    names = [f"v{i}" for i in range(n)]
    base = DriverSimConfig(seed=seed, n=n, delay_ms=(1, rng.choice((10, 40, 120))),
                           skew_ms=rng.choice((0, 50, 500)))
    if kind == 1:
        return replace(base, drop=rng.choice((0.1, 0.3)), gst_ms=rng.randint(500, 3000))
    if kind == 2:
        return replace(base, crashed=(rng.choice(names),))
    if kind == 3:
        cut = rng.choice(names)
        start = rng.randint(0, 1000)
        groups = (frozenset(x for x in names if x != cut), frozenset({cut}))
        return replace(base, partitions=(Partition(start, start + rng.randint(500, 3000), groups),))
    if kind == 4:
        who = rng.choice(names)
        down = rng.randint(200, 1500)
        return replace(base, restart=((who, down, down + rng.randint(300, 3000)),))
    return base


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seeds", type=int, default=50)
    ap.add_argument("--first", type=int, default=0)
    ap.add_argument("--n", type=int, default=4)
    args = ap.parse_args(argv)
    t0 = time.perf_counter()
    bad = 0
    rounds = []
    for seed in range(args.first, args.first + args.seeds):
        r = run_driver_sim(scenario(seed, args.n))
        rounds.append(r.max_round)
        if not r.ok:
            bad += 1
            print(f"seed {seed}: FAILED completed={r.completed} heights={r.heights} "
                  f"txs {r.txs_committed}/{r.txs_accepted} {r.problems[:3]}")
    wall = time.perf_counter() - t0
    print(f"{args.seeds} seeds, {args.n} validators: {args.seeds - bad} ok, {bad} failed; "
          f"max round {max(rounds, default=0)}; {wall:.1f} s wall ({wall / max(1, args.seeds) * 1000:.0f} ms/seed)")
    return 1 if bad else 0


if __name__ == "__main__":
    raise SystemExit(main())
