"""canonical_json (orjson fast path) is byte-identical to the stdlib reference encoding."""
from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pocnet.ledger.encoding import EncodingError, canonical_json, canonical_json_reference

# Any text including control characters, quotes, backslashes, non-BMP and U+2028/U+2029;
# surrogates excluded here (tested separately below: both must refuse them).
_text = st.text(alphabet=st.characters(exclude_categories=("Cs",)), max_size=20)
_ints = st.integers(min_value=-(2**64), max_value=2**64) | st.integers(min_value=-(2**300), max_value=2**300)
_scalars = st.none() | st.booleans() | _ints | _text
_values = st.recursive(_scalars, lambda inner: st.lists(inner, max_size=5)
                       | st.dictionaries(_text, inner, max_size=5), max_leaves=30)


@settings(max_examples=500, deadline=None)
@given(_values)
def test_byte_identical_to_reference(value: object) -> None:
    assert canonical_json(value) == canonical_json_reference(value)
    assert canonical_json(value, checked=False) == canonical_json_reference(value)


@given(st.dictionaries(_text, _ints, min_size=2, max_size=20))
def test_key_order_is_codepoint_order(d: dict[str, int]) -> None:
    # keys differing only past the BMP or in combining marks still sort the stdlib way
    assert canonical_json(d) == canonical_json_reference(d)


def test_ints_beyond_64_bits_fall_back_to_reference() -> None:
    for v in (2**64, -(2**63) - 1, 2**64 - 1, -(2**63), 10**79):
        assert canonical_json({"v": v}) == canonical_json_reference({"v": v})


def test_tuples_and_subclasses_encode_like_reference() -> None:
    class S(str):
        pass

    class I(int):  # noqa: E742
        pass

    value = {"t": (1, 2, [3]), S("k"): S("v"), "i": I(7), "b": [True, False, None]}
    assert canonical_json(value, checked=False) == canonical_json_reference(value)


def test_lone_surrogate_is_refused_by_both() -> None:
    with pytest.raises(UnicodeEncodeError):
        canonical_json_reference({"a": "\ud800"})
    with pytest.raises(UnicodeEncodeError):
        canonical_json({"a": "\ud800"})


def test_float_refused_when_checked() -> None:
    with pytest.raises(EncodingError):
        canonical_json({"a": 1.5})


def test_deep_nesting_falls_back() -> None:
    value: object = 1
    for _ in range(300):  # orjson refuses depth > 255
        value = [value]
    assert canonical_json(value, checked=False) == canonical_json_reference(value)


# -- loads_strict (orjson fast path) decides exactly like the reference strict parser
import json  # noqa: E402

from pocnet.ledger.encoding import loads_strict, loads_strict_reference  # noqa: E402

_KEYS = st.sampled_from(["a", "b", ":", '"', "\\", "é", "a:b", "\u2028"])  # few keys: duplicates are common
_leaf = (st.none() | st.booleans() | st.integers(min_value=-(2**70), max_value=2**70)
         | st.floats(allow_nan=False) | st.text(max_size=5))


def _obj_text(pairs: list[tuple[str, str]]) -> str:
    return "{" + ",".join(json.dumps(k) + " : " + v for k, v in pairs) + "}"


_doc = st.recursive(_leaf.map(json.dumps), lambda inner: st.lists(inner, max_size=4).map(lambda xs: "[" + ",".join(xs) + "]")
                    | st.lists(st.tuples(_KEYS, inner), max_size=4).map(_obj_text), max_leaves=25)


def _outcome(parse, raw: bytes) -> tuple:
    try:
        return ("ok", parse(raw))
    except EncodingError:
        return ("refused",)


@settings(max_examples=500, deadline=None)
@given(_doc)
def test_loads_strict_matches_reference(text: str) -> None:
    raw = text.encode("utf-8", "surrogatepass")
    assert _outcome(loads_strict, raw) == _outcome(loads_strict_reference, raw)


@pytest.mark.parametrize("raw", [
    b'{"a":1,"a":2}', b'{"a":"x:y","a":1}', b'["\\"",{"\\\\":1,"\\\\":2}]', b'{"k":1,"k2":{"k":3}}',
    b'{"a:":1,"b":{"c":2}}', b'{"a":1.0}', b"[1e5]", b"NaN", b"[18446744073709551616]", b'["\\ud800"]',
    b'{"x":"\\u0000"}', b'\xef\xbb\xbf{"a":1}', b"[-0]", b'"\xff"', b" [1] ", b"[1,]",
    b"[" * 64 + b"]" * 64, b"[" * 65 + b"]" * 65, b'{"a":' * 64 + b"1" + b"}" * 64,
    b'{"a":' * 65 + b"1" + b"}" * 65, b"1" * 81, b"[" + b"9" * 80 + b"]",
])
def test_loads_strict_edge_cases_match_reference(raw: bytes) -> None:
    assert _outcome(loads_strict, raw) == _outcome(loads_strict_reference, raw)
    assert _outcome(loads_strict, raw.decode("utf-8", "replace")) == _outcome(loads_strict_reference,
                                                                              raw.decode("utf-8", "replace"))
