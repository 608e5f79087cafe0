"""ECVRF-EDWARDS25519-SHA512-TAI (RFC 9381, suite 0x03) on libsodium's ed25519 group ops.

Why a VRF: the block proposer publishes ``beta = VRF_sk(alpha)`` with a proof anyone can
check against its public key. For one key and one input there is exactly one valid
output, so the proposer cannot grind it (the next proposer ranking is drawn from it);
withholding the block is its only remaining choice.

The validator's Ed25519 seed is the VRF secret key (RFC 9381 § 5.5 uses RFC 8032 key
expansion), so no new key material is needed. Points are handled as 32-byte RFC 8032
encodings; scalar multiplications and additions go through PyNaCl's bindings of
libsodium (``crypto_scalarmult_ed25519_noclamp``, ``crypto_core_ed25519_add/sub``).
Only the point decoding of try-and-increment (which must accept points outside the
prime-order subgroup before the cofactor is cleared) is done here in integers.

Stricter than the RFC, on purpose: libsodium's scalar multiplication refuses points
that are not in the prime-order subgroup or have small order, so a public key or a
proof ``Gamma`` with a torsion component is refused (honest keys and proofs never
have one; accepting them would allow several encodings of one output).
"""
from __future__ import annotations

import hashlib

from nacl import bindings as _na
from nacl.exceptions import RuntimeError as _NaclRuntimeError

SUITE = b"\x03"
PROOF_LEN = 80          # Gamma (32) || c (16) || s (32)
OUTPUT_LEN = 64         # beta, SHA-512
_P = 2**255 - 19
_Q = 2**252 + 27742317777372353535851937790883648493   # order of the prime subgroup
_D = (-121665 * pow(121666, _P - 2, _P)) % _P
_SQRT_M1 = pow(2, (_P - 1) // 4, _P)
_CLEN = 16


class VrfError(ValueError):
    """A key, input or proof that cannot be used (the message says which)."""


def _sha512(*parts: bytes) -> bytes:
    return hashlib.sha512(b"".join(parts)).digest()


def _scalar(n: int) -> bytes:
    return n.to_bytes(32, "little")


def _is_point(enc: bytes) -> bool:
    """RFC 8032 § 5.1.3 decoding succeeds (y < p, x exists, no -0): any curve point."""
    if len(enc) != 32:
        return False
    y = int.from_bytes(enc, "little")
    sign = y >> 255
    y &= (1 << 255) - 1
    if y >= _P:
        return False
    u = (y * y - 1) % _P
    v = (_D * y * y + 1) % _P
    x = (u * pow(v, 3, _P) * pow(u * pow(v, 7, _P), (_P - 5) // 8, _P)) % _P
    vx2 = (v * x * x) % _P
    if vx2 != u:
        if vx2 != (-u) % _P:
            return False
        x = (x * _SQRT_M1) % _P
    return not (x == 0 and sign == 1)


def _mul(n: int, point: bytes) -> bytes:
    """n·P for P in the prime-order subgroup (libsodium refuses any other P)."""
    try:
        return _na.crypto_scalarmult_ed25519_noclamp(_scalar(n % _Q), point)
    except _NaclRuntimeError:
        raise VrfError("point is not in the prime-order subgroup, or the product is the identity") from None


def _mul_base(n: int) -> bytes:
    try:
        return _na.crypto_scalarmult_ed25519_base_noclamp(_scalar(n % _Q))
    except _NaclRuntimeError:
        raise VrfError("zero scalar") from None


def _times_cofactor(point: bytes) -> bytes:
    """8·P by three doublings (add accepts points outside the prime-order subgroup)."""
    for _ in range(3):
        point = _na.crypto_core_ed25519_add(point, point)
    return point


def _expand(secret_key: bytes) -> tuple[int, bytes, bytes]:
    """(x, Y, nonce prefix) from a 32-byte seed, as RFC 8032 § 5.1.5."""
    if len(secret_key) != 32:
        raise VrfError("secret key must be 32 bytes")
    h = _sha512(secret_key)
    a = bytearray(h[:32])
    a[0] &= 248
    a[31] &= 127
    a[31] |= 64
    x = int.from_bytes(a, "little")
    return x, _mul_base(x), h[32:]


def public_key(secret_key: bytes) -> bytes:
    """The VRF public key Y = x·B (identical to the Ed25519 public key of the seed)."""
    return _expand(secret_key)[1]


def encode_to_curve(pk: bytes, alpha: bytes) -> bytes:
    """Try-and-increment (RFC 9381 § 5.4.1.1), salt = public key; returns 8·H."""
    for ctr in range(256):
        cand = _sha512(SUITE, b"\x01", pk, alpha, bytes([ctr]), b"\x00")[:32]
        if _is_point(cand):
            return _times_cofactor(cand)
    raise VrfError("encode_to_curve found no point")  # probability 2^-256


def _challenge(*points: bytes) -> int:
    return int.from_bytes(_sha512(SUITE, b"\x02", *points, b"\x00")[:_CLEN], "little")


def _check_public_key(pk: bytes) -> None:
    if len(pk) != 32 or not _is_point(pk):
        raise VrfError("public key is not an encoded curve point")
    if not _na.crypto_core_ed25519_is_valid_point(pk):
        raise VrfError("public key has small order or is outside the prime-order subgroup")


def prove(secret_key: bytes, alpha: bytes) -> bytes:
    """pi = Gamma || c || s (80 bytes) for input ``alpha`` (RFC 9381 § 5.1)."""
    x, pk, prefix = _expand(secret_key)
    h = encode_to_curve(pk, alpha)
    gamma = _mul(x, h)
    k = int.from_bytes(_sha512(prefix, h), "little") % _Q
    c = _challenge(pk, h, gamma, _mul_base(k), _mul(k, h))
    s = (k + c * x) % _Q
    return gamma + c.to_bytes(_CLEN, "little") + _scalar(s)


def proof_to_hash(pi: bytes) -> bytes:
    """beta (64 bytes) of a proof; only meaningful once ``verify`` accepted it."""
    if len(pi) != PROOF_LEN:
        raise VrfError(f"proof must be {PROOF_LEN} bytes")
    gamma = pi[:32]
    if not _is_point(gamma):
        raise VrfError("proof Gamma is not an encoded curve point")
    return _sha512(SUITE, b"\x03", _times_cofactor(gamma), b"\x00")


def verify(pk: bytes, alpha: bytes, pi: bytes) -> bytes:
    """Return beta if ``pi`` is a valid proof for (pk, alpha); raise VrfError otherwise."""
    _check_public_key(pk)
    if len(pi) != PROOF_LEN:
        raise VrfError(f"proof must be {PROOF_LEN} bytes")
    gamma = pi[:32]
    c = int.from_bytes(pi[32:48], "little")
    s = int.from_bytes(pi[48:], "little")
    if s >= _Q:
        raise VrfError("proof scalar s is not reduced")
    if not _is_point(gamma):
        raise VrfError("proof Gamma is not an encoded curve point")
    h = encode_to_curve(pk, alpha)
    try:
        u = _na.crypto_core_ed25519_sub(_mul_base(s), _mul(c, pk))
        v = _na.crypto_core_ed25519_sub(_mul(s, h), _mul(c, gamma))
    except (VrfError, _NaclRuntimeError):
        raise VrfError("proof does not verify") from None
    if _challenge(pk, h, gamma, u, v) != c:
        raise VrfError("proof does not verify")
    return proof_to_hash(pi)


def verify_hex(pk_hex: str, alpha: bytes, pi_hex: str) -> str:
    """Hex wrapper for headers: beta hex, or VrfError (malformed hex included)."""
    try:
        pk, pi = bytes.fromhex(pk_hex), bytes.fromhex(pi_hex)
    except (ValueError, TypeError):
        raise VrfError("public key or proof is not hex") from None
    return verify(pk, alpha, pi).hex()
