"""Genesis file: the chain's identity, validators, initial balances and parameters."""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

from pocnet.ledger.encoding import canonical_json, sha256_hex
from pocnet.ledger.keys import parse_public_key
from pocnet.ledger.params import ConsensusParams, ParamsError

PROTOCOL_VERSION = 2  # version of the first block of a new chain (ledger/versions.py); 2: bucket-tree state root

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
    version: int = PROTOCOL_VERSION
    # upgrade schedule: ((height, version), ...) ascending; blocks from `height` on carry `version`
    upgrades: tuple[tuple[int, int], ...] = ()
    # bandwidth market quanta (ledger/txtypes/market.py); serialised only when set, so older genesis
    # files keep their hash
    market: dict[str, int] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        d = {"chain_id": self.chain_id, "genesis_time_ms": self.genesis_time_ms,
             "validators": [v.to_dict() for v in self.validators],
             "balances": dict(sorted(self.balances.items())),
             "consensus": self.consensus, "game_params": self.game_params,
             "poc_weights_sha256": self.poc_weights_sha256, "version": self.version}
        if self.upgrades:
            d["upgrades"] = [[h, v] for h, v in self.upgrades]
        if self.market:
            d["market"] = dict(sorted(self.market.items()))
        return d

    @cached_property
    def params(self) -> ConsensusParams:
        """The validated consensus parameters (absent keys take the defaults)."""
        return ConsensusParams.from_dict(self.consensus)

    def version_at(self, height: int) -> int:
        """Protocol version blocks at ``height`` must carry (genesis version, then upgrades)."""
        v = self.version
        for h, ver in self.upgrades:
            if height >= h:
                v = ver
        return v

    def derived_chain_id(self, prefix: str = DEFAULT_CHAIN_PREFIX) -> str:
        """``PREFIX-<12 hex>``: the hash of this genesis with an empty chain id. Keys and the
        genesis time make it unique per network, so a tx signed for one default network
        cannot be replayed on another (signatures cover the chain id)."""
        blank = dict(self.to_dict(), chain_id="")
        return f"{prefix}-{sha256_hex(canonical_json(blank))[:12]}"

    @property
    def hash(self) -> str:
        return sha256_hex(canonical_json(self.to_dict()))

    @property
    def initial_beacon(self) -> str:
        """beacon_0 (hex, 64 bytes): SHA-512 of the canonical genesis file (ledger/beacon.py)."""
        return hashlib.sha512(canonical_json(self.to_dict())).hexdigest()

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "Genesis":
        vals = tuple(ValidatorInfo(v["name"], v["address"], v["url"], int(v.get("capacity", 4)))
                     for v in d["validators"])
        version = d.get("version", PROTOCOL_VERSION)
        if not isinstance(version, int) or isinstance(version, bool):
            raise ValueError(f"genesis: version must be an integer, got {version!r}")
        try:
            upgrades = tuple((int(h), int(v)) for h, v in d.get("upgrades", []))
        except (TypeError, ValueError):
            raise ValueError("genesis: upgrades must be a list of [height, version] integer pairs") from None
        market = d.get("market", {})
        if not isinstance(market, dict):
            raise ValueError("genesis: market must be a JSON object")
        consensus = d.get("consensus", {})
        if not isinstance(consensus, dict):
            raise ValueError("genesis: consensus must be a JSON object")
        g = cls(d["chain_id"], int(d["genesis_time_ms"]), vals,
                {k: int(v) for k, v in d.get("balances", {}).items()},
                dict(consensus), dict(d.get("game_params", {})),
                d.get("poc_weights_sha256", ""), version, upgrades, dict(market))
        g.check()
        return g

    def check(self) -> None:
        if not self.chain_id:
            raise ValueError("genesis: chain_id is empty")
        if not self.validators:
            raise ValueError("genesis: no validators")
        from pocnet.ledger.txtypes.market import params_from_genesis  # lazy: txtypes import this module
        params_from_genesis(self.market)
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
        try:
            self.params  # noqa: B018  (validates genesis consensus)
        except ParamsError as exc:
            raise ValueError(str(exc)) from None
        if self.version < 1:
            raise ValueError(f"genesis: version must be >= 1, got {self.version}")
        last_h, last_v = 0, self.version
        for up_h, up_v in self.upgrades:
            if up_h <= last_h or up_v <= last_v:
                raise ValueError(f"genesis: upgrades must raise the version at increasing heights > 0, "
                                 f"got [{up_h}, {up_v}] after [{last_h}, {last_v}]")
            last_h, last_v = up_h, up_v

    def save(self, path: Path) -> None:
        Path(path).write_text(json.dumps(self.to_dict(), indent=2) + "\n")

    @classmethod
    def load(cls, path: Path) -> "Genesis":
        return cls.from_dict(json.loads(Path(path).read_text()))
