"""Property tests: delivery order and message soup cannot make the engine misbehave."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from pocnet.consensus.engine import Engine
from pocnet.consensus.messages import (
    PRECOMMIT,
    PREVOTE,
    BroadcastVote,
    Decide,
    Proposal,
    Timeout,
    TimeoutConfig,
    Vote,
)
from pocnet.consensus.engine import certificate_ok

VALS = ("a", "b", "c", "d")
TO = TimeoutConfig(100, 10, 50, 5, 70, 7)


def rr(h: int, r: int) -> str:
    return VALS[r % 4]


HAPPY = [Proposal(1, 0, "X", -1, "a")] + [Vote(k, 1, 0, "X", v) for k in (PREVOTE, PRECOMMIT) for v in ("a", "b", "d")]


@settings(max_examples=60, deadline=None)
@given(st.permutations(HAPPY))
def test_any_delivery_order_of_a_good_round_decides_it(order: list) -> None:
    e = Engine("c", VALS, rr, TO, 1)
    out = e.start()
    for m in order:
        out += e.on_proposal(m, True) if isinstance(m, Proposal) else e.on_vote(m)
    decides = [a for a in out if isinstance(a, Decide)]
    assert len(decides) == 1 and decides[0].block_hash == "X" and decides[0].round == 0


messages = st.one_of(
    st.builds(
        Vote,
        kind=st.sampled_from([PREVOTE, PRECOMMIT]),
        height=st.just(1),
        round=st.integers(0, 3),
        block_hash=st.sampled_from(["X", "Y", "BAD", None]),
        validator=st.sampled_from(VALS + ("mallory",)),
    ),
    st.builds(
        Proposal,
        height=st.just(1),
        round=st.integers(0, 3),
        block_hash=st.sampled_from(["X", "Y", "BAD"]),
        pol_round=st.integers(-1, 2),
        proposer=st.sampled_from(VALS),
    ),
    st.builds(Timeout, kind=st.sampled_from(["propose", "prevote", "precommit"]), height=st.just(1), round=st.integers(0, 3), duration_ms=st.just(1)),
)


@settings(max_examples=150, deadline=None)
@given(st.lists(messages, max_size=60))
def test_message_soup_never_breaks_invariants(soup: list) -> None:
    """Arbitrary (even conflicting) votes, proposals and timers: the engine decides only a
    valid value backed by a real certificate, votes at most once per (round, kind), and
    its lock only ever moves to a later round."""
    e = Engine("c", VALS, rr, TO, 1)
    out = e.start()
    last_lock = -1
    for m in soup:
        if isinstance(m, Proposal):
            out += e.on_proposal(m, m.block_hash != "BAD")
        elif isinstance(m, Vote):
            out += e.on_vote(m)
        else:
            out += e.on_timeout(m)
        assert e.locked_round >= last_lock
        last_lock = e.locked_round
    own = [a.vote for a in out if isinstance(a, BroadcastVote)]
    keys = [(v.round, v.kind) for v in own]
    assert len(keys) == len(set(keys)), "honest engine never equivocates"
    assert all(v.validator == "c" for v in own)
    assert all(v.block_hash != "BAD" for v in own if v.kind == PREVOTE)
    for d in (a for a in out if isinstance(a, Decide)):
        assert d.block_hash != "BAD" and certificate_ok(d, VALS)
    assert all(ev.validator != "c" for ev in e.evidence)
