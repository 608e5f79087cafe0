"""REST read API of the on-chain FML rounds (GET /fml/rounds, /fml/learners, /reputation).

Answers are built only from committed state (``node.chain.state``), so every
honest peer at the same height gives the same answer (same JSON content). Game quantities are
the stored fixed-point ints: value x 1e6 in seconds, Hz, tokens or unitless
(``"scale": 1000000`` in every answer); balances/payouts are micro-tokens.
Formats: docs/fmlchain.md.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

from fastapi import APIRouter, Query

from pocnet.ledger.keys import parse_public_key
from pocnet.ledger.txtypes import fml_codec as fc
from pocnet.node.api import ApiError, ErrorOut

if TYPE_CHECKING:
    from pocnet.node.node import Node

_PLAN_MEMBER_FIELDS = (("frequency", "frequencies"), ("predicted_time", "predicted_times"), ("weight", "weights"),
                       ("reputation", "reputations"), ("expected_utility", "expected_utilities"),
                       ("competition_reward", "competition_rewards"))


def _summary_view(summary: dict[str, Any]) -> dict[str, Any]:
    out = dict(summary)
    out["scale"] = fc.SCALE
    return out


def round_view(state: Any, rid: int, raw: bool = False) -> dict[str, Any] | None:
    """Everything about round ``rid`` (None when it does not exist); ``state`` has .get/.items."""
    key = fc.round_key(rid)
    summary = state.get(fc.NS_ROUND, key)
    if summary is None:
        return None
    plan = state.get(fc.NS_PLAN, key)
    settle = state.get(fc.NS_SETTLE, key)
    out = _summary_view(summary)
    out["game_params"] = fc.params_to_state(fc.round_params(fc.params_from_state(state.get(fc.NS, "params")),
                                                            summary["params"]))
    out["joined"] = [a for a, _ in state.items(fc.join_ns(rid))]
    out["coalitions"], out["members"], out["frequencies"], out["incentives"] = [], {}, {}, {}
    out["sitting_out"], out["passive"] = [], []
    if plan is not None:
        for h in plan["heads"]:
            out["coalitions"].append({
                "head": h, "members": list(plan["partition"][h]), "deadline": plan["deadlines"][h],
                "incentive": plan["incentives"][h], "formation_incentive": plan["formation_incentives"][h],
                "coalition_reputation": plan["coalition_reputation"][h], "msp_utility": plan["msp_utilities"][h]})
            for a in plan["partition"][h]:
                m = {"head": h, "case": plan["cases"][a]}
                for name, src in _PLAN_MEMBER_FIELDS:
                    m[name] = plan[src][a]
                out["members"][a] = m
        out["frequencies"] = dict(plan["frequencies"])
        out["incentives"] = dict(plan["incentives"])
        out["sitting_out"], out["passive"] = list(plan["sitting_out"]), list(plan["passive"])
        out["sitting_out_reasons"] = dict(plan.get("sit_out_reasons", {}))  # games.rationality
    out["reports"] = {a: r for a, r in state.items(fc.report_ns(rid))}
    out["payouts"], out["flags"], out["contributions"], out["reputations"] = {}, {}, {}, {}
    if settle is not None:
        out["payouts"] = dict(settle["paid"])
        out["owed"] = dict(settle["owed"])
        out["flags"] = dict(settle["flags"])
        out["contributions"] = dict(settle["q"])
        out["work_factors"] = dict(settle.get("work_factors", {}))  # ppm; games.settlement
        out["reputations"] = {a: {"global": settle["global_reputation"][a],
                                  "overall": settle["overall_reputation"][a]} for a in settle["q"]}
        out["coalition_reputation_after"] = dict(settle["coalition_reputation"])
    if raw:
        out["raw"] = {"plan": plan, "settlement": settle}
    return out


def reputation_view(state: Any, address: str) -> dict[str, Any]:
    """Global reputation (newcomers: r_th) and the per-round history of one address."""
    rep = state.get(fc.NS_REP, address)
    params = fc.params_from_state(state.get(fc.NS, "params"))
    if rep is None:
        return {"address": address, "scale": fc.SCALE, "global_reputation": round(params.r_th * fc.SCALE),
                "rounds": 0, "history": [], "newcomer": True}
    return {"address": address, "scale": fc.SCALE, "global_reputation": rep["global"],
            "rounds": len(rep["history"]), "history": list(rep["history"]), "newcomer": False,
            "work_score": rep.get("work_score")}


def _check_address(address: str) -> None:
    try:
        parse_public_key(address)
    except ValueError as exc:
        raise ApiError(400, "invalid address", "address", str(exc)) from None


def fml_router(node: "Node") -> APIRouter:
    r = APIRouter(tags=["fml"])

    @r.get("/fml/rounds")
    async def rounds(phase: str | None = Query(None, description="registration | training | closed"),
                     opener: str | None = Query(None), open_tx: str | None = Query(None),
                     limit: int = Query(100, ge=1, le=1000)) -> Any:
        """Round summaries, newest first (no per-member detail: see /fml/rounds/{id})."""
        if phase is not None and phase not in (fc.PHASE_REGISTRATION, fc.PHASE_TRAINING, fc.PHASE_CLOSED):
            raise ApiError(400, "invalid request", "phase", "must be registration, training or closed")
        items = [s for _, s in node.chain.state.items(fc.NS_ROUND)
                 if (phase is None or s["phase"] == phase) and (opener is None or s["opener"] == opener)
                 and (open_tx is None or s["open_tx"] == open_tx)]
        items.reverse()
        return {"rounds": [_summary_view(s) for s in items[:limit]], "total": len(items)}

    @r.get("/fml/rounds/{round_id}", responses={404: {"model": ErrorOut}})
    async def round_detail(round_id: int,
                           raw: bool = Query(False, description="add the stored plan/settlement")) -> Any:
        """Phase, parameters, coalitions (heads, members), frequencies, incentives, reports, payouts."""
        view = round_view(node.chain.state, round_id, raw) if round_id >= 1 else None
        if view is None:
            raise ApiError(404, "not found", "round_id", f"no round {round_id}")
        return view

    @r.get("/fml/learners/{address}", responses={400: {"model": ErrorOut}, 404: {"model": ErrorOut}})
    async def learner(address: str) -> Any:
        """Registered capabilities and reputation history of a learner."""
        _check_address(address)
        caps = node.chain.state.get(fc.NS_LEARNER, address)
        if caps is None:
            raise ApiError(404, "not found", "address", "not a registered learner")
        return {"address": address, "capabilities": {k: caps[k] for k in fc.CAPABILITY_FIELDS},
                "registered_height": caps["registered_height"], "updated_height": caps["updated_height"],
                "reputation": reputation_view(node.chain.state, address)}

    @r.get("/reputation/{address}", responses={400: {"model": ErrorOut}})
    async def reputation(address: str) -> Any:
        """Global reputation R^g (x1e6) and per-round records (q, flag, overall r_ik, payout)."""
        _check_address(address)
        return reputation_view(node.chain.state, address)

    return r
