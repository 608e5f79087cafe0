"""Read-only chain views for explorers and operators: tx search, validators, peers, genesis.

``GET /txs`` searches the tx index (ledger/txindex.py); ``GET /validators``
summarises each validator's recent proposals, provider record and task load;
``GET /net_info`` is this peer's view of the others; ``GET /genesis`` is the
genesis document the peer runs.
"""
from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING, Any

import httpx
from fastapi import APIRouter, Query
from pydantic import BaseModel, Field

from pocnet.ledger import queries
from pocnet.ledger import txindex
from pocnet.ledger.genesis import ValidatorInfo
from pocnet.ledger.keys import is_hex
from pocnet.ledger.state_machine import tx_types
from pocnet.node.api import ApiError, ErrorOut

if TYPE_CHECKING:
    from pocnet.node.node import Node

NET_PROBE_TIMEOUT_S = 1.0
NET_PROBE_CACHE_S = 1.0
MAX_VALIDATOR_WINDOW = 1000


class TxHit(BaseModel):
    tx_hash: str
    height: int
    index: int
    type: str
    sender: str
    tx: dict[str, Any] | None


class TxSearchOut(BaseModel):
    txs: list[TxHit]
    next_cursor: str | None = Field(description="pass as ?cursor= for the next page; null on the last page")


class PeerBook:
    """When each peer was last heard from (fed by the p2p batch handler)."""

    def __init__(self) -> None:
        self.last_heard_ms: dict[str, int] = {}
        self.messages: dict[str, int] = {}

    def heard(self, peer_id: str) -> None:
        self.last_heard_ms[peer_id] = int(time.time() * 1000)
        self.messages[peer_id] = self.messages.get(peer_id, 0) + 1


def _int_param(value: str | None, name: str, minimum: int = 0) -> int | None:
    """Query integers parsed by hand so every bad value gets the documented 400 shape."""
    if value is None or value == "":
        return None
    if not value.isdigit() or len(value) > 18:
        raise ApiError(400, "invalid request", name, f"must be an integer >= {minimum}")
    n = int(value)
    if n < minimum:
        raise ApiError(400, "invalid request", name, f"must be an integer >= {minimum}")
    return n


def parse_tx_query(sender: str | None, type_: str | None, from_height: str | None, to_height: str | None,
                   limit: str | None, cursor: str | None, order: str | None) -> txindex.TxQuery:
    if sender is not None and not is_hex(sender, 32):
        raise ApiError(400, "invalid request", "sender", "must be 64 lowercase hex characters (an address)")
    types = None
    if type_:
        types = tuple(sorted({s.strip() for s in type_.split(",") if s.strip()}))
        unknown = set(types) - set(tx_types())
        if unknown or not types:
            raise ApiError(400, "invalid request", "type", f"unknown tx type(s) {sorted(unknown)}; "
                           f"known: {', '.join(tx_types())}")
    lo = _int_param(from_height, "from_height", 1)
    hi = _int_param(to_height, "to_height", 1)
    if lo is not None and hi is not None and lo > hi:
        raise ApiError(400, "invalid request", "to_height", "must be >= from_height")
    n = _int_param(limit, "limit", 1)
    if n is not None and n > txindex.MAX_LIMIT:
        raise ApiError(400, "invalid request", "limit", f"must be <= {txindex.MAX_LIMIT}")
    cur = None
    if cursor:
        try:
            cur = txindex.parse_cursor(cursor)
        except txindex.CursorError as exc:
            raise ApiError(400, "invalid request", "cursor", str(exc)) from None
    if order not in (None, "", "desc", "asc"):
        raise ApiError(400, "invalid request", "order", "must be desc (newest first) or asc")
    return txindex.TxQuery(sender, types, lo, hi, n or 20, cur, order != "asc")


def validators_summary(node: "Node", last: int) -> dict[str, Any]:
    """Per validator: proposals in the last ``last`` blocks, provider record, task load."""
    head = node.chain.height
    start = max(1, head - last + 1)
    proposed: dict[str, int] = {}
    h = start
    while h <= head:
        page = node.chain.storage.get_block_dicts(h, 100)
        if not page:
            break
        for b in page:
            p = b["header"]["proposer"]
            proposed[p] = proposed.get(p, 0) + 1
        h = page[-1]["header"]["height"] + 1
    window = head - start + 1 if head >= 1 else 0
    state = node.chain.state
    tasks: dict[str, dict[str, int]] = {}
    for t in queries.tasks(state):
        who = t.assigned_to
        if who:
            s = tasks.setdefault(who, {"allocated": 0, "done": 0, "expired": 0, "other": 0, "work_allocated": 0})
            key = t.status if t.status in ("allocated", "done", "expired") else "other"
            s[key] += 1
            s["work_allocated"] += t.work
    weights = state.get("poc", "weights") or {}  # contribution recorded by the last block (ledger/txtypes/providers.py)
    contribution = weights.get("contribution", {})
    out = []
    from pocnet.ledger.txtypes.validators import peer_urls, validator_ids
    names = {v.address: v.name for v in node.genesis.validators}
    urls = peer_urls(state)
    for addr in validator_ids(state):   # genesis validators, then joined ones (departed included)
        v = ValidatorInfo(names.get(addr, ""), addr, urls.get(addr, ""))
        p_rec = queries.provider(state, v.address)
        prov = p_rec.to_dict() if p_rec else None
        rep = p_rec.reputation_ppm if p_rec else None
        recent = sum(p_rec.history) if p_rec else 0
        out.append({
            "name": v.name, "address": v.address, "url": v.url,
            "proposed": proposed.get(v.address, 0),
            "proposer_share": (proposed.get(v.address, 0) / window) if window else 0.0,
            "provider": prov,
            # PoC weight of the next ranking (None before the first recorded allocation)
            "poc_contribution": contribution.get(v.address),
            # the contribution PoC uses when no task is queued: recent delivered work × reputation
            "recent_contribution": (recent * rep // 1_000_000) if rep is not None else 0,
            "tasks": tasks.get(v.address, {"allocated": 0, "done": 0, "expired": 0, "other": 0,
                                           "work_allocated": 0}),
        })
    from pocnet.node.validators_api import add_set_fields
    return {"head": head, "height": head + 1, "poc_weights_height": weights.get("height"),
            "window": {"from": start if window else None, "to": head, "blocks": window},
            "validators": add_set_fields(node, out)}


class NetProbe:
    """Live /health probes of the other validators, cached briefly (a page polls this)."""

    def __init__(self, node: "Node", book: PeerBook) -> None:
        self.node = node
        self.book = book
        self._cache: tuple[float, list[dict[str, Any]]] | None = None
        self._lock = asyncio.Lock()

    async def _probe(self, client: httpx.AsyncClient, url: str) -> dict[str, Any]:
        t0 = time.monotonic()
        try:
            r = await client.get(url.rstrip("/") + "/health", timeout=NET_PROBE_TIMEOUT_S)
            r.raise_for_status()
            return {"reachable": True, "height": int(r.json()["height"]),
                    "rtt_ms": round((time.monotonic() - t0) * 1000, 1), "error": None}
        except (httpx.HTTPError, ValueError, KeyError, TypeError) as exc:
            return {"reachable": False, "height": None, "rtt_ms": None, "error": type(exc).__name__}

    async def peers(self) -> list[dict[str, Any]]:
        async with self._lock:
            if self._cache and time.monotonic() - self._cache[0] < NET_PROBE_CACHE_S:
                return self._cache[1]
            me = self.node.key.address
            from pocnet.ledger.txtypes.validators import peer_urls
            names = {v.address: v.name for v in self.node.genesis.validators}
            others = [ValidatorInfo(names.get(a, ""), a, u) for a, u in peer_urls(self.node.chain.state).items()
                      if a != me]   # genesis and joined validators (departed ones too: they may still serve)
            async with httpx.AsyncClient() as client:
                probes = await asyncio.gather(*[self._probe(client, v.url) for v in others])
            links = getattr(getattr(self.node.driver, "gossip", None), "links", {}) or {}
            out = []
            for v, pr in zip(others, probes):
                link = links.get(v.address)
                out.append({"name": v.name, "peer_id": v.address, "url": v.url, **pr,
                            "last_message_ms": self.book.last_heard_ms.get(v.address),
                            "messages_received": self.book.messages.get(v.address, 0),
                            "gossip_failures_in_a_row": link.failures if link is not None else None})
            self._cache = (time.monotonic(), out)
            return out


def explorer_router(node: "Node", book: PeerBook) -> APIRouter:
    r = APIRouter()
    net = NetProbe(node, book)

    @r.get("/txs", response_model=TxSearchOut, tags=["transactions"], responses={400: {"model": ErrorOut}})
    async def search_txs(sender: str | None = Query(None, description="sender address (64 hex)"),
                         type: str | None = Query(None, description="tx type, or a comma-separated list"),
                         from_height: str | None = Query(None, description="lowest height (inclusive)"),
                         to_height: str | None = Query(None, description="highest height (inclusive)"),
                         limit: str | None = Query(None, description=f"page size, 1..{txindex.MAX_LIMIT}, default 20"),
                         cursor: str | None = Query(None, description="next_cursor of the previous page"),
                         order: str | None = Query(None, description="desc (newest first, default) or asc"),
                         ) -> Any:
        """Committed txs by sender / type / height range, paginated (tx index in storage)."""
        q = parse_tx_query(sender, type, from_height, to_height, limit, cursor, order)
        txs, nxt = await asyncio.to_thread(txindex.search, node.chain.storage, q)
        return {"txs": txs, "next_cursor": nxt}

    @r.get("/validators", tags=["state"], responses={400: {"model": ErrorOut}})
    async def validators(last: int = Query(100, ge=1, le=MAX_VALIDATOR_WINDOW,
                                           description="window of recent heights for proposer shares")) -> Any:
        """Validators with proposer share over the last ``last`` heights, provider record and task load."""
        return validators_summary(node, last)

    @r.get("/net_info", tags=["node"])
    async def net_info() -> Any:
        """This peer's view of the other validators: URL, reachable, height, last message received."""
        peers = await net.peers()
        return {"peer_id": node.key.address, "name": node.config.name, "height": node.chain.height,
                "n_peers": len(peers), "n_reachable": sum(1 for p in peers if p["reachable"]), "peers": peers}

    @r.get("/genesis", tags=["node"])
    async def genesis() -> Any:
        """The genesis document this peer runs (its hash is checked against the database at start)."""
        return {"genesis": node.genesis.to_dict(), "hash": node.genesis.hash}

    return r
