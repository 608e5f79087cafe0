"""Canonical JSON: the one byte encoding everything signed or hashed goes through.

Keys sorted, separators ``,``/``:``, no whitespace, UTF-8, and *no floats*: floats
differ in formatting across languages and silently lose precision, so a signed
object that contains one is rejected instead of rounded.
"""
from __future__ import annotations

import hashlib
import json
import re
from typing import Any

import orjson


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


def canonical_json_reference(value: Any) -> bytes:
    """The reference encoding (stdlib ``json``): the definition ``canonical_json`` must match
    byte for byte. Kept as the fallback and as the oracle of the property tests."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False,
                      allow_nan=False).encode("utf-8")


_ORJSON_OPTS = orjson.OPT_SORT_KEYS


def canonical_json(value: Any, *, checked: bool = True) -> bytes:
    """Encode ``value`` canonically. ``checked=False`` skips the type walk for trusted data.

    orjson (≈ 20× faster) produces the reference bytes for everything orjson accepts (checked
    by property tests); whatever it refuses (ints beyond 64 bits, non-str keys of trusted
    data, lone surrogates, nesting past 255) goes through the reference encoder, so the
    result, or the error raised, is the reference one. Floats are the exception: with
    ``checked=False`` the caller vouches that there are none (the two encoders format
    ``1e+16`` vs ``1e16`` and NaN differently), which holds for every consensus object since
    floats are refused at the trust boundary."""
    if checked:
        check_canonical_value(value)
    try:
        return orjson.dumps(value, option=_ORJSON_OPTS)
    except (orjson.JSONEncodeError, TypeError):
        return canonical_json_reference(value)


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def hash_object(value: Any) -> str:
    """SHA-256 hex of the canonical JSON of ``value``."""
    return sha256_hex(canonical_json(value))


class _FloatFound(ValueError):
    pass


class _Refused(ValueError):
    pass


# Bounds on parsed input: every JSON document a peer accepts from the network fits them,
# so no request can reach Python's recursion limit, its 4,300-digit int limit, or an
# encoder that chokes on a lone UTF-16 surrogate.
MAX_JSON_DEPTH = 64
MAX_INT_DIGITS = 80  # > 2^256; every integer field has a far smaller range anyway


def _reject_float(text: str) -> Any:
    raise _FloatFound(text)


def _reject_constant(text: str) -> Any:
    raise _FloatFound(text)


def _bounded_int(text: str) -> int:
    if len(text.lstrip("-")) > MAX_INT_DIGITS:
        raise _Refused(f"integer with {len(text.lstrip('-'))} digits; at most {MAX_INT_DIGITS} allowed")
    return int(text)


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in pairs:
        if k in out:
            raise _Refused(f"duplicate object key {k[:40]!r}")
        out[k] = v
    return out


def _check_tree(value: Any) -> None:
    """Iteratively bound nesting depth and refuse strings that are not valid Unicode text."""
    stack = [(value, 1)]
    while stack:
        v, depth = stack.pop()
        if isinstance(v, str):
            try:
                v.encode("utf-8")
            except UnicodeEncodeError:
                raise _Refused("string contains a lone UTF-16 surrogate") from None
        elif isinstance(v, (list, dict)):
            if depth > MAX_JSON_DEPTH:
                raise _Refused(f"nested deeper than {MAX_JSON_DEPTH} levels")
            items = v.items() if isinstance(v, dict) else enumerate(v)
            for k, item in items:
                if isinstance(k, str):
                    stack.append((k, depth))
                stack.append((item, depth + 1))


_JSON_STRING = re.compile(rb'"(?:[^"\\]|\\.)*"', re.S)
_CONTAINERS = (dict, list, float)


def loads_strict(raw: bytes | str) -> Any:
    """Parse untrusted JSON (raise EncodingError): no floats, NaN or Infinity, no duplicate
    keys, integers of at most MAX_INT_DIGITS digits, depth at most MAX_JSON_DEPTH, no lone
    surrogates.

    Fast path (≈ 3× cheaper, the /p2p/msgs hot path): orjson parses, one walk refuses floats
    and over-deep nesting, and duplicate keys are found by counting: in valid JSON every
    ``:`` outside a string introduces one key, so the document had a duplicate iff that count
    exceeds the keys parsed. orjson's own refusals (ints past 64 bits, lone surrogates, bad
    UTF-8, NaN) and every refused document go to the reference parser, which decides and
    words the error; a property test checks both give the same answer."""
    raw_b = raw if isinstance(raw, bytes) else raw.encode("utf-8", "surrogatepass")
    try:
        value = orjson.loads(raw_b)
    except orjson.JSONDecodeError:
        return loads_strict_reference(raw)
    keys = 0
    stack = [(value, 1)] if type(value) in _CONTAINERS else []
    while stack:
        v, depth = stack.pop()
        kind = type(v)
        if kind is float or depth > MAX_JSON_DEPTH:
            return loads_strict_reference(raw)
        items = v.values() if kind is dict else v
        if kind is dict:
            keys += len(v)
        for item in items:
            if type(item) in _CONTAINERS:
                stack.append((item, depth + 1))
    if keys and raw_b.count(b":") != keys and _JSON_STRING.sub(b"", raw_b).count(b":") != keys:
        return loads_strict_reference(raw)
    return value


def loads_strict_reference(raw: bytes | str) -> Any:
    """The reference strict parser (stdlib json with hooks): defines what loads_strict accepts."""
    try:
        value = json.loads(raw, parse_float=_reject_float, parse_constant=_reject_constant,
                           parse_int=_bounded_int, object_pairs_hook=_unique_keys)
        _check_tree(value)
        return value
    except _FloatFound as exc:
        raise EncodingError("$", f"JSON number {exc.args[0]} is a float; only integers are allowed") from None
    except _Refused as exc:
        raise EncodingError("$", str(exc)) from None
    except RecursionError:
        raise EncodingError("$", f"nested deeper than {MAX_JSON_DEPTH} levels") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise EncodingError("$", f"malformed JSON: {exc}") from None
    except ValueError as exc:  # e.g. the interpreter's int-string conversion limit
        raise EncodingError("$", f"malformed JSON: {exc}") from None
