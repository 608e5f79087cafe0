"""Wire encoding and authentication of consensus messages.

A vote is signed over exactly the bytes of :func:`ledger.block.vote_signing_bytes`,
so a quorum of precommit messages *is* the block's commit certificate. A proposal
is signed over ``{"chain_id","kind":"proposal","height","round","pol_round","block_hash","proposer"}``
and travels with the full block (``block``) or, compact, with the header and the ordered tx
hashes (``cblock``, p2p/compact.py): the signature names only the block hash, so both carry
the same signed proposal.
"""
from __future__ import annotations

from typing import Any

from pocnet.consensus.messages import Proposal, Vote
from pocnet.ledger.block import proposal_signing_bytes as block_proposal_signing_bytes
from pocnet.ledger.block import vote_signing_bytes
from pocnet.ledger.keys import KeyPair, verify


class BadMessage(ValueError):
    """A peer message that is dropped (and counted under ``reason``)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def proposal_signing_bytes(chain_id: str, p: Proposal) -> bytes:
    return block_proposal_signing_bytes(chain_id, p.height, p.round, p.pol_round, p.block_hash, p.proposer)


def sign_vote(key: KeyPair, chain_id: str, v: Vote) -> dict[str, Any]:
    sig = key.sign(vote_signing_bytes(chain_id, v.kind, v.height, v.round, v.block_hash, v.validator))
    return vote_to_wire(v, sig)


def vote_to_wire(v: Vote, signature: str) -> dict[str, Any]:
    return {"t": "vote", "kind": v.kind, "height": v.height, "round": v.round, "block_hash": v.block_hash,
            "validator": v.validator, "signature": signature}


def sign_proposal(key: KeyPair, chain_id: str, p: Proposal, block: dict[str, Any],
                  compact: bool = False) -> dict[str, Any]:
    """The wire proposal; ``block`` is the full block dict, or the compact one if ``compact``."""
    return {"t": "proposal", "height": p.height, "round": p.round, "pol_round": p.pol_round,
            "block_hash": p.block_hash, "proposer": p.proposer,
            "signature": key.sign(proposal_signing_bytes(chain_id, p)),
            ("cblock" if compact else "block"): block}


def _int(d: dict[str, Any], name: str, lo: int = 0) -> int:
    v = d.get(name)
    if not isinstance(v, int) or isinstance(v, bool) or v < lo or v > 2**62:
        raise BadMessage(f"malformed:{name}")
    return v


def _hash_or_none(v: Any, allow_none: bool) -> str | None:
    if v is None and allow_none:
        return None
    if not isinstance(v, str) or len(v) != 64:
        raise BadMessage("malformed:block_hash")
    return v


def parse_vote_fields(d: dict[str, Any], validators: frozenset[str]) -> Vote:
    """The vote a wire message claims to be, *without* checking its signature (cheap: lets a
    receiver drop what it would not keep before paying for verification)."""
    kind = d.get("kind")
    if kind not in ("prevote", "precommit"):
        raise BadMessage("malformed:kind")
    validator = d.get("validator")
    if not isinstance(validator, str) or validator not in validators:
        raise BadMessage("unknown_signer")
    return Vote(kind, _int(d, "height", 1), _int(d, "round"), _hash_or_none(d.get("block_hash"), True), validator)


def verify_vote(d: dict[str, Any], v: Vote, chain_id: str) -> str:
    """Return the signature of wire vote ``d`` (parsed as ``v``) or raise BadMessage."""
    sig = d.get("signature")
    if not isinstance(sig, str) or not verify(v.validator, vote_signing_bytes(
            chain_id, v.kind, v.height, v.round, v.block_hash, v.validator), sig):
        raise BadMessage("bad_signature")
    return sig


def parse_vote(d: dict[str, Any], chain_id: str, validators: frozenset[str]) -> tuple[Vote, str]:
    """Authenticate a wire vote; return (vote, signature) or raise BadMessage."""
    v = parse_vote_fields(d, validators)
    return v, verify_vote(d, v, chain_id)


def parse_proposal(d: dict[str, Any], chain_id: str, validators: frozenset[str]) -> Proposal:
    proposer = d.get("proposer")
    if not isinstance(proposer, str) or proposer not in validators:
        raise BadMessage("unknown_signer")
    pol_round = d.get("pol_round")
    p = Proposal(_int(d, "height", 1), _int(d, "round"), str(_hash_or_none(d.get("block_hash"), False)),
                 pol_round if isinstance(pol_round, int) and not isinstance(pol_round, bool) else -2, proposer)
    if p.pol_round < -1 or p.pol_round >= p.round:
        raise BadMessage("malformed:pol_round")
    sig = d.get("signature")
    if not isinstance(sig, str) or not verify(p.proposer, proposal_signing_bytes(chain_id, p), sig):
        raise BadMessage("bad_signature")
    if isinstance(d.get("block"), dict) == isinstance(d.get("cblock"), dict):
        raise BadMessage("malformed:block")  # exactly one of the full and the compact block
    return p
