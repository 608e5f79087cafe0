"""games/market.py: hand-computed best responses, equilibrium check, kappa-equivalence, solver properties."""
import dataclasses

import numpy as np
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from pocnet.games import market as mk


def one_mrp(**over):
    base = dict(alpha=[30, 30], beta=[30, 30], w=[[0, 5], [5, 0]], c=[0.1], p_max=1.5, kappa=15.5, D_mb=[30, 30],
                L_mcycles=[5000, 5000], K_s=[3, 3], f_ghz=[15], lam=[450], mu=[500])
    base.update(over)
    return mk.make_instance(**base)


def test_link_budget_and_delay_constants():
    r = mk.Radio()
    assert r.snr == pytest.approx(10 * 0.01 * 500 ** -2 / 1e-18)  # 40 dBm = 10 W, -150 dBm = 1e-18 W
    inst = one_mrp()
    a = mk.transmission_coeff(inst)
    assert a[0] == pytest.approx(30 * 8e6 / (1e7 * np.log2(1 + 4e11)))
    T = mk.delays(inst, np.array([[0.5], [0.0]]))
    assert T[0, 0] == pytest.approx(a[0] / 0.5 + 450 / (500 * 50) + 5000e6 / 15e9)
    assert T[1, 0] == np.inf


def test_theta_and_utilities_by_hand():
    p = [0.5, 1.0]
    assert mk.theta(p) == pytest.approx([2 / 3, 1 / 3])
    inst = mk.make_instance(alpha=[30], beta=[30], w=[[0]], c=[0.1, 0.2], p_max=1.5, kappa=2.0, D_mb=[10],
                            L_mcycles=[5000], K_s=[4], f_ghz=[15, 15], lam=[450, 450], mu=[500, 500])
    b = np.array([[0.4, 0.3]])
    uf = 2 / 3 * (30 * 0.4 - 30 * 0.16 - 2 * 0.5 * 0.4) + 1 / 3 * (30 * 0.3 - 30 * 0.09 - 2 * 1.0 * 0.3)
    assert mk.follower_utilities(inst, p, b)[0] == pytest.approx(uf)
    assert mk.leader_utilities(inst, p, b) == pytest.approx([2 / 3 * 2 * 0.4 * 0.4, 1 / 3 * 2 * 0.8 * 0.3])


def test_best_response_unconstrained_by_hand():
    inst = one_mrp()
    b_other = 0.3
    b = np.array([[0.0], [b_other]])
    bi, eta, status = mk.follower_best_response(inst, [0.9], b, 0)
    assert status == "free" and eta == 0
    assert bi[0] == pytest.approx((30 + 5 * b_other - 15.5 * 0.9) / 60)


def test_best_response_binding_by_hand():
    # one MRP: theta = 1, the bound is a/b + tau <= K, so b >= a / (K - tau)
    inst = one_mrp(D_mb=[50, 50], K_s=[2.5, 2.5])
    a = mk.transmission_coeff(inst)[0]
    tau = 450 / (500 * 50) + 5000 / 15000
    b = np.array([[0.0], [0.3]])
    unconstrained = (30 + 1.5 - 15.5 * 0.9) / 60
    need = a / (2.5 - tau)
    assert need > unconstrained  # the bound binds
    bi, eta, status = mk.follower_best_response(inst, [0.9], b, 0)
    assert status == "binding" and eta > 0
    assert bi[0] == pytest.approx(need, rel=1e-10)


def test_best_response_binding_two_mrps_symmetric():
    # equal prices: theta = 1/2 each and equal g, so b_1 = b_2 = a / R by symmetry
    inst = mk.make_instance(alpha=[30], beta=[30], w=[[0]], c=[0.1, 0.1], p_max=1.5, kappa=15.5, D_mb=[50],
                            L_mcycles=[5000], K_s=[2.5], f_ghz=[15, 15], lam=[450, 450], mu=[500, 500])
    a = mk.transmission_coeff(inst)[0]
    R = 2.5 - (450 / (500 * 50) + 5000 / 15000)
    bi, eta, status = mk.follower_best_response(inst, [0.9, 0.9], np.zeros((1, 2)), 0)
    assert status == "binding"
    assert bi == pytest.approx([a / R, a / R], rel=1e-10)


def test_best_response_drops_out():
    inst = one_mrp(K_s=[0.3, 0.3])  # queue + re-instantiation alone exceed K: no demand meets the bound
    bi, _, status = mk.follower_best_response(inst, [0.9], np.zeros((2, 1)), 0)
    assert status == "out" and bi[0] == 0
    # meeting the bound costs more than it is worth: with kappa p close to alpha the utility would be < 0
    inst2 = one_mrp(D_mb=[50, 50], K_s=[0.5, 0.5], kappa=19.0)
    bi2, _, status2 = mk.follower_best_response(inst2, [1.5], np.zeros((2, 1)), 0)
    assert status2 == "out" and bi2[0] == 0
    assert mk.follower_utilities(inst2, [1.5], np.zeros((2, 1)))[0] == 0.0


def test_broken_bound_pays_without_reward():
    inst = one_mrp(D_mb=[50, 50], K_s=[1.0, 1.0])
    b = np.array([[0.01], [0.01]])  # far too little bandwidth for the bound
    assert not mk.delay_ok(inst, [0.9], b).any()
    assert mk.follower_utilities(inst, [0.9], b) == pytest.approx([-15.5 * 0.9 * 0.01] * 2)


def test_follower_equilibrium_closed_form():
    inst = mk.fig3_instance()
    p = np.array([0.9, 0.8])
    fe = mk.follower_equilibrium(inst, p)
    A = 2 * np.diag(inst.beta) - np.array(inst.w)
    for j in range(2):
        assert fe.demands[:, j] == pytest.approx(np.linalg.solve(A, np.array(inst.alpha) - 15.5 * p[j]))
    assert fe.status == ("free",) * 3


def test_fig3_solution_and_check():
    inst = mk.fig3_instance()
    eq = mk.solve(inst)
    assert eq.converged
    # an independent solver (docs/market.md): prices 0.933 / 0.788, demands 0.67 / 0.51 / 0.82, U_F 3.4 / 2.0 / 5.1
    assert eq.prices == pytest.approx([0.933, 0.788], abs=1e-3)
    assert eq.demands.sum(axis=1) == pytest.approx([0.67, 0.51, 0.82], abs=6e-3)
    assert eq.U_F == pytest.approx([3.4, 2.0, 5.1], abs=0.03)
    ch = mk.check_equilibrium(inst, eq.prices, eq.demands)
    assert ch.ok, ch


def test_check_rejects_non_equilibria():
    inst = mk.fig3_instance()
    eq = mk.solve(inst)
    off = eq.prices + np.array([0.1, 0.0])
    fe = mk.follower_equilibrium(inst, off)
    ch = mk.check_equilibrium(inst, off, fe.demands)
    assert ch.max_leader_gain > 1e-3 and ch.leader_gains[0] > 1e-3
    bad = eq.demands.copy()
    bad[1] *= 1.05
    ch2 = mk.check_equilibrium(inst, eq.prices, bad)
    assert ch2.follower_gains[1] > 1e-6 and not ch2.ok


def test_kappa_equivalence():
    inst = mk.fig3_instance(15.5)
    eq = mk.solve(inst)
    unit = inst.scaled(1 / 15.5)  # alpha, beta, W / kappa, kappa = 1
    assert unit.kappa == pytest.approx(1.0)
    eq1 = mk.solve(unit)
    assert eq1.prices == pytest.approx(eq.prices, abs=1e-7)
    assert eq1.demands == pytest.approx(eq.demands, rel=1e-6)
    assert eq1.U_F * 15.5 == pytest.approx(eq.U_F, rel=1e-6)
    assert eq1.U_L * 15.5 == pytest.approx(eq.U_L, rel=1e-6)


def test_kappa_one_prices_at_cap():
    eq = mk.solve(mk.fig3_instance(1.0))
    assert eq.prices == pytest.approx([1.5, 1.5])


def test_leader_best_response_beats_grid():
    inst = mk.fig3_instance()
    p = np.array([0.9, 0.8])
    x, u = mk.leader_best_response(inst, p, 0)
    for xs in mk.price_grid(inst, 0):
        q = p.copy()
        q[0] = xs
        fe = mk.follower_equilibrium(inst, q)
        assert mk.leader_utilities(inst, q, fe.demands)[0] <= u + 1e-12


@pytest.mark.parametrize("j", [0, 1])
def test_leader_best_response_is_the_exact_smooth_maximiser(j):
    """Where every MSP stays free, U_Lj(x) = kappa (x - c_j)(A - kappa C x) / (1 + s x) (A = 1'(2B - W)^-1 alpha,
    C = 1'(2B - W)^-1 1, s = sum_{l != j} 1/p_l); its maximiser is the root of the numerator of dU/dx.
    Comparing utilities alone finds it only to ~1e-8 (flat top); the solver's polish must reach ~1e-12."""
    from scipy.optimize import brentq

    inst = mk.fig3_instance()
    p = np.array([0.9, 0.8])
    x, _ = mk.leader_best_response(inst, p, j)
    q = p.copy()
    q[j] = x
    assert mk.follower_equilibrium(inst, q).status == ("free",) * 3  # the closed form applies
    inv = np.linalg.inv(2 * np.diag(inst.beta) - np.array(inst.w))
    A, C, k, c = float(inv.sum(axis=0) @ np.array(inst.alpha)), float(inv.sum()), inst.kappa, inst.c[j]
    s = sum(1 / p[m] for m in range(2) if m != j)
    root = brentq(lambda z: (A + k * C * c - 2 * k * C * z) * (1 + s * z) - s * (z - c) * (A - k * C * z),
                  c, inst.p_max, xtol=1e-15, rtol=1e-15)
    assert abs(x - root) < 1e-10, (x, root)


def test_validation_names_the_field():
    with pytest.raises(ValueError, match="w\\[0\\]\\[1\\]"):
        one_mrp(w=[[0, 5], [4, 0]])
    with pytest.raises(ValueError, match="lam"):
        one_mrp(lam=[600])
    with pytest.raises(ValueError, match="beta"):
        one_mrp(beta=[30])


@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.too_slow])
# Regressions: the leaders' sweep cycled with amplitude ~2e-8 > tol (grid argmax decided by rounding noise at a
# flat maximum) and stopped unconverged after 200 sweeps; all MSPs free / one binding.
@example(seed=2196190670, n=4, m=3, d_scale=1.0, kappa=15.5)
@example(seed=531915420, n=4, m=3, d_scale=2.0, kappa=15.5)
@example(seed=3820890370, n=4, m=3, d_scale=2.0, kappa=15.5)
# an MSP left with utility ~1e-9 (a leader prices it to its drop-out edge): the check's SLSQP deviation broke
# the delay bound by 5e-13 and "gained" 1e-11 until it was scaled back onto the bound
@example(seed=952160784, n=3, m=3, d_scale=3.0, kappa=15.5)
@given(seed=st.integers(0, 2**32 - 1), n=st.integers(2, 4), m=st.integers(2, 3),
       d_scale=st.sampled_from([1.0, 2.0, 3.0]), kappa=st.sampled_from([15.5, 1.0]))
def test_solver_output_passes_check(seed, n, m, d_scale, kappa):
    """Random Sec. VI-A instances; larger twins (d_scale) make delay bounds bind or push MSPs out."""
    inst = mk.random_instance(np.random.default_rng(seed), n, m, kappa=kappa)
    inst = dataclasses.replace(inst, D_mb=tuple(x * d_scale for x in inst.D_mb))
    eq = mk.solve(inst)
    assert eq.converged
    ch = mk.check_equilibrium(inst, eq.prices, eq.demands)
    assert ch.ok, (ch, eq.status)


def test_binding_instances_are_checked():
    """Deterministic cases where bounds bind (so the property above cannot pass only on free instances)."""
    seen = set()
    for seed in range(4):
        inst = mk.random_instance(np.random.default_rng(seed), 4, 3)
        inst = dataclasses.replace(inst, D_mb=tuple(x * 2 for x in inst.D_mb))
        eq = mk.solve(inst)
        seen.update(eq.status)
        assert mk.check_equilibrium(inst, eq.prices, eq.demands).ok
    assert "binding" in seen
