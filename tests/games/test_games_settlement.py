"""Settlement on evidence of work (games.settlement, games.round.settle_round): rule and properties."""
import ast
import inspect

from hypothesis import given, settings
from hypothesis import strategies as st

import pocnet.games.settlement as settlement
from pocnet.games import GameParams, MemberReport, RoundPlan, plan_round, settle_round
from pocnet.games.scenario import synthetic_learners
from pocnet.games.settlement import (EVIDENCE_FULL_PPM, EVIDENCE_LOW_PPM, PPM, next_score, reference,
                                     upper_quartile, work_factor, work_factors)

P = GameParams()
LEARNERS = synthetic_learners(24, 3, P, data_range=(200, 3000))
PLAN = RoundPlan.from_dict(plan_round(LEARNERS, {}, None, 5, P).to_dict(quantized=True))
work_values = st.integers(min_value=0, max_value=10**9)


def test_rule_by_hand():
    assert upper_quartile([5]) == 5
    assert upper_quartile([1, 2, 3, 4]) == 3
    assert upper_quartile([4, 1, 3, 2, 9]) == 4  # ceil(15/4) = 4th smallest
    assert reference([1000, 1000, 1000, 200]) == 1000  # 200 < 1000/4 is not credible
    assert reference([0, 0, 0, 0, 0, 0, 5, 6]) == 6  # free riders cannot make the reference 0
    assert reference([0, 0]) == 0
    assert work_factor(EVIDENCE_LOW_PPM) == 0 and work_factor(EVIDENCE_FULL_PPM) == PPM
    assert work_factor((EVIDENCE_LOW_PPM + EVIDENCE_FULL_PPM) // 2) == PPM // 2
    assert next_score(None, PPM) == 860_000  # newcomers start at FULL = 0.8: 0.7 * 0.8 + 0.3 * 1
    assert next_score(600_000, 0) == 420_000
    # round 1: a fifth of the work scores 0.7*0.8 + 0.3*0.2 = 0.62 -> e = 0.1; nothing at all -> 0
    assert work_factors({"a": 1000, "b": 1000, "c": 1000, "d": 200, "e": 0}) == \
        {"a": PPM, "b": PPM, "c": PPM, "d": 100_000, "e": 0}
    # round 2 with the same evidence: the shirker's score falls below LOW
    assert work_factors({"a": 1000, "d": 200}, {"a": 860_000, "d": 620_000})["d"] == 0


def test_integer_only_no_floats():
    """The rule decides in integers: no float literal, no true division, no math/numpy in the module."""
    tree = ast.parse(inspect.getsource(settlement))
    for node in ast.walk(tree):
        assert not (isinstance(node, ast.Constant) and isinstance(node.value, float)), "float literal"
        assert not (isinstance(node, ast.BinOp) and isinstance(node.op, ast.Div)), "true division"
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            names = [a.name for a in node.names] + [getattr(node, "module", None) or ""]
            assert not any(n in ("math", "numpy", "torch") for n in names)


@given(st.dictionaries(st.sampled_from([f"m{i}" for i in range(12)]), work_values, min_size=1),
       st.sampled_from([f"m{i}" for i in range(12)]), st.integers(min_value=0, max_value=10**9))
def test_less_work_never_more_pay_factor(work, who, less):
    """Lowering one member's work (others fixed) never raises its factor, although it moves the reference."""
    work = dict(work)
    work.setdefault(who, less)
    lower = dict(work, **{who: min(less, work[who])})
    assert work_factors(lower)[who] <= work_factors(work)[who]


@given(st.lists(st.integers(min_value=1, max_value=10**9), min_size=1, max_size=12),
       st.lists(st.integers(min_value=0, max_value=10**9), max_size=12), st.data())
def test_shirkers_cannot_cut_honest_pay(honest, shirkers, data):
    """Honest members whose work is within FULL of each other's are paid in full (>= 90 % of the
    old, unscaled pay) whatever any number of members with less work report."""
    top = max(honest)
    honest = [max(h, -(-top * EVIDENCE_FULL_PPM // PPM)) for h in honest]  # within the honest band
    shirk = [min(s, min(honest)) for s in shirkers]
    work = {f"h{i}": w for i, w in enumerate(honest)} | {f"s{i}": w for i, w in enumerate(shirk)}
    prev = {f"h{i}": data.draw(st.integers(min_value=EVIDENCE_FULL_PPM, max_value=2 * PPM)) for i in range(len(honest))
            if data.draw(st.booleans())}
    f = work_factors(work, prev)
    assert all(f[f"h{i}"] * 10 >= 9 * PPM for i in range(len(honest)))


def _reports(work_of):
    out = {}
    for i, a in enumerate(sorted(PLAN.frequencies)):
        out[a] = MemberReport(loss_reduction=0.01 * (i % 5), grad_norm=1.0,
                              completion_time=PLAN.predicted_times[a] + 0.01 * (i % 3), work=work_of(i, a))
    return out


def _twins_plan():
    """PLAN with two members of one coalition made identical in everything the plan holds."""
    d = PLAN.to_dict(quantized=True)
    h = max(PLAN.heads, key=lambda k: len(PLAN.partition[k]))
    a, b = [m for m in PLAN.partition[h] if m != h][:2]
    for name in ("frequencies", "predicted_times", "weights", "reputations", "expected_utilities",
                 "competition_rewards"):
        d[name][b] = d[name][a]
    d["cases"][b] = d["cases"][a]
    d["embeddings"][b] = d["embeddings"][a]
    return RoundPlan.from_dict(d), a, b


TWINS, TWIN_A, TWIN_B = _twins_plan()


@settings(max_examples=60, deadline=None)
@given(st.lists(st.floats(min_value=0.0, max_value=2.0), min_size=len(PLAN.frequencies),
                max_size=len(PLAN.frequencies)), st.floats(min_value=0.0, max_value=2.0),
       st.floats(min_value=0.0, max_value=1.0), st.floats(min_value=0.0, max_value=0.05))
def test_identical_learner_less_work_never_paid_more(works, w, cut, loss):
    """Two learners identical in the plan and in every measurement but work: the one that did
    less is never paid more, nor credited a higher contribution or reputation."""
    reports = {}
    for i, a in enumerate(sorted(TWINS.frequencies)):
        reports[a] = MemberReport(0.01 * (i % 5), 1.0, TWINS.predicted_times[a] + 0.01 * (i % 3), works[i])
    t = TWINS.predicted_times[TWIN_A] + 0.005
    reports[TWIN_A] = MemberReport(loss, 1.0, t, w)
    reports[TWIN_B] = MemberReport(loss, 1.0, t, w * cut)
    s = settle_round(TWINS, reports, {}, 1, P)
    assert s.payouts[TWIN_B] <= s.payouts[TWIN_A]
    assert s.competition_rewards[TWIN_B] <= s.competition_rewards[TWIN_A]
    assert s.q[TWIN_B] <= s.q[TWIN_A]
    assert s.global_reputation[TWIN_B] <= s.global_reputation[TWIN_A]


@settings(max_examples=40, deadline=None)
@given(st.lists(st.floats(min_value=0.0, max_value=2.0), min_size=len(PLAN.frequencies),
                max_size=len(PLAN.frequencies)),
       st.integers(min_value=0, max_value=len(PLAN.frequencies) - 1), st.floats(min_value=0.0, max_value=1.0))
def test_less_work_never_raises_own_factor_or_reward(works, idx, cut):
    """The same round with one member's work lower: its work factor, competition reward and
    contribution do not rise. (Its reputation share may: a lower reference raises the others'
    factors and with them the coalition's mean reputation, which every member's share follows.)"""
    who = sorted(PLAN.frequencies)[idx]
    base = settle_round(PLAN, _reports(lambda i, a: works[i]), {}, 1, P)
    less = settle_round(PLAN, _reports(lambda i, a: works[i] * cut if a == who else works[i]), {}, 1, P)
    assert less.work_factors[who] <= base.work_factors[who]
    assert less.competition_rewards[who] <= base.competition_rewards[who]
    assert less.q[who] <= base.q[who]


@settings(max_examples=40, deadline=None)
@given(st.lists(st.floats(min_value=0.8, max_value=1.0), min_size=len(PLAN.frequencies),
                max_size=len(PLAN.frequencies)))
def test_honest_round_keeps_old_pay(works):
    """When every member's work is within the honest band, the payouts are the old rule's
    (reputation share + committed competition reward), not a token less."""
    st_new = settle_round(PLAN, _reports(lambda i, a: works[i]), {}, 1, P)
    for h in PLAN.heads:
        members = PLAN.partition[h]
        for a in members:
            old = st_new.reputation_shares[a] + PLAN.competition_rewards[a]
            assert st_new.work_factors[a] == PPM
            assert st_new.payouts[a] >= 0.9 * old
            assert abs(st_new.competition_rewards[a] - PLAN.competition_rewards[a]) < 1e-12


def test_free_rider_and_lazy_paid_less_in_settlement():
    """Zero work (a returned model) earns nothing; a fifth of the honest work earns a tenth of the
    old pay as a newcomer and nothing from its second round on."""
    members = sorted(PLAN.frequencies)
    rider, lazy = members[0], members[1]
    rep = _reports(lambda i, a: 0.0 if a == rider else (0.2 if a == lazy else 1.0))
    st_ = settle_round(PLAN, rep, {}, 1, P)
    assert st_.payouts[rider] == 0.0 and st_.q[rider] == 0.0 and st_.work_factors[rider] == 0
    assert st_.work_factors[lazy] == 100_000
    others = [a for a in members if a not in (rider, lazy)]
    assert all(st_.payouts[a] > 0 and st_.work_factors[a] == PPM for a in others)
    again = settle_round(PLAN, rep, {}, 1, P, st_.work_scores)
    assert again.payouts[lazy] == 0.0 and again.work_factors[lazy] == 0


def test_without_work_field_grad_norm_stands_in():
    reports = {a: MemberReport(0.01, 2.0 if i else 0.1, PLAN.predicted_times[a])
               for i, a in enumerate(sorted(PLAN.frequencies))}
    st_ = settle_round(PLAN, reports, {}, 1, P)
    first = sorted(PLAN.frequencies)[0]
    assert st_.work_factors[first] == 0 and st_.payouts[first] == 0.0


spot_values = st.sampled_from([0, PPM // 2, PPM])  # share of spot-checked steps that re-executed (fml SPOT_CHECKS=2)


@settings(max_examples=60, deadline=None)
@given(others=st.lists(st.lists(spot_values, min_size=1, max_size=8), min_size=1, max_size=20),
       n_honest=st.integers(1, 4))
def test_spot_checked_honest_members_keep_the_old_pay_every_round(others, n_honest):
    """With spot-check evidence an honest member's work is the coalition's maximum every
    round, so whatever shirkers show (and for how many rounds), its factor is PPM:
    it keeps 100 % of the old pay."""
    prev: dict[str, int] = {}
    for rnd in others:
        work = {f"h{i}": PPM for i in range(n_honest)} | {f"s{i}": w for i, w in enumerate(rnd)}
        factors = work_factors(work, prev)
        prev.update(settlement.work_scores(work, prev))
        assert all(factors[f"h{i}"] == PPM for i in range(n_honest))


@settings(max_examples=60, deadline=None)
@given(rounds=st.lists(st.tuples(spot_values, spot_values), min_size=1, max_size=12))
def test_spot_checked_shirker_never_paid_more_than_its_honest_twin(rounds):
    """Two members, identical except that one shows less verified work in some rounds:
    its factor is never higher, in any round."""
    prev: dict[str, int] = {}
    for a, b in rounds:
        work = {"twin": PPM, "shirk": min(a, b), "x": max(a, b)}
        f = work_factors(work, prev)
        prev.update(settlement.work_scores(work, prev))
        assert f["shirk"] <= f["twin"]
