"""Mempool: verified, not-yet-committed txs in per-sender nonce order, deduplicated, bounded.

Admission applies the tx to a *pending view* (committed state plus every pending
tx), so "insufficient balance" and nonce gaps are judged against what will be true
once the queue ahead of it commits. After each committed block the pending view is
rebuilt from the new state and txs that no longer apply are dropped.
"""
from __future__ import annotations

import logging
from collections import OrderedDict
from collections.abc import Iterable

from pocnet.ledger.errors import Code, TxRejected
from pocnet.ledger.state import State, StateView
from pocnet.ledger.state_machine import BlockContext, apply_tx
from pocnet.ledger.tx import Tx

log = logging.getLogger("pocnet.mempool")

# Pending-view context: tx types that look at the block (tasks) only read height/time,
# which are re-evaluated for real when the block is built.
_PENDING_CTX = BlockContext(chain_id="", height=0, prev_hash="0" * 64, timestamp_ms=0, proposer="")


class MempoolFull(TxRejected):
    def __init__(self, size: int) -> None:
        super().__init__("$", f"mempool is full ({size} txs); retry later", Code.BUSY)


class Mempool:
    def __init__(self, state: State, chain_id: str, max_txs: int = 20_000) -> None:
        self.chain_id = chain_id
        self.max_txs = max_txs
        self._txs: OrderedDict[str, Tx] = OrderedDict()  # arrival order
        self._state = state
        self._pending = state.view()
        self._ctx = _PENDING_CTX
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
        try:
            apply_tx(self._pending, tx, self._ctx)
        except TxRejected:
            self.stats["rejected"] += 1
            raise
        self._txs[tx.hash] = tx
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
        acct = self._pending.get("acct", sender)
        return acct["nonce"] if acct else None

    def update(self, state: State, committed: Iterable[str]) -> None:
        """After a commit: drop committed txs, re-validate the rest against the new state."""
        for h in committed:
            self._txs.pop(h, None)
        self._state = state
        self._pending = state.view()
        dropped = []
        for h, tx in list(self._txs.items()):
            try:
                apply_tx(self._pending, tx, self._ctx)
            except TxRejected as exc:
                dropped.append((h, exc))
        for h, why in dropped:
            self._txs.pop(h, None)
            log.debug("dropped %s after commit: %s", h[:12], why)
        self.stats["dropped_after_commit"] += len(dropped)

    @property
    def pending_view(self) -> StateView:
        return self._pending
