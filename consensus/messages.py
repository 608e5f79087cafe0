"""Consensus messages, timeouts and the actions the engine asks its host to perform.

Everything here is a frozen dataclass of plain values so that the engine stays a
pure function of the event sequence: the node (or the simulator) owns signing,
transport, clocks and block storage, and translates these objects to and from
the wire.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Union

PROPOSE: Literal["propose"] = "propose"
PREVOTE: Literal["prevote"] = "prevote"
PRECOMMIT: Literal["precommit"] = "precommit"

VoteKind = Literal["prevote", "precommit"]
TimeoutKind = Literal["propose", "prevote", "precommit"]
VOTE_KINDS: tuple[str, ...] = (PREVOTE, PRECOMMIT)
TIMEOUT_KINDS: tuple[str, ...] = (PROPOSE, PREVOTE, PRECOMMIT)


@dataclass(frozen=True)
class Proposal:
    """⟨PROPOSAL, h, r, v, vr⟩: `block_hash` identifies the value, `pol_round` is vr (-1 = none)."""

    height: int
    round: int
    block_hash: str
    pol_round: int
    proposer: str


@dataclass(frozen=True)
class Vote:
    """⟨PREVOTE|PRECOMMIT, h, r, id(v)⟩ from one validator; `block_hash=None` is a nil vote."""

    kind: VoteKind
    height: int
    round: int
    block_hash: str | None
    validator: str


@dataclass(frozen=True)
class Timeout:
    """A timer the host must fire back via `Engine.on_timeout` after `duration_ms`."""

    kind: TimeoutKind
    height: int
    round: int
    duration_ms: int


@dataclass(frozen=True)
class TimeoutConfig:
    """Per-step timeouts growing linearly with the round (base + delta × round).

    Linear growth is what gives liveness under an unknown message delay bound:
    after GST some round's timeouts exceed the real delay. No defaults here: a chain's
    values come from its genesis (``pocnet.ledger.params.ConsensusParams.timeouts()``,
    the one default table).
    """

    propose_ms: int
    propose_delta_ms: int
    prevote_ms: int
    prevote_delta_ms: int
    precommit_ms: int
    precommit_delta_ms: int

    def duration(self, kind: str, round: int) -> int:
        if kind == PROPOSE:
            return self.propose_ms + self.propose_delta_ms * round
        if kind == PREVOTE:
            return self.prevote_ms + self.prevote_delta_ms * round
        if kind == PRECOMMIT:
            return self.precommit_ms + self.precommit_delta_ms * round
        raise ValueError(f"unknown timeout kind {kind!r}")


# --------------------------------------------------------------------------- actions


@dataclass(frozen=True)
class RequestProposal:
    """This engine is proposer of (height, round) and holds no validValue: the node
    must build a block and answer with `Engine.set_proposal_value`."""

    height: int
    round: int


@dataclass(frozen=True)
class BroadcastProposal:
    """Sign and gossip this proposal (the engine has already processed it locally)."""

    proposal: Proposal


@dataclass(frozen=True)
class BroadcastVote:
    """Sign and gossip this vote (the engine has already counted it locally)."""

    vote: Vote


@dataclass(frozen=True)
class ScheduleTimeout:
    """Start a timer; when it expires call `Engine.on_timeout(timeout)`."""

    timeout: Timeout


@dataclass(frozen=True)
class Decide:
    """Value decided at `height`; `precommits` (≥ quorum, sorted by validator) is the
    commit certificate. The node applies the block, then calls `Engine.advance_to`."""

    height: int
    round: int
    block_hash: str
    precommits: tuple[Vote, ...]


@dataclass(frozen=True)
class NeedBlock:
    """A quorum of precommits names a block this engine has never seen as a valid
    proposal: fetch it from peers, validate it and call `Engine.on_block_available`.
    Emitted at most once per (height, block_hash). Safe to ignore when the host does
    block sync by other means."""

    height: int
    block_hash: str


Action = Union[RequestProposal, BroadcastProposal, BroadcastVote, ScheduleTimeout, Decide, NeedBlock]


@dataclass(frozen=True)
class Equivocation:
    """Two conflicting signed messages from one validator for the same (height, round[, kind])."""

    validator: str
    first: Vote | Proposal
    second: Vote | Proposal
