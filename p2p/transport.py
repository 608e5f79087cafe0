"""What the BFT driver needs from the network, as one injectable interface.

``node/bft.py`` talks to other validators only through a :class:`Transport`:
fire-and-forget broadcast of signed consensus messages and txs, and four
request/response calls used by catch-up and compact proposals (peer heights, committed
blocks, a candidate block by hash, txs by hash). :class:`HttpTransport` is the production
one (batched ``POST /p2p/msgs`` gossip, ``GET /health``, ``GET /blocks``,
``GET /p2p/candidate/{hash}``, ``POST /p2p/txs``; the /p2p/* requests carry a signed envelope, p2p/auth.py,
while blocks and heights come from public routes, checked by their certificates); ``node/sim.py`` plugs in an in-memory network
with seeded delays, losses and partitions under virtual time.
"""
from __future__ import annotations

from collections import Counter
from typing import Any, Protocol

import httpx

from pocnet.ledger.block import Block
from pocnet.ledger.encoding import canonical_json
from pocnet.ledger.keys import KeyPair
from pocnet.p2p.auth import EnvelopeSigner
from pocnet.p2p.gossip import FaultFilter, Gossip
from pocnet.p2p.sync import fetch_blocks, peer_heights


class TransportError(Exception):
    """A request to a peer failed (unreachable, refused, timed out)."""


class Transport(Protocol):
    def broadcast(self, msg: dict[str, Any], only: set[str] | None = None) -> None:
        """Send a signed consensus message to every peer (or only those in ``only``)."""

    def broadcast_txs(self, txs: list[dict[str, Any]]) -> None:
        """Relay client txs to every peer."""

    async def start(self) -> None: ...

    async def stop(self) -> None: ...

    def add_peer(self, peer_id: str, url: str) -> None:
        """A validator joined (or a peer's URL changed on chain): gossip to it from now on."""

    async def heights(self) -> dict[str, int]:
        """Committed height of each reachable peer."""
        ...

    async def get_blocks(self, peer_id: str, start: int, limit: int) -> list[Block]:
        """Committed blocks ``start..start+limit-1`` with certificates (parsed, not yet checked);
        raise TransportError or BadMessage."""
        ...

    async def get_candidate(self, peer_id: str, block_hash: str) -> Any | None:
        """A peer's candidate block for the current height as JSON, or None."""
        ...

    async def get_txs(self, peer_id: str, hashes: list[str]) -> Any | None:
        """The txs among ``hashes`` a peer holds (unchecked JSON list), or None on failure."""
        ...


class HttpTransport:
    """Production transport: HTTP gossip (p2p/gossip.py) plus httpx requests."""

    def __init__(self, my_id: str, peers: dict[str, str], chain_id: str, stats: Counter,
                 faults: FaultFilter, signer: KeyPair | None = None) -> None:
        """``signer``: this node's key, which signs the envelope of every /p2p/* request
        (p2p/auth.py); without it requests go unsigned (peers answer 401)."""
        self.peers = peers
        self.chain_id = chain_id
        self.faults = faults
        self.signer = EnvelopeSigner(signer, chain_id) if signer is not None else None
        self.gossip = Gossip(my_id, peers, stats, faults, signer=self.signer)
        self._http: httpx.AsyncClient | None = None

    def broadcast(self, msg: dict[str, Any], only: set[str] | None = None) -> None:
        self.gossip.broadcast(msg, only=only)

    def broadcast_txs(self, txs: list[dict[str, Any]]) -> None:
        self.gossip.broadcast_txs(txs)

    def add_peer(self, peer_id: str, url: str) -> None:
        self.peers[peer_id] = url
        self.gossip.add_peer(peer_id, url)

    async def start(self) -> None:
        self._http = httpx.AsyncClient(timeout=httpx.Timeout(10.0, connect=2.0))
        await self.gossip.start()

    async def stop(self) -> None:
        await self.gossip.stop()
        if self._http:
            await self._http.aclose()

    def _client(self) -> httpx.AsyncClient:
        if self._http is None:
            raise TransportError("transport not started")
        return self._http

    async def heights(self) -> dict[str, int]:
        return await peer_heights(self._client(), self.peers, self.faults.blocked)

    async def get_blocks(self, peer_id: str, start: int, limit: int) -> list[Block]:
        try:
            return await fetch_blocks(self._client(), self.peers[peer_id], start, limit, self.chain_id)
        except (httpx.HTTPError, ValueError) as exc:
            raise TransportError(f"{self.peers[peer_id]}: {exc}") from None

    async def get_candidate(self, peer_id: str, block_hash: str) -> Any | None:
        if self.faults.blocked(peer_id):
            return None
        try:
            path = f"/p2p/candidate/{block_hash}"
            headers = self.signer.headers(peer_id, "GET", path) if self.signer is not None else {}
            r = await self._client().get(self.peers[peer_id].rstrip("/") + path, headers=headers, timeout=5.0)
            return r.json() if r.status_code == 200 else None
        except (httpx.HTTPError, ValueError):
            return None

    async def get_txs(self, peer_id: str, hashes: list[str]) -> Any | None:
        if self.faults.blocked(peer_id):
            return None
        try:
            path = "/p2p/txs"
            body = canonical_json({"hashes": hashes}, checked=False)
            headers = {"content-type": "application/json"}
            if self.signer is not None:
                headers.update(self.signer.headers(peer_id, "POST", path, body))
            r = await self._client().post(self.peers[peer_id].rstrip("/") + path, content=body,
                                          headers=headers, timeout=5.0)
            return r.json().get("txs") if r.status_code == 200 else None
        except (httpx.HTTPError, ValueError, AttributeError):
            return None
