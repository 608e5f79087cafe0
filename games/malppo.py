"""MALPPO ([VTM], Sec. V): decentralised multi-agent PPO that learns the market without private types.

One agent per MRP (price in [c_j, p_max]) and per MSP (demand vector in [0, b_max]^M),
each with its own actor and critic: MLP -> LSTM (2 x 64) -> MLP (128, 128). An
observation is the last L = 3 rounds of public prices and demands (plus an MRP's own
lambda_j, mu_j; plus, for an MSP, the prices just posted in this slot — ours: on chain
followers post after the prices are public, the Stackelberg order). Rewards: U_Lj and
U_Fi (an MSP that breaks its delay bound gets no reward and still pays). Clipped PPO
with GAE; Adam, lr 1e-4 for actor and critic; every 20 slots, 5 updates on minibatches
of 20. gamma 0.99, clip 0.2, GAE lambda 0.95 (ours: not given in the paper).

Baselines (``scheme``): ``malppo``; ``mappo`` (one shared central critic over the
global state, decentralised actors); ``random-leaders``; ``random-followers``;
``random``. Off-chain only; the equilibrium to compare with comes from games.market.
"""
from __future__ import annotations

import json
import time
from collections import deque
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
from torch import nn

from pocnet.games import market as mk

SCHEMES = ("malppo", "mappo", "random-leaders", "random-followers", "random")


@dataclass(frozen=True)
class LearnConfig:
    episodes: int = 20
    slots: int = 100
    history: int = 3            # L
    batch: int = 20             # slots per update = minibatch size
    updates: int = 5            # PPO epochs per batch
    lr_actor: float = 1e-4
    lr_critic: float = 1e-4
    gamma: float = 0.99
    clip: float = 0.2
    gae_lambda: float = 0.95
    b_max: float = 1.5          # demand action range per MRP, units of B0 (ours)
    reward_scale: float = 10.0  # rewards divided by this for learning (ours)
    init_log_std: float = -0.5
    seed: int = 0


class Net(nn.Module):
    """MLP -> LSTM (2 layers x 64) over the L-round window -> MLP (128, 128) -> out."""

    def __init__(self, in_dim: int, out_dim: int) -> None:
        super().__init__()
        self.pre = nn.Sequential(nn.Linear(in_dim, 64), nn.Tanh())
        self.lstm = nn.LSTM(64, 64, num_layers=2, batch_first=True)
        self.head = nn.Sequential(nn.Linear(64, 128), nn.Tanh(), nn.Linear(128, 128), nn.Tanh(),
                                  nn.Linear(128, out_dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # x: (B, L, in_dim)
        out, _ = self.lstm(self.pre(x))
        return self.head(out[:, -1])


class Agent:
    """Actor (Gaussian on an unbounded u, action = low + (high - low) * sigmoid(u)) and its own critic."""

    def __init__(self, in_dim: int, act_dim: int, low: np.ndarray, high: np.ndarray, cfg: LearnConfig,
                 own_critic: bool = True) -> None:
        self.actor = Net(in_dim, act_dim)
        self.log_std = nn.Parameter(torch.full((act_dim,), cfg.init_log_std))
        self.opt_a = torch.optim.Adam(list(self.actor.parameters()) + [self.log_std], lr=cfg.lr_actor)
        self.critic = Net(in_dim, 1) if own_critic else None
        self.opt_c = torch.optim.Adam(self.critic.parameters(), lr=cfg.lr_critic) if self.critic else None
        self.low = torch.tensor(low, dtype=torch.float32)
        self.high = torch.tensor(high, dtype=torch.float32)

    def dist(self, obs: torch.Tensor) -> torch.distributions.Normal:
        return torch.distributions.Normal(self.actor(obs), self.log_std.exp())

    def to_action(self, u: torch.Tensor) -> torch.Tensor:
        return self.low + (self.high - self.low) * torch.sigmoid(u)

    @torch.no_grad()
    def act(self, obs: np.ndarray, deterministic: bool = False) -> tuple[np.ndarray, np.ndarray, float]:
        d = self.dist(torch.tensor(obs, dtype=torch.float32)[None])
        u = d.mean if deterministic else d.sample()
        return self.to_action(u)[0].numpy().astype(float), u[0].numpy(), float(d.log_prob(u).sum())


def _own_value(agent: Agent, obs: np.ndarray) -> float:
    """An agent's own critic's value of ``obs`` (schemes without a central critic)."""
    assert agent.critic is not None, "without a central critic every agent owns one"
    return float(agent.critic(torch.tensor(obs, dtype=torch.float32)[None]))


def _gae(rewards: np.ndarray, values: np.ndarray, last: float, gamma: float, lam: float) -> np.ndarray:
    adv = np.zeros_like(rewards)
    g = 0.0
    for t in reversed(range(len(rewards))):
        nxt = values[t + 1] if t + 1 < len(rewards) else last
        delta = rewards[t] + gamma * nxt - values[t]
        g = delta + gamma * lam * g
        adv[t] = g
    return adv


def _ppo_actor_step(agent: Agent, obs: torch.Tensor, u: torch.Tensor, logp_old: torch.Tensor, adv: torch.Tensor,
                    clip: float) -> None:
    d = agent.dist(obs)
    ratio = (d.log_prob(u).sum(-1) - logp_old).exp()
    loss = -torch.min(ratio * adv, ratio.clamp(1 - clip, 1 + clip) * adv).mean()
    agent.opt_a.zero_grad()
    loss.backward()
    agent.opt_a.step()


@dataclass
class History:
    """Per-slot record of the run (for plots and the report)."""
    prices: list[list[float]] = field(default_factory=list)
    demands: list[list[list[float]]] = field(default_factory=list)
    U_L: list[list[float]] = field(default_factory=list)
    U_F: list[list[float]] = field(default_factory=list)


class MarketEnv:
    """The repeated market: public history of the last L rounds' prices and demands."""

    def __init__(self, inst: mk.MarketInstance, cfg: LearnConfig, rng: np.random.Generator) -> None:
        self.inst, self.cfg, self.rng = inst, cfg, rng
        self.n, self.m = inst.n, inst.m
        self.c, self.p_max = np.array(inst.c), inst.p_max
        self.qm = np.stack([np.array(inst.lam) / 500.0, np.array(inst.mu) / 500.0], axis=1)  # (M, 2)
        self.hist: deque[tuple[np.ndarray, np.ndarray]] = deque(maxlen=cfg.history)

    def random_prices(self) -> np.ndarray:
        return self.rng.uniform(self.c, self.p_max)

    def random_demands(self) -> np.ndarray:
        return self.rng.uniform(0, self.cfg.b_max, (self.n, self.m))

    def reset(self) -> None:
        self.hist.clear()
        for _ in range(self.cfg.history):  # random initial rounds (t < L), as in the paper
            self.hist.append((self.random_prices(), self.random_demands()))

    def _window(self) -> np.ndarray:
        return np.stack([np.concatenate([p / self.p_max, b.ravel() / self.cfg.b_max]) for p, b in self.hist])

    def leader_obs(self, j: int) -> np.ndarray:
        w = self._window()
        return np.concatenate([w, np.repeat(self.qm[j][None], len(w), 0)], axis=1)

    def follower_obs(self, i: int, prices: np.ndarray) -> np.ndarray:
        w = self._window()
        return np.concatenate([w, np.repeat((prices / self.p_max)[None], len(w), 0)], axis=1)

    def global_obs(self) -> np.ndarray:
        w = self._window()
        return np.concatenate([w, np.repeat(self.qm.ravel()[None], len(w), 0)], axis=1)

    def post_prices(self, prices: np.ndarray) -> np.ndarray:
        """The prices followers see this slot (on chain: as posted, read back from state)."""
        return prices

    def step(self, prices: np.ndarray, demands: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        uL = mk.leader_utilities(self.inst, prices, demands)
        uF = mk.follower_utilities(self.inst, prices, demands)
        self.hist.append((prices.copy(), demands.copy()))
        return uL, uF


def learn(inst: mk.MarketInstance, scheme: str = "malppo", cfg: LearnConfig | None = None,
          echo: Callable[[str], None] | None = None, env: MarketEnv | None = None,
          evaluate: bool = True) -> dict[str, Any]:
    """Train ``scheme`` on ``inst``; return the per-slot history and a final deterministic evaluation."""
    if scheme not in SCHEMES:
        raise ValueError(f"scheme: one of {', '.join(SCHEMES)}")
    cfg = cfg or LearnConfig()
    torch.manual_seed(cfg.seed)
    rng = np.random.default_rng(cfg.seed)
    env = env or MarketEnv(inst, cfg, rng)
    n, m = inst.n, inst.m
    win = n * m + m
    learn_L = scheme not in ("random-leaders", "random")
    learn_F = scheme not in ("random-followers", "random")
    own = scheme != "mappo"
    leaders = [Agent(win + 2, 1, np.array([inst.c[j]]), np.array([inst.p_max]), cfg, own) for j in range(m)]
    followers = [Agent(win + m, m, np.zeros(m), np.full(m, cfg.b_max), cfg, own) for _ in range(n)]
    central = Net(win + 2 * m, n + m) if not own else None
    opt_central = torch.optim.Adam(central.parameters(), lr=cfg.lr_critic) if central is not None else None
    hist = History()
    t0 = time.perf_counter()

    def values(obs_L: list[np.ndarray], obs_F: list[np.ndarray], g: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            if central is not None:
                return central(torch.tensor(g, dtype=torch.float32)[None])[0].numpy()
            vl = [_own_value(a, o) for a, o in zip(leaders, obs_L)]
            vf = [_own_value(a, o) for a, o in zip(followers, obs_F)]
            return np.array(vl + vf)

    for ep in range(cfg.episodes):
        env.reset()
        buf: dict[str, list[Any]] = {k: [] for k in ("oL", "oF", "g", "uL", "uF", "lpL", "lpF", "r", "v")}
        for t in range(cfg.slots):
            oL = [env.leader_obs(j) for j in range(m)]
            g = env.global_obs()
            prices, uLs, lpL = np.zeros(m), [], []
            for j, a in enumerate(leaders):
                if learn_L:
                    x, u, lp = a.act(oL[j])
                    prices[j] = x[0]
                else:
                    prices[j], u, lp = env.random_prices()[j], np.zeros(1), 0.0
                uLs.append(u)
                lpL.append(lp)
            prices = env.post_prices(prices)
            oF = [env.follower_obs(i, prices) for i in range(n)]
            demands, uFs, lpF = np.zeros((n, m)), [], []
            for i, a in enumerate(followers):
                if learn_F:
                    x, u, lp = a.act(oF[i])
                    demands[i] = x
                else:
                    demands[i], u, lp = env.random_demands()[i], np.zeros(m), 0.0
                uFs.append(u)
                lpF.append(lp)
            v = values(oL, oF, g)
            rL, rF = env.step(prices, demands)
            hist.prices.append(prices.tolist())
            hist.demands.append(demands.tolist())
            hist.U_L.append(rL.tolist())
            hist.U_F.append(rF.tolist())
            for k, val in (("oL", oL), ("oF", oF), ("g", g), ("uL", uLs), ("uF", uFs), ("lpL", lpL), ("lpF", lpF),
                           ("r", np.concatenate([rL, rF]) / cfg.reward_scale), ("v", v)):
                buf[k].append(val)
            if (t + 1) % cfg.batch == 0:
                # bootstrap from the next slot's observations (an MSP's "current prices": the last posted)
                nL = [env.leader_obs(j) for j in range(m)]
                nF = [env.follower_obs(i, prices) for i in range(n)]
                last = values(nL, nF, env.global_obs())
                _update(cfg, buf, last, leaders, followers, learn_L, learn_F, central, opt_central)
                buf = {k: [] for k in buf}
        if echo:
            recent = slice(-cfg.slots, None)
            echo(f"{scheme} episode {ep + 1}/{cfg.episodes}: prices {np.mean(hist.prices[recent], 0).round(3)} "
                 f"U_L {np.mean(hist.U_L[recent], 0).round(2)} U_F {np.mean(hist.U_F[recent], 0).round(2)} "
                 f"({time.perf_counter() - t0:.0f} s)")
    # final evaluation: deterministic policies (random agents stay random) for one episode
    env.reset()
    ev = History()
    for _ in range(cfg.slots if evaluate else 0):
        prices = env.post_prices(np.array([leaders[j].act(env.leader_obs(j), True)[0][0] if learn_L
                                           else env.random_prices()[j] for j in range(m)]))
        demands = np.array([followers[i].act(env.follower_obs(i, prices), True)[0] if learn_F
                            else env.random_demands()[i] for i in range(n)])
        rL, rF = env.step(prices, demands)
        ev.prices.append(prices.tolist())
        ev.demands.append(demands.tolist())
        ev.U_L.append(rL.tolist())
        ev.U_F.append(rF.tolist())
    return {"scheme": scheme, "config": asdict(cfg), "train": asdict(hist), "eval": asdict(ev),
            "seconds": time.perf_counter() - t0, "slots": cfg.episodes * cfg.slots}


def _update(cfg: LearnConfig, buf: dict[str, list[Any]], last: np.ndarray, leaders: list[Agent],
            followers: list[Agent], learn_L: bool, learn_F: bool, central: Net | None,
            opt_central: torch.optim.Optimizer | None) -> None:
    m = len(leaders)
    r = np.array(buf["r"])          # (T, M + N)
    v = np.array(buf["v"])          # (T, M + N)
    adv = np.stack([_gae(r[:, k], v[:, k], float(last[k]), cfg.gamma, cfg.gae_lambda) for k in range(r.shape[1])],
                   axis=1)
    ret = torch.tensor(adv + v, dtype=torch.float32)
    agents: list[tuple[int, Agent, str, str, str]] = []
    if learn_L:
        agents += [(j, a, "oL", "uL", "lpL") for j, a in enumerate(leaders)]
    if learn_F:
        agents += [(m + i, a, "oF", "uF", "lpF") for i, a in enumerate(followers)]
    tensors = {}
    for k, a, ko, ku, kl in agents:
        idx = k if k < m else k - m
        obs = torch.tensor(np.array([o[idx] for o in buf[ko]]), dtype=torch.float32)
        u = torch.tensor(np.array([x[idx] for x in buf[ku]]), dtype=torch.float32)
        lp = torch.tensor([x[idx] for x in buf[kl]], dtype=torch.float32)
        a_k = torch.tensor(adv[:, k], dtype=torch.float32)
        a_k = (a_k - a_k.mean()) / (a_k.std() + 1e-8)
        tensors[k] = (a, obs, u, lp, a_k)
    g = torch.tensor(np.array(buf["g"]), dtype=torch.float32)
    for _ in range(cfg.updates):
        for k, (a, obs, u, lp, a_k) in tensors.items():
            _ppo_actor_step(a, obs, u, lp, a_k, cfg.clip)
            if a.critic is not None and a.opt_c is not None:
                loss = ((a.critic(obs)[:, 0] - ret[:, k]) ** 2).mean()
                a.opt_c.zero_grad()
                loss.backward()
                a.opt_c.step()
        if central is not None and opt_central is not None:
            loss = ((central(g) - ret) ** 2).mean()
            opt_central.zero_grad()
            loss.backward()
            opt_central.step()


# ----------------------------------------------------------------- report
def distance_to_equilibrium(run: dict[str, Any], eq: mk.Equilibrium) -> dict[str, Any]:
    """Relative distance of the final evaluation's mean prices, demands and utilities from the equilibrium."""
    ev = run["eval"]
    p = np.mean(ev["prices"], axis=0)
    b = np.mean(ev["demands"], axis=0)
    uL = np.mean(ev["U_L"], axis=0)
    uF = np.mean(ev["U_F"], axis=0)

    def rel(x: np.ndarray, y: np.ndarray) -> list[float]:
        return (np.abs(x - y) / np.maximum(np.abs(y), 1e-9)).tolist()

    out = {"prices": p.tolist(), "U_L": uL.tolist(), "U_F": uF.tolist(), "demand_totals": b.sum(1).tolist(),
           "rel_price": rel(p, eq.prices), "rel_U_L": rel(uL, eq.U_L), "rel_U_F": rel(uF, eq.U_F),
           "rel_demand_total": rel(b.sum(1), eq.demands.sum(1)),
           "total_reward": float(np.sum(uL) + np.sum(uF))}
    out["max_rel_price"] = max(out["rel_price"])
    out["max_rel_utility"] = max(out["rel_U_L"] + out["rel_U_F"])
    out["within_5pct"] = bool(out["max_rel_price"] <= 0.05 and out["max_rel_utility"] <= 0.05)
    return out


def plot_runs(runs: list[dict[str, Any]], eq: mk.Equilibrium, out: Path, slots: int) -> list[Path]:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    def smooth(x: np.ndarray, k: int) -> np.ndarray:
        k = max(1, min(k, len(x)))
        return np.convolve(x, np.ones(k) / k, mode="valid")

    paths = []
    main = next((r for r in runs if r["scheme"] == "malppo"), runs[0])
    tr = main["train"]
    k = max(1, slots // 5)
    fig, ax = plt.subplots(1, 4, figsize=(17, 3.8))
    P, B = np.array(tr["prices"]), np.array(tr["demands"])
    UL, UF = np.array(tr["U_L"]), np.array(tr["U_F"])
    for j in range(P.shape[1]):
        ax[0].plot(smooth(P[:, j], k), color=f"C{j}", label=f"MRP{j + 1}")
        ax[0].axhline(eq.prices[j], color=f"C{j}", ls="--")
        ax[2].plot(smooth(UL[:, j], k), color=f"C{j}", label=f"MRP{j + 1}")
        ax[2].axhline(eq.U_L[j], color=f"C{j}", ls="--")
    for i in range(B.shape[1]):
        ax[1].plot(smooth(B[:, i].sum(1), k), color=f"C{i}", label=f"MSP{i + 1}")
        ax[1].axhline(eq.demands[i].sum(), color=f"C{i}", ls="--")
        ax[3].plot(smooth(UF[:, i], k), color=f"C{i}", label=f"MSP{i + 1}")
        ax[3].axhline(eq.U_F[i], color=f"C{i}", ls="--")
    for a, t in zip(ax, ("prices", "total demand per MSP (x B0)", "MRP utility", "MSP utility")):
        a.set_title(t)
        a.set_xlabel("training slot")
        a.legend(fontsize=7)
    fig.suptitle(f"MALPPO over training (moving average over {k} slots); dashed: the solver's equilibrium")
    fig.tight_layout()
    paths.append(out / "malppo_training.png")
    fig.savefig(paths[-1], dpi=110)
    plt.close(fig)

    fig, ax = plt.subplots(figsize=(8, 4))
    for r in runs:
        tot = (np.array(r["train"]["U_L"]).sum(1) + np.array(r["train"]["U_F"]).sum(1))
        ax.plot(smooth(tot, k), label=r["scheme"])
    ax.axhline(eq.U_L.sum() + eq.U_F.sum(), color="k", ls="--", label="equilibrium")
    ax.set_xlabel("training slot")
    ax.set_ylabel("sum of all agents' rewards per slot")
    ax.legend()
    ax.set_title("Reward over training: MALPPO and baselines")
    fig.tight_layout()
    paths.append(out / "malppo_rewards.png")
    fig.savefig(paths[-1], dpi=110)
    plt.close(fig)
    return paths


def run_experiment(inst: mk.MarketInstance, schemes: list[str], cfg: LearnConfig, out: Path,
                   echo: Callable[[str], None] = print) -> dict[str, Any]:
    out.mkdir(parents=True, exist_ok=True)
    torch.set_num_threads(1)
    eq = mk.solve(inst)
    runs = [learn(inst, s, cfg, echo) for s in schemes]
    report = {"equilibrium": {"prices": eq.prices.tolist(), "U_L": eq.U_L.tolist(), "U_F": eq.U_F.tolist(),
                              "demand_totals": eq.demands.sum(1).tolist()},
              "config": asdict(cfg), "schemes": {}}
    for r in runs:
        d = distance_to_equilibrium(r, eq)
        d["seconds"] = r["seconds"]
        d["slots"] = r["slots"]
        tot = np.array(r["train"]["U_L"]).sum(1) + np.array(r["train"]["U_F"]).sum(1)
        d["final_episode_reward"] = float(tot[-cfg.slots:].mean())
        report["schemes"][r["scheme"]] = d
    (out / "malppo_report.json").write_text(json.dumps(report, indent=1) + "\n")
    (out / "malppo_runs.json").write_text(json.dumps([{k: v for k, v in r.items()} for r in runs]) + "\n")
    plot_runs(runs, eq, out, cfg.slots)
    return report


__all__ = ["LearnConfig", "learn", "run_experiment", "distance_to_equilibrium", "SCHEMES"]
