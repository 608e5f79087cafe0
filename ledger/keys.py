"""Ed25519 keys. An account address is the hex of its 32-byte public key."""
from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

_RAW = serialization.Encoding.Raw
_RAW_PUB = serialization.PublicFormat.Raw
_RAW_PRIV = serialization.PrivateFormat.Raw


def is_hex(value: str, nbytes: int) -> bool:
    if not isinstance(value, str) or len(value) != 2 * nbytes:
        return False
    try:
        bytes.fromhex(value)
    except ValueError:
        return False
    return value == value.lower()


@dataclass(frozen=True)
class KeyPair:
    private: Ed25519PrivateKey
    address: str  # hex public key

    @classmethod
    def generate(cls) -> "KeyPair":
        return cls.from_seed(os.urandom(32))

    @classmethod
    def from_seed(cls, seed: bytes) -> "KeyPair":
        priv = Ed25519PrivateKey.from_private_bytes(seed)
        return cls(priv, priv.public_key().public_bytes(_RAW, _RAW_PUB).hex())

    @property
    def seed_hex(self) -> str:
        return self.private.private_bytes(_RAW, _RAW_PRIV, serialization.NoEncryption()).hex()

    def sign(self, message: bytes) -> str:
        return self.private.sign(message).hex()

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


def parse_public_key(address: str) -> Ed25519PublicKey:
    """Raise ValueError if ``address`` is not a valid Ed25519 public key in hex."""
    if not is_hex(address, 32):
        raise ValueError("must be 64 lowercase hex characters (an Ed25519 public key)")
    try:
        return Ed25519PublicKey.from_public_bytes(bytes.fromhex(address))
    except ValueError as exc:  # pragma: no cover - all 32-byte strings decode today
        raise ValueError(f"not a valid Ed25519 public key: {exc}") from None


def verify(address: str, message: bytes, signature_hex: str) -> bool:
    try:
        key = parse_public_key(address)
        if not is_hex(signature_hex, 64):
            return False
        key.verify(bytes.fromhex(signature_hex), message)
        return True
    except (ValueError, InvalidSignature):
        return False
