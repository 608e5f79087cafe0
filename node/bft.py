"""Multi-validator driver: runs the BFT engine against the chain over HTTP gossip.

The engine (consensus/engine.py) is a pure state machine; this adapter owns
everything impure around it: signing and verifying messages, timers (asyncio),
building and re-executing blocks (node/chain.py), gossip (p2p/gossip.py) and block
sync (p2p/sync.py). All engine calls happen on the event-loop thread, one at a time.

Test-only fault injection: with ``POCNET_DEBUG_API=1`` the peer exposes
``POST /debug/faults`` (cut links to chosen peers, both directions). Byzantine
behaviours (equivocation, forged votes, bad beacons) are not in this driver: they
live in test code that wraps it (tests/byzantine/byz_node.py).
"""
from __future__ import annotations

import asyncio
import logging
import os
import time
from collections import Counter, deque
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any, Protocol

from fastapi import APIRouter, Request

from pocnet.consensus.engine import Engine, quorum_size
from pocnet.consensus.messages import (BroadcastProposal, BroadcastVote, Decide, NeedBlock, Proposal, RequestProposal,
                                ScheduleTimeout, Timeout, Vote)
from pocnet.consensus.proposer import HashOrderSelector, ProposerSelector, SelectionContext, proposer_for
from pocnet.ledger.block import Block, Commit, CommitSig
from pocnet.ledger.errors import Code, TxRejected
from pocnet.ledger import queries
from pocnet.ledger.app import ExecResult
from pocnet.ledger.evidence import Evidence, EvidenceInvalid, SignedPart, make_evidence, parse_evidence, verify_evidence
from pocnet.ledger.txtypes.accountability import evidence_acceptable
from pocnet.ledger.txtypes.validators import peer_urls, validator_ids, validators_at
from pocnet.ledger.state_machine import BlockInvalid
from pocnet.ledger.tx import Tx
from pocnet.node.chain import ChainError
from pocnet.node.future_pool import FuturePool
from pocnet.node.privval import PrivValState
from pocnet.p2p.auth import HDR_RETRY_MS, AuthRefused, PeerAuthenticator
from pocnet.p2p.blocks import parse_block
from pocnet.p2p.compact import CompactBlock, assemble, check_pulled, compact_block_dict, missing_txs, parse_compact
from pocnet.p2p.gossip import FaultFilter
from pocnet.p2p.sync import check_certificate
from pocnet.p2p.transport import HttpTransport, Transport, TransportError
from pocnet.p2p.wire import (BadMessage, parse_proposal, parse_vote_fields, sign_proposal, sign_vote,
                             verify_vote)

if TYPE_CHECKING:
    from pocnet.node.node import Node

log = logging.getLogger("pocnet.bft")

# Per-validator vote state is bounded by construction, not by a shared cache that a flood
# could fill (issue 17 #2): per (kind, height, round, validator) at most VOTES_PER_SLOT
# signatures are kept (the first, plus one conflicting one = equivocation evidence); only
# heights chain+1 and chain+2; rounds up to ROUND_AHEAD past the engine's round. A vote from
# further ahead only tells the engine that validator's round (for round skipping): one per
# validator and height, and only if higher than the last one.
VOTES_PER_SLOT = 2
ROUND_AHEAD = 64
MAX_EVIDENCE_POOL = 256
_PROPOSAL_SIG_FIELDS = ("height", "round", "pol_round", "block_hash", "proposer", "signature")
# What one POST /p2p/msgs may carry; our own sender (p2p/gossip.py) batches at most
# 512 msgs and 2000 txs.
MAX_BATCH_MSGS = 1024
MAX_BATCH_TXS = 4000
# What one POST /p2p/txs (a compact proposal's missing txs) may ask for.
MAX_PULL_HASHES = 20_000


def now_ms() -> int:
    return int(time.time() * 1000)


class Clock(Protocol):
    """Time as the driver sees it: wall-clock ms for block timestamps, monotonic seconds
    for pacing. Timers and sleeps go through the running asyncio loop, so a simulation
    supplies both (node/sim.py: a virtual-time loop and this clock reading it)."""

    def now_ms(self) -> int: ...

    def monotonic(self) -> float: ...


class SystemClock:
    def now_ms(self) -> int:
        return now_ms()

    def monotonic(self) -> float:
        return time.monotonic()


class BftDriver:
    def __init__(self, node: "Node", selector: ProposerSelector | None = None, *,
                 transport: Transport | None = None, clock: Clock | None = None,
                 privval: PrivValState | None = None) -> None:
        """``transport``, ``clock`` and ``privval`` default to the production ones (HTTP,
        system time, ``<home>/privval_state.json``); the simulation injects its own."""
        self.node = node
        self.chain = node.chain
        g = node.genesis
        self.chain_id = g.chain_id
        self.validator_set = frozenset(validator_ids(self.chain.state))   # who may sign messages at all
        self.validators = list(self.validators_at(self.chain.height + 1))  # the voting set now
        self.quorum = quorum_size(len(self.validators))
        self.my_id = node.key.address if node.key.address in self.validators else None
        self.evidence_pool: dict[str, Evidence] = {}
        # every validator's URL on chain (genesis ones, joined, departed) plus the operator's
        # seed peers (`pocnet init --peer`): a full node that is not a validator syncs from them
        self.peers = dict(node.config.extra.get("seeds") or {})
        self.peers.update(peer_urls(self.chain.state))
        self.peers.pop(node.key.address, None)
        self.selector: ProposerSelector = selector or HashOrderSelector()
        params = g.params
        self.block_interval_s = params.block_interval_ms / 1000
        self.empty_block_interval_s = params.empty_block_interval_ms / 1000
        self.stats: Counter = Counter()
        self.faults = FaultFilter()
        self.debug_api = os.environ.get("POCNET_DEBUG_API") == "1"
        self.clock: Clock = clock or SystemClock()
        # the network (name kept from when it was only gossip): broadcast + catch-up requests
        self.gossip: Transport = transport or HttpTransport(node.key.address, self.peers, self.chain_id,
                                                            self.stats, self.faults, signer=node.key)
        # who may use /p2p/* (docs/p2p-auth.md): validators on chain + configured full nodes
        self.full_nodes = frozenset(node.config.full_nodes)
        self.auth = PeerAuthenticator(node.key.address, self.chain_id, self.is_known_peer,
                                      rate_per_s=node.config.p2p_rate_per_s, burst=node.config.p2p_burst)
        self.engine = Engine(self.my_id, self.validators, self._proposer, params.timeouts(),
                             self.chain.height + 1)
        self.privval = privval if privval is not None else PrivValState(node.home)
        if self.privval.height == self.chain.height + 1 and self.privval.locked_value is not None:
            # restart in the middle of a height: keep the lock we had (Tendermint's WAL does this)
            self.engine.locked_value = self.privval.locked_value
            self.engine.locked_round = self.privval.locked_round
            log.warning("restored lock on %s from round %d at height %d", self.privval.locked_value[:12],
                        self.privval.locked_round, self.privval.height)
        self._ranking_cache: dict[tuple[int, str], tuple[str, ...]] = {}
        self.candidates: dict[str, tuple[Block, ExecResult | None]] = {}
        self.signed: dict[tuple, dict[str, Any]] = {}
        self.vote_sigs: dict[tuple, dict[str | None, str]] = {}  # (kind, h, r, validator) -> {hash: sig}
        self.far_rounds: dict[tuple[int, str], int] = {}  # (height, validator) -> highest far round seen
        self.next_proposals: list[dict[str, Any]] = []
        self.waiting_advance = False
        self._advance_wake = asyncio.Event()
        self._sync_wake = asyncio.Event()
        self.best_peer_height = 0  # highest head the sync loop saw among peers (for catching_up)
        self._tasks: list[asyncio.Task] = []
        self._last_progress = (self.engine.height, self.engine.round, self.engine.step)
        self._new_txs: list[dict[str, Any]] = []
        self.future_txs = FuturePool()
        self.last_commit_ms = 0
        # compact proposals (p2p/compact.py): send header + tx hashes instead of the txs
        self.compact_proposals = bool(node.config.compact_proposals)
        self._pulled: dict[str, Tx] = {}      # txs pulled for this height's compact proposals
        self._pulling: set[str] = set()       # block hashes whose missing txs are being pulled

    # ------------------------------------------------------------ validator set
    def validators_at(self, height: int) -> tuple[str, ...]:
        """Voting set of ``height`` (bonded members not jailed then), from committed state; joins,
        leaves, jail and release are fixed two heights ahead, so heights up to chain+2 work."""
        return validators_at(self.chain.state, height)

    def _follow_set_changes(self) -> None:
        """After a commit: new validators may sign messages and get our gossip (from the block
        that commits their join, two heights before they vote)."""
        ids = frozenset(validator_ids(self.chain.state))
        if ids == self.validator_set:
            return
        self.validator_set = ids
        for pid, url in peer_urls(self.chain.state).items():
            if pid != self.node.key.address and self.peers.get(pid) != url:
                self.peers[pid] = url
                self.gossip.add_peer(pid, url)
                log.info("new validator peer %s at %s", pid[:12], url)

    def _update_validator_set(self, height: int) -> None:
        vals = list(self.validators_at(height))
        me = self.node.key.address if self.node.key.address in vals else None
        if vals != self.validators or me != self.my_id:
            log.warning("validator set at height %d: %d validators%s", height, len(vals),
                        "" if me else " (this peer does not vote)")
            self.validators, self.my_id, self.quorum = vals, me, quorum_size(len(vals))
            self.engine.set_validators(vals, me)

    # ------------------------------------------------------------ evidence
    def _collect_evidence(self) -> None:
        """Turn the engine's equivocations into self-contained evidence and gossip it."""
        for eq in self.engine.drain_evidence():
            parts = []
            for m in (eq.first, eq.second):
                if isinstance(m, Proposal):
                    wire = self.signed.get(("proposal", m.round, m.proposer, m.block_hash))
                    sig = wire.get("signature") if wire else None
                    parts.append(SignedPart(m.block_hash, sig, m.pol_round) if sig else None)
                else:
                    sig = self.vote_sigs.get((m.kind, m.height, m.round, m.validator), {}).get(m.block_hash)
                    parts.append(SignedPart(m.block_hash, sig) if sig else None)
            p0, p1 = parts
            if p0 is None or p1 is None:
                self.stats["evidence_unsigned"] += 1
                continue
            step = "proposal" if isinstance(eq.first, Proposal) else eq.first.kind
            ev = make_evidence(eq.validator, eq.first.height, eq.first.round, step, p0, p1)
            self.stats["evidence_recorded"] += 1
            log.warning("equivocation by %s at %d/%d (%s): evidence %s", eq.validator[:12], ev.height,
                        ev.round, step, ev.id[:12])
            self._add_evidence(ev, gossip=True)

    def _add_evidence(self, ev: Evidence, gossip: bool) -> None:
        if ev.id in self.evidence_pool or len(self.evidence_pool) >= MAX_EVIDENCE_POOL:
            return
        # evidence of the height being decided can go into the next block
        if evidence_acceptable(self.chain.state, ev, max(self.chain.height + 1, ev.height + 1)) is not None:
            return
        self.evidence_pool[ev.id] = ev
        if gossip:
            self.gossip.broadcast({"t": "evidence", "evidence": ev.to_dict()})

    def _on_evidence_msg(self, m: dict[str, Any]) -> None:
        try:
            ev = parse_evidence(m.get("evidence"))
            if ev.validator not in self.validator_set:
                raise BadMessage("unknown_signer")
            verify_evidence(ev, self.chain_id)
        except EvidenceInvalid:
            raise BadMessage("bad_evidence") from None
        if ev.id not in self.evidence_pool:
            self.stats["evidence_received"] += 1
            self._add_evidence(ev, gossip=False)

    def _prune_evidence(self) -> None:
        h = self.chain.height + 1
        self.evidence_pool = {i: e for i, e in self.evidence_pool.items()
                              if evidence_acceptable(self.chain.state, e, max(h, e.height + 1)) is None}

    # ------------------------------------------------------------ proposer selection
    def ranking(self, height: int) -> tuple[str, ...]:
        """ranking_h from committed state after h-1 (only the next height is computable)."""
        if height != self.chain.height + 1:
            raise ValueError(f"ranking for height {height} requested at chain height {self.chain.height}")
        key = (height, self.chain.head_hash)
        r = self._ranking_cache.get(key)
        if r is None:
            ctx = SelectionContext(prev_hash=self.chain.head_hash, validators=self.validators_at(height),
                                   poc_inputs=self.chain.state, seed=self.chain.head_beacon)
            r = tuple(self.selector.ranking(height, ctx))
            self._ranking_cache = {key: r}
        return r

    def _proposer(self, height: int, round_: int) -> str:
        return proposer_for(self.ranking(height), round_)

    # ------------------------------------------------------------ lifecycle
    def status(self) -> dict[str, Any]:
        s = self.engine.status()
        return {"engine": "tendermint", "validators": len(self.validators), "quorum": self.quorum,
                "is_validator": self.my_id is not None, "height": s["height"], "round": s["round"],
                "step": s["step"], "locked_round": s["locked_round"], "evidence": self.stats["evidence_recorded"],
                "stats": dict(sorted(self.stats.items()))}

    def catching_up(self) -> bool:
        """Behind the best peer by more than the one height consensus itself may lag."""
        return self.best_peer_height - self.chain.height >= 2

    async def run(self) -> None:
        await self.gossip.start()
        self._tasks = [asyncio.create_task(self._sync_loop(), name="sync"),
                       asyncio.create_task(self._heartbeat(), name="heartbeat"),
                       asyncio.create_task(self._tx_flush(), name="tx-flush")]
        self._exec(self.engine.start())
        await asyncio.gather(*self._tasks)

    async def stop(self) -> None:
        for t in self._tasks:
            t.cancel()
        await self.gossip.stop()

    # ------------------------------------------------------------ tx intake
    def on_new_tx(self, tx: Tx) -> None:
        """A client tx entered our mempool: gossip it (batched) and maybe start the next height."""
        self._new_txs.append(tx.to_dict())
        if self.waiting_advance:
            self._advance_wake.set()

    async def _tx_flush(self) -> None:
        while True:
            await asyncio.sleep(0.01)
            if self._new_txs:
                batch, self._new_txs = self._new_txs, []
                self.gossip.broadcast_txs(batch)

    def accept_peer_tx(self, obj: Any) -> None:
        """Tx gossiped by a peer: verify once, admit; park nonce gaps (bounded, node/future_pool.py)."""
        try:
            self.node.submit_tx_obj(obj, from_peer=True)
        except TxRejected as exc:
            if exc.code is Code.NONCE_GAP:
                from pocnet.ledger.tx import parse_tx
                tx = parse_tx(obj, chain_id=self.chain_id, check_signature=False)  # verified above
                why = self.future_txs.add(tx, self._expected_nonce(tx.sender),
                                          funded=queries.account(self.chain.state, tx.sender).balance > 0)
                self.stats["tx_parked_nonce_gap" if why is None else "tx_park_refused"] += 1
            else:
                self.stats["tx_from_peer_rejected"] += 1
            return
        if len(self.future_txs):
            self._promote_future([obj["sender"]])
        if self.waiting_advance:
            self._advance_wake.set()

    def _expected_nonce(self, sender: str) -> int:
        pending = self.node.mempool.pending_nonce(sender)
        if pending is not None:
            return pending
        return queries.account(self.chain.state, sender).nonce

    def _promote_future(self, senders: Iterable[str]) -> None:
        """Move parked txs whose gap has filled into the mempool: only for ``senders`` (those
        whose nonce just moved), O(promoted) each — never a walk over the whole pool."""
        for sender in dict.fromkeys(senders):
            if not self.future_txs.parked(sender):
                continue
            while True:
                tx = self.future_txs.take_ready(sender, self._expected_nonce(sender))
                if tx is None:
                    break
                try:
                    self.node.mempool.add(tx)
                except TxRejected:
                    break

    # ------------------------------------------------------------ action execution
    def _exec(self, actions: list) -> None:  # noqa: ANN001
        queue = deque(actions)
        while queue:
            a = queue.popleft()
            if isinstance(a, RequestProposal):
                queue.extend(self._build_proposal(a))
            elif isinstance(a, BroadcastProposal):
                self._broadcast_proposal(a.proposal)
            elif isinstance(a, BroadcastVote):
                self._broadcast_vote(a.vote)
            elif isinstance(a, ScheduleTimeout):
                t = a.timeout
                asyncio.get_running_loop().call_later(t.duration_ms / 1000, self._on_timeout, t)
            elif isinstance(a, Decide):
                self._on_decide(a)
            elif isinstance(a, NeedBlock):
                asyncio.get_running_loop().create_task(self._fetch_candidate(a.height, a.block_hash))
        if self.engine.evidence:
            self._collect_evidence()

    def _build_proposal(self, a: RequestProposal) -> list:
        node = self.node
        proposal, rejected = self.chain.build_block(a.round, node.key.address, self.clock.now_ms(),
                                                    node.mempool.reap(self.chain.params.max_block_txs),
                                                    evidence=list(self.evidence_pool.values()))
        block = proposal.block
        self.candidates[block.hash] = (block, proposal.result)
        self.stats["proposals_built"] += 1
        return self.engine.set_proposal_value(a.height, a.round, block.hash)

    def _broadcast_proposal(self, p: Proposal) -> None:
        prev = self.privval.previous(p.height, p.round, "proposal")
        if prev is not None and prev.get("block_hash") != p.block_hash:
            self.stats["double_sign_prevented"] += 1
            log.warning("not proposing %s at %d/%d: proposed %s before a restart", p.block_hash[:12],
                        p.height, p.round, str(prev.get("block_hash"))[:12])
            return
        block = self.candidates[p.block_hash][0]
        if self.compact_proposals:
            wire = sign_proposal(self.node.key, self.chain_id, p, compact_block_dict(block), compact=True)
        else:
            wire = sign_proposal(self.node.key, self.chain_id, p, block.to_dict())
        self.privval.record(p.height, p.round, "proposal", wire, self.engine.locked_value,
                            self.engine.locked_round)
        self.signed[("proposal", p.round, p.proposer, p.block_hash)] = wire
        self.gossip.broadcast(wire)

    def _broadcast_vote(self, v: Vote) -> None:
        prev = self.privval.previous(v.height, v.round, v.kind)
        if prev is not None and prev.get("block_hash") != v.block_hash:
            # signed something else for this (height, round, kind) before a restart: re-send that
            self.stats["double_sign_prevented"] += 1
            log.warning("not signing %s %s at %d/%d: already signed %s", v.kind, str(v.block_hash)[:12],
                        v.height, v.round, str(prev.get("block_hash"))[:12])
            self.gossip.broadcast(prev)
            return
        wire = sign_vote(self.node.key, self.chain_id, v)
        self.privval.record(v.height, v.round, v.kind, wire, self.engine.locked_value, self.engine.locked_round)
        self.vote_sigs.setdefault((v.kind, v.height, v.round, v.validator), {})[v.block_hash] = wire["signature"]
        self.signed[("vote", v.kind, v.round, v.validator)] = wire
        self.gossip.broadcast(wire)

    def _on_timeout(self, t: Timeout) -> None:
        live = t.height == self.engine.height and t.round == self.engine.round and self.engine.decided is None
        self._exec(self.engine.on_timeout(t))
        if live:
            self.stats["timeouts_" + t.kind] += 1
            self._rebroadcast()

    def _rebroadcast(self, last_rounds: int | None = 2) -> None:
        """Re-send (with original signatures) what we counted at this height (recent rounds,
        or all of them when ``last_rounds`` is None: a lock may rest on an old round's quorum)."""
        for m in self.engine.rebroadcast(last_rounds=last_rounds):
            if isinstance(m, Proposal):
                wire = self.signed.get(("proposal", m.round, m.proposer, m.block_hash))
            else:
                wire = self.signed.get(("vote", m.kind, m.round, m.validator))
            if wire is not None and (wire.get("block_hash") == m.block_hash):
                self.gossip.broadcast(wire)
        self.stats["rebroadcasts"] += 1

    async def _heartbeat(self) -> None:
        """If consensus has not moved for a while, re-send our view (covers lost messages)."""
        while True:
            await asyncio.sleep(1.0)
            if self.waiting_advance:
                continue
            cur = (self.engine.height, self.engine.round, self.engine.step)
            if cur == self._last_progress:
                self._rebroadcast(last_rounds=None)
            self._last_progress = cur

    # ------------------------------------------------------------ commit and advance
    def _on_decide(self, d: Decide) -> None:
        block, view = self.candidates.get(d.block_hash, (None, None))
        if block is None:
            log.error("decided unknown block %s at %d; waiting for sync", d.block_hash[:12], d.height)
            self._sync_wake.set()
            return
        if view is None:
            view = self.chain.verify_block(block)
        sigs = []
        for v in d.precommits:
            sig = self.vote_sigs.get(("precommit", v.height, v.round, v.validator), {}).get(v.block_hash)
            if sig is not None:
                sigs.append(CommitSig(v.validator, sig))
        commit = Commit(d.height, d.round, d.block_hash, tuple(sorted(sigs, key=lambda s: s.validator)))
        self.chain.commit(block, view, commit)
        self.node.on_block_committed([t.hash for t in block.txs])
        self.last_commit_ms = self.clock.now_ms()
        self.stats["blocks_committed"] += 1
        self.stats["txs_committed"] += len(block.txs)
        log.info("committed height %d round %d: %d txs, hash %s", d.height, d.round, len(block.txs),
                 d.block_hash[:16])
        self._promote_future(t.sender for t in block.txs)
        self._after_commit()

    def _forget_committed_height(self) -> None:
        """Drop per-height caches once the chain moved past them (commit or sync)."""
        h = self.chain.height
        self._follow_set_changes()
        self._prune_evidence()
        self.candidates.clear()
        self.signed.clear()
        self._pulled.clear()
        self.vote_sigs = {k: s for k, s in self.vote_sigs.items() if k[1] > h}
        self.far_rounds = {k: r for k, r in self.far_rounds.items() if k[0] > h}
        self.next_proposals = [w for w in self.next_proposals if w.get("height", 0) > h]

    def _after_commit(self) -> None:
        h = self.chain.height
        self._forget_committed_height()
        if not self.waiting_advance:
            self.waiting_advance = True
            asyncio.get_running_loop().create_task(self._advance_when_ready(h + 1))

    async def _advance_when_ready(self, height: int) -> None:
        """Pause between blocks; start height+1 early if txs or peers' proposals arrive."""
        await asyncio.sleep(self.block_interval_s)
        deadline = self.clock.monotonic() + self.empty_block_interval_s
        while (not len(self.node.mempool) and not self.next_proposals
               and self.clock.monotonic() < deadline and self.chain.height + 1 == height):
            self._advance_wake.clear()
            try:
                await asyncio.wait_for(self._advance_wake.wait(),
                                       timeout=max(0.01, deadline - self.clock.monotonic()))
            except asyncio.TimeoutError:
                break
        self.waiting_advance = False
        self._advance_engine()

    def _advance_engine(self) -> None:
        height = self.chain.height + 1
        if self.engine.height >= height:
            return
        self._update_validator_set(height)
        actions = self.engine.advance_to(height)
        pending, self.next_proposals = self.next_proposals, []
        self._exec(actions)
        for wire in pending:
            self._handle_msg(wire)

    # ------------------------------------------------------------ inbound messages
    def handle_batch(self, sender: str, msgs: list, txs: list) -> None:
        if self.faults.blocked(sender):
            self.stats["dropped_by_fault_filter_in"] += len(msgs) + len(txs)
            return
        if sender in self.peers:
            self.node.peer_book.heard(sender)  # GET /net_info "last message"
        if txs and sender in self.faults.drop_txs_from:
            self.stats["dropped_txs_by_fault_filter"] += len(txs)
            txs = []
        for obj in txs:
            self.accept_peer_tx(obj)
        for m in msgs:
            self._handle_msg(m)

    def _handle_msg(self, m: Any) -> None:
        try:
            if not isinstance(m, dict):
                raise BadMessage("malformed:message")
            if m.get("t") == "vote":
                self._on_vote_msg(m)
            elif m.get("t") == "proposal":
                self._on_proposal_msg(m)
            elif m.get("t") == "evidence":
                self._on_evidence_msg(m)
            elif m.get("t") == "proposal_seen":
                self._on_proposal_seen(m)
            else:
                raise BadMessage("malformed:type")
        except BadMessage as exc:
            self.stats["dropped_" + exc.reason.split(":")[0]] += 1
            self.stats["dropped_total"] += 1
            log.debug("dropped message: %s", exc.reason)

    def _on_vote_msg(self, m: dict[str, Any]) -> None:
        v = parse_vote_fields(m, self.validator_set)
        if v.height <= self.chain.height:
            self.stats["stale_votes"] += 1
            return
        if v.height > self.chain.height + 2:
            self._sync_wake.set()
            self.stats["future_votes"] += 1
            return
        base = self.engine.round if v.height == self.engine.height else 0
        if v.round > base + ROUND_AHEAD:
            far = (v.height, v.validator)
            if v.round <= self.far_rounds.get(far, -1):
                self.stats["dropped_vote_far_round"] += 1
                return
            verify_vote(m, v, self.chain_id)
            self.far_rounds[far] = v.round
            self._exec(self.engine.on_vote(v))  # the engine only notes the round
            return
        slot = self.vote_sigs.get((v.kind, v.height, v.round, v.validator))
        if slot is not None and (v.block_hash in slot or len(slot) >= VOTES_PER_SLOT):
            # a repeat, or a third+ different vote in one slot: the evidence is already kept
            self.stats["dropped_vote_slot_full" if v.block_hash not in slot else "duplicate_votes"] += 1
            return
        sig = verify_vote(m, v, self.chain_id)
        if slot is None:
            slot = self.vote_sigs[(v.kind, v.height, v.round, v.validator)] = {}
        elif slot:
            self.stats["equivocating_votes"] += 1  # the engine records it as evidence
        slot[v.block_hash] = sig
        if v.height == self.engine.height:
            self.signed.setdefault(("vote", v.kind, v.round, v.validator), m)
        self._exec(self.engine.on_vote(v))

    def _on_proposal_msg(self, m: dict[str, Any]) -> None:
        p = parse_proposal(m, self.chain_id, self.validator_set)
        if p.height <= self.chain.height:
            self.stats["stale_proposals"] += 1
            return
        if p.height > self.chain.height + 1 or (p.height > self.engine.height):
            if p.height == self.chain.height + 1 or p.height == self.engine.height + 1:
                if len(self.next_proposals) < 16:
                    self.next_proposals.append(m)
                self._advance_wake.set()
            else:
                self._sync_wake.set()
            return
        if p.block_hash in self.candidates:
            valid = self.candidates[p.block_hash][1] is not None
        elif "cblock" in m:
            cb = parse_compact(m["cblock"], self.chain.params.max_block_txs)
            if cb.hash != p.block_hash:
                raise BadMessage("block_hash_mismatch")
            missing = missing_txs(cb, self._known_tx)
            if missing:
                self.stats["compact_incomplete"] += 1
                if p.block_hash not in self._pulling:
                    self._pulling.add(p.block_hash)
                    self.stats["compact_missing_txs"] += len(missing)
                    asyncio.get_running_loop().create_task(self._complete_compact(m, p, cb, missing))
                return
            self.stats["compact_rebuilt"] += 1
            valid = self._verify_candidate(assemble(cb, self._known_tx))
        else:
            block = parse_block(m["block"], self.chain_id, self.node.mempool.get)
            if block.hash != p.block_hash:
                raise BadMessage("block_hash_mismatch")
            valid = self._verify_candidate(block)
        self._accept_proposal(m, p, valid)

    def _accept_proposal(self, m: dict[str, Any], p: Proposal, valid: bool) -> None:
        """The proposal's block is known (and judged): relay the signature, tell the engine."""
        key = ("proposal", p.round, p.proposer, p.block_hash)
        if key not in self.signed:
            self.signed[key] = m
            if p.proposer != self.node.key.address:
                # relay the signed proposal without its block: a proposer that sent another
                # block to other peers for this round is then caught by all of them
                self.gossip.broadcast(dict({k: m[k] for k in _PROPOSAL_SIG_FIELDS}, t="proposal_seen"))
        self._exec(self.engine.on_proposal(p, valid))

    def _known_tx(self, tx_hash: str) -> Tx | None:
        """A tx this peer holds verified: in its mempool or pulled for this height."""
        return self.node.mempool.get(tx_hash) or self._pulled.get(tx_hash)

    def _current(self, height: int) -> bool:
        return height == self.engine.height == self.chain.height + 1

    async def _complete_compact(self, m: dict[str, Any], p: Proposal, cb: CompactBlock, missing: list[str]) -> None:
        """Pull a compact proposal's missing txs (proposer first, then the other peers); if
        that does not yield all of them, fetch the full block; then handle the proposal."""
        try:
            block = None
            need = list(missing)
            order = [p.proposer] + [pid for pid in self.peers if pid != p.proposer]
            for pid in order:
                if not need or not self._current(p.height):
                    break
                if pid not in self.peers or self.faults.blocked(pid):
                    continue
                got = check_pulled(await self.gossip.get_txs(pid, need), need, self.chain_id)
                self._pulled.update(got)
                self.stats["compact_pulled_txs"] += len(got)
                need = [h for h in need if h not in got]
            if not self._current(p.height):
                return
            if not need:
                self.stats["compact_completed_by_pull"] += 1
                block = assemble(cb, self._known_tx)
            else:
                self.stats["compact_fallback_full"] += 1
                log.info("compact proposal %s: %d txs not pulled; fetching the full block",
                         p.block_hash[:12], len(need))
                block = await self._fetch_full(p.height, p.block_hash, order)
            if block is None or not self._current(p.height):
                self.stats["compact_failed"] += 1
                return
            if p.block_hash in self.candidates:
                valid = self.candidates[p.block_hash][1] is not None
            else:
                valid = self._verify_candidate(block)
            self._accept_proposal(m, p, valid)
        finally:
            self._pulling.discard(p.block_hash)

    async def _fetch_full(self, height: int, block_hash: str, order: list[str]) -> Block | None:
        for pid in order:
            if pid not in self.peers or self.faults.blocked(pid) or not self._current(height):
                continue
            obj = await self.gossip.get_candidate(pid, block_hash)
            if obj is None:
                continue
            try:
                block = parse_block(obj, self.chain_id, self._known_tx)
            except (BadMessage, ValueError):
                continue
            if block.hash == block_hash:
                return block
        return None

    def serve_txs(self, hashes: list[str]) -> list[dict[str, Any]]:
        """Answer a peer's pull: the txs among ``hashes`` this peer holds (mempool, this
        height's candidate blocks, txs it pulled itself); unknown ones are left out."""
        in_candidates: dict[str, Tx] | None = None
        out = []
        for h in hashes:
            tx = self._known_tx(h)
            if tx is None:
                if in_candidates is None:
                    # this height's candidates, and the block just committed (a peer that is
                    # still deciding it may pull after this one moved on)
                    blocks = [b for b, _ in self.candidates.values()]
                    if self.chain.last_block is not None:
                        blocks.append(self.chain.last_block)
                    in_candidates = {t.hash: t for b in blocks for t in b.txs}
                tx = in_candidates.get(h)
            if tx is not None:
                out.append(tx.to_dict())
        self.stats["compact_served_txs"] += len(out)
        return out

    def _on_proposal_seen(self, m: dict[str, Any]) -> None:
        """A peer's relay of a signed proposal (no block): evidence if it conflicts with ours."""
        p = parse_proposal(dict(m, block={}), self.chain_id, self.validator_set)
        if p.height != self.engine.height:
            return
        for (kind, r, proposer, bh), wire in list(self.signed.items()):
            if kind == "proposal" and r == p.round and proposer == p.proposer and bh != p.block_hash \
                    and wire.get("height") == p.height:
                ev = make_evidence(p.proposer, p.height, p.round, "proposal",
                                   SignedPart(bh, wire["signature"], wire["pol_round"]),
                                   SignedPart(p.block_hash, m["signature"], p.pol_round))
                if ev.id not in self.evidence_pool:
                    self.stats["evidence_recorded"] += 1
                    log.warning("equivocation by %s at %d/%d (proposal, relayed): evidence %s",
                                p.proposer[:12], p.height, p.round, ev.id[:12])
                    self._add_evidence(ev, gossip=True)
                return

    def _verify_candidate(self, block: Block) -> bool:
        try:
            expected = self._proposer(block.height, block.header.round)
            view = self.chain.verify_block(block, self.clock.now_ms(), expected_proposer=expected)
            self.candidates[block.hash] = (block, view)
            return True
        except BlockInvalid as exc:
            self.candidates[block.hash] = (block, None)
            self.stats["invalid_blocks"] += 1
            if "beacon" in str(exc):
                self.stats["invalid_blocks_beacon"] += 1
            log.warning("invalid block %s at height %d: %s", block.hash[:12], block.height, exc)
            return False

    async def _fetch_candidate(self, height: int, block_hash: str) -> None:
        for pid in self.peers:
            if self.faults.blocked(pid) or height != self.engine.height:
                continue
            obj = await self.gossip.get_candidate(pid, block_hash)
            if obj is None:
                continue
            try:
                block = parse_block(obj, self.chain_id, self.node.mempool.get)
            except (BadMessage, ValueError):
                continue
            if block.hash == block_hash and height == self.engine.height == self.chain.height + 1:
                if self._verify_candidate(block):
                    self._exec(self.engine.on_block_available(block_hash))
                return

    # ------------------------------------------------------------ block sync
    async def _sync_loop(self) -> None:
        lag_seen = 0
        while True:
            try:
                await asyncio.wait_for(self._sync_wake.wait(), timeout=1.0)
            except asyncio.TimeoutError:
                pass
            forced = self._sync_wake.is_set()
            self._sync_wake.clear()
            heights = await self.gossip.heights()
            if not heights:
                continue
            best = max(heights.values())
            self.best_peer_height = best
            lag = best - self.chain.height
            lag_seen = lag_seen + 1 if lag >= 1 else 0
            if lag >= 2 or (lag >= 1 and (lag_seen >= 2 or forced)):
                await self._sync_from(heights)

    async def _sync_from(self, heights: dict[str, int]) -> None:
        for pid in sorted(heights, key=lambda p: -heights[p]):
            url = self.peers[pid]
            while self.chain.height < heights[pid]:
                start = self.chain.height + 1
                try:
                    blocks = await self.gossip.get_blocks(pid, start, 50)
                except (TransportError, BadMessage, ValueError) as exc:
                    log.info("sync from %s failed: %s", url, exc)
                    break
                if not blocks:
                    break
                applied = 0
                senders: list[str] = []
                for block in blocks:
                    if block.height != self.chain.height + 1:
                        continue  # consensus committed it meanwhile
                    try:
                        vals = self.validators_at(block.height)
                        cert = check_certificate(block, self.chain_id, set(vals), quorum_size(len(vals)))
                        expected = self._proposer(block.height, block.header.round)
                        view = self.chain.verify_block(block, None, expected_proposer=expected)
                        self.chain.commit(block, view, cert)
                    except (BadMessage, BlockInvalid, ChainError) as exc:
                        self.stats["sync_rejected_blocks"] += 1
                        log.warning("sync: block %d from %s rejected: %s", block.height, url, exc)
                        break
                    self.node.on_block_committed([t.hash for t in block.txs])
                    self.stats["blocks_synced"] += 1
                    senders.extend(t.sender for t in block.txs)
                    applied += 1
                if applied:
                    log.info("synced to height %d from %s", self.chain.height, url)
                    self._after_sync(senders)
                else:
                    break
            if self.chain.height >= max(heights.values()):
                return

    def _after_sync(self, senders: Iterable[str] = ()) -> None:
        self._forget_committed_height()
        self._promote_future(senders)
        if not self.waiting_advance:
            self._advance_engine()

    # ------------------------------------------------------------ HTTP routes
    def is_known_peer(self, peer: str) -> bool:
        """May ``peer`` use /p2p/*: a validator on chain (anyone who may sign consensus
        messages) or a full node listed in this node's config."""
        return peer in self.validator_set or peer in self.full_nodes

    async def authenticate(self, request: Request, max_body: int) -> tuple[str, bytes]:
        """The authenticated sender of a /p2p/* request and its body (read only after the
        envelope's signature verified); 401 / 429 / 413 otherwise (p2p/auth.py)."""
        from pocnet.node.api import ApiError, read_body
        path = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        try:
            env = self.auth.check_headers(request.method, path, request.headers)
            body = await read_body(request, max_body)
            self.auth.check_body(env, body)
        except AuthRefused as exc:
            if exc.status == 429:
                headers = {"Retry-After": str(-(-exc.retry_after_ms // 1000)), HDR_RETRY_MS: str(exc.retry_after_ms)}
                raise ApiError(429, "rate limited", exc.field, exc.reason, headers) from None
            raise ApiError(401, "unauthenticated peer request", exc.field, exc.reason,
                           {"WWW-Authenticate": "Pocnet-Envelope"}) from None
        return env.peer, body

    def router(self) -> APIRouter:
        r = APIRouter(tags=["p2p"])

        @r.post("/p2p/msgs", include_in_schema=False)
        async def msgs(request: Request) -> Any:
            from pocnet.node.api import ApiError, parse_json_body, require_json_content_type
            sender, raw = await self.authenticate(request, self.node.config.max_p2p_body_bytes)
            require_json_content_type(request)
            body = parse_json_body(raw)
            m = body.get("msgs", []) if isinstance(body, dict) else None
            t = body.get("txs", []) if isinstance(body, dict) else None
            if not isinstance(m, list) or not isinstance(t, list):
                self.stats["dropped_malformed_batch"] += 1
                raise ApiError(400, "malformed p2p batch", "$", "expected {msgs: [], txs: []}")
            if body.get("from", sender) != sender:
                self.stats["dropped_malformed_batch"] += 1
                raise ApiError(400, "malformed p2p batch", "from", "'from' is not the authenticated peer")
            if len(m) > MAX_BATCH_MSGS or len(t) > MAX_BATCH_TXS:
                self.stats["dropped_oversized_batch"] += 1
                raise ApiError(413, "p2p batch too large", "$",
                               f"at most {MAX_BATCH_MSGS} msgs and {MAX_BATCH_TXS} txs per batch")
            self.handle_batch(sender, m, t)
            return {"ok": True}

        @r.post("/p2p/txs", include_in_schema=False)
        async def pull_txs(request: Request) -> Any:
            """A compact proposal's missing txs: ``{"hashes": [...]}`` -> ``{"txs": [...]}``
            (those this peer holds; the caller checks hashes and signatures)."""
            from fastapi.responses import Response

            from pocnet.ledger.encoding import canonical_json
            from pocnet.node.api import ApiError, parse_json_body, require_json_content_type
            _, raw = await self.authenticate(request, 64 * (MAX_PULL_HASHES + 16))
            require_json_content_type(request)
            body = parse_json_body(raw)
            hashes = body.get("hashes") if isinstance(body, dict) else None
            if not isinstance(hashes, list) or not all(isinstance(h, str) for h in hashes):
                raise ApiError(400, "malformed pull", "hashes", "expected {hashes: [tx hash, ...]}")
            if len(hashes) > MAX_PULL_HASHES:
                raise ApiError(413, "pull too large", "hashes", f"at most {MAX_PULL_HASHES} hashes")
            if self.faults.refuse_pulls:
                raise ApiError(404, "not served", "hashes", "this peer refuses pulls (fault injection)")
            return Response(canonical_json({"txs": self.serve_txs(hashes)}, checked=False),
                            media_type="application/json")

        @r.get("/p2p/candidate/{block_hash}", include_in_schema=False)
        async def candidate(block_hash: str, request: Request) -> Any:
            await self.authenticate(request, 0)
            if block_hash in self.candidates:
                return self.candidates[block_hash][0].to_dict()
            from pocnet.node.api import ApiError
            raise ApiError(404, "not found", "block_hash", "no such candidate block")

        @r.get("/p2p/stats")
        async def stats() -> Any:
            """Gossip and consensus counters (dropped messages by reason, commits, syncs)."""
            return {"stats": dict(self.stats) | dict(self.auth.stats), "engine": self.engine.status(),
                    "evidence": self.stats["evidence_recorded"], "evidence_pending": len(self.evidence_pool)}

        if self.debug_api:
            @r.post("/debug/faults", include_in_schema=False)
            async def faults(request: Request) -> Any:
                from pocnet.node.api import ApiError, read_json_body
                body = await read_json_body(request, 64 * 1024)
                cut = body.get("cut", []) if isinstance(body, dict) else None
                if not isinstance(cut, list) or not all(isinstance(c, str) for c in cut):
                    raise ApiError(400, "invalid request", "cut", "expected {\"cut\": [peer ids]}")
                drop_txs = body.get("drop_txs_from", []) if isinstance(body, dict) else None
                if not isinstance(drop_txs, list) or not all(isinstance(c, str) for c in drop_txs):
                    raise ApiError(400, "invalid request", "drop_txs_from", "expected a list of peer ids")
                refuse = body.get("refuse_pulls", False) if isinstance(body, dict) else None
                if not isinstance(refuse, bool):
                    raise ApiError(400, "invalid request", "refuse_pulls", "expected true or false")
                self.faults.cut = set(cut)
                self.faults.drop_txs_from = set(drop_txs)
                self.faults.refuse_pulls = refuse
                log.warning("fault injection: cut links to %s, drop txs from %s, refuse pulls %s",
                            [c[:8] for c in self.faults.cut], [c[:8] for c in drop_txs], refuse)
                return {"cut": sorted(self.faults.cut), "drop_txs_from": sorted(drop_txs), "refuse_pulls": refuse}

        return r
