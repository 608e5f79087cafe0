"""Mempool: verified, not-yet-committed txs in per-sender nonce order, deduplicated, bounded.

Admission is the application's ``check_tx`` against a *pending view* (committed
state plus every admitted tx), so "insufficient balance" and nonce gaps are judged
against what will be true once the queue ahead of it commits. ``check_tx`` is cheap:
it never runs a game solver (ledger/state_machine.check_tx). After each committed
block the pending view is rebuilt from the new state by re-checking the remaining
txs; those that no longer pass are dropped.
"""
from __future__ import annotations

import logging
from collections import OrderedDict
from collections.abc import Iterable

from pocnet.ledger.errors import Code, TxRejected
from collections.abc import Callable

from pocnet.ledger import queries
from pocnet.ledger.app import Application
from pocnet.ledger.state import StateView
from pocnet.ledger.state_machine import BlockContext
from pocnet.ledger.tx import Tx

log = logging.getLogger("pocnet.mempool")


class MempoolFull(TxRejected):
    def __init__(self, size: int) -> None:
        super().__init__("$", f"mempool is full ({size} txs); retry later", Code.BUSY)


class SenderFull(TxRejected):
    def __init__(self, limit: int) -> None:
        super().__init__("sender", f"sender already has {limit} pending txs; wait for some to commit", Code.BUSY)


class Mempool:
    def __init__(self, app: Application, next_context: Callable[[], BlockContext], max_txs: int = 20_000,
                 max_per_sender: int = 512) -> None:
        """``next_context()`` describes the next block for admission (``Chain.next_context``)."""
        self.app = app
        self.max_txs = max_txs
        self._next_context = next_context
        # One sender cannot take more than this share of the pool (issue 17: bounded per sender).
        self.max_per_sender = max_per_sender
        self._per_sender: dict[str, int] = {}
        self._txs: OrderedDict[str, Tx] = OrderedDict()  # arrival order
        self._pending = app.pending_view()
        self._ctx = next_context()
        self.stats = {"accepted": 0, "duplicate": 0, "rejected": 0, "dropped_after_commit": 0}

    def __len__(self) -> int:
        return len(self._txs)

    def __contains__(self, tx_hash: str) -> bool:
        return tx_hash in self._txs

    def get(self, tx_hash: str) -> Tx | None:
        return self._txs.get(tx_hash)

    def add(self, tx: Tx) -> bool:
        """Admit a signature-verified tx. Return False if already pending; raise TxRejected."""
        if tx.hash in self._txs:
            self.stats["duplicate"] += 1
            return False
        if len(self._txs) >= self.max_txs:
            self.stats["rejected"] += 1
            raise MempoolFull(self.max_txs)
        if self._per_sender.get(tx.sender, 0) >= self.max_per_sender:
            self.stats["rejected"] += 1
            raise SenderFull(self.max_per_sender)
        try:
            self.app.check_tx(self._pending, tx, self._ctx)
        except TxRejected:
            self.stats["rejected"] += 1
            raise
        self._txs[tx.hash] = tx
        self._per_sender[tx.sender] = self._per_sender.get(tx.sender, 0) + 1
        self.stats["accepted"] += 1
        return True

    def reap(self, max_txs: int) -> list[Tx]:
        """Txs for the next block: arrival order, which keeps each sender's nonces ascending."""
        out: list[Tx] = []
        for tx in self._txs.values():
            if len(out) >= max_txs:
                break
            out.append(tx)
        return out

    def pending_nonce(self, sender: str) -> int | None:
        """The sender's next nonce counting its pending txs (None if it has no account yet)."""
        if not queries.account_exists(self._pending, sender):
            return None
        return queries.account(self._pending, sender).nonce

    def update(self, committed: Iterable[str]) -> None:
        """After a commit: drop committed txs, re-check the rest against the new state."""
        for h in committed:
            self._txs.pop(h, None)
        self._pending = self.app.pending_view()
        self._ctx = self._next_context()
        dropped = []
        for h, tx in list(self._txs.items()):
            try:
                self.app.check_tx(self._pending, tx, self._ctx)
            except TxRejected as exc:
                dropped.append((h, exc))
        for h, why in dropped:
            self._txs.pop(h, None)
            log.debug("dropped %s after commit: %s", h[:12], why)
        self.stats["dropped_after_commit"] += len(dropped)
        counts: dict[str, int] = {}
        for tx in self._txs.values():
            counts[tx.sender] = counts.get(tx.sender, 0) + 1
        self._per_sender = counts

    @property
    def pending_view(self) -> StateView:
        return self._pending
