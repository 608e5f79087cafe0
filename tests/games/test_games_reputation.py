"""Similarity, Phi, contributions and reputations (eqs. 11-18) by hand and by property."""
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pocnet.games.params import GameParams
from pocnet.games.reputation import (
    ReputationHistory,
    coalition_reputation,
    contributions,
    global_reputation,
    overall_reputation,
    reputation_fn,
    reputation_matrix,
    similarity,
    task_specific_reputation,
)

P = GameParams()
EMB = {"h1": [1.0, 0.0, 0.0], "h2": [0.8, 0.6, 0.0], "h3": [0.0, 0.0, 1.0]}
ALICE = ReputationHistory.from_list([[1, "h1", 0.9], [2, "h1", 0.6], [3, "h2", 1.0]])


def test_similarity_by_hand():
    assert similarity([1, 0], [1, 1]) == pytest.approx(1 / math.sqrt(2))
    assert similarity([1, 0], [-1, 0]) == 0.0  # cos = -1 clipped at 0
    assert similarity([0, 0], [1, 1]) == 0.0  # zero vector
    assert similarity([0.8, 0.6, 0], [1, 0, 0]) == pytest.approx(0.8)
    with pytest.raises(ValueError, match="embedding"):
        similarity([1, 0], [1, 0, 0])


def test_reputation_fn_by_hand():
    assert reputation_fn(0.5, P) == pytest.approx(0.5)  # Phi(r_th) = rho0
    assert reputation_fn(0.6, P) == pytest.approx(1 / (1 + math.exp(-1)))  # 2*0.5/(1+e^{-10*0.1})
    assert reputation_fn(0.4, P) == pytest.approx(1 / (1 + math.e))
    assert reputation_fn(-1e6, P) == 0.0
    assert coalition_reputation([0.2, 0.4, 0.9]) == pytest.approx(0.5)


def test_contributions_by_hand():
    # l = [0.3, 0.1, 0 (clipped)]; phi_loss = [1, 1/3, 0]; phi_time = [(6-4)/2, 0, (6-5)/2]
    q = contributions([0.30, 0.10, -0.05], [4.0, 6.0, 5.0], P)
    assert q == pytest.approx([0.5 * (1 + 1), 0.5 * (1 / 3 + 0), 0.5 * (0 + 0.5)])
    assert contributions([0.2, 0.2], [3.0, 3.0], P) == [1.0, 1.0]  # one distinct value -> 1
    assert contributions([], [], P) == []
    with pytest.raises(ValueError):
        contributions([0.1], [1.0, 2.0], P)


def test_global_and_task_specific_by_hand():
    # weights 0.7^(3-1)=0.49, 0.7^(3-2)=0.7, 1
    g = (0.49 * 0.9 + 0.7 * 0.6 + 1.0 * 1.0) / (0.49 + 0.7 + 1.0)
    assert global_reputation(ALICE, P) == pytest.approx(g)
    assert global_reputation(ReputationHistory(), P) == 0.5  # newcomer: r_th
    # w.r.t. h1: sigma(h1,h1)=1, sigma(h2,h1)=cos=0.8
    ts1 = (0.49 * 0.9 + 0.7 * 0.6 + 0.8 * 1.0) / (0.49 + 0.7 + 0.8)
    assert task_specific_reputation(ALICE, "h1", EMB, P) == pytest.approx(ts1)
    # w.r.t. h3: every sigma is 0 -> no related history -> 0
    assert task_specific_reputation(ALICE, "h3", EMB, P) == 0.0
    # unknown head, no embedding: only direct trust counts; none -> 0
    assert task_specific_reputation(ALICE, "zz", EMB, P) == 0.0
    assert overall_reputation(ALICE, "h1", EMB, P) == pytest.approx(0.2 * g + 0.8 * ts1)
    assert overall_reputation(ReputationHistory(), "h1", EMB, P) == pytest.approx(0.2 * 0.5)


def test_history_validation():
    with pytest.raises(ValueError, match="round"):
        ALICE.add(3, "h1", 0.5)
    with pytest.raises(ValueError, match="q"):
        ALICE.add(4, "h1", 1.5)
    assert ReputationHistory.from_list(ALICE.to_list()) == ALICE


def test_matrix_matches_scalar_functions():
    hists = {"alice": ALICE, "bob": ReputationHistory.from_list([[3, "h3", 0.2]])}
    learners = ["alice", "bob", "carol"]
    heads = ["h1", "h2", "h3"]
    glob, overall = reputation_matrix(learners, heads, hists, EMB, P)
    for i, a in enumerate(learners):
        h = hists.get(a, ReputationHistory())
        assert glob[i] == pytest.approx(global_reputation(h, P), abs=1e-12)
        for k, head in enumerate(heads):
            assert overall[i, k] == pytest.approx(overall_reputation(h, head, EMB, P), abs=1e-12)


records = st.lists(
    st.tuples(st.integers(1, 4), st.sampled_from(["h1", "h2", "h3", "h4"]), st.floats(0, 1)), max_size=12
)


@settings(max_examples=60, deadline=None)
@given(records, st.floats(0.05, 1.0), st.floats(0, 1))
def test_reputations_stay_in_unit_interval(recs, decline, lam):
    params = GameParams(decline=decline, lam=lam)
    hist = ReputationHistory()
    rnd = 0
    for gap, head, q in recs:
        rnd += gap
        hist = hist.add(rnd, head, q)
    emb = {"h1": [1, 0.2], "h2": [-0.3, 1], "h3": [0.5, 0.5], "h4": [0, 0]}
    for head in ("h1", "h2", "h3", "h4", "new"):
        for v in (
            global_reputation(hist, params),
            task_specific_reputation(hist, head, emb, params),
            overall_reputation(hist, head, emb, params),
        ):
            assert 0.0 <= v <= 1.0
    _, overall = reputation_matrix(["x"], ["h1", "h4", "new"], {"x": hist}, emb, params)
    assert np.all((overall >= 0) & (overall <= 1))


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.floats(-1, 1), st.floats(0.1, 20)), min_size=1, max_size=10), st.floats(0, 1))
def test_contributions_in_unit_interval(pairs, omega):
    q = contributions([a for a, _ in pairs], [b for _, b in pairs], GameParams(omega=omega))
    assert all(0.0 <= x <= 1.0 for x in q)
    if len({max(0.0, a) for a, _ in pairs}) > 1 and len({b for _, b in pairs}) > 1:
        assert min(q) <= max(omega, 1 - omega) + 1e-12  # nobody is best at everything unless ties
