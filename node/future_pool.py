"""Future-tx pool: gossiped txs whose nonce is ahead of the sender's next nonce, parked
until the gap fills.

Bounded and cheap whatever is parked (issue 17 #1: 20,000 parked txs made every gossiped
tx cost ~46 ms because each admission re-sorted the whole pool):

- per sender at most ``max_per_sender`` txs, and only nonces within ``max_gap`` of the
  sender's next expected nonce;
- at most ``max_total`` txs; when full, a tx from a sender with fewer parked txs evicts the
  highest nonce of the sender with the *most* parked txs, so a flooder only displaces itself
  and a sender with little parked is never starved by one with much;
- only senders whose account exists with a positive balance may park (an unfunded key
  cannot pay for anything it parks);
- parked txs expire after ``ttl_s`` seconds;
- admission, eviction and promotion are O(1) per tx (per-sender dicts and count buckets);
  nothing ever walks the whole pool.
"""
from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable

from pocnet.ledger.tx import Tx


class FuturePool:
    def __init__(self, max_total: int = 10_000, max_per_sender: int = 64, max_gap: int = 64,
                 ttl_s: float = 120.0, clock: Callable[[], float] = time.monotonic) -> None:
        self.max_total, self.max_per_sender, self.max_gap, self.ttl_s = max_total, max_per_sender, max_gap, ttl_s
        self._clock = clock
        self._by_sender: dict[str, dict[int, Tx]] = {}
        # count -> senders, in the order they reached that count: dicts, not sets, so the eviction victim
        # among equals does not depend on PYTHONHASHSEED (each node process draws its own string hashes)
        self._buckets: list[dict[str, None]] = [{} for _ in range(max_per_sender + 1)]
        self._max_count = 0
        self._expiry: deque[tuple[float, str, int, str]] = deque()  # (deadline, sender, nonce, hash)
        self._size = 0
        self.stats = {"parked": 0, "refused": 0, "evicted": 0, "expired": 0, "promoted": 0}

    def __len__(self) -> int:
        return self._size

    def parked(self, sender: str) -> int:
        return len(self._by_sender.get(sender, ()))

    # ------------------------------------------------------------ count buckets
    def _set_count(self, sender: str, old: int, new: int) -> None:
        if old:
            self._buckets[old].pop(sender, None)
        if new:
            self._buckets[new][sender] = None
            self._max_count = max(self._max_count, new)
        while self._max_count and not self._buckets[self._max_count]:
            self._max_count -= 1

    def _remove(self, sender: str, nonce: int) -> Tx | None:
        txs = self._by_sender.get(sender)
        if not txs or nonce not in txs:
            return None
        tx = txs.pop(nonce)
        self._size -= 1
        self._set_count(sender, len(txs) + 1, len(txs))
        if not txs:
            del self._by_sender[sender]
        return tx

    # ------------------------------------------------------------ admission
    def add(self, tx: Tx, expected_nonce: int, funded: bool) -> str | None:
        """Park ``tx``; return None if parked, else why it was refused."""
        self._expire()
        reason = self._refusal(tx, expected_nonce, funded)
        if reason:
            self.stats["refused"] += 1
            return reason
        txs = self._by_sender.setdefault(tx.sender, {})
        if tx.nonce in txs:  # same (sender, nonce): keep the first (no replacement by gossip)
            self.stats["refused"] += 1
            return "a tx with this nonce is already parked"
        if self._size >= self.max_total:
            victim = self._victim(len(txs))
            if victim is None:
                if not txs:
                    del self._by_sender[tx.sender]
                self.stats["refused"] += 1
                return "future pool full"
            self._remove(victim, max(self._by_sender[victim]))
            self.stats["evicted"] += 1
            txs = self._by_sender.setdefault(tx.sender, {})
        txs[tx.nonce] = tx
        self._size += 1
        self._set_count(tx.sender, len(txs) - 1, len(txs))
        self._expiry.append((self._clock() + self.ttl_s, tx.sender, tx.nonce, tx.hash))
        self.stats["parked"] += 1
        return None

    def _refusal(self, tx: Tx, expected_nonce: int, funded: bool) -> str | None:
        if not funded:
            return "sender has no funded account; nonce-gap txs are not parked for it"
        if tx.nonce <= expected_nonce:
            return "nonce is not ahead of the sender's next nonce"
        if tx.nonce - expected_nonce > self.max_gap:
            return f"nonce gap over {self.max_gap}"
        if self.parked(tx.sender) >= self.max_per_sender:
            return f"sender already has {self.max_per_sender} parked txs"
        return None

    def _victim(self, newcomer_count: int) -> str | None:
        """The sender with the most parked txs, if it has more than the newcomer would."""
        if self._max_count <= newcomer_count:
            return None
        return next(iter(self._buckets[self._max_count]))

    def _expire(self) -> None:
        now = self._clock()
        while self._expiry and self._expiry[0][0] <= now:
            _, sender, nonce, h = self._expiry.popleft()
            txs = self._by_sender.get(sender)
            if txs and nonce in txs and txs[nonce].hash == h:
                self._remove(sender, nonce)
                self.stats["expired"] += 1

    # ------------------------------------------------------------ promotion
    def take_ready(self, sender: str, expected_nonce: int) -> Tx | None:
        """Remove and return the parked tx with exactly ``expected_nonce``; drop this sender's
        parked txs below it (already used). Cost: O(dropped)."""
        txs = self._by_sender.get(sender)
        if not txs:
            return None
        for stale in [n for n in txs if n < expected_nonce]:  # at most max_per_sender
            self._remove(sender, stale)
        tx = self._remove(sender, expected_nonce)
        if tx is not None:
            self.stats["promoted"] += 1
        return tx

    def senders(self) -> list[str]:
        return list(self._by_sender)
