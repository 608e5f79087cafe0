"""Final pass allowing returns (games.stability): stops at a truly Nash-stable partition."""
import numpy as np
import pytest

from pocnet.games.coalition import (_initial_assignment, prepare_formation, random_groups, run_switch_rule,
                                    select_heads, stability_violations)
from pocnet.games.params import GameParams
from pocnet.games.scenario import synthetic_learners
from pocnet.games.stability import gains_by_returning, stabilise_with_returns


def _formed(n, seed):
    p = GameParams(n_coalitions=4)
    learners = synthetic_learners(n, seed, p, n_clusters=4, active_share=1.0)
    prof = {q.address: q for q in learners}
    groups = random_groups(list(prof), 4, seed)
    hs = select_heads(groups, prof, {}, p)
    initial = {a: h for g, h in zip(groups, hs) if h for a in g}
    heads = [h for h in hs if h]
    fa = prepare_formation(learners, heads, np.full((n, len(heads)), p.lam * p.r_th), p, None)
    assign, left, _, _ = run_switch_rule(fa, _initial_assignment(fa, initial))
    return fa, assign, left


def test_history_stable_partitions_can_gain_by_returning_and_the_pass_fixes_them():
    seen = 0
    for seed in range(8):
        fa, assign, left = _formed(40, seed)
        assert stability_violations(fa, assign, left) == []  # stable given the history rule
        if gains_by_returning(fa, assign):
            seen += 1
            res = stabilise_with_returns(fa, assign, max_passes=10)
            assert res.stable and res.moves > 0
            assert stability_violations(fa, res.assign, None) == []
            assert np.all(res.assign[fa.head_rows] == np.arange(len(fa.heads)))  # heads never move
    assert seen > 0  # the instances do exercise returns


def test_already_stable_needs_one_pass_and_no_move():
    fa, assign, _ = _formed(40, 0)
    res = stabilise_with_returns(fa, stabilise_with_returns(fa, assign).assign)
    assert res.stable and res.passes == 1 and res.moves == 0
    with pytest.raises(ValueError):
        stabilise_with_returns(fa, assign, max_passes=0)
