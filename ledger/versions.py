"""Protocol versions: which state-transition rules apply to a block.

Every block header carries ``version``; genesis names the version of the first
block and, optionally, an upgrade schedule (``"upgrades": [[height, version], ...]``:
from that height on, blocks carry that version). A peer selects the rules for a
height from this registry — one entry per version, as py-evm selects a fork's VM
by block number — and refuses a block whose version differs from the schedule or
that it does not know (it halts at an upgrade it has no rules for instead of
forking off).

A new version registers a new :class:`ProtocolRules` (usually the previous one
with a handler or hook replaced); old entries stay, so a peer can replay history.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pocnet.ledger.state import State, StateView
    from pocnet.ledger.state_machine import BlockContext
    from pocnet.ledger.tx import Tx


class UnknownVersion(ValueError):
    """A block or genesis names a protocol version this software has no rules for."""

    def __init__(self, version: int) -> None:
        super().__init__(f"unknown protocol version {version}; this pocnet knows "
                         f"{', '.join(map(str, supported_versions())) or 'none'}")
        self.version = version


@dataclass(frozen=True)
class ProtocolRules:
    """The state-transition functions of one protocol version."""

    version: int
    summary: str
    apply_block: Callable[["State", "Sequence[Tx]", "BlockContext"], "StateView"]
    select_txs: Callable[..., Any]
    # how the header's state_root commits to state: "flat" (version 1: SHA-256 over every
    # leaf in key order, a full re-sort per block) or "bucket-tree" (version 2 on:
    # ledger/commitment.py, incremental, with proofs)
    state_commitment: str = "flat"


_REGISTRY: dict[int, ProtocolRules] = {}


def register_version(rules: ProtocolRules) -> ProtocolRules:
    if rules.version in _REGISTRY and _REGISTRY[rules.version] != rules:
        raise ValueError(f"protocol version {rules.version} registered twice")
    _REGISTRY[rules.version] = rules
    return rules


def _load() -> None:
    import pocnet.ledger.state_machine  # noqa: F401  (registers versions 1 and 2)


def rules_for(version: int) -> ProtocolRules:
    _load()
    try:
        return _REGISTRY[version]
    except KeyError:
        raise UnknownVersion(version) from None


def supported_versions() -> list[int]:
    _load()
    return sorted(_REGISTRY)


def is_supported(version: int) -> bool:
    _load()
    return version in _REGISTRY
