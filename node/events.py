"""``GET /events``: Server-Sent Events for committed blocks and their txs.

Every committed block produces, in order, one ``tx`` event per tx (``height``,
``index``, ``tx_hash``, ``type``, ``sender``, ``tx``) and then one ``new_block``
event (``height``, ``hash``, ``header``, ``num_txs``, ``tx_hashes``) whose SSE
``id`` is the height. So ``Last-Event-ID: H`` (or ``?from_height=H+1``) resumes
right after block H with nothing lost or repeated: committed blocks are first
replayed from storage, then the stream continues live.

Filters (``?types=transfer,task&sender=<address>``) apply to ``tx`` events;
``new_block`` events are always sent unless ``?events=tx``. A subscriber that
falls more than ``MAX_QUEUE`` events behind is disconnected (it resumes with
``Last-Event-ID``), so one slow client cannot grow the peer's memory.
"""
from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import StreamingResponse

from pocnet.ledger.keys import is_hex
from pocnet.ledger.state_machine import tx_types
from pocnet.node.api import ApiError, ErrorOut

if TYPE_CHECKING:
    from pocnet.ledger.block import Block
    from pocnet.node.node import Node

log = logging.getLogger("pocnet.events")

MAX_QUEUE = 2_000          # events buffered per subscriber before it is cut off
KEEPALIVE_S = 15.0          # comment line so proxies keep the connection open
REPLAY_PAGE = 50            # blocks read from storage per replay query
MAX_SUBSCRIBERS = 256


def block_events(block_dict: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """The events of one committed block: its txs, then the block (pure)."""
    from pocnet.ledger.tx import compute_tx_hash
    header = block_dict["header"]
    h = header["height"]
    hashes = [compute_tx_hash(t) for t in block_dict["txs"]]
    out: list[tuple[str, dict[str, Any]]] = []
    for i, (t, th) in enumerate(zip(block_dict["txs"], hashes)):
        out.append(("tx", {"height": h, "index": i, "tx_hash": th, "type": t["type"], "sender": t["sender"],
                           "tx": t}))
    out.append(("new_block", {"height": h, "hash": block_dict["hash"], "header": header,
                              "num_txs": len(hashes), "tx_hashes": hashes}))
    return out


@dataclass(frozen=True)
class EventFilter:
    kinds: frozenset[str]
    types: frozenset[str] | None
    sender: str | None

    def accepts(self, kind: str, data: dict[str, Any]) -> bool:
        if kind not in self.kinds:
            return False
        if kind == "tx":
            if self.types is not None and data["type"] not in self.types:
                return False
            if self.sender is not None and data["sender"] != self.sender:
                return False
        return True


def format_sse(kind: str, data: dict[str, Any]) -> bytes:
    lines = [f"event: {kind}"]
    if kind == "new_block":
        lines.append(f"id: {data['height']}")
    lines.append("data: " + json.dumps(data, separators=(",", ":"), sort_keys=True))
    return ("\n".join(lines) + "\n\n").encode()


class EventHub:
    """Fan-out of committed blocks to open streams (called on the event loop thread)."""

    def __init__(self) -> None:
        self._subs: set[asyncio.Queue] = set()
        self._loop: asyncio.AbstractEventLoop | None = None

    def __len__(self) -> int:
        return len(self._subs)

    def subscribe(self) -> asyncio.Queue:
        self._loop = asyncio.get_running_loop()
        q: asyncio.Queue = asyncio.Queue()
        self._subs.add(q)
        return q

    def unsubscribe(self, q: asyncio.Queue) -> None:
        self._subs.discard(q)

    def on_commit(self, block: "Block") -> None:
        if not self._subs:
            return
        d = block.to_dict()
        loop = self._loop
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if loop is not None and running is not loop:
            loop.call_soon_threadsafe(self._publish, d)  # committed from a worker thread
        else:
            self._publish(d)

    def _publish(self, block_dict: dict[str, Any]) -> None:
        for q in list(self._subs):
            if q.qsize() >= MAX_QUEUE:
                self._subs.discard(q)
                q.put_nowait(None)  # tells the stream to close: the client resumes from its last id
            else:
                q.put_nowait(block_dict)


def _parse_filter(events: str | None, types: str | None, sender: str | None) -> EventFilter:
    kinds = frozenset({"new_block", "tx"})
    if events:
        kinds = frozenset(s.strip() for s in events.split(",") if s.strip())
        bad = kinds - {"new_block", "tx"}
        if bad or not kinds:
            raise ApiError(400, "invalid request", "events", f"unknown event kind(s) {sorted(bad)}; "
                           "use new_block and/or tx")
    type_set = None
    if types:
        type_set = frozenset(s.strip() for s in types.split(",") if s.strip())
        unknown = type_set - set(tx_types())
        if unknown:
            raise ApiError(400, "invalid request", "types", f"unknown tx type(s) {sorted(unknown)}")
    if sender is not None and not is_hex(sender, 32):
        raise ApiError(400, "invalid request", "sender", "must be 64 lowercase hex characters (an address)")
    return EventFilter(kinds, type_set, sender)


def _start_height(node: "Node", from_height: int | None, last_event_id: str | None) -> int:
    """First height to send; heights above the head mean 'live only'."""
    if last_event_id is not None and from_height is None:
        if not last_event_id.isdigit():
            raise ApiError(400, "invalid request", "Last-Event-ID", "must be a block height")
        return int(last_event_id) + 1
    if from_height is None:
        return node.chain.height + 1
    return from_height


def events_router(node: "Node", hub: EventHub) -> APIRouter:
    r = APIRouter(tags=["events"])

    @r.get("/events", response_class=StreamingResponse, responses={
        200: {"content": {"text/event-stream": {}},
              "description": "SSE stream: `event: tx` (per committed tx) then `event: new_block` (id = height)"},
        400: {"model": ErrorOut}, 503: {"model": ErrorOut}})
    async def events(request: Request,
                     from_height: int | None = Query(None, ge=1, description="replay committed blocks from "
                                                     "this height first (default: live only)"),
                     types: str | None = Query(None, description="comma-separated tx types for tx events"),
                     sender: str | None = Query(None, description="only tx events from this address"),
                     events: str | None = Query(None, description="new_block, tx or both (default)"),
                     ) -> StreamingResponse:
        """Committed blocks and txs as Server-Sent Events; resumable (``Last-Event-ID`` or ``from_height``)."""
        flt = _parse_filter(events, types, sender)
        start = _start_height(node, from_height, request.headers.get("last-event-id"))
        if len(hub) >= MAX_SUBSCRIBERS:
            raise ApiError(503, "too many subscribers", "$", f"{MAX_SUBSCRIBERS} streams are open; retry later")
        q = hub.subscribe()  # subscribe before replaying, so no block falls between the two

        async def stream() -> AsyncIterator[bytes]:
            sent = start - 1
            try:
                yield b": pocnet events\nretry: 2000\n\n"
                while sent < node.chain.height:  # replay committed blocks from storage
                    page = node.chain.storage.get_block_dicts(sent + 1, REPLAY_PAGE)
                    if not page:
                        break
                    for bd in page:
                        for kind, data in block_events(bd):
                            if flt.accepts(kind, data):
                                yield format_sse(kind, data)
                        sent = bd["header"]["height"]
                    if await request.is_disconnected():
                        return
                while True:
                    try:
                        bd = await asyncio.wait_for(q.get(), timeout=KEEPALIVE_S)
                    except asyncio.TimeoutError:
                        if await request.is_disconnected():
                            return
                        yield b": keepalive\n\n"
                        continue
                    if bd is None:  # fell too far behind
                        yield b"event: overflow\ndata: {}\n\n"
                        return
                    h = bd["header"]["height"]
                    if h <= sent:
                        continue  # already replayed
                    for kind, data in block_events(bd):
                        if flt.accepts(kind, data):
                            yield format_sse(kind, data)
                    sent = h
            finally:
                hub.unsubscribe(q)

        return StreamingResponse(stream(), media_type="text/event-stream",
                                 headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})

    return r
