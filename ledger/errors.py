"""Errors that name the offending field and the reason, so APIs can report them as-is.

A refusal carries a :class:`Code` — *what kind* of refusal it is — never a transport
status: the REST edge (``node/api.py``) maps codes to HTTP statuses, and callers
that must react to a kind (a nonce gap parks a gossiped tx) test the code, never
the reason text.
"""
from __future__ import annotations

import enum


class Code(enum.Enum):
    MALFORMED = "malformed"            # bad field, type, signature, chain, unknown tx type
    FORBIDDEN = "forbidden"            # wrong sender or role for this action
    CONFLICT = "conflict"              # wrong phase, duplicate, already done
    NONCE_USED = "nonce_used"          # nonce below the sender's next expected nonce
    NONCE_GAP = "nonce_gap"            # nonce skips ahead of the next expected nonce
    COMMITTED = "already_committed"    # the very same tx is already in a block
    UNMET = "precondition"             # balance, missing object, limits
    BUSY = "busy"                      # mempool full: retry later


class TxRejected(ValueError):
    """A transaction is refused. ``field`` is a dotted path into the tx JSON."""

    def __init__(self, field: str, reason: str, code: Code = Code.MALFORMED) -> None:
        super().__init__(f"{field}: {reason}")
        if not isinstance(code, Code):
            # the HTTP-status form (an int) is gone: a status here would only surface later as a
            # KeyError in the REST edge's mapping, far from the call site that passed it
            raise TypeError(f"TxRejected code must be a ledger.errors.Code, got {code!r}")
        self.field = field
        self.reason = reason
        self.code: Code = code

    def to_json(self) -> dict:
        return {"error": "invalid transaction", "field": self.field, "reason": self.reason}
