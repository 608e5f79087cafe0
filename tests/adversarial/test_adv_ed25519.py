"""Strict Ed25519: one explicit rule set (ledger/keys.py), checked against the
"Taming the many EdDSAs" vectors and an independent pure-Python curve reference.

Finding (issue 17, #3): 11 tokens were spent from the identity-point address with no
private key (R = identity, S = 0 verifies under A = identity).
"""
import json
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from hypothesis import given, settings, strategies as st

from pocnet.ledger.errors import TxRejected
from pocnet.ledger.keys import L, P, KeyPair, parse_public_key, point_encoding_problem, verify_bytes
from pocnet.ledger.tx import compute_tx_hash, parse_tx, sign_tx
from pocnet.node.node import Node
from pocnet.node.setup_home import init_cluster_home

CASES = json.loads((Path(__file__).parent / "data" / "ed25519_speccheck_cases.json").read_text())
IDENTITY = "01" + "00" * 31

# ---------------------------------------------------------------- independent reference
D = (-121665 * pow(121666, P - 2, P)) % P
SQRT_M1 = pow(2, (P - 1) // 4, P)


def _decompress(enc: bytes):
    """Decode a point (accepting non-canonical y, as lax libraries do); None if not on the curve."""
    v = int.from_bytes(enc, "little")
    y, sign = (v & ((1 << 255) - 1)) % P, v >> 255
    u, w = (y * y - 1) % P, (D * y * y + 1) % P
    x = (u * pow(w, 3, P) * pow(u * pow(w, 7, P), (P - 5) // 8, P)) % P
    if (w * x * x - u) % P != 0:
        x = x * SQRT_M1 % P
        if (w * x * x - u) % P != 0:
            return None
    if x & 1 != sign:
        x = (-x) % P
    return (x, y)


def _add(a, b):
    (x1, y1), (x2, y2) = a, b
    t = D * x1 * x2 * y1 * y2 % P
    return ((x1 * y2 + x2 * y1) * pow(1 + t, P - 2, P) % P, (y1 * y2 + x1 * x2) * pow(1 - t, P - 2, P) % P)


def _mul(k, pt):
    acc = (0, 1)
    while k:
        if k & 1:
            acc = _add(acc, pt)
        pt, k = _add(pt, pt), k >> 1
    return acc


def _small_order(enc: bytes) -> bool:
    pt = _decompress(enc)
    return pt is not None and _mul(8, pt) == (0, 1)


def _canonical(enc: bytes) -> bool:
    v = int.from_bytes(enc, "little")
    if (v & ((1 << 255) - 1)) >= P:
        return False
    pt = _decompress(enc)
    return not (pt is not None and pt[0] == 0 and v >> 255)  # x = 0 has no negative


# The rule that refuses each vector (paper table, indices 0-11); None = accepted.
EXPECTED = {0: "small A", 1: "small A", 2: "small R", 3: None, 4: "cofactorless equation",
            5: "cofactorless equation", 6: "S >= L", 7: "S >= L", 8: "R non-canonical",
            9: "R non-canonical", 10: "A non-canonical", 11: "A non-canonical"}


def _reason(case) -> str | None:
    a, sig = bytes.fromhex(case["pub_key"]), bytes.fromhex(case["signature"])
    r, s = sig[:32], int.from_bytes(sig[32:], "little")
    if not _canonical(a):
        return "A non-canonical"
    if _small_order(a):
        return "small A"
    if not _canonical(r):
        return "R non-canonical"
    if _small_order(r):
        return "small R"
    if s >= L:
        return "S >= L"
    return None


def test_vectors_file_is_the_papers_twelve():
    assert len(CASES) == 12


@pytest.mark.parametrize("i", range(12))
def test_speccheck_vector(i):
    case = CASES[i]
    a, msg, sig = (bytes.fromhex(case[k]) for k in ("pub_key", "message", "signature"))
    ok = verify_bytes(a, msg, sig)
    assert ok == (EXPECTED[i] is None)
    pre = _reason(case)  # what the reference says about the encodings alone
    if EXPECTED[i] in (None, "cofactorless equation"):
        assert pre is None
    else:
        assert pre == EXPECTED[i]


def test_small_order_table_matches_reference():
    """The y-table in keys.py is exactly the 8-torsion: every encoding it refuses is of small
    order, and every small-order point found by the reference is refused."""
    torsion = set()
    for i in range(8):  # generate the torsion subgroup from a point of order 8
        torsion.add(_mul(i, _decompress(bytes.fromhex("26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc05"))))
    assert len(torsion) == 8
    for x, y in torsion:
        enc = (y | ((x & 1) << 255)).to_bytes(32, "little")
        assert point_encoding_problem(enc) == "point of small order"
    assert point_encoding_problem(bytes.fromhex(IDENTITY)) == "point of small order"


@settings(max_examples=200, deadline=None)
@given(st.binary(min_size=32, max_size=32))
def test_refusal_rules_agree_with_reference(enc):
    problem = point_encoding_problem(enc)
    if not _canonical(enc):
        assert problem is not None and "non-canonical" in problem
    elif _small_order(enc):
        assert problem == "point of small order"
    else:
        assert problem is None


@settings(max_examples=50, deadline=None)
@given(st.binary(min_size=32, max_size=32), st.binary(max_size=200))
def test_honest_signatures_verify(seed, msg):
    k = KeyPair.from_seed(seed)
    assert verify_bytes(bytes.fromhex(k.address), msg, bytes.fromhex(k.sign(msg)))
    # and S + L (same point equation, non-canonical S) is refused
    sig = bytes.fromhex(k.sign(msg))
    s = int.from_bytes(sig[32:], "little") + L
    if s < 2**256:
        assert not verify_bytes(bytes.fromhex(k.address), msg, sig[:32] + s.to_bytes(32, "little"))


def _forged_identity_tx(chain_id: str) -> dict:
    unsigned = {"chain_id": chain_id, "type": "transfer", "sender": IDENTITY, "nonce": 0,
                "payload": {"to": KeyPair.from_seed(b"\x09" * 32).address, "amount": 11}}
    return dict(unsigned, signature=IDENTITY + "00" * 32)  # R = identity, S = 0


def test_identity_forgery_verifies_under_the_bare_equation():
    """The forgery is real: the lax reference equation [S]B = R + [k]A holds for it."""
    ident = _decompress(bytes.fromhex(IDENTITY))
    assert ident == (0, 1) and _mul(12345, ident) == (0, 1)  # R + kA = identity = [0]B


def test_identity_address_cannot_spend_or_receive(tmp_path):
    with pytest.raises(ValueError):
        parse_public_key(IDENTITY)
    with pytest.raises(TxRejected) as exc:
        parse_tx(_forged_identity_tx("c"), chain_id="c")
    assert exc.value.field == "sender"
    alice = KeyPair.from_seed(b"\x07" * 32)
    init_cluster_home(tmp_path, 1, 29998, [(alice.address, 1_000)], chain_id="ed-test")
    node = Node(tmp_path / "peer0")
    with TestClient(node.create_app()) as c:
        forged = _forged_identity_tx("ed-test")
        r = c.post("/txs", json=forged)
        assert r.status_code == 400 and r.json()["field"] == "sender"
        assert c.get(f"/txs/{compute_tx_hash(forged)}").status_code == 404
        fund = sign_tx(alice, "ed-test", "transfer", 0, {"to": IDENTITY, "amount": 5})
        r = c.post("/txs", json=fund.to_dict())
        assert r.status_code == 400 and r.json()["field"] == "payload.to"
        assert c.get(f"/accounts/{IDENTITY}").status_code == 400
