"""Hand-scheduled 4-validator attacks where only the lock and the POL check prevent a fork.

Random schedules rarely produce these (gossip usually spreads the decisive precommit
first), so they are scripted message by message: three honest engines a, b, c and a
Byzantine z whose messages the test writes by hand.
"""

from __future__ import annotations

from pocnet.consensus.engine import Engine
from pocnet.consensus.messages import (
    PRECOMMIT,
    PREVOTE,
    PROPOSE,
    BroadcastProposal,
    BroadcastVote,
    Decide,
    Proposal,
    RequestProposal,
    Timeout,
    TimeoutConfig,
    Vote,
)

VALS = ("a", "b", "c", "z")
TO = TimeoutConfig(100, 10, 100, 10, 100, 10)


class Script:
    """Honest engines whose outputs are queued per sender; the test decides who gets what."""

    def __init__(self, order: tuple[str, ...]) -> None:
        self.order = order
        self.engines = {v: Engine(v, VALS, lambda h, r: order[r % 4], TO, 1) for v in ("a", "b", "c")}
        self.sent: dict[str, list[Proposal | Vote]] = {v: [] for v in self.engines}
        self.decided: dict[str, str] = {}
        self.values = iter(["v", "w", "x", "y"])

    def _absorb(self, who: str, actions: list) -> None:
        for a in actions:
            if isinstance(a, BroadcastProposal):
                self.sent[who].append(a.proposal)
            elif isinstance(a, BroadcastVote):
                self.sent[who].append(a.vote)
            elif isinstance(a, RequestProposal):
                self._absorb(who, self.engines[who].set_proposal_value(a.height, a.round, next(self.values)))
            elif isinstance(a, Decide):
                self.decided[who] = a.block_hash

    def start(self) -> None:
        for v, e in self.engines.items():
            self._absorb(v, e.start())

    def msg(self, src: str, kind: str, round: int) -> Proposal | Vote:
        """The message an honest engine sent (must exist)."""
        for m in self.sent[src]:
            if m.round == round and (isinstance(m, Proposal) if kind == "proposal" else getattr(m, "kind", None) == kind):
                return m
        raise AssertionError(f"{src} sent no {kind} in round {round}: {self.sent[src]}")

    def give(self, dst: str, *msgs: Proposal | Vote) -> None:
        e = self.engines[dst]
        for m in msgs:
            self._absorb(dst, e.on_proposal(m, True) if isinstance(m, Proposal) else e.on_vote(m))

    def timeout(self, dst: str, kind: str, round: int) -> None:
        self._absorb(dst, self.engines[dst].on_timeout(Timeout(kind, 1, round, TO.duration(kind, round))))


def z(kind: str, round: int, h: str | None) -> Vote:
    return Vote(kind, 1, round, h, "z")  # type: ignore[arg-type]


def round0_a_decides_v_b_locked(s: Script) -> None:
    """Round 0: a proposes v; a, b, z prevote v; c never sees the proposal. a and b lock v,
    z's precommit for v reaches only a, so a decides v while b and c time out to round 1."""
    s.start()
    pa = s.msg("a", "proposal", 0)
    s.give("b", pa)
    s.timeout("c", PROPOSE, 0)
    s.give("a", s.msg("b", PREVOTE, 0), z(PREVOTE, 0, "v"))
    s.give("b", s.msg("a", PREVOTE, 0), z(PREVOTE, 0, "v"))
    assert s.engines["a"].locked_value == s.engines["b"].locked_value == "v"
    s.give("a", s.msg("b", PRECOMMIT, 0), z(PRECOMMIT, 0, "v"))
    assert s.decided == {"a": "v"}
    s.give("c", s.msg("a", PREVOTE, 0), s.msg("b", PREVOTE, 0))
    s.timeout("c", PREVOTE, 0)  # c: 2f+1 prevotes of any kind, no proposal → precommit nil
    s.give("b", s.msg("c", PRECOMMIT, 0), z(PRECOMMIT, 0, None))
    s.give("c", s.msg("b", PRECOMMIT, 0), z(PRECOMMIT, 0, None))
    s.timeout("b", PRECOMMIT, 0)
    s.timeout("c", PRECOMMIT, 0)
    assert s.engines["b"].round == s.engines["c"].round == 1


def test_lock_stops_fork_when_unlocked_proposer_offers_new_value() -> None:
    """Round 1: c (never saw v) proposes w. Without the lock b would prevote w and, with z,
    b and c would decide w against a's v."""
    s = Script(order=("a", "c", "b", "z"))
    round0_a_decides_v_b_locked(s)
    pc = s.msg("c", "proposal", 1)
    assert pc.block_hash == "w" and pc.pol_round == -1
    s.give("b", pc)
    s.give("b", s.msg("c", PREVOTE, 1), z(PREVOTE, 1, "w"))
    s.give("c", s.msg("b", PREVOTE, 1), z(PREVOTE, 1, "w"))
    for who in ("b", "c"):
        s.give(who, z(PRECOMMIT, 1, "w"), *[m for m in s.sent["b" if who == "c" else "c"] if m.round == 1 and isinstance(m, Vote) and m.kind == PRECOMMIT])
    assert "w" not in s.decided.values(), f"fork: {s.decided}"
    assert s.msg("b", PREVOTE, 1).block_hash is None, "b is locked on v"
    assert s.engines["b"].locked_value == "v"


def test_pol_check_stops_fork_on_fabricated_pol_round() -> None:
    """Round 1: Byzantine z proposes w claiming a POL in round 0 that never existed.
    Without checking the 2f+1 prevotes, b (lockedRound 0 ≤ 0) and c would prevote w."""
    s = Script(order=("a", "z", "c", "b"))
    round0_a_decides_v_b_locked(s)
    fake = Proposal(1, 1, "w", 0, "z")
    s.give("b", fake)
    s.give("c", fake)
    waited = not [m for m in s.sent["b"] + s.sent["c"] if isinstance(m, Vote) and m.round == 1]
    s.timeout("b", PROPOSE, 1)
    s.timeout("c", PROPOSE, 1)
    s.give("b", s.msg("c", PREVOTE, 1), z(PREVOTE, 1, "w"))
    s.give("c", s.msg("b", PREVOTE, 1), z(PREVOTE, 1, "w"))
    for who, other in (("b", "c"), ("c", "b")):
        s.give(who, z(PRECOMMIT, 1, "w"), *[m for m in s.sent[other] if m.round == 1 and isinstance(m, Vote) and m.kind == PRECOMMIT])
    assert "w" not in s.decided.values(), f"fork: {s.decided}"
    assert waited, "without the POL both must wait for it (then time out)"
    assert s.msg("b", PREVOTE, 1).block_hash is None and s.msg("c", PREVOTE, 1).block_hash is None


def test_locked_validators_carry_v_to_decision_later() -> None:
    """After the attack rounds, b re-proposes its validValue v with its POL round, c accepts
    it because the POL (a, b, z prevotes in round 0) is verifiable, and all decide v."""
    s = Script(order=("a", "c", "b", "z"))
    round0_a_decides_v_b_locked(s)
    s.give("b", s.msg("c", "proposal", 1))
    for who, other in (("b", "c"), ("c", "b")):
        s.give(who, s.msg(other, PREVOTE, 1))
        s.give(who, z(PREVOTE, 1, None))
    s.timeout("b", PREVOTE, 1)
    s.timeout("c", PREVOTE, 1)
    for who, other in (("b", "c"), ("c", "b")):
        s.give(who, s.msg(other, PRECOMMIT, 1), z(PRECOMMIT, 1, None))
        s.timeout(who, PRECOMMIT, 1)
    pb = s.msg("b", "proposal", 2)
    assert (pb.block_hash, pb.pol_round) == ("v", 0)
    s.give("c", s.msg("a", PREVOTE, 0), z(PREVOTE, 0, "v"), pb)  # the round-0 POL reaches c (gossip)
    assert s.msg("c", PREVOTE, 2).block_hash == "v"
    s.give("b", s.msg("c", PREVOTE, 2), z(PREVOTE, 2, "v"))
    s.give("c", s.msg("b", PREVOTE, 2), z(PREVOTE, 2, "v"))
    s.give("b", s.msg("c", PRECOMMIT, 2), z(PRECOMMIT, 2, "v"))
    s.give("c", s.msg("b", PRECOMMIT, 2), z(PRECOMMIT, 2, "v"))
    assert s.decided == {"a": "v", "b": "v", "c": "v"}
