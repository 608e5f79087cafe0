"""HTTP gossip: one sender task per peer, batching messages and txs into POST /p2p/msgs.

The validator set is a full mesh, so "gossip" is direct broadcast; liveness under
loss comes from the engine re-sending its current-height messages on timeouts.
Queues are bounded (oldest dropped) so a dead peer cannot grow memory. A
fault filter (test-only) drops traffic to or from chosen peers to simulate
partitions.

Every POST carries a signed envelope (p2p/auth.py). A peer that answers 429 is paced
(the batch is kept and sent after its Retry-After, so it grows instead of being lost);
a peer that answers 401 does not know this node (a full node that nobody registered):
its txs then go through the public ``POST /txs/batch`` and ``/p2p/msgs`` is retried
every AUTH_RETRY_S.
"""
from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter, deque
from typing import Any

import httpx

from pocnet.ledger.encoding import canonical_json
from pocnet.p2p.auth import HDR_RETRY_MS, EnvelopeSigner

log = logging.getLogger("pocnet.p2p")

MAX_QUEUED_MSGS = 20_000
MAX_QUEUED_TXS = 100_000
AUTH_RETRY_S = 5.0
MAX_RATE_WAIT_S = 2.0


class FaultFilter:
    """Peers we pretend we cannot reach (both directions); set via the debug API in tests."""

    def __init__(self) -> None:
        self.cut: set[str] = set()
        self.drop_txs_from: set[str] = set()  # inbound gossiped txs from these peers are dropped
        self.refuse_pulls = False             # answer compact-proposal pulls with 404

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
        self.refused_until = 0.0  # monotonic time until which /p2p/msgs is not tried (401)


class Gossip:
    def __init__(self, my_id: str, peers: dict[str, str], stats: Counter, faults: FaultFilter,
                 max_batch_msgs: int = 512, max_batch_txs: int = 2000,
                 signer: EnvelopeSigner | None = None) -> None:
        self.my_id = my_id
        self.signer = signer
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
                    if time.monotonic() < link.refused_until:
                        await self._send_public(link, msgs, txs)
                        continue
                    r = await self.post_signed(link, "/p2p/msgs", {"msgs": msgs, "txs": txs})
                    if r.status_code == 429:
                        self.stats["gossip_rate_limited"] += 1
                        link.msgs.extendleft(reversed(msgs))
                        link.txs.extendleft(reversed(txs))
                        await asyncio.sleep(_retry_after_s(r))
                        continue
                    if r.status_code == 401:
                        link.refused_until = time.monotonic() + AUTH_RETRY_S
                        log.warning("%s refused our peer key (%s); relaying txs via /txs/batch",
                                    link.url, r.text[:200])
                        await self._send_public(link, msgs, txs)
                        continue
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

    async def post_signed(self, link: PeerLink, path: str, payload: dict[str, Any]) -> httpx.Response:
        """POST JSON with this node's envelope over the exact bytes sent."""
        assert self._client is not None
        # orjson via canonical_json: ~20x cheaper than json.dumps on the gossip hot path
        # (profile in docs/performance.md); any JSON the receiver's strict parser takes is fine.
        body = canonical_json(payload, checked=False)
        headers = {"content-type": "application/json"}
        if self.signer is not None:
            headers.update(self.signer.headers(link.peer_id, "POST", path, body))
        return await self._client.post(link.url + path, content=body, headers=headers)

    async def _send_public(self, link: PeerLink, msgs: list[dict[str, Any]], txs: list[dict[str, Any]]) -> None:
        """To a peer that does not know our key: txs through the public batch route."""
        assert self._client is not None
        self.stats["gossip_unauthorized_dropped_msgs"] += len(msgs)
        if not txs:
            return
        r = await self._client.post(link.url + "/txs/batch", json=txs)
        r.raise_for_status()
        link.failures = 0
        self.stats["gossip_sent_txs_public"] += len(txs)


def _retry_after_s(r: httpx.Response) -> float:
    """How long a 429 asks us to wait (ms header first, then Retry-After), capped."""
    for name, scale in ((HDR_RETRY_MS, 0.001), ("retry-after", 1.0)):
        raw = r.headers.get(name, "")
        if raw.isdigit():
            return min(MAX_RATE_WAIT_S, int(raw) * scale)
    return 0.1
