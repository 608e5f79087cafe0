"""Genesis file: the chain's identity, validators, initial balances and parameters."""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pocnet.ledger.encoding import canonical_json, sha256_hex
from pocnet.ledger.keys import parse_public_key

MAX_AMOUNT = 2**63 - 1
DEFAULT_CHAIN_PREFIX = "pocnet"


@dataclass(frozen=True)
class ValidatorInfo:
    name: str
    address: str      # hex Ed25519 public key: signs votes, proposals and commits
    url: str          # http://127.0.0.1:PORT
    capacity: int = 4  # work units per ms it offers to the task market (PoC input)

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "address": self.address, "url": self.url, "capacity": self.capacity}


@dataclass(frozen=True)
class Genesis:
    chain_id: str
    genesis_time_ms: int
    validators: tuple[ValidatorInfo, ...]
    balances: dict[str, int]
    consensus: dict[str, int] = field(default_factory=dict)
    game_params: dict[str, Any] = field(default_factory=dict)
    poc_weights_sha256: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {"chain_id": self.chain_id, "genesis_time_ms": self.genesis_time_ms,
                "validators": [v.to_dict() for v in self.validators],
                "balances": dict(sorted(self.balances.items())),
                "consensus": self.consensus, "game_params": self.game_params,
                "poc_weights_sha256": self.poc_weights_sha256}

    def derived_chain_id(self, prefix: str = DEFAULT_CHAIN_PREFIX) -> str:
        """``PREFIX-<12 hex>``: the hash of this genesis with an empty chain id. Keys and the
        genesis time make it unique per network, so a tx signed for one default network
        cannot be replayed on another (signatures cover the chain id)."""
        blank = dict(self.to_dict(), chain_id="")
        return f"{prefix}-{sha256_hex(canonical_json(blank))[:12]}"

    @property
    def hash(self) -> str:
        return sha256_hex(canonical_json(self.to_dict()))

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "Genesis":
        vals = tuple(ValidatorInfo(v["name"], v["address"], v["url"], int(v.get("capacity", 4)))
                     for v in d["validators"])
        g = cls(d["chain_id"], int(d["genesis_time_ms"]), vals,
                {k: int(v) for k, v in d.get("balances", {}).items()},
                dict(d.get("consensus", {})), dict(d.get("game_params", {})),
                d.get("poc_weights_sha256", ""))
        g.check()
        return g

    def check(self) -> None:
        if not self.chain_id:
            raise ValueError("genesis: chain_id is empty")
        if not self.validators:
            raise ValueError("genesis: no validators")
        seen = set()
        for v in self.validators:
            parse_public_key(v.address)
            if v.address in seen:
                raise ValueError(f"genesis: duplicate validator {v.address}")
            seen.add(v.address)
        for addr, amount in self.balances.items():
            parse_public_key(addr)
            if not 0 <= amount <= MAX_AMOUNT:
                raise ValueError(f"genesis: balance of {addr} out of range")

    def save(self, path: Path) -> None:
        Path(path).write_text(json.dumps(self.to_dict(), indent=2) + "\n")

    @classmethod
    def load(cls, path: Path) -> "Genesis":
        return cls.from_dict(json.loads(Path(path).read_text()))
