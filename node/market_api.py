"""REST read API of the on-chain bandwidth market (GET /market/rounds, /market/rounds/{id}, /market/params).

Built only from committed state, so honest peers at the same height answer alike.
Prices are in price quanta, demands in demand quanta, payments in balance units
(the scales are in every answer's ``params``). Formats: docs/market.md § On chain.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

from fastapi import APIRouter, Query

from pocnet.ledger.txtypes import market as mt
from pocnet.node.api import ApiError, ErrorOut

if TYPE_CHECKING:
    from pocnet.node.node import Node


def _summary(rec: dict[str, Any]) -> dict[str, Any]:
    return {k: rec[k] for k in ("id", "opener", "open_tx", "phase", "opened_height", "price_deadline",
                                "demand_deadline", "settled_height")} | {
        "leaders": len(rec["leaders"]), "followers": len(rec["followers"]), "prices_posted": len(rec["prices"]),
        "demands_posted": len(rec["demands"]), "escrow": rec["escrow"], "paid_total": sum(rec["paid"].values())}


def market_router(node: "Node") -> APIRouter:
    r = APIRouter(tags=["market"])

    @r.get("/market/params")
    async def params() -> Any:
        """The chain's market quanta (genesis ``market`` over the defaults)."""
        return node.chain.state.get(mt.NS, "params")

    @r.get("/market/rounds", responses={400: {"model": ErrorOut}})
    async def rounds(phase: str | None = Query(None, description="pricing | demand | settled | cancelled"),
                     participant: str | None = Query(None, description="rounds this address leads or follows in"),
                     limit: int = Query(100, ge=1, le=1000)) -> Any:
        """Round summaries, newest first (full records: /market/rounds/{id})."""
        if phase is not None and phase not in mt.PHASES:
            raise ApiError(400, "invalid request", "phase", f"must be one of {', '.join(mt.PHASES)}")
        items = [rec for _, rec in node.chain.state.items(mt.NS_ROUND)
                 if (phase is None or rec["phase"] == phase)
                 and (participant is None or participant in rec["leaders"] or participant in rec["followers"])]
        items.reverse()
        return {"rounds": [_summary(rec) for rec in items[:limit]], "total": len(items)}

    @r.get("/market/rounds/{round_id}", responses={404: {"model": ErrorOut}})
    async def round_detail(round_id: int) -> Any:
        """Participants, deadlines, posted prices and demands, theta (ppm), escrowed payments, settlement."""
        rec = node.chain.state.get(mt.NS_ROUND, mt.round_key(round_id)) if 1 <= round_id < 10**12 else None
        if rec is None:
            raise ApiError(404, "not found", "round_id", f"no market round {round_id}")
        return rec

    return r
