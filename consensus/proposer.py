"""Proposer selection interface: proposer(h, r) = ranking_h[r mod n].

The node computes ranking_h from committed state (prev_hash, later proof-of-
contribution inputs) and injects `lambda h, r: proposer_for(ranking(h), r)` into
the engine, so the engine never sees ledger or model types.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Protocol, Sequence


@dataclass(frozen=True)
class SelectionContext:
    """Inputs of the ranking at one height; all from state committed before it.

    `poc_inputs` is the hook for the proof-of-contribution selector (committed task
    queue, provider resource state, commit-certificate seed, ...); selectors that do
    not need it ignore it.
    """

    prev_hash: str
    validators: tuple[str, ...]
    poc_inputs: object | None = None
    seed: str = ""  # the head's VRF beacon (ledger/beacon.py); selectors fall back on prev_hash

    @property
    def random_seed(self) -> str:
        return self.seed or self.prev_hash


class ProposerSelector(Protocol):
    def ranking(self, height: int, ctx: SelectionContext) -> tuple[str, ...]:
        """A permutation of ctx.validators; every honest peer must return the same one."""
        ...


def proposer_for(ranking: Sequence[str], round: int) -> str:
    """ranking[round mod n]: every validator gets a turn within n rounds."""
    if not ranking:
        raise ValueError("empty ranking")
    if round < 0:
        raise ValueError("negative round")
    return ranking[round % len(ranking)]


def hash_order_key(prev_hash: str, validator_id: str) -> str:
    """SHA-256(prev_hash ‖ validator_id) as hex; also the PoC tie-breaker (docs/architecture.md)."""
    return hashlib.sha256(prev_hash.encode("utf-8") + validator_id.encode("utf-8")).hexdigest()


class HashOrderSelector:
    """Placeholder until PoC: validators sorted by SHA-256(prev_hash ‖ id).

    Deterministic and different at every height, but predictable one block ahead
    (anyone can compute it from prev_hash) — PoC replaces it.
    """

    def ranking(self, height: int, ctx: SelectionContext) -> tuple[str, ...]:
        if len(set(ctx.validators)) != len(ctx.validators):
            raise ValueError("duplicate validator ids")
        return tuple(sorted(ctx.validators, key=lambda v: (hash_order_key(ctx.random_seed, v), v)))
