"""Errors that name the offending field and the reason, so APIs can report them as-is.

A refusal carries a :class:`Code` — *what kind* of refusal it is — never a transport
status: the REST edge (``node/api.py``) maps codes to HTTP statuses, and callers
that must react to a kind (a nonce gap parks a gossiped tx) test the code, never
the reason text.
"""
from __future__ import annotations

import enum
import warnings


class Code(enum.Enum):
    MALFORMED = "malformed"            # bad field, type, signature, chain, unknown tx type
    FORBIDDEN = "forbidden"            # wrong sender or role for this action
    CONFLICT = "conflict"              # wrong phase, duplicate, already done
    NONCE_USED = "nonce_used"          # nonce below the sender's next expected nonce
    NONCE_GAP = "nonce_gap"            # nonce skips ahead of the next expected nonce
    COMMITTED = "already_committed"    # the very same tx is already in a block
    UNMET = "precondition"             # balance, missing object, limits
    BUSY = "busy"                      # mempool full: retry later


# Deprecated: HTTP statuses passed by older call sites; tests/ledger/test_ledger_errors.py
# keeps them out of ledger/ and games/.
_LEGACY_STATUS = {400: Code.MALFORMED, 403: Code.FORBIDDEN, 409: Code.CONFLICT, 422: Code.UNMET,
                  503: Code.BUSY}


class TxRejected(ValueError):
    """A transaction is refused. ``field`` is a dotted path into the tx JSON."""

    def __init__(self, field: str, reason: str, code: Code | int = Code.MALFORMED) -> None:
        super().__init__(f"{field}: {reason}")
        if isinstance(code, int):
            warnings.warn("TxRejected(..., <HTTP status>) is deprecated: pass a ledger.errors.Code",
                          DeprecationWarning, stacklevel=2)
            code = _LEGACY_STATUS.get(code, Code.MALFORMED)
        self.field = field
        self.reason = reason
        self.code: Code = code

    def to_json(self) -> dict:
        return {"error": "invalid transaction", "field": self.field, "reason": self.reason}
