"""Block, header, vote and commit-certificate types and their signing bytes."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from pocnet.ledger.encoding import canonical_json, sha256_hex
from pocnet.ledger.keys import KeyPair, verify
from pocnet.ledger.tx import Tx, tx_from_trusted_dict

GENESIS_PREV_HASH = "0" * 64
HEADER_FIELDS = ("chain_id", "height", "round", "prev_hash", "timestamp_ms", "proposer", "tx_root",
                 "state_root", "poc_digest", "version", "beacon", "beacon_proof", "evidence_root")


@dataclass(frozen=True)
class Header:
    chain_id: str
    height: int
    round: int
    prev_hash: str
    timestamp_ms: int
    proposer: str
    tx_root: str
    state_root: str
    poc_digest: str
    version: int  # protocol version: selects the state-transition rules (ledger/versions.py)
    beacon: str = ""        # hex VRF output (64 bytes) of the proposer over the previous beacon
    beacon_proof: str = ""  # hex ECVRF proof (80 bytes), ledger/beacon.py
    evidence_root: str = ""  # Merkle root of the block's evidence (evidence_root())

    def to_dict(self) -> dict[str, Any]:
        return {"chain_id": self.chain_id, "height": self.height, "round": self.round,
                "prev_hash": self.prev_hash, "timestamp_ms": self.timestamp_ms,
                "proposer": self.proposer, "tx_root": self.tx_root,
                "state_root": self.state_root, "poc_digest": self.poc_digest,
                "version": self.version, "beacon": self.beacon, "beacon_proof": self.beacon_proof,
                "evidence_root": self.evidence_root}

    @property
    def hash(self) -> str:
        return sha256_hex(canonical_json(self.to_dict(), checked=False))

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "Header":
        return cls(**{k: d[k] for k in HEADER_FIELDS})


def vote_signing_bytes(chain_id: str, kind: str, height: int, round_: int,
                       block_hash: str | None, validator: str) -> bytes:
    """What a validator signs for a prevote/precommit (block_hash None = nil)."""
    return canonical_json({"chain_id": chain_id, "kind": kind, "height": height, "round": round_,
                           "block_hash": block_hash, "validator": validator}, checked=False)


def proposal_signing_bytes(chain_id: str, height: int, round_: int, pol_round: int, block_hash: str,
                           proposer: str) -> bytes:
    """What a proposer signs for ⟨PROPOSAL, h, r, block, pol_round⟩."""
    return canonical_json({"chain_id": chain_id, "kind": "proposal", "height": height, "round": round_,
                           "pol_round": pol_round, "block_hash": block_hash, "proposer": proposer},
                          checked=False)


@dataclass(frozen=True)
class CommitSig:
    validator: str
    signature: str

    def to_dict(self) -> dict[str, str]:
        return {"validator": self.validator, "signature": self.signature}


@dataclass(frozen=True)
class Commit:
    """Commit certificate: 2f+1 precommits for ``block_hash`` at (height, round)."""
    height: int
    round: int
    block_hash: str
    signatures: tuple[CommitSig, ...]

    def to_dict(self) -> dict[str, Any]:
        return {"height": self.height, "round": self.round, "block_hash": self.block_hash,
                "signatures": [s.to_dict() for s in self.signatures]}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "Commit":
        return cls(d["height"], d["round"], d["block_hash"],
                   tuple(CommitSig(s["validator"], s["signature"]) for s in d["signatures"]))

    def verify(self, chain_id: str, validators: set[str], quorum: int) -> str | None:
        """Return None if valid, else the reason it is not."""
        seen: set[str] = set()
        for sig in self.signatures:
            if sig.validator not in validators:
                return f"signature from unknown validator {sig.validator[:12]}"
            if sig.validator in seen:
                return "duplicate validator signature"
            msg = vote_signing_bytes(chain_id, "precommit", self.height, self.round,
                                     self.block_hash, sig.validator)
            if not verify(sig.validator, msg, sig.signature):
                return f"bad precommit signature from {sig.validator[:12]}"
            seen.add(sig.validator)
        if len(seen) < quorum:
            return f"only {len(seen)} precommits, quorum is {quorum}"
        return None


def sign_precommit(key: KeyPair, chain_id: str, height: int, round_: int, block_hash: str) -> CommitSig:
    return CommitSig(key.address, key.sign(vote_signing_bytes(chain_id, "precommit", height, round_,
                                                               block_hash, key.address)))


def evidence_hash(ev: Any) -> str:
    return sha256_hex(canonical_json(ev.to_dict(), checked=False))


def evidence_root(evidence: Any) -> str:
    """Merkle root (ledger/merkle.py) over the SHA-256 of each evidence's canonical JSON."""
    from pocnet.ledger.merkle import merkle_root
    return merkle_root([evidence_hash(e) for e in evidence])


@dataclass(frozen=True)
class Block:
    header: Header
    txs: tuple[Tx, ...]
    commit: Commit | None = field(default=None, compare=False)
    evidence: tuple[Any, ...] = ()   # ledger.evidence.Evidence

    @property
    def hash(self) -> str:
        return self.header.hash

    @property
    def height(self) -> int:
        return self.header.height

    def to_dict(self) -> dict[str, Any]:
        return {"hash": self.hash, "header": self.header.to_dict(),
                "txs": [t.to_dict() for t in self.txs],
                "evidence": [e.to_dict() for e in self.evidence],
                "commit": self.commit.to_dict() if self.commit else None}

    @classmethod
    def from_trusted_dict(cls, d: dict[str, Any]) -> "Block":
        from pocnet.ledger.evidence import parse_evidence
        return cls(Header.from_dict(d["header"]), tuple(tx_from_trusted_dict(t) for t in d["txs"]),
                   Commit.from_dict(d["commit"]) if d.get("commit") else None,
                   tuple(parse_evidence(e) for e in d.get("evidence", ())))

    def with_commit(self, commit: Commit) -> "Block":
        return Block(self.header, self.txs, commit, self.evidence)
