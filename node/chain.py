"""The chain a peer holds: headers, storage and the application behind them.

Consensus drivers call ``build_block`` / ``verify_block`` / ``commit``. The chain
checks what is about the chain (chain id, height, parent, proposer, timestamps,
version, PoC digest, tx root, state root) and hands everything about state to the
:class:`~pocnet.ledger.app.Application` (prepare / process / finalize / commit).
It knows nothing about networking.
"""
from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from pocnet.ledger.beacon import BeaconInvalid, check_beacon, make_beacon
from pocnet.ledger.block import GENESIS_PREV_HASH, Block, Commit, Header, evidence_root
from pocnet.ledger.evidence import MAX_EVIDENCE_PER_BLOCK, Evidence, EvidenceInvalid, verify_evidence
from pocnet.ledger.txtypes.accountability import evidence_acceptable
from pocnet.ledger.encoding import hash_object
from pocnet.ledger.genesis import Genesis
from pocnet.ledger.keys import KeyPair
from pocnet.ledger.merkle import merkle_root
from pocnet.ledger.app import Application, ExecResult
from pocnet.ledger.state import State
from pocnet.ledger.state_machine import BlockContext, BlockInvalid, check_block_limits, genesis_state
from pocnet.ledger.storage import Storage
from pocnet.ledger.tx import Tx
from pocnet.ledger.versions import ProtocolRules, UnknownVersion, is_supported, rules_for

log = logging.getLogger("pocnet.chain")

MAX_CLOCK_DRIFT_MS = 30_000

class PocSource(Protocol):
    """Proof-of-contribution outcome for a height (consensus/poc_selector.PocSelector)."""

    def outcome(self, state: State, height: int, seed: str) -> Any: ...


def placeholder_poc_digest(height: int, seed: str) -> str:
    return hash_object({"selector": "hash-order", "height": height, "seed": seed})


class ChainError(RuntimeError):
    pass


@dataclass
class Proposal:
    block: Block
    result: ExecResult  # the application's execution of block.txs (commit it with the block)


class Chain:
    def __init__(self, genesis: Genesis, storage: Storage, poc: PocSource | None = None,
                 signer: KeyPair | None = None) -> None:
        self.genesis = genesis
        self.params = genesis.params
        self.signer = signer  # this peer's validator key: proves the beacon of the blocks it builds
        self.storage = storage
        self.poc = poc
        self.lock = threading.RLock()
        try:
            rules_for(genesis.version)
        except UnknownVersion as exc:
            raise ChainError(f"genesis starts at {exc}; upgrade pocnet") from None
        for h, v in genesis.upgrades:
            if not is_supported(v):
                log.warning("genesis schedules protocol version %d at height %d, which this pocnet does not "
                            "know: it will halt there until upgraded", v, h)
        if not storage.is_initialised():
            state = genesis_state(genesis)
            storage.init_genesis(genesis.hash, state)
            log.info("initialised new chain %s (genesis %s)", genesis.chain_id, genesis.hash[:16])
        elif storage.get_meta("genesis_hash") != genesis.hash:
            raise ChainError("database was created for a different genesis file "
                             f"({storage.get_meta('genesis_hash')} != {genesis.hash})")
        self.app = Application(genesis, storage.load_state())
        self.height = storage.head_height()
        last = storage.get_block(self.height) if self.height > 0 else None
        self.last_block: Block | None = last
        if last is not None:
            root = self._root_by_rule(self.height)
            if last.header.state_root != root:
                raise ChainError(f"stored state root {root} does not match block {self.height} "
                                 f"header {last.header.state_root}: database is corrupt")
        if last is None and self.state.root != genesis_state(genesis).root:
            raise ChainError("stored genesis state does not match genesis file")
        self._genesis_root = self._root_by_rule(1) if last is None else ""
        log.info("chain at height %d head %s state_root %s (%d state entries)", self.height, self.head_hash[:16],
                 self.state_root[:16], len(self.state))

    def _root_by_rule(self, height: int) -> str:
        """Root of the committed state under the commitment rule of ``height``'s version."""
        try:
            return self.app.root_after(height, {})[0]
        except UnknownVersion:
            return self.state.root

    @property
    def state_root(self) -> str:
        """State root of the last committed block (O(1): read from its header; at height 0
        the genesis state's root under block 1's rule, computed at startup)."""
        return self.last_block.header.state_root if self.last_block is not None else self._genesis_root

    @property
    def state(self) -> State:
        """Committed application state (read it through ``pocnet.ledger.queries``)."""
        return self.app.state

    @property
    def chain_id(self) -> str:
        return self.genesis.chain_id

    def next_context(self, proposer: str = "") -> BlockContext:
        """The next block's context as far as it is known before a proposal exists (for
        mempool admission): height, parent, a timestamp no earlier than the last block's."""
        return BlockContext(self.chain_id, self.height + 1, self.head_hash, self.last_timestamp_ms + 1, proposer,
                            beacon=self.head_beacon)

    @property
    def head_hash(self) -> str:
        return self.last_block.hash if self.last_block else GENESIS_PREV_HASH

    @property
    def head_beacon(self) -> str:
        """beacon of the head block (genesis: SHA-512 of the genesis file): seeds ranking_{h+1}."""
        return self.last_block.header.beacon if self.last_block else self.genesis.initial_beacon

    @property
    def last_timestamp_ms(self) -> int:
        return self.last_block.header.timestamp_ms if self.last_block else self.genesis.genesis_time_ms

    def poc_digest(self, height: int) -> str:
        if self.poc is None:
            return placeholder_poc_digest(height, self.head_beacon)
        return self.poc.outcome(self.state, height, self.head_beacon).digest

    def _ctx(self, height: int, timestamp_ms: int, proposer: str, evidence: tuple = ()) -> BlockContext:
        alloc: tuple = ()
        contribution: tuple = ()
        if self.poc is not None:
            out = self.poc.outcome(self.state, height, self.head_beacon)
            alloc = out.allocation
            contribution = tuple(sorted(out.contribution.items()))
        return BlockContext(self.chain_id, height, self.head_hash, timestamp_ms, proposer, alloc, contribution,
                            evidence, beacon=self.head_beacon)

    def usable_evidence(self, pool: Sequence[Evidence], height: int) -> tuple[Evidence, ...]:
        """Evidence from ``pool`` that the block at ``height`` may carry (verified, new, not expired)."""
        out: dict[str, Evidence] = {}
        for ev in pool:
            if len(out) >= MAX_EVIDENCE_PER_BLOCK or ev.id in out:
                continue
            if evidence_acceptable(self.state, ev, height) is not None:
                continue
            try:
                verify_evidence(ev, self.chain_id)
            except EvidenceInvalid:
                continue
            out[ev.id] = ev
        return tuple(sorted(out.values(), key=lambda e: e.id))

    @property
    def version(self) -> int:
        """Protocol version of the next block (what ``GET /status`` reports)."""
        return self.genesis.version_at(self.height + 1)

    def rules(self, height: int) -> ProtocolRules:
        """State-transition rules for a height; ChainError if this pocnet does not know its version."""
        try:
            return rules_for(self.genesis.version_at(height))
        except UnknownVersion as exc:
            raise ChainError(f"height {height} needs {exc}; upgrade pocnet") from None

    def build_block(self, round_: int, proposer: str, now_ms: int, candidates: Sequence[Tx],
                    max_txs: int | None = None, evidence: Sequence[Evidence] = ()) -> tuple[Proposal, list]:
        """Build the next block from candidate txs (those that fail are left out and returned).

        The block stays within genesis ``max_block_txs`` / ``max_block_bytes`` (``max_txs``
        may only lower the tx limit)."""
        with self.lock:
            height = self.height + 1
            rules = self.rules(height)
            ts = max(now_ms, self.last_timestamp_ms + 1)
            if self.signer is None or self.signer.address != proposer:
                raise ChainError("only this peer's own validator key can prove a block's beacon")
            beacon, proof = make_beacon(bytes.fromhex(self.signer.seed_hex), self.chain_id, height,
                                        self.head_beacon)
            ev = self.usable_evidence(evidence, height)
            ctx = self._ctx(height, ts, proposer, ev)
            res = self.app.prepare_proposal(ctx, candidates, max_txs)
            header = Header(self.chain_id, height, round_, self.head_hash, ts, proposer,
                            merkle_root([t.hash for t in res.txs]), res.state_root,
                            self.poc_digest(height), rules.version, beacon, proof, evidence_root(ev))
            return Proposal(Block(header, res.txs, None, ev), res), res.rejected

    def verify_block(self, block: Block, now_ms: int | None = None,
                     expected_proposer: str | None = None) -> ExecResult:
        """Re-execute a proposed block on our state; raise BlockInvalid naming what is wrong."""
        with self.lock:
            h = block.header
            if h.chain_id != self.chain_id:
                raise BlockInvalid(f"wrong chain_id {h.chain_id}")
            if h.height != self.height + 1:
                raise BlockInvalid(f"height {h.height}, expected {self.height + 1}")
            if not is_supported(h.version):
                raise BlockInvalid(f"unknown protocol version {h.version}")
            expected_version = self.genesis.version_at(h.height)
            if h.version != expected_version:
                raise BlockInvalid(f"version {h.version}, genesis schedules {expected_version} at height {h.height}")
            if h.prev_hash != self.head_hash:
                raise BlockInvalid(f"prev_hash {h.prev_hash[:12]} is not our head {self.head_hash[:12]}")
            if expected_proposer is not None and h.proposer != expected_proposer:
                raise BlockInvalid(f"proposer {h.proposer[:12]} is not the expected {expected_proposer[:12]}")
            if h.timestamp_ms <= self.last_timestamp_ms:
                raise BlockInvalid("timestamp not after previous block")
            if now_ms is not None and h.timestamp_ms > now_ms + MAX_CLOCK_DRIFT_MS:
                raise BlockInvalid("timestamp too far in the future")
            if h.tx_root != merkle_root([t.hash for t in block.txs]):
                raise BlockInvalid("tx_root does not match txs")
            if len({t.hash for t in block.txs}) != len(block.txs):
                raise BlockInvalid("duplicate tx in block")
            check_block_limits(block.txs, self.params.max_block_txs, self.params.max_block_bytes)
            try:
                check_beacon(h.proposer, self.chain_id, h.height, self.head_beacon, h.beacon, h.beacon_proof)
            except BeaconInvalid as exc:
                raise BlockInvalid(str(exc)) from None
            if h.evidence_root != evidence_root(block.evidence):
                raise BlockInvalid("evidence_root does not match the block's evidence")
            if len(block.evidence) > MAX_EVIDENCE_PER_BLOCK or len({e.id for e in block.evidence}) != len(block.evidence):
                raise BlockInvalid("too much or duplicate evidence")
            for e in block.evidence:
                try:
                    verify_evidence(e, self.chain_id)
                except EvidenceInvalid as exc:
                    raise BlockInvalid(f"evidence against {e.validator[:12]}: {exc}") from None
            expected_digest = self.poc_digest(h.height)
            if h.poc_digest != expected_digest:
                raise BlockInvalid("poc_digest does not match our proposer-selection inputs")
            res = self.app.process_proposal(self._ctx(h.height, h.timestamp_ms, h.proposer, block.evidence),
                                            block.txs)
            if res.state_root != h.state_root:
                raise BlockInvalid(f"state_root {h.state_root[:12]} != computed {res.state_root[:12]}")
            return res

    def commit(self, block: Block, result: ExecResult | None, commit: Commit) -> None:
        """Persist a decided block with its certificate, then commit the application state.

        ``result`` is the block's execution from build/verify (finalize re-executes without it)."""
        with self.lock:
            if block.height != self.height + 1:
                raise ChainError(f"commit of height {block.height} at height {self.height}")
            h = block.header
            res = self.app.finalize_block(self._ctx(h.height, h.timestamp_ms, h.proposer), block.txs, result)
            if res.state_root != h.state_root:
                raise ChainError(f"decided block {h.height} has state_root {h.state_root[:12]}, "
                                 f"execution gives {res.state_root[:12]}")
            full = block.with_commit(commit)
            self.storage.save_block(full, res.view.writes)
            self.app.commit(res)
            self.height = block.height
            self.last_block = full
