"""Validator set by transactions: ``validator_join``, ``validator_leave``, unbonding.

The set of height h is a pure function of the state committed at h-2 (and of any later
state): every change takes effect ``ACTIVATION_DELAY`` = 2 heights after the block that
commits it, so the proposer ranking and the quorum of h are fixed before h-1 is decided.

State: each validator's record in ``vstate`` (shared with ledger/txtypes/accountability.py,
which owns ``bond``, jail and offences) gains

    {"url", "active_from", "active_until", "unbond_at"}

``active_from`` is the first height it votes, ``active_until`` the first height it no longer
does (None while it stays). ``meta/validator_ids`` lists every address that was ever a
validator, in genesis order then join order (the order the voting set is listed in), and
``unbond/<height>`` the addresses whose bond is paid back at that height.

* ``validator_join`` ``{"validator", "url", "bond"[, "capacity"]}``: ``validator`` must be the
  sender (the tx signature proves the key is held: nobody can enlist a key it does not
  control, which would be a silent offline validator); ``bond`` >= ``min_bond`` is moved from
  the sender's balance into the record; the set may not grow above ``max_validators``. A
  provider record (PoC input) gets ``capacity`` (default 4; created if the key has none).
* ``validator_leave`` ``{}``: out of the set two heights after commit; the bond (minus any
  slash for evidence that arrives meanwhile) is credited back ``unbonding_heights`` after
  that; its provider capacity drops to 0 at once (PoC allocates it no new task), so an offence committed just before leaving can still be punished. A leave that
  would leave fewer than ``min_validators`` members is refused (default 4 = 3f+1 with f=1:
  below it the chain tolerates no faulty validator at all).

Voting power is equal (one vote per bonded validator; quorum = 2n/3+1 of the active set):
the engine, certificates and block sync count signatures, PoC already weighs *proposing*
by contribution, and the bond is the price of a seat (``min_bond`` per seat), so buying
k seats costs k bonds either way. Jailed members stay out of the voting set as before.
"""
from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from pocnet.ledger.errors import Code, TxRejected
from pocnet.ledger.genesis import Genesis
from pocnet.ledger.state import StateView
from pocnet.ledger.state_machine import (BlockContext, get_account, register_end_block, register_genesis,
                                         register_handler, set_account)
from pocnet.ledger.tx import Tx
from pocnet.ledger.txtypes.accountability import ACTIVATION_DELAY, VSTATE, is_jailed
from pocnet.ledger.txtypes.common import MAX_INT, address_field, exact_fields, int_field
from pocnet.ledger.txtypes.providers import MAX_CAPACITY, PROVIDERS, new_provider

IDS_KEY = "validator_ids"
PARAMS_KEY = "validator_set"
UNBOND = "unbond"
MAX_URL_LEN = 256
_URL = re.compile(r"^https?://[A-Za-z0-9.\-\[\]:]+(:[0-9]{1,5})?(/[^\s]*)?$")


def set_params(view: Any) -> dict[str, int]:
    return dict(view.get("meta", PARAMS_KEY) or {})


def validator_ids(state: Any) -> list[str]:
    """Every address that ever was a validator (genesis order, then join order)."""
    return list(state.get("meta", IDS_KEY) or [])


def is_member(rec: dict[str, Any] | None, height: int) -> bool:
    """Bonded into the set at ``height`` (jailed or not)."""
    if not rec or rec.get("active_from") is None:
        return False
    until = rec.get("active_until")
    return rec["active_from"] <= height and (until is None or height < until)


def validators_at(state: Any, height: int) -> tuple[str, ...]:
    """The voting set of ``height``: members not jailed then. Exact from the state committed at
    any height >= height-2 (every change is scheduled two heights ahead)."""
    out = []
    for v in validator_ids(state):
        rec = state.get(VSTATE, v)
        if is_member(rec, height) and not is_jailed(rec, height):
            out.append(v)
    return tuple(out)


def peer_urls(state: Any) -> dict[str, str]:
    """address -> URL of every validator with a record (members, pending joins, departed)."""
    out = {}
    for v in validator_ids(state):
        rec = state.get(VSTATE, v) or {}
        if rec.get("url"):
            out[v] = rec["url"]
    return out


def _staying(view: Any) -> list[str]:
    """Members that have not announced a leave (pending joins included)."""
    return [v for v in validator_ids(view)
            if (rec := view.get(VSTATE, v)) and rec.get("active_from") is not None and rec.get("active_until") is None]


def _genesis(view: StateView, genesis: Genesis) -> None:
    p = genesis.params
    view.set("meta", PARAMS_KEY, {"min_bond": p.min_bond, "unbonding_heights": p.unbonding_heights,
                                  "min_validators": p.min_validators, "max_validators": p.max_validators,
                                  "solo": len(genesis.validators) == 1})
    view.set("meta", IDS_KEY, [v.address for v in genesis.validators])
    for v in genesis.validators:   # bonded with genesis_bond by accountability's genesis hook
        rec = view.get_copy(VSTATE, v.address)
        rec.update(url=v.url, active_from=1, active_until=None, unbond_at=None)
        view.set(VSTATE, v.address, rec)


@dataclass(frozen=True)
class Join:
    validator: str
    url: str
    bond: int
    capacity: int


class ValidatorJoinHandler:
    tx_type = "validator_join"

    def check_payload(self, payload: dict[str, Any]) -> Join:
        exact_fields(payload, ("validator", "url", "bond"), ("capacity",))
        validator = address_field(payload, "validator")
        url = payload["url"]
        if not isinstance(url, str) or len(url) > MAX_URL_LEN or not _URL.match(url):
            raise TxRejected("payload.url", f"must be an http(s) URL of at most {MAX_URL_LEN} characters "
                             "(how the other validators reach this peer)")
        bond = int_field(payload, "bond", 1, MAX_INT)
        cap = int_field(payload, "capacity", 0, MAX_CAPACITY) if "capacity" in payload else 4
        return Join(validator, url.rstrip("/"), bond, cap)

    def check_state(self, view: StateView, tx: Tx, p: Join) -> None:
        sp = set_params(view)
        if p.validator != tx.sender:
            raise TxRejected("payload.validator", "must be the sender: a validator signs its own join "
                             "(that proves it holds the key)", Code.FORBIDDEN)
        if sp.get("solo"):
            raise TxRejected("type", "this chain has a single genesis validator (solo producer); "
                             "its validator set is fixed", Code.FORBIDDEN)
        rec = view.get(VSTATE, p.validator)
        if rec is not None and rec.get("active_until") is None and rec.get("active_from") is not None:
            raise TxRejected("payload.validator", "already a validator (duplicate key)", Code.CONFLICT)
        if rec is not None and rec.get("unbond_at") is not None and rec.get("bond", 0) > 0:
            raise TxRejected("payload.validator", f"still unbonding until height {rec['unbond_at']}; "
                             "join again after the bond is returned", Code.CONFLICT)
        if p.bond < sp["min_bond"]:
            raise TxRejected("payload.bond", f"bond {p.bond} is below min_bond {sp['min_bond']}", Code.UNMET)
        balance = get_account(view, tx.sender)["balance"]
        if balance < p.bond:
            raise TxRejected("payload.bond", f"insufficient balance: have {balance}, need {p.bond}", Code.UNMET)
        staying = _staying(view)
        if len(staying) >= sp["max_validators"]:
            raise TxRejected("type", f"the validator set is full (max_validators {sp['max_validators']})",
                             Code.UNMET)
        for v in staying:
            if (view.get(VSTATE, v) or {}).get("url") == p.url:
                raise TxRejected("payload.url", f"already the URL of validator {v[:12]}", Code.CONFLICT)

    def apply(self, view: StateView, tx: Tx, p: Join, ctx: BlockContext) -> None:
        acct = get_account(view, tx.sender)
        acct["balance"] -= p.bond
        set_account(view, tx.sender, acct)
        rec = view.get_copy(VSTATE, p.validator)
        if rec is None:
            rec = {"offences": 0, "jailed_from": None, "unjail_after": None, "released_at": None}
            view.set("meta", IDS_KEY, validator_ids(view) + [p.validator])
        rec.update(bond=p.bond, url=p.url, active_from=ctx.height + ACTIVATION_DELAY, active_until=None,
                   unbond_at=None)
        view.set(VSTATE, p.validator, rec)
        prov = view.get_copy(PROVIDERS, p.validator)
        if prov is None:
            prov = new_provider(p.capacity)
        prov["capacity"] = p.capacity   # a rejoining provider offers capacity again
        view.set(PROVIDERS, p.validator, prov)


class ValidatorLeaveHandler:
    tx_type = "validator_leave"

    def check_payload(self, payload: dict[str, Any]) -> None:
        exact_fields(payload, ())

    def check_state(self, view: StateView, tx: Tx, parsed: None) -> None:
        rec = view.get(VSTATE, tx.sender)
        if rec is None or rec.get("active_from") is None:
            raise TxRejected("sender", "not a validator", Code.FORBIDDEN)
        if rec.get("active_until") is not None:
            raise TxRejected("sender", f"already leaving (out of the set from height {rec['active_until']})",
                             Code.CONFLICT)
        sp = set_params(view)
        left = len(_staying(view)) - 1
        if left < sp["min_validators"]:
            raise TxRejected("sender", f"leaving would leave {left} validator(s), below min_validators "
                             f"{sp['min_validators']}", Code.UNMET)

    def apply(self, view: StateView, tx: Tx, parsed: None, ctx: BlockContext) -> None:
        rec = view.get_copy(VSTATE, tx.sender)
        until = ctx.height + ACTIVATION_DELAY
        rec["active_until"] = until
        # a join not yet in effect that is withdrawn is never active (active_from may be > until)
        rec["unbond_at"] = until + set_params(view)["unbonding_heights"]
        view.set(VSTATE, tx.sender, rec)
        prov = view.get_copy(PROVIDERS, tx.sender)
        if prov is not None:   # no new tasks for a departing provider (it reports what it holds)
            prov["capacity"] = 0
            view.set(PROVIDERS, tx.sender, prov)
        key = str(rec["unbond_at"])
        view.set(UNBOND, key, list(view.get(UNBOND, key) or []) + [tx.sender])


def _release_bonds(view: StateView, ctx: BlockContext) -> None:
    """End-block: pay back the bonds whose unbonding period ends at this height (O(those))."""
    key = str(ctx.height)
    due: Sequence[str] = view.get(UNBOND, key) or []
    if not due:
        return
    for v in due:
        rec = view.get_copy(VSTATE, v)
        acct = get_account(view, v)
        acct["balance"] += rec["bond"]
        set_account(view, v, acct)
        rec["bond"] = 0
        view.set(VSTATE, v, rec)
    view.delete(UNBOND, key)


register_handler(ValidatorJoinHandler())
register_handler(ValidatorLeaveHandler())
register_genesis("validator_set", _genesis)
register_end_block("unbond", _release_bonds)
