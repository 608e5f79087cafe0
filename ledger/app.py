"""The application behind consensus: one explicit interface, in the spirit of ABCI.

Consensus (``node/bft.py``, ``node/solo.py``) and the mempool talk to the state
machine only through :class:`Application`; they never run handlers or read state
namespaces themselves. The calls, in the order a height uses them:

* ``check_tx(pending, tx, ctx)`` — mempool admission against the pending view
  (committed state + admitted txs): payload, nonce, preconditions, cheap pending
  effects. Never runs a game solver (``ledger/state_machine.check_tx``).
* ``prepare_proposal(ctx, candidates, ...)`` — proposer: execute candidates in
  order within the block limits, keep those that apply; gives txs + state root.
* ``process_proposal(ctx, txs)`` — every validator: re-execute a proposed block's
  txs (limits included); raise :class:`BlockInvalid` or give its state root.
* ``finalize_block(ctx, txs, processed)`` — the decided block's execution result
  (the one ``process_proposal`` computed, re-executed only if none is at hand).
* ``commit(result)`` — make the block's writes the committed state.
* ``query(path, key)`` and the typed accessors of ``ledger/queries.py`` — reads.

The rules used for a height are the protocol version's (``ledger/versions.py``).
Header checks (chain id, height, parent, proposer, timestamps, PoC digest) and
storage stay with the node's chain (``node/chain.py``): they are about the chain,
not about the application's state.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from pocnet.ledger import queries
from pocnet.ledger.commitment import RootUpdate
from pocnet.ledger.errors import Code, TxRejected
from pocnet.ledger.genesis import Genesis
from pocnet.ledger.params import ConsensusParams
from pocnet.ledger.state import State, StateView
from pocnet.ledger.state_machine import (BlockContext, BlockInvalid, check_block_limits, check_tx, genesis_state,
                                         tx_size)
from pocnet.ledger.tx import Tx
from pocnet.ledger.versions import ProtocolRules, rules_for

__all__ = ["Application", "BlockInvalid", "ExecResult", "QueryError"]


class QueryError(KeyError):
    """Unknown query path."""


@dataclass
class ExecResult:
    """A block's execution on top of the committed state (not yet committed)."""

    txs: tuple[Tx, ...]
    view: StateView
    state_root: str
    rejected: list[tuple[Tx, TxRejected]] = field(default_factory=list)
    commitment: RootUpdate | None = None  # the tree update behind state_root (reused by commit)


class Application:
    def __init__(self, genesis: Genesis, state: State | None = None) -> None:
        self.genesis = genesis
        self.params: ConsensusParams = genesis.params
        self.state: State = state if state is not None else genesis_state(genesis)

    # ------------------------------------------------------------ info
    @property
    def state_root(self) -> str:
        """Root of the committed state's bucket tree (O(1))."""
        return self.state.root

    def root_after(self, height: int, writes: dict) -> tuple[str, RootUpdate | None]:
        """The state root block ``height`` commits to after ``writes``, by its version's rule.

        Version 2 on: the tree preview (reused by :meth:`commit`); version 1: the flat hash."""
        if self.rules(height).state_commitment == "flat":
            return self.state.flat_root_with(writes), None
        update = self.state.preview(writes)
        return update.root, update

    def rules(self, height: int) -> ProtocolRules:
        """Raises UnknownVersion if this software has no rules for the height's version."""
        return rules_for(self.genesis.version_at(height))

    # ------------------------------------------------------------ mempool connection
    def pending_view(self) -> StateView:
        """A fresh pending view over the committed state (the mempool's check state)."""
        return self.state.view()

    def check_tx(self, pending: StateView, tx: Tx, ctx: BlockContext) -> None:
        """Admit ``tx`` into ``pending`` or raise TxRejected (pending untouched)."""
        size = tx_size(tx)
        if size > self.params.max_block_bytes:
            raise TxRejected("$", f"transaction of {size} bytes can never fit a block "
                             f"(max_block_bytes {self.params.max_block_bytes})", Code.UNMET)
        check_tx(pending, tx, ctx)

    # ------------------------------------------------------------ consensus connection
    def prepare_proposal(self, ctx: BlockContext, candidates: Sequence[Tx], max_txs: int | None = None) -> ExecResult:
        """Proposer: the block's txs (candidates that apply, in order, within the limits)."""
        limit = self.params.max_block_txs if max_txs is None else min(max_txs, self.params.max_block_txs)
        view, included, rejected = self.rules(ctx.height).select_txs(
            self.state, candidates, ctx, limit, self.params.max_block_bytes)
        root, update = self.root_after(ctx.height, view.writes)
        return ExecResult(tuple(included), view, root, rejected, update)

    def process_proposal(self, ctx: BlockContext, txs: Sequence[Tx]) -> ExecResult:
        """Validator: re-execute a proposed block; BlockInvalid names what is wrong."""
        check_block_limits(txs, self.params.max_block_txs, self.params.max_block_bytes)
        view = self.rules(ctx.height).apply_block(self.state, txs, ctx)
        root, update = self.root_after(ctx.height, view.writes)
        return ExecResult(tuple(txs), view, root, commitment=update)

    def finalize_block(self, ctx: BlockContext, txs: Sequence[Tx], processed: ExecResult | None = None) -> ExecResult:
        """The decided block's result: ``processed`` when it is this block's, else re-executed."""
        if processed is not None and processed.txs == tuple(txs):
            return processed
        return self.process_proposal(ctx, txs)

    def commit(self, result: ExecResult) -> str:
        """Make a finalized block's writes the committed state; return its state root."""
        self.state.apply_writes(result.view.writes, result.commitment)
        return result.state_root

    # ------------------------------------------------------------ query connection
    def query(self, path: str, key: str = "") -> Any:
        """Committed state by path: ``account``, ``task``, ``tasks`` (key = status or ""),
        ``provider``, ``providers``. Records come back as plain JSON data."""
        s = self.state
        if path == "account":
            a = queries.account(s, key)
            return {"address": a.address, "balance": a.balance, "nonce": a.nonce}
        if path == "task":
            t = queries.task(s, key)
            return t.to_dict() if t else None
        if path == "tasks":
            return [t.to_dict() for t in queries.tasks(s, key or None)]
        if path == "provider":
            p = queries.provider(s, key)
            return p.to_dict() if p else None
        if path == "providers":
            return {p.address: p.to_dict() for p in queries.providers(s)}
        raise QueryError(path)
