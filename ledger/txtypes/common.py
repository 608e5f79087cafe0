"""Payload field checks shared by tx types (each raises TxRejected naming the field)."""
from __future__ import annotations

from typing import Any

from pocnet.ledger.errors import TxRejected
from pocnet.ledger.keys import parse_public_key

MAX_INT = 2**63 - 1


def exact_fields(payload: dict[str, Any], required: tuple[str, ...], optional: tuple[str, ...] = ()) -> None:
    for name in required:
        if name not in payload:
            raise TxRejected(f"payload.{name}", "field is required")
    for name in payload:
        if name not in required and name not in optional:
            raise TxRejected(f"payload.{name}", "unknown field")


def int_field(payload: dict[str, Any], name: str, lo: int, hi: int = MAX_INT) -> int:
    value = payload[name]
    if not isinstance(value, int) or isinstance(value, bool):
        raise TxRejected(f"payload.{name}", "must be an integer")
    if not lo <= value <= hi:
        if value <= 0 and lo >= 1:
            raise TxRejected(f"payload.{name}", f"must be positive (got {value})")
        raise TxRejected(f"payload.{name}", f"must be in [{lo}, {hi}] (got {value})")
    return value


def address_field(payload: dict[str, Any], name: str) -> str:
    value = payload[name]
    if not isinstance(value, str):
        raise TxRejected(f"payload.{name}", "must be a hex address string")
    try:
        parse_public_key(value)
    except ValueError as exc:
        raise TxRejected(f"payload.{name}", str(exc)) from None
    return value


def int_list_field(payload: dict[str, Any], name: str, min_len: int, max_len: int,
                   lo: int, hi: int) -> list[int]:
    value = payload[name]
    if not isinstance(value, list) or not min_len <= len(value) <= max_len:
        raise TxRejected(f"payload.{name}", f"must be a list of {min_len}..{max_len} integers")
    for i, item in enumerate(value):
        if not isinstance(item, int) or isinstance(item, bool) or not lo <= item <= hi:
            raise TxRejected(f"payload.{name}[{i}]", f"must be an integer in [{lo}, {hi}]")
    return list(value)
