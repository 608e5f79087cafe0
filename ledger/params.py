"""Consensus parameters: one typed, validated object with one table of defaults.

They live in genesis (``"consensus": {...}``), so every peer of a chain runs the
same timeouts and the same block limits. A key absent from genesis takes its
default from :data:`DEFAULTS` — the only default table in the code base (the
engine, the BFT driver, the solo producer, ``cluster up`` and the docs all read
it from here). Unknown keys, non-integers and out-of-range values are refused
with :class:`ParamsError`, which names the key, when the genesis file is loaded:
a typo in genesis stops the peer at startup instead of silently running a default.

Block limits (``max_block_txs``, ``max_block_bytes``) are part of the protocol:
the proposer builds within them and every peer refuses a block over them
(``node/chain.py`` ``verify_block``).
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any

from pocnet.consensus.messages import TimeoutConfig


class ParamsError(ValueError):
    """Invalid consensus parameters; ``key`` names the offending ``consensus.<key>``."""

    def __init__(self, key: str, reason: str) -> None:
        super().__init__(f"genesis consensus.{key}: {reason}")
        self.key = key
        self.reason = reason


# key -> (default, minimum, maximum). Timeouts are ms; the propose timeout must cover
# building, shipping and re-executing a full block on a loaded 2-core machine.
_TABLE: dict[str, tuple[int, int, int]] = {
    "timeout_propose_ms": (3000, 1, 600_000),
    "timeout_prevote_ms": (1000, 1, 600_000),
    "timeout_precommit_ms": (1000, 1, 600_000),
    "timeout_delta_ms": (500, 0, 600_000),
    "block_interval_ms": (100, 0, 600_000),
    "empty_block_interval_ms": (2000, 1, 3_600_000),
    "max_block_txs": (2000, 1, 100_000),
    "max_block_bytes": (8 * 1024 * 1024, 1024, 256 * 1024 * 1024),
    # Economics and accountability (ledger/txtypes/tasks.py, ledger/txtypes/accountability.py):
    "task_fee": (10, 0, 10**12),             # tokens per task tx, escrowed to the provider
    "task_attest_heights": (20, 1, 10**6),   # heights the submitter has to attest or dispute a result
    "task_retention_heights": (1000, 1, 10**9),  # finished tasks are removed from state this much later
    "genesis_bond": (1000, 0, 10**15),       # bond each genesis validator starts with
    "jail_delay": (2, 1, 1000),              # heights from evidence inclusion to jail
    "jail_heights": (20, 1, 10**9),          # jail period before an unjail tx is accepted
    "slash_ppm": (100_000, 0, 1_000_000),    # share of the bond burned per offence (ppm)
    "evidence_max_age": (100, 1, 10**9),     # older evidence (in heights) is refused
    # Validator set by transactions (ledger/txtypes/validators.py):
    "min_bond": (1000, 1, 10**15),           # smallest bond a validator_join may lock
    "unbonding_heights": (20, 1, 10**9),     # heights from leaving the set to the bond's return
    "min_validators": (4, 1, 1000),          # a leave that would drop the set below this is refused
    "max_validators": (64, 1, 1000),         # a join that would grow the set above this is refused
}

DEFAULTS: dict[str, int] = {k: v[0] for k, v in _TABLE.items()}


@dataclass(frozen=True)
class ConsensusParams:
    """Typed view of genesis ``consensus``; construct with :meth:`from_dict` to validate."""

    timeout_propose_ms: int = DEFAULTS["timeout_propose_ms"]
    timeout_prevote_ms: int = DEFAULTS["timeout_prevote_ms"]
    timeout_precommit_ms: int = DEFAULTS["timeout_precommit_ms"]
    timeout_delta_ms: int = DEFAULTS["timeout_delta_ms"]
    block_interval_ms: int = DEFAULTS["block_interval_ms"]
    empty_block_interval_ms: int = DEFAULTS["empty_block_interval_ms"]
    max_block_txs: int = DEFAULTS["max_block_txs"]
    max_block_bytes: int = DEFAULTS["max_block_bytes"]
    task_fee: int = DEFAULTS["task_fee"]
    task_attest_heights: int = DEFAULTS["task_attest_heights"]
    task_retention_heights: int = DEFAULTS["task_retention_heights"]
    genesis_bond: int = DEFAULTS["genesis_bond"]
    jail_delay: int = DEFAULTS["jail_delay"]
    jail_heights: int = DEFAULTS["jail_heights"]
    slash_ppm: int = DEFAULTS["slash_ppm"]
    evidence_max_age: int = DEFAULTS["evidence_max_age"]
    min_bond: int = DEFAULTS["min_bond"]
    unbonding_heights: int = DEFAULTS["unbonding_heights"]
    min_validators: int = DEFAULTS["min_validators"]
    max_validators: int = DEFAULTS["max_validators"]

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            _, lo, hi = _TABLE[f.name]
            if not isinstance(value, int) or isinstance(value, bool):
                raise ParamsError(f.name, f"must be an integer, got {type(value).__name__}")
            if not lo <= value <= hi:
                raise ParamsError(f.name, f"{value} is outside [{lo}, {hi}]")
        if self.genesis_bond < self.min_bond:  # genesis validators are bonded like joined ones
            raise ParamsError("genesis_bond", f"{self.genesis_bond} is below min_bond {self.min_bond}")
        if self.min_validators > self.max_validators:
            raise ParamsError("min_validators", f"{self.min_validators} exceeds max_validators {self.max_validators}")

    @classmethod
    def from_dict(cls, d: Any) -> "ConsensusParams":
        """Validate genesis ``consensus`` (absent keys take :data:`DEFAULTS`)."""
        if d is None:
            return cls()
        if not isinstance(d, dict):
            raise ParamsError("$", "must be a JSON object")
        unknown = sorted(k for k in d if k not in _TABLE)
        if unknown:
            raise ParamsError(unknown[0], f"unknown parameter; known: {', '.join(_TABLE)}")
        return cls(**d)

    def to_dict(self) -> dict[str, int]:
        return asdict(self)

    def timeouts(self) -> TimeoutConfig:
        """The engine's per-step timeouts (one delta for every step)."""
        d = self.timeout_delta_ms
        return TimeoutConfig(propose_ms=self.timeout_propose_ms, propose_delta_ms=d,
                             prevote_ms=self.timeout_prevote_ms, prevote_delta_ms=d,
                             precommit_ms=self.timeout_precommit_ms, precommit_delta_ms=d)
