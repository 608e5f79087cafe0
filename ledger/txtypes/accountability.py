"""Accountability: equivocation evidence in blocks → jail, slash, reputation 0; ``unjail`` tx.

State (namespace ``vstate``, one record per validator)::

    {"bond", "offences", "jailed_from", "unjail_after", "released_at"}

* A block's evidence (ledger/evidence.py, signatures checked by the chain before the
  block is applied) is processed at the start of the block: each offence id counts once
  (``evidence/<id>``), evidence older than ``evidence_max_age`` heights is refused, and
  the offender is jailed from ``jail_delay`` heights after inclusion (so the validator
  set of h is known at h-2), ``slash_ppm`` of its bond is burned and its provider
  reputation drops to 0.
* A jailed validator is excluded from the proposer ranking and from voting (quorum
  counts the active set only) until it sends ``unjail`` (empty payload) at or after
  ``unjail_after`` = jailed_from + ``jail_heights``; it is active again two heights after
  that tx is committed.

Parameters: genesis ``consensus`` (ledger/params.py).
"""
from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from pocnet.ledger.errors import Code, TxRejected
from pocnet.ledger.evidence import Evidence
from pocnet.ledger.genesis import Genesis
from pocnet.ledger.state import StateView
from pocnet.ledger.state_machine import BlockContext, BlockInvalid, register_begin_block, register_genesis, register_handler
from pocnet.ledger.tx import Tx
from pocnet.ledger.txtypes.common import exact_fields
from pocnet.ledger.txtypes.tasks import burn

VSTATE = "vstate"
EVIDENCE = "evidence"
PARAMS_KEY = "accountability"
ACTIVATION_DELAY = 2   # an unjail (like any set change) takes effect two heights after commit


def params(view: Any) -> dict[str, int]:
    return dict(view.get("meta", PARAMS_KEY) or {})


def is_jailed(rec: dict[str, Any] | None, height: int) -> bool:
    if not rec or rec.get("jailed_from") is None:
        return False
    released = rec.get("released_at")
    return rec["jailed_from"] <= height and (released is None or height < released)


def active_validators(state: Any, height: int, candidates: Iterable[str]) -> tuple[str, ...]:
    """The validators of ``height`` among ``candidates``: those not jailed at that height.
    Computable from the state committed at height-1 (and at height-2: jail and release
    heights are fixed two heights ahead)."""
    return tuple(v for v in candidates if not is_jailed(state.get(VSTATE, v), height))


def validator_rows(state: Any, height: int, candidates: Sequence[str]) -> list[dict[str, Any]]:
    rows = []
    for v in candidates:
        rec = state.get(VSTATE, v) or {}
        jailed = is_jailed(rec, height)
        rows.append({"address": v, "bond": rec.get("bond", 0), "jailed": jailed,
                     "jailed_from": rec.get("jailed_from"), "jailed_until": rec.get("unjail_after") if jailed else None,
                     "released_at": rec.get("released_at"), "offences": rec.get("offences", 0)})
    return rows


def committed_evidence_ids(view: Any, ids: Iterable[str]) -> set[str]:
    return {i for i in ids if view.get(EVIDENCE, i) is not None}


def evidence_acceptable(view: Any, ev: Evidence, height: int) -> str | None:
    """Why ``ev`` cannot go into the block at ``height`` (None if it can)."""
    p = params(view)
    if view.get(VSTATE, ev.validator) is None:
        return "evidence against an unknown validator"
    if ev.height >= height:
        return "evidence from the future"
    if height - ev.height > p.get("evidence_max_age", 100):
        return f"evidence from height {ev.height} is older than {p.get('evidence_max_age', 100)} heights"
    if view.get(EVIDENCE, ev.id) is not None:
        return "evidence already committed"
    return None


def _genesis(view: StateView, genesis: Genesis) -> None:
    p = genesis.params
    view.set("meta", PARAMS_KEY, {"jail_delay": p.jail_delay, "jail_heights": p.jail_heights,
                                  "slash_ppm": p.slash_ppm, "evidence_max_age": p.evidence_max_age})
    for v in genesis.validators:
        view.set(VSTATE, v.address, {"bond": p.genesis_bond, "offences": 0, "jailed_from": None,
                                     "unjail_after": None, "released_at": None})


def _apply_evidence(view: StateView, ctx: BlockContext) -> None:
    """Begin-block: punish each offence in the block once."""
    p = params(view)
    for ev in ctx.evidence:
        why = evidence_acceptable(view, ev, ctx.height)
        if why is not None:
            raise BlockInvalid(why)
        view.set(EVIDENCE, ev.id, dict(ev.to_dict(), included_height=ctx.height))
        rec = view.get_copy(VSTATE, ev.validator)
        slash = rec["bond"] * p["slash_ppm"] // 1_000_000
        rec["bond"] -= slash
        burn(view, slash)
        rec["offences"] += 1
        if not is_jailed(rec, ctx.height + p["jail_delay"]):
            rec["jailed_from"] = ctx.height + p["jail_delay"]
            rec["released_at"] = None
        rec["unjail_after"] = max(rec.get("unjail_after") or 0, ctx.height + p["jail_delay"] + p["jail_heights"])
        view.set(VSTATE, ev.validator, rec)
        prov = view.get_copy("prov", ev.validator)
        if prov is not None:
            prov["reputation_ppm"] = 0
            view.set("prov", ev.validator, prov)


class UnjailHandler:
    tx_type = "unjail"

    def check_payload(self, payload: dict[str, Any]) -> None:
        exact_fields(payload, ())

    def check_state(self, view: StateView, tx: Tx, parsed: None) -> None:
        rec = view.get(VSTATE, tx.sender)
        if rec is None:
            raise TxRejected("sender", "not a validator", Code.FORBIDDEN)
        if rec.get("jailed_from") is None or rec.get("released_at") is not None:
            raise TxRejected("sender", "validator is not jailed", Code.CONFLICT)

    def apply(self, view: StateView, tx: Tx, parsed: None, ctx: BlockContext) -> None:
        rec = view.get_copy(VSTATE, tx.sender)
        # height 0 is the mempool's admission context (no block yet): the block's proposer and
        # every verifier apply this with the real height
        if ctx.height and ctx.height < rec["unjail_after"]:
            raise TxRejected("$", f"jail period runs until height {rec['unjail_after']}", Code.CONFLICT)
        rec["released_at"] = ctx.height + ACTIVATION_DELAY
        view.set(VSTATE, tx.sender, rec)


register_handler(UnjailHandler())
register_genesis("accountability", _genesis)
register_begin_block("evidence", _apply_evidence)
