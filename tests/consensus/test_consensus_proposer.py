"""Proposer selection interface and the hash-order placeholder."""

from __future__ import annotations

import hashlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pocnet.consensus.proposer import (
    HashOrderSelector,
    ProposerSelector,
    SelectionContext,
    hash_order_key,
    proposer_for,
)

VALS = ("alice", "bob", "carol", "dave")


def test_proposer_for_cycles_through_ranking() -> None:
    ranking = ("c", "a", "d", "b")
    assert [proposer_for(ranking, r) for r in range(9)] == ["c", "a", "d", "b", "c", "a", "d", "b", "c"]
    with pytest.raises(ValueError):
        proposer_for((), 0)
    with pytest.raises(ValueError):
        proposer_for(ranking, -1)


def test_hash_order_matches_definition() -> None:
    ctx = SelectionContext(prev_hash="ab" * 32, validators=VALS)
    got = HashOrderSelector().ranking(5, ctx)
    want = sorted(VALS, key=lambda v: hashlib.sha256((ctx.prev_hash + v).encode()).hexdigest())
    assert got == tuple(want)
    assert hash_order_key(ctx.prev_hash, "bob") == hashlib.sha256((ctx.prev_hash + "bob").encode()).hexdigest()


@given(st.text(min_size=1, max_size=64), st.permutations(VALS))
def test_ranking_is_permutation_independent_of_input_order(prev_hash: str, order: list[str]) -> None:
    sel: ProposerSelector = HashOrderSelector()
    a = sel.ranking(1, SelectionContext(prev_hash, VALS))
    b = sel.ranking(1, SelectionContext(prev_hash, tuple(order)))
    assert a == b and sorted(a) == sorted(VALS)


def test_ranking_changes_with_prev_hash() -> None:
    sel = HashOrderSelector()
    firsts = {sel.ranking(1, SelectionContext(f"h{i}", VALS))[0] for i in range(40)}
    assert firsts == set(VALS)


def test_context_is_frozen_and_extensible() -> None:
    ctx = SelectionContext("p", VALS, poc_inputs={"tasks": ()})
    assert SelectionContext("p", VALS).poc_inputs is None
    with pytest.raises(AttributeError):
        ctx.prev_hash = "q"  # type: ignore[misc]
    with pytest.raises(ValueError):
        HashOrderSelector().ranking(1, SelectionContext("p", ("a", "a")))
