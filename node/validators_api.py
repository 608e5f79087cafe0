"""REST: validator-set fields for ``GET /validators`` and committed evidence (``GET /evidence``)."""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

from fastapi import APIRouter, Query

from pocnet.ledger.txtypes.accountability import EVIDENCE, VSTATE, validator_rows
from pocnet.ledger.txtypes.validators import validators_at

if TYPE_CHECKING:
    from pocnet.node.node import Node


def add_set_fields(node: "Node", rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Add, for the next height, each validator's ``power`` (1 per validator in the voting set,
    equal power; 0 while jailed, before its join takes effect and after it left), ``bond``,
    ``jailed``, ``jailed_until`` (first height an unjail tx is accepted), ``jailed_from``,
    ``released_at``, ``offences``, ``url``, ``active_from``, ``active_until`` (first height
    out of the set after a leave) and ``unbond_at`` (height its bond is paid back)."""
    with node.chain.lock:
        state, height = node.chain.state, node.chain.height + 1
        ids = [r["address"] for r in rows]
        active = set(validators_at(state, height))
        extra = {r["address"]: r for r in validator_rows(state, height, ids)}
        recs = {a: state.get(VSTATE, a) or {} for a in ids}
    for row in rows:
        row.update(extra[row["address"]])
        rec = recs[row["address"]]
        row.update(url=rec.get("url", row.get("url")), active_from=rec.get("active_from"),
                   active_until=rec.get("active_until"), unbond_at=rec.get("unbond_at"))
        row["power"] = 1 if row["address"] in active else 0
    return rows


def validators_router(node: "Node") -> APIRouter:
    r = APIRouter(tags=["validators"])

    @r.get("/evidence")
    async def evidence(limit: int = Query(100, ge=1, le=1000)) -> Any:
        """Committed equivocation evidence, each with the height of the block that included it."""
        with node.chain.lock:
            items = [e for _, e in node.chain.state.items(EVIDENCE)]
        items.sort(key=lambda e: (e["included_height"], e["validator"]))
        return {"evidence": items[-limit:], "total": len(items)}

    return r
