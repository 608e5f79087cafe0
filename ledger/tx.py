"""Signed transactions: ``{chain_id, type, sender, nonce, payload, signature}``.

Signing bytes are the canonical JSON of the object without ``signature``;
``tx_hash`` is SHA-256 of the canonical JSON of the full signed object.
"""
from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any

from pocnet.ledger.encoding import EncodingError, canonical_json, check_canonical_value, sha256_hex
from pocnet.ledger.errors import TxRejected
from pocnet.ledger.keys import KeyPair, is_hex, parse_public_key, verify

TX_FIELDS = ("chain_id", "type", "sender", "nonce", "payload", "signature")

# Hashes of txs whose signature this process already verified. The hash covers the
# signature and the signed bytes, so a hit means the same check would pass again:
# a tx seen through the API, gossip and a proposal is verified once per peer.
_VERIFIED: "OrderedDict[str, None]" = OrderedDict()
_VERIFIED_MAX = 200_000


def _remember_verified(tx_hash: str) -> None:
    _VERIFIED[tx_hash] = None
    if len(_VERIFIED) > _VERIFIED_MAX:
        _VERIFIED.popitem(last=False)
MAX_NONCE = 2**63 - 1


@dataclass(frozen=True)
class Tx:
    chain_id: str
    type: str
    sender: str
    nonce: int
    payload: dict[str, Any]
    signature: str
    hash: str = field(default="", compare=False)
    # len(canonical_json(to_dict())) when the encoding was at hand (hashing encodes exactly those
    # bytes); 0 = not known. What ``tx_size`` counts against max_block_bytes, without re-encoding
    # at admission, every mempool re-check, proposal building and block validation.
    size: int = field(default=0, compare=False, repr=False)

    def unsigned_dict(self) -> dict[str, Any]:
        return {"chain_id": self.chain_id, "type": self.type, "sender": self.sender,
                "nonce": self.nonce, "payload": self.payload}

    def to_dict(self) -> dict[str, Any]:
        d = self.unsigned_dict()
        d["signature"] = self.signature
        return d

    def signing_bytes(self) -> bytes:
        return canonical_json(self.unsigned_dict(), checked=False)

    def verify_signature(self) -> bool:
        return verify(self.sender, self.signing_bytes(), self.signature)


def compute_tx_hash(tx_dict: dict[str, Any]) -> str:
    return sha256_hex(canonical_json(tx_dict, checked=False))


def _hash_and_size(tx_dict: dict[str, Any]) -> tuple[str, int]:
    """(tx hash, encoded size) from one canonical encoding of the full signed object."""
    enc = canonical_json(tx_dict, checked=False)
    return sha256_hex(enc), len(enc)


def sign_tx(key: KeyPair, chain_id: str, tx_type: str, nonce: int, payload: dict[str, Any]) -> Tx:
    """Build and sign a transaction with ``key`` as sender."""
    check_canonical_value(payload, "payload")
    unsigned = {"chain_id": chain_id, "type": tx_type, "sender": key.address,
                "nonce": nonce, "payload": payload}
    sig = key.sign(canonical_json(unsigned, checked=False))
    d = dict(unsigned, signature=sig)
    return Tx(chain_id, tx_type, key.address, nonce, payload, sig, *_hash_and_size(d))


def parse_tx(obj: Any, *, chain_id: str | None = None, check_signature: bool = True) -> Tx:
    """Structurally validate a decoded JSON object and turn it into a Tx.

    Checks field set and types, floats anywhere, sender key, chain id and signature.
    Payload semantics are checked by the tx type's handler, state by the state machine.
    """
    if not isinstance(obj, dict):
        raise TxRejected("$", "transaction must be a JSON object")
    missing = [k for k in TX_FIELDS if k not in obj]
    if missing:
        raise TxRejected(missing[0], "field is required")
    extra = sorted(k for k in obj if k not in TX_FIELDS)
    if extra:
        raise TxRejected(extra[0], "unknown field")
    try:
        check_canonical_value(obj)
    except EncodingError as exc:
        raise TxRejected(exc.path.removeprefix("$."), exc.reason) from None
    if not isinstance(obj["chain_id"], str) or not obj["chain_id"]:
        raise TxRejected("chain_id", "must be a non-empty string")
    if chain_id is not None and obj["chain_id"] != chain_id:
        raise TxRejected("chain_id", f"wrong chain: expected {chain_id!r}")
    if not isinstance(obj["type"], str) or not obj["type"]:
        raise TxRejected("type", "must be a non-empty string")
    if not isinstance(obj["sender"], str):
        raise TxRejected("sender", "must be a string")
    try:
        parse_public_key(obj["sender"])
    except ValueError as exc:
        raise TxRejected("sender", str(exc)) from None
    nonce = obj["nonce"]
    if not isinstance(nonce, int) or isinstance(nonce, bool) or not 0 <= nonce <= MAX_NONCE:
        raise TxRejected("nonce", "must be an integer in [0, 2^63-1]")
    if not isinstance(obj["payload"], dict):
        raise TxRejected("payload", "must be a JSON object")
    if not isinstance(obj["signature"], str) or not is_hex(obj["signature"], 64):
        raise TxRejected("signature", "must be 128 lowercase hex characters")
    # obj has exactly TX_FIELDS (checked above), so its encoding is that of tx.to_dict()
    tx = Tx(obj["chain_id"], obj["type"], obj["sender"], nonce, obj["payload"], obj["signature"],
            *_hash_and_size(obj))
    if check_signature:
        verify_tx_signature(tx)
    return tx


def verify_tx_signature(tx: Tx) -> None:
    """Raise TxRejected unless the signature verifies (each distinct tx checked once per process)."""
    if tx.hash in _VERIFIED:
        return
    if not tx.verify_signature():
        raise TxRejected("signature", "Ed25519 signature does not verify for sender over the signing bytes")
    _remember_verified(tx.hash)


def tx_from_trusted_dict(obj: dict[str, Any]) -> Tx:
    """Rebuild a Tx from storage (already validated when it was committed)."""
    return Tx(obj["chain_id"], obj["type"], obj["sender"], obj["nonce"], obj["payload"],
              obj["signature"], compute_tx_hash(obj))  # size left unknown: obj's fields are not checked
