"""Unit tests of the engine's upon-rules (Algorithm 1 of Buchman, Kwon, Milosevic 2018)."""

from __future__ import annotations

import pytest

from pocnet.consensus.engine import Engine, fault_tolerance, quorum_size
from pocnet.consensus.messages import (
    PRECOMMIT,
    PREVOTE,
    PROPOSE,
    BroadcastProposal,
    BroadcastVote,
    Decide,
    NeedBlock,
    Proposal,
    RequestProposal,
    ScheduleTimeout,
    Timeout,
    TimeoutConfig,
    Vote,
)

VALS = ("a", "b", "c", "d")
TO = TimeoutConfig(propose_ms=100, propose_delta_ms=10, prevote_ms=50, prevote_delta_ms=5, precommit_ms=70, precommit_delta_ms=7)
H = 1


def rr(h: int, r: int) -> str:
    """Round-robin proposer: a at round 0, b at 1, c at 2, d at 3."""
    return VALS[r % 4]


def make(me: str | None = "c", height: int = H) -> Engine:
    e = Engine(me, VALS, rr, TO, height)
    e.start()
    return e


def pv(who: str, h: str | None, r: int = 0, height: int = H) -> Vote:
    return Vote(PREVOTE, height, r, h, who)


def pc(who: str, h: str | None, r: int = 0, height: int = H) -> Vote:
    return Vote(PRECOMMIT, height, r, h, who)


def prop(h: str, r: int = 0, pol: int = -1, height: int = H) -> Proposal:
    return Proposal(height, r, h, pol, rr(height, r))


def my_votes(actions: list, kind: str | None = None) -> list[Vote]:
    return [a.vote for a in actions if isinstance(a, BroadcastVote) and (kind is None or a.vote.kind == kind)]


def timers(actions: list) -> list[Timeout]:
    return [a.timeout for a in actions if isinstance(a, ScheduleTimeout)]


def feed(e: Engine, *msgs: Vote | Proposal, valid: bool = True) -> list:
    out: list = []
    for m in msgs:
        out += e.on_proposal(m, valid) if isinstance(m, Proposal) else e.on_vote(m)
    return out


def lock_on(e: Engine, value: str = "X", r: int = 0) -> None:
    """Drive `e` (= c) at round r to lock on `value`: proposal + prevotes from a, b (+ own)."""
    feed(e, prop(value, r), pv("a", value, r), pv("b", value, r))
    assert e.locked_value == value and e.locked_round == r


def to_next_round(e: Engine) -> list:
    """2f+1 nil precommits of the current round, then fire the precommit timer."""
    r = e.round
    out = feed(e, *(pc(v, None, r) for v in VALS if v != e.my_id))
    t = [t for t in timers(out) if t.kind == PRECOMMIT]
    assert t, "precommit timer must be scheduled after 2f+1 precommits"
    return e.on_timeout(t[0])


# ------------------------------------------------------------------ sizes


@pytest.mark.parametrize(
    "n,f,q", [(1, 0, 1), (2, 0, 2), (3, 0, 3), (4, 1, 3), (5, 1, 4), (6, 1, 5), (7, 2, 5), (10, 3, 7), (100, 33, 67)]
)
def test_fault_tolerance_and_quorum(n: int, f: int, q: int) -> None:
    assert fault_tolerance(n) == f
    assert quorum_size(n) == q
    # any two quorums intersect in ≥ f+1 validators, i.e. in at least one honest one
    assert 2 * q - n >= f + 1


def test_constructor_rejects_bad_sets() -> None:
    with pytest.raises(ValueError):
        Engine("a", ("a", "a", "b"), rr, TO, 1)
    with pytest.raises(ValueError):
        Engine("z", VALS, rr, TO, 1)
    with pytest.raises(ValueError):
        Engine("a", (), rr, TO, 1)


# ------------------------------------------------------------------ propose step


def test_proposer_requests_value_then_proposes_and_prevotes_it() -> None:
    e = Engine("a", VALS, rr, TO, H)
    out = e.start()
    assert RequestProposal(H, 0) in out
    assert not my_votes(out)
    out = e.set_proposal_value(H, 0, "B0")
    assert BroadcastProposal(Proposal(H, 0, "B0", -1, "a")) in out
    assert my_votes(out) == [pv("a", "B0")]
    assert e.step == PREVOTE
    assert e.set_proposal_value(H, 0, "other") == []  # answered once


def test_non_proposer_schedules_propose_timeout_and_waits() -> None:
    e = Engine("c", VALS, rr, TO, H)
    out = e.start()
    assert timers(out) == [Timeout(PROPOSE, H, 0, 100)]
    assert not my_votes(out) and not any(isinstance(a, RequestProposal) for a in out)
    assert e.start() == []  # idempotent


def test_propose_timeout_prevotes_nil() -> None:
    e = make()
    out = e.on_timeout(Timeout(PROPOSE, H, 0, 100))
    assert my_votes(out) == [pv("c", None)]
    assert e.step == PREVOTE
    assert e.on_timeout(Timeout(PROPOSE, H, 0, 100)) == []  # step moved on


def test_valid_proposal_prevoted_invalid_prevoted_nil() -> None:
    e = make()
    assert my_votes(e.on_proposal(prop("X"), True)) == [pv("c", "X")]
    e2 = make()
    assert my_votes(e2.on_proposal(prop("X"), False)) == [pv("c", None)]


def test_proposal_from_wrong_proposer_or_malformed_is_ignored() -> None:
    e = make()
    assert e.on_proposal(Proposal(H, 0, "X", -1, "b"), True) == []
    assert e.on_proposal(Proposal(H, 0, "X", 0, "a"), True) == []  # pol_round must be < round
    assert e.on_proposal(Proposal(H, 0, "X", -1, "mallory"), True) == []
    assert e.step == PROPOSE


# ------------------------------------------------------------------ prevote / precommit steps


def test_polka_locks_and_precommits() -> None:
    e = make()
    out = feed(e, prop("X"), pv("a", "X"))
    assert not my_votes(out, PRECOMMIT)
    out = e.on_vote(pv("b", "X"))
    assert my_votes(out, PRECOMMIT) == [pc("c", "X")]
    assert (e.locked_value, e.locked_round, e.valid_value, e.valid_round) == ("X", 0, "X", 0)
    assert e.step == PRECOMMIT


def test_polka_before_proposal_waits_for_the_value() -> None:
    """Votes may arrive before the proposal: nothing happens until the block is known."""
    e = make()
    out = feed(e, pv("a", "X"), pv("b", "X"), pv("d", "X"))
    assert not my_votes(out)
    out = e.on_proposal(prop("X"), True)
    assert my_votes(out) == [pv("c", "X"), pc("c", "X")]


def test_polka_for_invalid_value_does_not_lock() -> None:
    e = make()
    feed(e, prop("X"), pv("a", "X"), pv("b", "X"), pv("d", "X"), valid=False)
    assert e.locked_round == -1
    assert not any(v.block_hash == "X" for v in e.rebroadcast() if isinstance(v, Vote) and v.validator == "c")


def test_prevote_timer_only_after_quorum_of_any_prevotes_then_precommit_nil() -> None:
    e = make()
    e.on_timeout(Timeout(PROPOSE, H, 0, 100))
    out = e.on_vote(pv("a", "X"))
    assert not [t for t in timers(out) if t.kind == PREVOTE]
    out = e.on_vote(pv("b", "Y"))
    assert [t for t in timers(out) if t.kind == PREVOTE] == [Timeout(PREVOTE, H, 0, 50)]
    assert not [t for t in timers(e.on_vote(pv("d", "Z"))) if t.kind == PREVOTE]  # first time only
    out = e.on_timeout(Timeout(PREVOTE, H, 0, 50))
    assert my_votes(out) == [pc("c", None)]


def test_quorum_of_nil_prevotes_precommits_nil() -> None:
    e = make()
    e.on_timeout(Timeout(PROPOSE, H, 0, 100))
    out = feed(e, pv("a", None), pv("b", None))
    assert pc("c", None) in my_votes(out, PRECOMMIT)
    assert e.step == PRECOMMIT and e.locked_round == -1


# ------------------------------------------------------------------ locks and POL


def test_lock_prevents_prevoting_another_value() -> None:
    e = make()
    lock_on(e, "X", 0)
    to_next_round(e)
    assert e.round == 1
    out = e.on_proposal(prop("Y", 1), True)
    assert my_votes(out) == [pv("c", None, 1)]


def test_locked_value_reproposed_without_pol_is_prevoted() -> None:
    e = make()
    lock_on(e, "X", 0)
    to_next_round(e)
    assert my_votes(e.on_proposal(prop("X", 1), True)) == [pv("c", "X", 1)]


def test_unlock_via_higher_pol() -> None:
    """Locked on X at round 0; a proposal for Y at round 3 justified by a POL at round 1
    (2f+1 prevotes for Y) is prevoted: lockedRound 0 ≤ vr 1."""
    e = make()
    lock_on(e, "X", 0)
    to_next_round(e)
    e.on_timeout(Timeout(PROPOSE, H, 1, 110))  # c prevotes nil in round 1
    to_next_round(e)
    to_next_round(e)
    assert e.round == 3 and rr(H, 3) == "d"
    out = feed(e, prop("Y", 3, pol=1), pv("a", "Y", 1))
    assert not my_votes(out), "POL incomplete: must wait"
    out = e.on_vote(pv("b", "Y", 1))
    assert not my_votes(out), "still only 2 of 3 prevotes for Y in round 1"
    out = e.on_vote(pv("d", "Y", 1))
    assert my_votes(out) == [pv("c", "Y", 3)]


def test_pol_older_than_lock_does_not_unlock() -> None:
    """Locked on X at round 1; a proposal for Y with a (real) POL at round 0 < lockedRound → nil."""
    e = make()
    e.on_timeout(Timeout(PROPOSE, H, 0, 100))  # c prevotes nil in round 0
    feed(e, pv("a", "Y", 0), pv("b", "Y", 0), pv("d", "Y", 0))  # a POL for Y at round 0
    e.on_timeout(Timeout(PREVOTE, H, 0, 50))
    to_next_round(e)
    feed(e, prop("X", 1), pv("a", "X", 1), pv("d", "X", 1))
    assert (e.locked_value, e.locked_round) == ("X", 1)
    to_next_round(e)  # round 2: c proposes its validValue X
    to_next_round(e)  # round 3: d proposes
    out = e.on_proposal(prop("Y", 3, pol=0), True)
    assert my_votes(out) == [pv("c", None, 3)]


def test_proposal_with_pol_but_without_polc_waits_then_times_out() -> None:
    e = make()
    to_next_round(e)
    out = e.on_proposal(prop("Y", 1, pol=0), True)
    assert not my_votes(out)
    assert my_votes(e.on_timeout(Timeout(PROPOSE, H, 1, 110))) == [pv("c", None, 1)]


def test_proposer_reproposes_valid_value_with_its_round() -> None:
    """c saw a polka for X in round 0 (validValue) and is proposer of round 2: it proposes X
    with pol_round 0 directly, without asking the node for a new block."""
    e = make()
    lock_on(e, "X", 0)
    to_next_round(e)
    e.on_timeout(Timeout(PROPOSE, H, 1, 110))
    out = to_next_round(e)
    assert e.round == 2 and rr(H, 2) == "c"
    assert BroadcastProposal(Proposal(H, 2, "X", 0, "c")) in out
    assert not any(isinstance(a, RequestProposal) for a in out)
    assert pv("c", "X", 2) in my_votes(out)


def test_valid_value_updates_even_after_precommit_step() -> None:
    """Line 36 with step = precommit: validValue/validRound move, the lock does not."""
    e = make()
    e.on_timeout(Timeout(PROPOSE, H, 0, 100))  # c prevotes nil
    feed(e, pv("a", "X"), pv("b", "X"))
    e.on_timeout(Timeout(PREVOTE, H, 0, 50))  # c precommits nil
    assert e.step == PRECOMMIT
    feed(e, pv("d", "X"))
    assert e.valid_round == -1, "X is not known yet"
    e.on_proposal(prop("X"), True)
    assert (e.valid_value, e.valid_round) == ("X", 0)
    assert e.locked_round == -1


# ------------------------------------------------------------------ commit


def test_commit_needs_quorum_of_same_hash_precommits() -> None:
    e = make("d")
    e.on_proposal(prop("X"), True)
    out = feed(e, pc("a", "X"), pc("b", "X"), pc("c", "Y"))
    assert not any(isinstance(a, Decide) for a in out) and e.decided is None
    assert [t.kind for t in timers(out)] == [PRECOMMIT]  # 2f+1 precommits of any kind
    e2 = make("d")
    e2.on_proposal(prop("X"), True)
    assert not any(isinstance(a, Decide) for a in feed(e2, pc("a", "X"), pc("b", "X")))
    (d,) = [a for a in e2.on_vote(pc("c", "X")) if isinstance(a, Decide)]
    assert (d.height, d.round, d.block_hash) == (H, 0, "X")
    assert d.precommits == (pc("a", "X"), pc("b", "X"), pc("c", "X"))
    assert e2.decided == d
    assert e2.on_vote(pc("d", "X")) == [] and e2.on_timeout(Timeout(PRECOMMIT, H, 0, 70)) == []


def test_commit_in_an_earlier_round_is_still_decided() -> None:
    e = make("d")
    e.on_proposal(prop("X"), True)
    feed(e, pv("a", None, 2), pv("b", None, 2))  # f+1 validators in round 2: skip there
    assert e.round == 2
    assert not any(isinstance(a, Decide) for a in feed(e, pc("a", "X", 0), pc("b", "X", 0)))
    (d,) = [a for a in e.on_vote(pc("c", "X", 0)) if isinstance(a, Decide)]
    assert (d.round, d.block_hash) == (0, "X")


def test_precommit_quorum_for_unknown_block_asks_for_it() -> None:
    e = make("d")
    out = feed(e, pc("a", "X"), pc("b", "X"), pc("c", "X"))
    assert NeedBlock(H, "X") in out and not any(isinstance(a, Decide) for a in out)
    assert not any(isinstance(a, NeedBlock) for a in e.on_vote(pc("d", None)))  # asked once
    out = e.on_block_available("X")
    assert [a.block_hash for a in out if isinstance(a, Decide)] == ["X"]


def test_nil_precommits_lead_to_next_round_with_longer_timeouts() -> None:
    e = make()
    out = to_next_round(e)
    assert e.round == 1 and e.step == PROPOSE and e.decided is None
    assert timers(out) == [Timeout(PROPOSE, H, 1, 110)]
    assert e.on_timeout(Timeout(PRECOMMIT, H, 0, 70)) == []  # stale timer


def test_timeouts_grow_linearly_with_round() -> None:
    assert [TO.duration(PROPOSE, r) for r in range(4)] == [100, 110, 120, 130]
    assert [TO.duration(PREVOTE, r) for r in range(3)] == [50, 55, 60]
    assert [TO.duration(PRECOMMIT, r) for r in range(3)] == [70, 77, 84]
    e = make()
    seen = []
    for r in range(4):
        seen.append(e.round)
        out = to_next_round(e)
        assert timers(out)[0].duration_ms == 100 + 10 * (r + 1)
    assert seen == [0, 1, 2, 3]
    with pytest.raises(ValueError):
        TO.duration("bogus", 0)


# ------------------------------------------------------------------ round skip, buffering, evidence


def test_round_skip_on_f_plus_one_messages_from_higher_round() -> None:
    e = make()
    feed(e, pv("a", None, 5), pc("a", "Z", 5), pv("a", "Q", 7))
    assert e.round == 0, "one validator (≤ f) cannot move us"
    out = e.on_vote(pv("b", None, 5))
    assert e.round == 5 and e.step == PROPOSE
    assert Timeout(PROPOSE, H, 5, 150) in timers(out)


def test_round_skip_counts_proposals_too() -> None:
    e = make()
    e.on_proposal(prop("X", 3), True)  # from d, the proposer of round 3
    assert e.round == 0
    out = e.on_vote(pc("b", None, 3))
    assert e.round == 3
    assert my_votes(out) == [pv("c", "X", 3)]  # the stored proposal is acted on at once
    assert e.on_timeout(Timeout(PROPOSE, H, 3, 130)) == []


def test_equivocating_vote_recorded_and_not_double_counted() -> None:
    e = make()
    e.on_timeout(Timeout(PROPOSE, H, 0, 100))  # c: nil
    e.on_vote(pv("a", "X"))
    out = e.on_vote(pv("a", "Y"))
    assert len(e.evidence) == 1 and e.evidence[0].validator == "a"
    assert (e.evidence[0].first, e.evidence[0].second) == (pv("a", "X"), pv("a", "Y"))
    assert not timers(out), "a's second prevote must not count towards 2f+1 of any kind"
    e.on_vote(pv("a", "X"))  # exact duplicate: no new evidence
    assert len(e.evidence) == 1
    assert [a.timeout.kind for a in e.on_vote(pv("b", None)) if isinstance(a, ScheduleTimeout)] == [PREVOTE]
    assert len(e.drain_evidence()) == 1 and e.evidence == []


def test_equivocating_proposer_recorded() -> None:
    e = make()
    out = e.on_proposal(prop("X"), True) + e.on_proposal(prop("Y"), True)
    assert [(x.validator, x.first.block_hash, x.second.block_hash) for x in e.evidence] == [("a", "X", "Y")]
    assert my_votes(out) == [pv("c", "X")]  # prevotes the first one only


def test_votes_from_non_validators_ignored() -> None:
    e = make()
    e.on_proposal(prop("X"), True)
    assert feed(e, pv("mallory", "X"), pv("eve", "X"), pv("trent", "X")) == []
    assert e.step == PREVOTE and e.locked_round == -1
    assert e.on_vote(Vote("banana", H, 0, "X", "a")) == []  # type: ignore[arg-type]


def test_messages_for_next_height_buffered_and_replayed_other_heights_dropped() -> None:
    e = make("d")
    e.on_proposal(prop("X"), True)
    feed(e, pc("a", "X"), pc("b", "X"))
    # height 2 traffic arrives early; height 3 and height 0 traffic is dropped
    early = [pv("a", "N", 0, height=2), pv("b", "N", 0, height=2), pv("c", "N", 0, height=2)]
    assert feed(e, *early, pv("a", "M", 0, height=3), pv("a", "M", 0, height=0)) == []
    assert e.on_proposal(Proposal(2, 0, "N", -1, rr(2, 0)), True) == []
    (d,) = [a for a in e.on_vote(pc("c", "X")) if isinstance(a, Decide)]
    assert d.block_hash == "X" and e.height == H
    out = e.advance_to(2)
    assert e.height == 2 and e.round == 0
    assert my_votes(out) == [pv("d", "N", 0, height=2), pc("d", "N", 0, height=2)]
    assert e.advance_to(2) == [] and e.advance_to(1) == []


def test_advance_beyond_next_height_drops_buffer() -> None:
    e = make("d")
    feed(e, pv("a", "N", 0, height=2), pv("b", "N", 0, height=2))
    e.advance_to(3)
    assert e.height == 3 and e.rebroadcast() == []


def test_stale_and_foreign_timeouts_ignored() -> None:
    e = make()
    assert e.on_timeout(Timeout(PROPOSE, H + 1, 0, 100)) == []
    assert e.on_timeout(Timeout(PROPOSE, H, 3, 100)) == []
    assert e.on_timeout(Timeout(PREVOTE, H, 0, 50)) == []  # wrong step
    assert e.step == PROPOSE


def test_round_window_bounds_storage_but_counts_for_skip() -> None:
    e = Engine("c", VALS, rr, TO, H, round_window=4)
    e.start()
    e.on_vote(pv("a", "X", 100))
    assert all(v.round <= 4 for v in e.rebroadcast())
    e.on_vote(pc("b", "Y", 200))
    assert e.round == 100


def test_set_proposal_value_stale_answers_ignored() -> None:
    e = Engine("a", VALS, rr, TO, H)
    e.start()
    e.on_timeout(Timeout(PROPOSE, H, 0, 100))  # gave up on round 0 before the node answered
    assert e.set_proposal_value(H, 0, "late") == []
    assert e.set_proposal_value(H, 5, "bogus") == []


# ------------------------------------------------------------------ sync, observers, gossip


def test_on_commit_decides_from_certificate() -> None:
    e = make("d")
    cert = Decide(H, 2, "X", (pc("a", "X", 2), pc("b", "X", 2), pc("c", "X", 2)))
    out = e.on_commit(cert)
    assert NeedBlock(H, "X") in out and e.decided is None
    out = e.on_block_available("X")
    assert [a for a in out if isinstance(a, Decide)] == [cert]


@pytest.mark.parametrize(
    "precommits",
    [
        (pc("a", "X", 2), pc("b", "X", 2)),  # too few
        (pc("a", "X", 2), pc("a", "X", 2), pc("b", "X", 2)),  # duplicate signer
        (pc("a", "X", 2), pc("b", "X", 2), pc("c", "Y", 2)),  # mixed hashes
        (pc("a", "X", 2), pc("b", "X", 2), pc("c", "X", 1)),  # mixed rounds
        (pc("a", "X", 2), pc("b", "X", 2), pv("c", "X", 2)),  # a prevote
        (pc("a", "X", 2), pc("b", "X", 2), pc("zed", "X", 2)),  # non-validator
    ],
)
def test_on_commit_rejects_bad_certificates(precommits: tuple[Vote, ...]) -> None:
    e = make("d")
    e.on_block_available("X")
    assert not any(isinstance(a, Decide) for a in e.on_commit(Decide(H, 2, "X", precommits)))
    assert e.decided is None


def test_observer_decides_without_voting() -> None:
    e = make(None)
    out = feed(e, prop("X"), pv("a", "X"), pv("b", "X"), pv("c", "X"), pc("a", "X"), pc("b", "X"))
    out += e.on_vote(pc("c", "X"))
    assert not my_votes(out) and not any(isinstance(a, (BroadcastProposal, RequestProposal)) for a in out)
    assert e.decided is not None and e.decided.block_hash == "X"


def test_rebroadcast_relays_own_and_received_messages() -> None:
    e = make()
    feed(e, prop("X"), pv("a", "X"))
    msgs = e.rebroadcast()
    assert prop("X") in msgs and pv("a", "X") in msgs and pv("c", "X") in msgs
    to_next_round(e)
    e.on_timeout(Timeout(PROPOSE, H, 1, 110))
    assert e.rebroadcast(last_rounds=1) == [pv("c", None, 1)]
    assert len(e.rebroadcast()) > 1


def test_same_events_same_actions() -> None:
    def run() -> list:
        e = make()
        out = []
        out += feed(e, prop("X"), pv("a", "X"), pv("b", "Y"), pv("d", "X"), pc("a", "X"), pc("d", "X"))
        return out

    assert run() == run()


def test_conflicting_vote_counts_only_for_known_blocks() -> None:
    """Deviation from first-vote-wins (docs/consensus.md): d equivocates; its second
    precommit, for the known block X, completes X's quorum (safe: tallies hold distinct
    validators and honest ones never appear twice), while a conflicting vote for an unknown
    hash is evidence only."""
    e = make("c")
    e.on_proposal(prop("X"), True)
    feed(e, pc("d", "Y"), pc("d", "X"), pc("a", "X"))
    assert [x.validator for x in e.evidence] == ["d"]
    assert e.decided is None
    out = e.on_vote(pc("b", "X"))
    (d,) = [a for a in out if isinstance(a, Decide)]
    assert [v.validator for v in d.precommits] == ["a", "b", "d"]
    e2 = make("c")
    feed(e2, pv("d", "Y"), pv("d", "Q"))
    assert all(m.block_hash != "Q" for m in e2.rebroadcast())
