"""HTTP gossip: one sender task per peer, batching messages and txs into POST /p2p/msgs.

The validator set is a full mesh, so "gossip" is direct broadcast; liveness under
loss comes from the engine re-sending its current-height messages on timeouts.
Queues are bounded (oldest dropped) so a dead peer cannot grow memory. A
fault filter (test-only) drops traffic to or from chosen peers to simulate
partitions.
"""
from __future__ import annotations

import asyncio
import logging
from collections import Counter, deque
from typing import Any

import httpx

log = logging.getLogger("pocnet.p2p")

MAX_QUEUED_MSGS = 20_000
MAX_QUEUED_TXS = 100_000


class FaultFilter:
    """Peers we pretend we cannot reach (both directions); set via the debug API in tests."""

    def __init__(self) -> None:
        self.cut: set[str] = set()

    def blocked(self, peer_id: str) -> bool:
        return peer_id in self.cut


class PeerLink:
    def __init__(self, peer_id: str, url: str) -> None:
        self.peer_id = peer_id
        self.url = url.rstrip("/")
        self.msgs: deque[dict[str, Any]] = deque()
        self.txs: deque[dict[str, Any]] = deque()
        self.wake = asyncio.Event()
        self.failures = 0


class Gossip:
    def __init__(self, my_id: str, peers: dict[str, str], stats: Counter, faults: FaultFilter,
                 max_batch_msgs: int = 512, max_batch_txs: int = 2000) -> None:
        self.my_id = my_id
        self.links = {pid: PeerLink(pid, url) for pid, url in peers.items()}
        self.stats = stats
        self.faults = faults
        self.max_batch_msgs = max_batch_msgs
        self.max_batch_txs = max_batch_txs
        self._client: httpx.AsyncClient | None = None
        self._tasks: list[asyncio.Task] = []

    def broadcast(self, msg: dict[str, Any], only: set[str] | None = None) -> None:
        for pid, link in self.links.items():
            if only is not None and pid not in only:
                continue
            if len(link.msgs) >= MAX_QUEUED_MSGS:
                link.msgs.popleft()
                self.stats["gossip_queue_overflow"] += 1
            link.msgs.append(msg)
            link.wake.set()

    def broadcast_txs(self, txs: list[dict[str, Any]]) -> None:
        for link in self.links.values():
            overflow = len(link.txs) + len(txs) - MAX_QUEUED_TXS
            for _ in range(max(0, overflow)):
                link.txs.popleft()
            link.txs.extend(txs)
            link.wake.set()

    def add_peer(self, peer_id: str, url: str) -> None:
        """Gossip to a new peer (a validator joined); a changed URL replaces the old link."""
        link = self.links.get(peer_id)
        if link is not None:
            link.url = url.rstrip("/")
            return
        link = self.links[peer_id] = PeerLink(peer_id, url)
        if self._client is not None:   # already started: give it its sender task now
            self._tasks.append(asyncio.create_task(self._sender(link), name=f"gossip-{peer_id[:8]}"))

    async def start(self) -> None:
        self._client = httpx.AsyncClient(timeout=httpx.Timeout(10.0, connect=2.0),
                                         limits=httpx.Limits(max_connections=4 * max(1, len(self.links))))
        for link in self.links.values():
            self._tasks.append(asyncio.create_task(self._sender(link), name=f"gossip-{link.peer_id[:8]}"))

    async def stop(self) -> None:
        for t in self._tasks:
            t.cancel()
        for t in self._tasks:
            try:
                await t
            except (asyncio.CancelledError, Exception):  # noqa: BLE001
                pass
        if self._client:
            await self._client.aclose()

    async def _sender(self, link: PeerLink) -> None:
        assert self._client is not None
        while True:
            await link.wake.wait()
            link.wake.clear()
            while link.msgs or link.txs:
                msgs = [link.msgs.popleft() for _ in range(min(len(link.msgs), self.max_batch_msgs))]
                txs = [link.txs.popleft() for _ in range(min(len(link.txs), self.max_batch_txs))]
                if self.faults.blocked(link.peer_id):
                    self.stats["dropped_by_fault_filter_out"] += len(msgs) + len(txs)
                    continue
                try:
                    r = await self._client.post(link.url + "/p2p/msgs",
                                                json={"from": self.my_id, "msgs": msgs, "txs": txs})
                    r.raise_for_status()
                    link.failures = 0
                    self.stats["gossip_sent_msgs"] += len(msgs)
                    self.stats["gossip_sent_txs"] += len(txs)
                except httpx.HTTPError as exc:
                    link.failures += 1
                    self.stats["gossip_send_failed"] += 1
                    if link.failures in (1, 10) or link.failures % 100 == 0:
                        log.info("gossip to %s failed (%d in a row): %s", link.url, link.failures,
                                 type(exc).__name__)
                    # Votes/proposals are re-sent by the engine on timeouts; txs are retried once.
                    link.txs.extendleft(reversed(txs))
                    await asyncio.sleep(min(2.0, 0.05 * link.failures))
