"""Errors that name the offending field and the reason, so APIs can report them as-is."""
from __future__ import annotations


class TxRejected(ValueError):
    """A transaction is refused. ``field`` is a dotted path into the tx JSON."""

    def __init__(self, field: str, reason: str, status: int = 400) -> None:
        super().__init__(f"{field}: {reason}")
        self.field = field
        self.reason = reason
        self.status = status

    def to_json(self) -> dict:
        return {"error": "invalid transaction", "field": self.field, "reason": self.reason}
