"""Ed25519 keys. An account address is the hex of its 32-byte public key.

Verification follows one explicit rule set, checked here before any library sees the
bytes, so every peer accepts exactly the same signatures whatever library it links
(the differences between libraries are catalogued in "Taming the many EdDSAs",
Chalkias et al., 2020; the vectors are in tests/adversarial/data/):

1. the public key A and the signature's R are *canonical* encodings (y < p, and no sign
   bit on x = 0);
2. neither A nor R is a point of small order (the 8-torsion: y in {0, 1, p-1, ±y8});
3. S < L (the group order) — no malleable scalars;
4. then the cofactorless equation [S]B = R + [H(R,A,M)]A, checked by libsodium (PyNaCl),
   which enforces 1-3 as well.

Rule 2 is what keeps the identity-point address (``01`` + 31 zero bytes) unspendable:
with A = identity, R = identity and S = 0 every message "verifies" under the bare
equation. Addresses are refused by rules 1-2 only (no point decompression), so a
32-byte string that is not on the curve is a valid — unspendable — address.
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

import nacl.exceptions
import nacl.signing

from pocnet import probes

P = 2**255 - 19
L = 2**252 + 27742317777372353535851937790883648493
# y-coordinates of the 8 points of small order (identity, order 2, two of order 4
# share y = 0, four of order 8 share y = ±y8).
_Y8 = 2707385501144840649318225287225658788936804267575313519463743609750303402022
SMALL_ORDER_Y = frozenset({0, 1, P - 1, _Y8, P - _Y8})
_Y_MASK = (1 << 255) - 1


def is_hex(value: str, nbytes: int) -> bool:
    if not isinstance(value, str) or len(value) != 2 * nbytes:
        return False
    try:
        bytes.fromhex(value)
    except ValueError:
        return False
    return value == value.lower()


def point_encoding_problem(enc: bytes) -> str | None:
    """Why a 32-byte point encoding is refused (rules 1-2), or None if it passes."""
    v = int.from_bytes(enc, "little")
    y = v & _Y_MASK
    if y >= P:
        return "non-canonical point encoding (y >= 2^255-19)"
    if y in (1, P - 1) and v >> 255:
        return "non-canonical point encoding (x = 0 with the sign bit set)"
    if y in SMALL_ORDER_Y:
        return "point of small order"
    return None


def scalar_is_canonical(enc: bytes) -> bool:
    """Rule 3: S < L."""
    return int.from_bytes(enc, "little") < L


@dataclass(frozen=True)
class KeyPair:
    private: nacl.signing.SigningKey
    address: str  # hex public key

    @classmethod
    def generate(cls) -> "KeyPair":
        return cls.from_seed(os.urandom(32))

    @classmethod
    def from_seed(cls, seed: bytes) -> "KeyPair":
        priv = nacl.signing.SigningKey(bytes(seed))
        return cls(priv, bytes(priv.verify_key).hex())

    @property
    def seed_hex(self) -> str:
        return bytes(self.private).hex()

    def sign(self, message: bytes) -> str:
        return self.private.sign(message).signature.hex()

    def save(self, path: Path) -> None:
        """Write the key file (mode 0600): ``{"address": ..., "private_key": ...}``."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        data = json.dumps({"address": self.address, "private_key": self.seed_hex}, indent=2)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(data + "\n")

    @classmethod
    def load(cls, path: Path) -> "KeyPair":
        data = json.loads(Path(path).read_text())
        kp = cls.from_seed(bytes.fromhex(data["private_key"]))
        if data.get("address") not in (None, kp.address):
            raise ValueError(f"{path}: address does not match private key")
        return kp


def parse_public_key(address: str) -> bytes:
    """Return the 32 key bytes; raise ValueError unless ``address`` is 64 lowercase hex
    characters encoding a canonical point that is not of small order."""
    if not is_hex(address, 32):
        raise ValueError("must be 64 lowercase hex characters (an Ed25519 public key)")
    raw = bytes.fromhex(address)
    problem = point_encoding_problem(raw)
    if problem:
        raise ValueError(f"not an acceptable Ed25519 public key: {problem}")
    return raw


def verify_bytes(public_key: bytes, message: bytes, signature: bytes) -> bool:
    """Strict verification (rules 1-4 in the module docstring) over raw bytes."""
    if len(public_key) != 32 or len(signature) != 64:
        return False
    if point_encoding_problem(public_key) or point_encoding_problem(signature[:32]):
        return False
    if not scalar_is_canonical(signature[32:]):
        return False
    probes.count("signature_verifications")
    try:
        nacl.signing.VerifyKey(public_key).verify(message, signature)
        return True
    except (nacl.exceptions.BadSignatureError, nacl.exceptions.ValueError, nacl.exceptions.TypeError):
        return False


def verify(address: str, message: bytes, signature_hex: str) -> bool:
    if not is_hex(address, 32) or not is_hex(signature_hex, 64):
        return False
    return verify_bytes(bytes.fromhex(address), message, bytes.fromhex(signature_hex))
