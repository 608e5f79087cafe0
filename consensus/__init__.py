"""Tendermint-style BFT consensus: a pure engine, proposer selection and a simulator.

The engine knows nothing about HTTP, storage, ledger types, clocks or signatures;
see docs/consensus.md for how the node wires it.
"""

from pocnet.consensus.engine import Engine, certificate_ok, fault_tolerance, quorum_size
from pocnet.consensus.messages import (
    Action,
    BroadcastProposal,
    BroadcastVote,
    Decide,
    Equivocation,
    NeedBlock,
    Proposal,
    RequestProposal,
    ScheduleTimeout,
    Timeout,
    TimeoutConfig,
    Vote,
)
from pocnet.consensus.proposer import HashOrderSelector, ProposerSelector, SelectionContext, proposer_for

__all__ = [
    "Action",
    "BroadcastProposal",
    "BroadcastVote",
    "Decide",
    "Engine",
    "Equivocation",
    "HashOrderSelector",
    "NeedBlock",
    "Proposal",
    "ProposerSelector",
    "RequestProposal",
    "ScheduleTimeout",
    "SelectionContext",
    "Timeout",
    "TimeoutConfig",
    "Vote",
    "certificate_ok",
    "fault_tolerance",
    "proposer_for",
    "quorum_size",
]
