import pytest
from hypothesis import given, strategies as st

from pocnet.ledger.encoding import EncodingError, canonical_json, loads_strict
from pocnet.ledger.merkle import merkle_root

json_values = st.recursive(
    st.none() | st.booleans() | st.integers(min_value=-2**63, max_value=2**63) | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner, max_size=4),
    max_leaves=20)


def test_canonical_json_sorts_keys_and_strips_whitespace():
    assert canonical_json({"b": 1, "a": [1, {"d": None, "c": "é"}]}) == '{"a":[1,{"c":"é","d":null}],"b":1}'.encode()


def test_floats_rejected_with_path():
    with pytest.raises(EncodingError) as e:
        canonical_json({"payload": {"amount": 1.5}})
    assert e.value.path == "$.payload.amount"


@pytest.mark.parametrize("raw", [b'{"a": 1.0}', b'{"a": [1e3]}', b'{"a": NaN}', b'{"a": Infinity}'])
def test_loads_strict_refuses_floats(raw):
    with pytest.raises(EncodingError, match="float"):
        loads_strict(raw)


def test_loads_strict_refuses_malformed():
    with pytest.raises(EncodingError, match="malformed"):
        loads_strict(b'{"a": ')


@given(json_values)
def test_canonical_roundtrip_is_stable(value):
    enc = canonical_json(value)
    assert canonical_json(loads_strict(enc)) == enc


def test_merkle_root_known_values():
    import hashlib
    a, b, c = ("11" * 32), ("22" * 32), ("33" * 32)
    la = hashlib.sha256(b"\x00" + bytes.fromhex(a)).digest()
    lb = hashlib.sha256(b"\x00" + bytes.fromhex(b)).digest()
    lc = hashlib.sha256(b"\x00" + bytes.fromhex(c)).digest()
    assert merkle_root([]) == hashlib.sha256(b"").hexdigest()
    assert merkle_root([a]) == la.hex()
    ab = hashlib.sha256(b"\x01" + la + lb).digest()
    assert merkle_root([a, b]) == ab.hex()
    assert merkle_root([a, b, c]) == hashlib.sha256(b"\x01" + ab + lc).hexdigest()
    assert merkle_root([a, b, c]) != merkle_root([a, b, c, c])
