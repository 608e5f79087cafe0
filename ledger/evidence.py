"""Equivocation evidence: two validly signed, conflicting messages of one validator for the
same (height, round, step), where step is ``proposal``, ``prevote`` or ``precommit``.

Evidence is self-contained (both signatures are in it) so any peer can check it with
only the offender's public key. It is normalised (the two messages sorted) so the same
offence always has the same ``id``; the state machine counts each id once
(ledger/txtypes/accountability.py). Pure: no clock, no I/O.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pocnet.ledger.block import proposal_signing_bytes, vote_signing_bytes
from pocnet.ledger.encoding import canonical_json, sha256_hex
from pocnet.ledger.keys import is_hex, verify

STEPS = ("proposal", "prevote", "precommit")
MAX_EVIDENCE_PER_BLOCK = 16


class EvidenceInvalid(ValueError):
    """Malformed or unverifiable evidence (the message says why)."""


@dataclass(frozen=True)
class SignedPart:
    block_hash: str | None    # None = nil vote
    signature: str
    pol_round: int = -1       # proposals only

    def to_dict(self, step: str) -> dict[str, Any]:
        d: dict[str, Any] = {"block_hash": self.block_hash, "signature": self.signature}
        if step == "proposal":
            d["pol_round"] = self.pol_round
        return d

    def sort_key(self) -> tuple[str, int, str]:
        return (self.block_hash or "", self.pol_round, self.signature)


@dataclass(frozen=True)
class Evidence:
    validator: str
    height: int
    round: int
    step: str
    a: SignedPart
    b: SignedPart

    def to_dict(self) -> dict[str, Any]:
        return {"validator": self.validator, "height": self.height, "round": self.round, "step": self.step,
                "a": self.a.to_dict(self.step), "b": self.b.to_dict(self.step)}

    @property
    def id(self) -> str:
        """Identity of the offence (not of the signatures): one per (validator, height, round, step)."""
        return sha256_hex(canonical_json({"validator": self.validator, "height": self.height,
                                          "round": self.round, "step": self.step}, checked=False))


def make_evidence(validator: str, height: int, round_: int, step: str, first: SignedPart,
                  second: SignedPart) -> Evidence:
    a, b = sorted((first, second), key=SignedPart.sort_key)
    return Evidence(validator, height, round_, step, a, b)


def _signing_bytes(chain_id: str, ev: Evidence, part: SignedPart) -> bytes:
    if ev.step == "proposal":
        return proposal_signing_bytes(chain_id, ev.height, ev.round, part.pol_round, str(part.block_hash),
                                      ev.validator)
    return vote_signing_bytes(chain_id, ev.step, ev.height, ev.round, part.block_hash, ev.validator)


def verify_evidence(ev: Evidence, chain_id: str) -> None:
    """Raise EvidenceInvalid unless both messages are validly signed by ``ev.validator`` and differ."""
    if ev.step not in STEPS:
        raise EvidenceInvalid(f"unknown step {ev.step!r}")
    if (ev.a.block_hash, ev.a.pol_round) == (ev.b.block_hash, ev.b.pol_round):
        raise EvidenceInvalid("the two messages do not conflict")
    if [ev.a, ev.b] != sorted([ev.a, ev.b], key=SignedPart.sort_key):
        raise EvidenceInvalid("messages not in canonical order")
    for part in (ev.a, ev.b):
        if not verify(ev.validator, _signing_bytes(chain_id, ev, part), part.signature):
            raise EvidenceInvalid("a signature does not verify for the validator")


def _int(d: dict[str, Any], k: str, lo: int) -> int:
    v = d.get(k)
    if not isinstance(v, int) or isinstance(v, bool) or not lo <= v <= 2**62:
        raise EvidenceInvalid(f"{k} must be an integer >= {lo}")
    return v


def _part(d: Any, step: str) -> SignedPart:
    if not isinstance(d, dict) or set(d) != ({"block_hash", "signature", "pol_round"} if step == "proposal"
                                             else {"block_hash", "signature"}):
        raise EvidenceInvalid("malformed signed message")
    bh = d["block_hash"]
    if not ((bh is None and step != "proposal") or is_hex(bh, 32)):
        raise EvidenceInvalid("block_hash must be 64 hex characters (or null for a nil vote)")
    if not is_hex(d["signature"], 64):
        raise EvidenceInvalid("signature must be 128 hex characters")
    pol = _int(d, "pol_round", -1) if step == "proposal" else -1
    return SignedPart(bh, d["signature"], pol)


def parse_evidence(d: Any) -> Evidence:
    """Structure only (signatures are checked by verify_evidence)."""
    if not isinstance(d, dict) or set(d) != {"validator", "height", "round", "step", "a", "b"}:
        raise EvidenceInvalid("evidence must have exactly validator, height, round, step, a, b")
    if not is_hex(d["validator"], 32):
        raise EvidenceInvalid("validator must be a hex public key")
    step = d["step"]
    if step not in STEPS:
        raise EvidenceInvalid(f"step must be one of {STEPS}")
    return Evidence(d["validator"], _int(d, "height", 1), _int(d, "round", 0), step, _part(d["a"], step),
                    _part(d["b"], step))
