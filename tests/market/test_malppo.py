"""MALPPO: actions stay in their ranges, observations hold only public data, PPO updates change the policy."""
import numpy as np
import pytest

torch = pytest.importorskip("torch")

from pocnet.games import malppo as ml  # noqa: E402
from pocnet.games import market as mk  # noqa: E402


def test_short_run_shapes_and_ranges():
    inst = mk.fig3_instance()
    cfg = ml.LearnConfig(episodes=1, slots=40, seed=3)
    run = ml.learn(inst, "malppo", cfg)
    P = np.array(run["train"]["prices"])
    B = np.array(run["train"]["demands"])
    assert P.shape == (40, 2) and B.shape == (40, 3, 2)
    assert np.all(P >= np.array(inst.c) - 1e-9) and np.all(P <= inst.p_max + 1e-9)
    assert np.all(B >= 0) and np.all(B <= cfg.b_max + 1e-9)
    # rewards are the model's utilities of what was played
    for t in (0, 39):
        assert run["train"]["U_L"][t] == pytest.approx(mk.leader_utilities(inst, P[t], B[t]).tolist())
        assert run["train"]["U_F"][t] == pytest.approx(mk.follower_utilities(inst, P[t], B[t]).tolist())


def test_observations_are_public_only():
    inst = mk.fig3_instance()
    cfg = ml.LearnConfig()
    env = ml.MarketEnv(inst, cfg, np.random.default_rng(0))
    env.reset()
    ob = env.leader_obs(0)
    assert ob.shape == (3, 2 + 6 + 2)  # L rounds x (prices, demands, own lambda/mu)
    other = ml.MarketEnv(mk.make_instance(**{**_fields(inst), "alpha": [1, 2, 3], "c": [0.5, 0.6]}), cfg,
                         np.random.default_rng(0))
    other.hist.extend(env.hist)  # the same public history
    # private types (alpha, c) do not enter the observations (the same public history gives the same obs)
    assert np.array_equal(env.follower_obs(1, np.array([1.0, 1.0])), other.follower_obs(1, np.array([1.0, 1.0])))


def _fields(inst):
    return {k: getattr(inst, k) for k in ("alpha", "beta", "w", "c", "p_max", "kappa", "D_mb", "L_mcycles", "K_s",
                                          "f_ghz", "lam", "mu")}


def test_updates_move_the_policy_and_baselines_run():
    inst = mk.fig3_instance()
    cfg = ml.LearnConfig(episodes=1, slots=20, seed=1)
    torch.manual_seed(0)
    a = ml.Agent(8, 1, np.array([0.3]), np.array([1.5]), cfg)
    before = [p.detach().clone() for p in a.actor.parameters()]
    obs = torch.randn(20, 3, 8)
    with torch.no_grad():
        d = a.dist(obs)
        u = d.sample()
        lp = d.log_prob(u).sum(-1)
    ml._ppo_actor_step(a, obs, u, lp, torch.randn(20), 0.2)
    assert any(not torch.equal(b, p) for b, p in zip(before, a.actor.parameters()))
    for scheme in ("mappo", "random"):
        run = ml.learn(inst, scheme, cfg)
        assert len(run["train"]["prices"]) == 20


def test_distance_to_equilibrium():
    inst = mk.fig3_instance()
    eq = mk.solve(inst)
    run = {"eval": {"prices": [eq.prices.tolist()] * 3, "demands": [eq.demands.tolist()] * 3,
                    "U_L": [eq.U_L.tolist()] * 3, "U_F": [(eq.U_F * 1.1).tolist()] * 3}}
    d = ml.distance_to_equilibrium(run, eq)
    assert d["max_rel_price"] == 0 and d["max_rel_utility"] == pytest.approx(0.1)
    assert not d["within_5pct"]
