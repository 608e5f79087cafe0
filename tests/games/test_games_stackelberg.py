"""Follower KKT cases, MSP utility and the leader's global optimum (eqs. 20-25)."""
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pocnet.games.params import GameParams
from pocnet.games.stackelberg import (
    Follower,
    KKTCase,
    follower_best_response,
    leader_optimum,
    learner_utility,
    make_game,
    msp_utility,
    solve_coalition,
)

P = GameParams()


def member(**kw) -> Follower:
    base = dict(address="a", cycles=1e9, kappa=1e-26, f_min=1e8, f_max=2e9, tx_time=1.0, weight=0.5, reputation=0.5)
    base.update(kw)
    return Follower(**base)


def test_learner_utility_by_hand():
    m = member()
    # R Phi(0.5)/1 + C w f/f_max - mu kappa Q f^2 = 5*0.5 + 10*0.5*1.25e9/2e9 - 0.1*1e-26*1e9*(1.25e9)^2
    u = learner_utility(1.25e9, 10.0, m, 1, 0.5, P)
    assert u == pytest.approx(2.5 + 3.125 - 1.5625)


def test_kkt_cases_by_hand():
    loose = 100.0
    # f_unc = C w / (2 mu kappa Q f_max) = 10*0.5 / (2*0.1*1e-26*1e9*2e9) = 5 / 4e-9 = 1.25e9
    br = follower_best_response(10.0, member(), loose, P)
    assert br.case is KKTCase.INTERIOR and br.frequency == pytest.approx(1.25e9)
    # C=5 -> f_unc = 6.25e8 < f_min = 8e8
    br = follower_best_response(5.0, member(f_min=8e8), loose, P)
    assert (br.case, br.frequency) == (KKTCase.LOWER, 8e8)
    # C=20 -> f_unc = 2.5e9 > f_max
    br = follower_best_response(20.0, member(), loose, P)
    assert (br.case, br.frequency) == (KKTCase.UPPER, 2e9)
    # deadline 1.8 s, t_com 1 s -> f^T = 1e9 / 0.8 = 1.25e9 > f_unc(C=5) = 6.25e8
    br = follower_best_response(5.0, member(), 1.8, P)
    assert br.case is KKTCase.DEADLINE and br.frequency == pytest.approx(1.25e9)
    br = follower_best_response(10.0, member(f_min=7e8, f_max=7e8), loose, P)
    assert (br.case, br.frequency) == (KKTCase.LOWER_UPPER, 7e8)
    # f^T = 1e9 / (3 - 1) = 5e8 = f_min, f_unc(C=3) = 3.75e8 below it
    br = follower_best_response(3.0, member(f_min=5e8), 3.0, P)
    assert (br.case, br.frequency) == (KKTCase.LOWER_DEADLINE, 5e8)
    # f^T = 1e9 / 0.5 = 2e9 = f_max
    br = follower_best_response(3.0, member(), 1.5, P)
    assert (br.case, br.frequency) == (KKTCase.DEADLINE_UPPER, 2e9)
    # f^T = 1e9 / 0.2 = 5e9 > f_max: the learner sits out
    br = follower_best_response(10.0, member(), 1.2, P)
    assert br.case is KKTCase.INFEASIBLE and not br.feasible
    assert follower_best_response(10.0, member(), 0.5, P).case is KKTCase.INFEASIBLE  # T < t_com


def test_msp_and_leader_closed_form_single_member():
    # one interior member: G(C) = r (T - t_com) - r Q/(a C), a = w/(2 mu kappa Q f_max) = 1.25e8
    m = member(f_min=1e7, f_max=4e9, weight=1.0, reputation=0.8)
    game = make_game("a", 3.0, [m])
    a = 1.0 / (2 * 0.1 * 1e-26 * 1e9 * 4e9)
    c = 10.0
    expected = 25 * math.log(1 + 0.8 * (3.0 - 1.0 - 1e9 / (a * c))) - c
    assert msp_utility(c, game, P) == pytest.approx(expected)
    # dU/dC = 0  <=>  (1 + A) C^2 - B C - beta B = 0, A = r (T - t_com), B = r Q / a
    A, B = 0.8 * 2.0, 0.8 * 1e9 / a
    c_star = (B + math.sqrt(B * B + 4 * (1 + A) * 25 * B)) / (2 * (1 + A))
    assert 5.0 < c_star < 15.0  # interior, so the bisection must find it
    got, freqs = leader_optimum(game, P)
    assert got == pytest.approx(c_star, rel=1e-9)
    assert freqs["a"] == pytest.approx(a * c_star, rel=1e-9)


def test_leader_with_no_feasible_member_pays_minimum():
    game = make_game("a", 0.5, [member()])  # deadline below t_com
    c, freqs = leader_optimum(game, P)
    assert c == P.C_min and freqs == {}
    sol = solve_coalition(game, P)
    assert sol.infeasible == ("a",) and sol.msp_utility == pytest.approx(-P.C_min)


followers = st.builds(
    Follower,
    address=st.just("x"),
    cycles=st.floats(1e8, 5e9),
    kappa=st.floats(2e-27, 5e-26),
    f_min=st.floats(5e7, 8e8),
    f_max=st.floats(8e8, 3e9),
    tx_time=st.floats(0.5, 5.0),
    weight=st.floats(0.0, 1.0),
    reputation=st.floats(0.0, 1.0),
)


@settings(max_examples=80, deadline=None)
@given(followers, st.floats(5.0, 15.0), st.floats(1.0, 15.0))
def test_best_response_beats_dense_search(m, c, deadline):
    br = follower_best_response(c, m, deadline, P)
    if not br.feasible:
        assert br.lower > br.upper
        return
    grid = np.linspace(br.lower, br.upper, 2001)
    u_grid = max(learner_utility(float(f), c, m, 3, 0.5, P) for f in grid)
    u_star = learner_utility(br.frequency, c, m, 3, 0.5, P)
    assert br.lower <= br.frequency <= br.upper
    assert u_star >= u_grid - 1e-9 * max(1.0, abs(u_grid))
    assert m.cycles / br.frequency + m.tx_time <= deadline * (1 + 1e-12)  # deadline met


@settings(max_examples=40, deadline=None)
@given(st.lists(followers, min_size=1, max_size=6), st.floats(2.0, 15.0))
def test_leader_matches_dense_grid(ms, deadline):
    ms = [Follower(**{**m.__dict__, "address": f"m{i}"}) for i, m in enumerate(ms)]
    total = sum(m.weight for m in ms) or 1.0
    ms = [Follower(**{**m.__dict__, "weight": m.weight / total}) for m in ms]
    game = make_game("m0", deadline, ms)
    c_star, _ = leader_optimum(game, P)
    grid = np.linspace(P.C_min, P.C_max, 4001)
    u = np.array([msp_utility(float(c), game, P) for c in grid])
    u_star = msp_utility(c_star, game, P)
    assert P.C_min <= c_star <= P.C_max
    assert u_star >= u.max() - 1e-9 * max(1.0, abs(u.max()))
    # the arg max agrees within a grid step unless another C is (numerically) as good
    c_grid = float(grid[int(u.argmax())])
    if abs(c_grid - c_star) > 2 * (grid[1] - grid[0]):
        assert msp_utility(c_grid, game, P) == pytest.approx(u_star, abs=1e-6)
