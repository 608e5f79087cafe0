"""Canonical JSON: the one byte encoding everything signed or hashed goes through.

Keys sorted, separators ``,``/``:``, no whitespace, UTF-8, and *no floats*: floats
differ in formatting across languages and silently lose precision, so a signed
object that contains one is rejected instead of rounded.
"""
from __future__ import annotations

import hashlib
import json
from typing import Any


class EncodingError(ValueError):
    """A value cannot be canonically encoded; ``path`` names where."""

    def __init__(self, path: str, reason: str) -> None:
        super().__init__(f"{path}: {reason}")
        self.path = path
        self.reason = reason


def check_canonical_value(value: Any, path: str = "$") -> None:
    """Raise EncodingError unless ``value`` is made only of dict/list/str/int/bool/None."""
    if value is None or isinstance(value, (bool, str)):
        return
    if isinstance(value, int):
        return
    if isinstance(value, float):
        raise EncodingError(path, "floats are not allowed in signed objects; use integers or decimal strings")
    if isinstance(value, list):
        for i, item in enumerate(value):
            check_canonical_value(item, f"{path}[{i}]")
        return
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str):
                raise EncodingError(path, "object keys must be strings")
            check_canonical_value(item, f"{path}.{key}")
        return
    raise EncodingError(path, f"unsupported type {type(value).__name__}")


def canonical_json(value: Any, *, checked: bool = True) -> bytes:
    """Encode ``value`` canonically. ``checked=False`` skips the type walk for trusted data."""
    if checked:
        check_canonical_value(value)
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False,
                      allow_nan=False).encode("utf-8")


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def hash_object(value: Any) -> str:
    """SHA-256 hex of the canonical JSON of ``value``."""
    return sha256_hex(canonical_json(value))


class _FloatFound(ValueError):
    pass


def _reject_float(text: str) -> Any:
    raise _FloatFound(text)


def _reject_constant(text: str) -> Any:
    raise _FloatFound(text)


def loads_strict(raw: bytes | str) -> Any:
    """Parse JSON, refusing floats, NaN and Infinity anywhere (raise EncodingError)."""
    try:
        return json.loads(raw, parse_float=_reject_float, parse_constant=_reject_constant)
    except _FloatFound as exc:
        raise EncodingError("$", f"JSON number {exc.args[0]} is a float; only integers are allowed") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise EncodingError("$", f"malformed JSON: {exc}") from None
