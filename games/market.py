"""[VTM]'s bandwidth market: a multi-leader multi-follower Stackelberg game.

Leaders (MRPs, j = 1..M) post bandwidth prices p_j in [c_j, p_max]; followers
(MSPs, i = 1..N) buy b_ij >= 0 from every MRP. The model (docs/market.md):

* pairing probability  theta_j = (1/p_j) / sum_l (1/p_l)
* follower  U_Fi = sum_j theta_j (alpha_i b_ij - beta_i b_ij^2 + sum_k w_ik b_ij b_kj - kappa p_j b_ij)
* leader    U_Lj = theta_j kappa (p_j - c_j) sum_i b_ij
* delay     T_ij = a_i / b_ij + q_j + L_i / f_j,  a_i = D_i / (B0 log2(1 + SNR)), q_j = lam_j / (mu_j (mu_j - lam_j));
  bound     sum_j theta_j T_ij <= K_i  (T_ij is infinite when b_ij = 0).
  An MSP that breaks its bound gets no reward but still pays: U_Fi = -sum_j theta_j kappa p_j b_ij.

Pure numpy, no I/O; off-chain only (the chain settles posted prices and demands in
integers, ledger/txtypes/market.py, and never calls this module).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

import numpy as np

# prices as a list or an array: every function converts with np.asarray
Prices = Sequence[float] | np.ndarray

GRID_POINTS = 301          # the equilibrium check's price grid per leader (docs/market.md)
CHECK_REL_TOL = 1e-6       # an equilibrium passes when no unilateral deviation gains more (relative)
REL_FLOOR = 1e-6           # denominator floor of a relative gain (utility units)
BITS_PER_MB = 8_000_000    # D_i is in MB = 10^6 bytes (ours)


@dataclass(frozen=True)
class Radio:
    """Link budget of Sec. III-B (defaults: Sec. VI-A) and the bandwidth unit B0 (ours)."""
    rho_dbm: float = 40.0
    h_db: float = -20.0
    d_m: float = 500.0
    path_loss: float = 2.0
    n0_dbm: float = -150.0
    b0_hz: float = 1e7

    @property
    def snr(self) -> float:
        rho_w = 10 ** ((self.rho_dbm - 30) / 10)
        n0_w = 10 ** ((self.n0_dbm - 30) / 10)
        return rho_w * 10 ** (self.h_db / 10) * self.d_m ** (-self.path_loss) / n0_w

    @property
    def bits_per_unit(self) -> float:
        """Bits per second carried by one unit of bandwidth (B0 Hz)."""
        return self.b0_hz * math.log2(1.0 + self.snr)


@dataclass(frozen=True)
class MarketInstance:
    """One market: N followers (MSPs) and M leaders (MRPs). Sequences, validated on build."""
    alpha: tuple[float, ...]
    beta: tuple[float, ...]
    w: tuple[tuple[float, ...], ...]
    c: tuple[float, ...]
    p_max: float
    kappa: float
    D_mb: tuple[float, ...]
    L_mcycles: tuple[float, ...]
    K_s: tuple[float, ...]
    f_ghz: tuple[float, ...]
    lam: tuple[float, ...]
    mu: tuple[float, ...]
    radio: Radio = field(default_factory=Radio)

    @property
    def n(self) -> int:
        return len(self.alpha)

    @property
    def m(self) -> int:
        return len(self.c)

    def validate(self) -> None:
        """Raise ValueError naming the field (the CLI prints it as one line)."""
        n, m = self.n, self.m
        if n < 1:
            raise ValueError("alpha: need at least one MSP")
        if m < 1:
            raise ValueError("c: need at least one MRP")
        for name, length in (("beta", n), ("D_mb", n), ("L_mcycles", n), ("K_s", n), ("f_ghz", m),
                             ("lam", m), ("mu", m)):
            if len(getattr(self, name)) != length:
                raise ValueError(f"{name}: expected {length} values, got {len(getattr(self, name))}")
        if len(self.w) != n or any(len(row) != n for row in self.w):
            raise ValueError(f"w: expected an {n}x{n} matrix")
        vals = [("alpha", self.alpha), ("beta", self.beta), ("c", self.c), ("D_mb", self.D_mb),
                ("L_mcycles", self.L_mcycles), ("K_s", self.K_s), ("f_ghz", self.f_ghz), ("lam", self.lam),
                ("mu", self.mu), ("p_max", (self.p_max,)), ("kappa", (self.kappa,))]
        vals += [(f"w[{i}]", row) for i, row in enumerate(self.w)]
        for name, seq in vals:
            for k, x in enumerate(seq):
                if not math.isfinite(x):
                    raise ValueError(f"{name}[{k}]: must be finite")
        for name, seq in (("beta", self.beta), ("D_mb", self.D_mb), ("K_s", self.K_s), ("f_ghz", self.f_ghz),
                          ("mu", self.mu)):
            for k, x in enumerate(seq):
                if x <= 0:
                    raise ValueError(f"{name}[{k}]: must be > 0 (got {x})")
        for k, x in enumerate(self.L_mcycles):
            if x < 0:
                raise ValueError(f"L_mcycles[{k}]: must be >= 0")
        for j, (la, mu) in enumerate(zip(self.lam, self.mu)):
            if not 0 <= la < mu:
                raise ValueError(f"lam[{j}]: the M/M/1 queue needs 0 <= lam < mu (got {la}, mu {mu})")
        if self.kappa <= 0:
            raise ValueError("kappa: must be > 0")
        for j, cj in enumerate(self.c):
            if not 0 < cj <= self.p_max:
                raise ValueError(f"c[{j}]: must be in (0, p_max] (got {cj})")
        for i in range(n):
            if self.w[i][i] != 0:
                raise ValueError(f"w[{i}][{i}]: must be 0 (no self-tie)")
            for k in range(n):
                if self.w[i][k] != self.w[k][i]:
                    raise ValueError(f"w[{i}][{k}]: ties must be symmetric")
                if self.w[i][k] < 0:
                    raise ValueError(f"w[{i}][{k}]: ties must be >= 0")
            if 2 * self.beta[i] <= sum(self.w[i]):
                raise ValueError(f"beta[{i}]: need 2*beta_i > sum_k w_ik (followers' best responses "
                                 "must contract)")

    def scaled(self, factor: float) -> "MarketInstance":
        """alpha, beta and W times ``factor``, kappa times ``factor`` (the kappa-equivalence)."""
        return MarketInstance(tuple(a * factor for a in self.alpha), tuple(b * factor for b in self.beta),
                              tuple(tuple(x * factor for x in row) for row in self.w), self.c, self.p_max,
                              self.kappa * factor, self.D_mb, self.L_mcycles, self.K_s, self.f_ghz, self.lam,
                              self.mu, self.radio)


def make_instance(**kw: Any) -> MarketInstance:
    """Build and validate an instance from plain sequences (lists, numpy arrays)."""
    radio = kw.pop("radio", None) or Radio()
    tup = {k: tuple(float(x) for x in v) for k, v in kw.items() if k not in ("w", "p_max", "kappa")}
    inst = MarketInstance(w=tuple(tuple(float(x) for x in row) for row in kw["w"]), p_max=float(kw["p_max"]),
                          kappa=float(kw["kappa"]), radio=radio, **tup)
    inst.validate()
    return inst


# ----------------------------------------------------------------- model pieces
@dataclass(frozen=True)
class _Arrays:
    alpha: np.ndarray   # (N,)
    beta: np.ndarray    # (N,)
    w: np.ndarray       # (N, N)
    c: np.ndarray       # (M,)
    a: np.ndarray       # (N,) seconds of transmission per unit of bandwidth
    tau: np.ndarray     # (N, M) queue + re-instantiation delay
    K: np.ndarray       # (N,)
    kappa: float
    p_max: float
    unc_inv: np.ndarray  # (2 diag(beta) - W)^-1


def _arrays(inst: MarketInstance) -> _Arrays:
    alpha, beta = np.array(inst.alpha), np.array(inst.beta)
    w = np.array(inst.w, dtype=float).reshape(inst.n, inst.n)
    a = np.array(inst.D_mb) * BITS_PER_MB / inst.radio.bits_per_unit
    lam, mu = np.array(inst.lam), np.array(inst.mu)
    queue = lam / (mu * (mu - lam))
    recon = np.array(inst.L_mcycles)[:, None] * 1e6 / (np.array(inst.f_ghz)[None, :] * 1e9)
    return _Arrays(alpha, beta, w, np.array(inst.c), a, queue[None, :] + recon, np.array(inst.K_s),
                   inst.kappa, inst.p_max, np.linalg.inv(2 * np.diag(beta) - w))


def theta(prices: Prices) -> np.ndarray:
    """Pairing probabilities theta_j = (1/p_j) / sum_l (1/p_l) (last axis)."""
    inv = 1.0 / np.asarray(prices, dtype=float)
    return inv / inv.sum(axis=-1, keepdims=True)


def transmission_coeff(inst: MarketInstance) -> np.ndarray:
    """a_i: transmission delay of MSP i's twin over one unit (B0 Hz) of bandwidth, seconds."""
    return _arrays(inst).a


def delays(inst: MarketInstance, b: np.ndarray) -> np.ndarray:
    """T_ij (N, M) in seconds; infinite where b_ij = 0."""
    ar = _arrays(inst)
    b = np.asarray(b, dtype=float)
    with np.errstate(divide="ignore"):
        tran = np.where(b > 0, ar.a[:, None] / np.where(b > 0, b, 1.0), np.inf)
    return tran + ar.tau


def expected_delay(inst: MarketInstance, prices: Prices, b: np.ndarray) -> np.ndarray:
    """sum_j theta_j T_ij per MSP (N,)."""
    return (theta(prices)[None, :] * delays(inst, b)).sum(axis=1)


def delay_ok(inst: MarketInstance, prices: Prices, b: np.ndarray, slack: float = 1e-9) -> np.ndarray:
    return expected_delay(inst, prices, b) <= np.array(inst.K_s) * (1 + slack)


def payments(inst: MarketInstance, prices: Prices, b: np.ndarray) -> np.ndarray:
    """Expected payment of MSP i to MRP j: theta_j kappa p_j b_ij (N, M)."""
    p = np.asarray(prices, dtype=float)
    return theta(p)[None, :] * inst.kappa * p[None, :] * np.asarray(b, dtype=float)


def follower_utilities(inst: MarketInstance, prices: Prices, b: np.ndarray) -> np.ndarray:
    """U_Fi (N,): eq. (1) with kappa; -payment for an MSP that breaks its delay bound."""
    ar = _arrays(inst)
    p, b = np.asarray(prices, dtype=float), np.asarray(b, dtype=float)
    th = theta(p)
    social = ar.w @ b  # (N, M): sum_k w_ik b_kj
    gross = (th[None, :] * b * (ar.alpha[:, None] - ar.beta[:, None] * b + social - ar.kappa * p[None, :])).sum(1)
    ok = delay_ok(inst, p, b)
    return np.where(ok, gross, -payments(inst, p, b).sum(axis=1))


def leader_utilities(inst: MarketInstance, prices: Prices, b: np.ndarray) -> np.ndarray:
    """U_Lj (M,) = theta_j kappa (p_j - c_j) sum_i b_ij."""
    p = np.asarray(prices, dtype=float)
    return theta(p) * inst.kappa * (p - np.array(inst.c)) * np.asarray(b, dtype=float).sum(axis=0)


# ----------------------------------------------------------------- follower best response (batched)
def _cubic_root(g: np.ndarray, beta: float, c: np.ndarray) -> np.ndarray:
    """Positive root of 2 beta b^3 - g b^2 = c (c > 0): Cardano for g >= 0, then Newton polish.

    f(b) = 2 beta b^3 - g b^2 - c has exactly one positive root for c > 0 and is
    convex right of it, so Newton from a point right of the root converges monotonically.
    """
    s = g / (6 * beta)
    cc = c / (2 * beta)
    sp = np.maximum(s, 0.0)
    s3 = sp ** 3
    arg = (2 * s3 + cc + np.sqrt(np.maximum(cc * (4 * s3 + cc), 0.0))) / 2
    A = np.cbrt(arg)
    card = A + np.where(A > 0, sp * sp / np.where(A > 0, A, 1.0), 0.0) + sp
    start = np.maximum(g, 0.0) / (2 * beta) + np.cbrt(cc)  # f(start) >= 0
    b = np.where(s >= 0, card, start)
    for _ in range(60):
        f = b * b * (2 * beta * b - g) - c
        df = b * (6 * beta * b - 2 * g)
        step = f / np.where(df > 0, df, 1.0)
        b_new = np.maximum(b - step, b * 0.5)
        if np.all(np.abs(b_new - b) <= 1e-15 * np.maximum(b, 1e-300)):
            b = b_new
            break
        b = b_new
    return b


def _follower_br_batch(g: np.ndarray, th: np.ndarray, beta: float, a: float, R: np.ndarray,
                       eta0: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Best response of one MSP for a batch of situations.

    g (G, M) = alpha_i + sum_k w_ik b_kj - kappa p_j; th (G, M); R (G,) = K_i - sum_j theta_j tau_ij.
    Returns (b (G, M), eta (G,), status (G,): 0 free, 1 delay bound binds, 2 drops out).

    KKT: theta_j cancels from each stationarity condition, so for a multiplier eta
    b_ij solves 2 beta b^3 - g_j b^2 = eta a (eta = 0: b = g_j / 2 beta); eta is the
    unique root of sum_j theta_j a / b_j(eta) = R (decreasing in eta). If the
    bound cannot be met (R <= 0) or meeting it costs more than it is worth
    (utility < 0), buying nothing (utility 0) is better.
    """
    G, M = g.shape
    b = np.maximum(g, 0.0) / (2 * beta)
    eta = np.zeros(G)
    status = np.zeros(G, dtype=np.int8)
    with np.errstate(divide="ignore"):
        load = np.where(np.all(b > 0, axis=1), (th * a / np.where(b > 0, b, 1.0)).sum(axis=1), np.inf)
    need = load > R
    if not need.any():
        return b, eta, status
    feasible = need & (R > 0)
    out = need & ~feasible
    idx = np.nonzero(feasible)[0]
    if idx.size:
        gs, ts, Rs = g[idx], th[idx], R[idx]
        bstar = 2 * a / Rs  # b_j >= bstar for all j  =>  load <= R / 2
        hi = np.max(bstar[:, None] ** 2 * (2 * beta * bstar[:, None] - gs), axis=1) / a
        hi = np.maximum(hi, 1e-300)
        lo = np.zeros_like(hi)
        e = hi.copy() if eta0 is None else np.clip(eta0[idx], 0, hi)
        e = np.where(e > 0, e, hi * 0.5)
        for _ in range(200):
            bb = _cubic_root(gs, beta, e[:, None] * a)
            h = (ts * a / bb).sum(axis=1) - Rs
            lo = np.where(h > 0, e, lo)
            hi = np.where(h <= 0, e, hi)
            dbde = a / (bb * (6 * beta * bb - 2 * gs))
            dh = -(ts * a / bb ** 2 * dbde).sum(axis=1)
            newton = e - h / np.where(dh < 0, dh, -1.0)
            mid = np.where(lo > 0, np.sqrt(lo * hi), hi * 0.5)
            e_new = np.where((newton > lo) & (newton < hi), newton, mid)
            done = np.abs(h) <= 1e-13 * Rs
            if np.all(done) or np.all(np.abs(e_new - e) <= 1e-15 * e):
                break
            e = np.where(done, e, e_new)
        bb = _cubic_root(gs, beta, e[:, None] * a)
        util = (ts * bb * (gs - beta * bb)).sum(axis=1)
        drop = util < 0
        b[idx] = np.where(drop[:, None], 0.0, bb)
        eta[idx] = np.where(drop, 0.0, e)
        status[idx] = np.where(drop, 2, 1)
    b[out] = 0.0
    status[out] = 2
    return b, eta, status


def _follower_eq_batch(ar: _Arrays, P: np.ndarray, B0: np.ndarray | None = None, tol: float = 1e-13,
                       max_sweeps: int = 5000) -> tuple[np.ndarray, np.ndarray, np.ndarray, int, bool]:
    """Followers' Nash equilibrium for a batch of price vectors P (G, M).

    Starts from the closed form of the unconstrained game (per column j:
    (2 diag(beta) - W) b_j = alpha - kappa p_j); batch members where every
    follower is interior and meets its delay bound are done. The rest iterate
    Gauss-Seidel best responses (a contraction when 2 beta_i > sum_k w_ik).
    Returns (B (G, N, M), eta (G, N), status (G, N), sweeps, converged).
    """
    G, M = P.shape
    N = ar.alpha.shape[0]
    th = theta(P)
    R = ar.K[None, :] - th @ ar.tau.T  # (G, N)
    B = np.einsum("ik,gkm->gim", ar.unc_inv, ar.alpha[None, :, None] - ar.kappa * P[:, None, :])
    with np.errstate(divide="ignore"):
        load = np.where(np.all(B > 0, axis=2), (th[:, None, :] * ar.a[None, :, None] /
                                                np.where(B > 0, B, 1.0)).sum(axis=2), np.inf)
    eta = np.zeros((G, N))
    status = np.zeros((G, N), dtype=np.int8)
    todo = np.nonzero(np.any(load > R, axis=1))[0]
    if todo.size == 0:
        return B, eta, status, 0, True
    Pt, tht, Rt = P[todo], th[todo], R[todo]
    Bt = B[todo] if B0 is None else np.array(B0[todo], dtype=float)
    Bt = np.maximum(Bt, 0.0)
    et = np.zeros((todo.size, N))
    st = np.zeros((todo.size, N), dtype=np.int8)
    converged = False
    sweeps = 0
    active = np.arange(todo.size)
    for sweeps in range(1, max_sweeps + 1):  # noqa: B007 - read after the loop
        delta = np.zeros(active.size)
        for i in range(N):
            Ba = Bt[active]
            g = ar.alpha[i] + np.einsum("k,gkm->gm", ar.w[i], Ba) - ar.kappa * Pt[active]
            bi, ei, si = _follower_br_batch(g, tht[active], ar.beta[i], ar.a[i], Rt[active, i], et[active, i])
            delta = np.maximum(delta, np.abs(bi - Ba[:, i, :]).max(axis=1))
            Bt[active, i, :] = bi
            et[active, i] = ei
            st[active, i] = si
        still = delta > tol * np.maximum(1.0, Bt[active].max(axis=(1, 2)))
        active = active[still]
        if active.size == 0:
            converged = True
            break
    B[todo], eta[todo], status[todo] = Bt, et, st
    return B, eta, status, sweeps, converged


@dataclass(frozen=True)
class FollowerEquilibrium:
    demands: np.ndarray  # (N, M)
    eta: np.ndarray      # (N,) delay-bound multipliers (0 = bound slack)
    status: tuple[str, ...]  # "free" | "binding" | "out"
    sweeps: int
    converged: bool


_STATUS = ("free", "binding", "out")


def follower_best_response(inst: MarketInstance, prices: Prices, b: np.ndarray, i: int
                           ) -> tuple[np.ndarray, float, str]:
    """MSP i's exact best response (b_i (M,), eta, status) to prices and the others' demands."""
    ar = _arrays(inst)
    p = np.asarray(prices, dtype=float)[None, :]
    b = np.asarray(b, dtype=float)
    th = theta(p)
    g = ar.alpha[i] + (ar.w[i] @ b)[None, :] - ar.kappa * p
    R = np.array([ar.K[i] - float(th[0] @ ar.tau[i])])
    bi, ei, si = _follower_br_batch(g, th, float(ar.beta[i]), float(ar.a[i]), R)
    return bi[0], float(ei[0]), _STATUS[int(si[0])]


def follower_equilibrium(inst: MarketInstance, prices: Prices) -> FollowerEquilibrium:
    """Followers' Nash equilibrium at the given prices."""
    ar = _arrays(inst)
    B, eta, st, sweeps, conv = _follower_eq_batch(ar, np.asarray(prices, dtype=float)[None, :])
    return FollowerEquilibrium(B[0], eta[0], tuple(_STATUS[int(s)] for s in st[0]), sweeps, conv)


def _leader_utils_batch(ar: _Arrays, P: np.ndarray, B: np.ndarray) -> np.ndarray:
    """U_L (G, M) for a batch."""
    return theta(P) * ar.kappa * (P - ar.c[None, :]) * B.sum(axis=1)


# ----------------------------------------------------------------- leaders
def price_grid(inst: MarketInstance, j: int, points: int = GRID_POINTS) -> np.ndarray:
    return np.linspace(inst.c[j], inst.p_max, points)


def leader_best_response(inst: MarketInstance, prices: Prices, j: int, *, points: int = GRID_POINTS,
                         refine: int = 6, B_warm: np.ndarray | None = None) -> tuple[float, float]:
    """MRP j's best price against the others' prices, anticipating the followers' equilibrium.

    Backward induction by search: U_Lj on a ``points`` grid of [c_j, p_max] (followers
    re-solving at every point, social feedback included), then ``refine`` passes of a
    21-point grid around the best point so far, each 10x finer. The utility is not
    concave once a delay bound binds (followers forced to buy more, or dropping out),
    so no derivative condition is trusted. Returns (price, utility).
    """
    return _leader_br(_arrays(inst), np.asarray(prices, dtype=float), j, points, refine, B_warm)


def _leader_br(ar: _Arrays, p: np.ndarray, j: int, points: int, refine: int,
               B_warm: np.ndarray | None) -> tuple[float, float]:
    lo_all, hi_all = float(ar.c[j]), float(ar.p_max)
    xs = np.linspace(lo_all, hi_all, points)
    best_x, best_u = float(p[j]), -np.inf
    # include the current price so a best response never does worse than staying
    xs = np.append(xs, p[j])
    step = (hi_all - lo_all) / (points - 1)
    for level in range(refine + 1):
        P = np.repeat(p[None, :], xs.size, axis=0)
        P[:, j] = xs
        warm = None if B_warm is None else np.repeat(B_warm[None], xs.size, axis=0)
        B, _, _, _, _ = _follower_eq_batch(ar, P, warm)
        u = _leader_utils_batch(ar, P, B)[:, j]
        k = int(np.argmax(u))
        if u[k] > best_u:
            best_u, best_x = float(u[k]), float(xs[k])
        if level == refine:
            break
        lo, hi = max(lo_all, best_x - step), min(hi_all, best_x + step)
        xs = np.linspace(lo, hi, 21)
        step = (hi - lo) / 20
    return _polish_smooth_max(ar, p, j, best_x, best_u)


POLISH_H = 1e-4            # finite-difference half-width of the leader's polish, relative to [c_j, p_max]
POLISH_KEEP = 1e-14        # a polished price may lose this much utility (relative) to the grid's best: noise


def _polish_smooth_max(ar: _Arrays, p: np.ndarray, j: int, x: float, u: float) -> tuple[float, float]:
    """Newton steps on dU_Lj/dp_j (finite differences) from the grid's best price.

    Why: at a smooth maximum U_Lj is flat to second order, so comparing utilities
    resolves the maximiser only to about sqrt(machine eps) (~1e-8 in price): the
    grid's argmax among near-ties is decided by rounding noise, and the leaders'
    Gauss-Seidel sweep then cycles with an amplitude of ~2e-8, above the solver's
    1e-8 tolerance (found by the property test; tests/market/test_market_game.py).
    The zero of the derivative is well conditioned. The derivative is the
    five-point stencil (bias O(h^4), ~1e-16 with h = 1e-4 of the price range, where
    the three-point one was off by ~1e-8 in price); the second difference only
    scales the step, so its O(h^2) error slows Newton but does not move its fixed point.
    Only used where the maximum is smooth: the stencil must stay inside
    [c_j, p_max], every follower must keep its regime (free / binding / out) across
    it (a regime change is a kink, where the grid search is already exact), the
    curvature must be negative and the step must stay inside the stencil;
    otherwise the grid's answer stands. The polished price may not lose more than
    rounding noise (POLISH_KEEP, relative) of the grid's best utility.
    """
    lo_all, hi_all = float(ar.c[j]), float(ar.p_max)
    h = POLISH_H * (hi_all - lo_all)
    if h <= 0:
        return x, u
    x0, u0 = x, u
    offsets = np.array([-2.0, -1.0, 0.0, 1.0, 2.0]) * h
    for _ in range(4):
        if x - 2 * h < lo_all or x + 2 * h > hi_all:
            break
        P = np.repeat(p[None, :], 5, axis=0)
        P[:, j] = x + offsets
        B, _, st, _, conv = _follower_eq_batch(ar, P)
        if not conv or not np.all(st == st[2]):
            break
        u2m, um, uc, up, u2p = _leader_utils_batch(ar, P, B)[:, j]
        curv = (up - 2 * uc + um) / (h * h)
        if not curv < 0:
            break
        slope = (8 * (up - um) - (u2p - u2m)) / (12 * h)
        dx = -slope / curv
        if not abs(dx) <= h:
            break
        x = x + dx
        if abs(dx) <= 1e-6 * h:
            break
    if x == x0:
        return x0, u0
    P = p[None, :].copy()
    P[0, j] = x
    B, _, _, _, conv = _follower_eq_batch(ar, P)
    ux = float(_leader_utils_batch(ar, P, B)[0, j])
    if not conv or not ux >= u0 - POLISH_KEEP * max(abs(u0), REL_FLOOR):
        return x0, u0
    return x, max(ux, u0)


@dataclass(frozen=True)
class Equilibrium:
    prices: np.ndarray        # (M,)
    demands: np.ndarray       # (N, M)
    U_L: np.ndarray
    U_F: np.ndarray
    theta: np.ndarray
    eta: np.ndarray
    status: tuple[str, ...]
    iterations: int
    converged: bool

    @property
    def delay_binding(self) -> list[bool]:
        return [s == "binding" for s in self.status]


def solve(inst: MarketInstance, start: Sequence[float] | None = None, *, tol: float = 1e-8,
          max_iter: int = 200, points: int = GRID_POINTS) -> Equilibrium:
    """Stackelberg equilibrium by Gauss-Seidel backward induction.

    Leaders update in turn (j = 1..M), each to its best response against the current
    prices of the others with the followers' equilibrium anticipated; stop when a
    whole sweep moves no price by more than ``tol``. Simultaneous (Jacobi) updates
    can cycle once a delay bound binds, where two equilibria may exist; ``start``
    picks the starting prices (default: mid-points of [c_j, p_max]).
    """
    inst.validate()
    ar = _arrays(inst)
    if start is None:
        p = (ar.c + ar.p_max) / 2
    else:
        p = np.clip(np.asarray(start, dtype=float), ar.c, ar.p_max)
        if p.shape != (inst.m,):
            raise ValueError(f"start: expected {inst.m} prices")
    converged = False
    it = 0
    for it in range(1, max_iter + 1):  # noqa: B007 - read after the loop
        moved = 0.0
        for j in range(inst.m):
            x, _ = _leader_br(ar, p, j, points, 6, None)
            moved = max(moved, abs(x - p[j]))
            p[j] = x
        if moved <= tol:
            converged = True
            break
    fe = follower_equilibrium(inst, p)
    return Equilibrium(p.copy(), fe.demands, leader_utilities(inst, p, fe.demands),
                       follower_utilities(inst, p, fe.demands), theta(p), fe.eta, fe.status, it,
                       converged and fe.converged)


# ----------------------------------------------------------------- the equilibrium check
@dataclass(frozen=True)
class Check:
    max_leader_gain: float
    max_follower_gain: float
    leader_gains: tuple[float, ...]
    follower_gains: tuple[float, ...]
    best_deviation_prices: tuple[float, ...]

    @property
    def ok(self) -> bool:
        return self.max_leader_gain <= CHECK_REL_TOL and self.max_follower_gain <= CHECK_REL_TOL

    def to_dict(self) -> dict[str, Any]:
        return {"max_leader_gain": self.max_leader_gain, "max_follower_gain": self.max_follower_gain,
                "leader_gains": list(self.leader_gains), "follower_gains": list(self.follower_gains),
                "passed": self.ok, "tolerance": CHECK_REL_TOL, "grid_points": GRID_POINTS}


def _rel_gain(best: float, cur: float) -> float:
    return max(0.0, best - cur) / max(abs(cur), REL_FLOOR)


def _independent_follower_best(inst: MarketInstance, prices: np.ndarray, b: np.ndarray, i: int) -> float:
    """Best utility MSP i reaches by a feasible deviation, found by SLSQP (independent of the solver)."""
    from scipy.optimize import minimize

    ar = _arrays(inst)
    th = theta(prices)
    g = ar.alpha[i] + ar.w[i] @ b - ar.kappa * prices
    R = ar.K[i] - float(th @ ar.tau[i])
    if R <= 0:
        return 0.0  # no demand meets the bound: the best is to buy nothing

    def neg_u(x: np.ndarray) -> float:
        return -float(th @ (x * (g - ar.beta[i] * x)))

    def neg_grad(x: np.ndarray) -> np.ndarray:
        return -(th * (g - 2 * ar.beta[i] * x))

    cons = {"type": "ineq", "fun": lambda x: R - float(th @ (ar.a[i] / x)),
            "jac": lambda x: th * ar.a[i] / x ** 2}
    best = 0.0
    starts = [np.maximum(b[i], 1e-6), np.full(inst.m, 2 * ar.a[i] / R),
              np.maximum(g / (2 * ar.beta[i]), 2 * ar.a[i] / R)]
    for x0 in starts:
        res = minimize(neg_u, x0, jac=neg_grad, constraints=[cons], bounds=[(1e-9, None)] * inst.m,
                       method="SLSQP", options={"ftol": 1e-15, "maxiter": 500})
        x = res.x
        if not np.all(x > 0):
            continue
        # SLSQP meets the bound only to its own tolerance; scaling the demands up by load / R puts the
        # deviation on the bound (load is 1/x-homogeneous). Without it a 5e-13 violation was worth
        # ~1e-11 of utility, which fails the check for an MSP whose utility is ~0 (it then sits
        # right at the drop-out kink a leader's price pushes it to).
        x = x * max(1.0, float(th @ (ar.a[i] / x)) / R)
        if float(th @ (ar.a[i] / x)) <= R * (1 + 1e-12):
            best = max(best, -neg_u(x))
    return best


def check_equilibrium(inst: MarketInstance, prices: Prices, demands: np.ndarray,
                      points: int = GRID_POINTS) -> Check:
    """docs/market.md's check of a posted point (prices, demands); verifies, never re-solves the game.

    Leaders: every price on a ``points`` grid of [c_j, p_max] with the followers
    re-solving their equilibrium; followers: the best feasible deviation of each
    MSP's own demands (exact KKT response, an independent SLSQP search, and buying
    nothing), others fixed. Gains are relative: (best - current) / max(|current|, 1e-6).
    """
    ar = _arrays(inst)
    p = np.asarray(prices, dtype=float)
    b = np.asarray(demands, dtype=float)
    cur_L = leader_utilities(inst, p, b)
    cur_F = follower_utilities(inst, p, b)
    lg, best_dev = [], []
    for j in range(inst.m):
        xs = price_grid(inst, j, points)
        P = np.repeat(p[None, :], xs.size, axis=0)
        P[:, j] = xs
        B, _, _, _, _ = _follower_eq_batch(ar, P)
        u = _leader_utils_batch(ar, P, B)[:, j]
        k = int(np.argmax(u))
        lg.append(_rel_gain(float(u[k]), float(cur_L[j])))
        best_dev.append(float(xs[k]))
    fg = []
    for i in range(inst.n):
        bi, _, _ = follower_best_response(inst, p, b, i)
        alt = b.copy()
        alt[i] = bi
        u_br = float(follower_utilities(inst, p, alt)[i])
        u_ind = _independent_follower_best(inst, p, b, i)
        fg.append(_rel_gain(max(u_br, u_ind, 0.0), float(cur_F[i])))
    return Check(max(lg), max(fg), tuple(lg), tuple(fg), tuple(best_dev))


# ----------------------------------------------------------------- JSON form (CLI)
RADIO_KEYS = {"rho_dbm": "rho_dbm", "h_db": "h_db", "d_m": "d_m", "path_loss": "path_loss", "n0_dbm": "n0_dbm",
              "b0_hz": "b0_hz"}
VECTOR_KEYS_N = ("alpha", "beta", "D_mb", "L_mcycles", "K_s")
VECTOR_KEYS_M = ("c", "f_ghz", "lam", "mu")


def _num(doc: Mapping[str, Any], key: str) -> float:
    v = doc[key]
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        raise ValueError(f"{key}: must be a number")
    return float(v)


def _vec(doc: Mapping[str, Any], key: str) -> tuple[float, ...]:
    v = doc[key]
    if not isinstance(v, list) or not v:
        raise ValueError(f"{key}: must be a non-empty list of numbers")
    out = []
    for k, x in enumerate(v):
        if isinstance(x, bool) or not isinstance(x, (int, float)):
            raise ValueError(f"{key}[{k}]: must be a number")
        out.append(float(x))
    return tuple(out)


def instance_from_json(doc: Any) -> MarketInstance:
    """Parse the CLI's input object (keys of docs/market.md); ValueError names the field."""
    if not isinstance(doc, dict):
        raise ValueError("input: must be a JSON object")
    required = VECTOR_KEYS_N + VECTOR_KEYS_M + ("w", "p_max", "kappa")
    for key in required:
        if key not in doc:
            raise ValueError(f"{key}: required")
    known = set(required) | set(RADIO_KEYS) | {"comment", "name"}
    for key in doc:
        if key not in known:
            raise ValueError(f"{key}: unknown key")
    w = doc["w"]
    if not isinstance(w, list) or not all(isinstance(r, list) for r in w):
        raise ValueError("w: must be a list of lists (N x N)")
    rows = []
    for i, row in enumerate(w):
        rows.append(tuple(_vec({f"w[{i}]": row}, f"w[{i}]")) if row else ())
    radio = Radio(**{attr: _num(doc, key) for key, attr in RADIO_KEYS.items() if key in doc})
    inst = MarketInstance(alpha=_vec(doc, "alpha"), beta=_vec(doc, "beta"), w=tuple(rows), c=_vec(doc, "c"),
                          p_max=_num(doc, "p_max"), kappa=_num(doc, "kappa"), D_mb=_vec(doc, "D_mb"),
                          L_mcycles=_vec(doc, "L_mcycles"), K_s=_vec(doc, "K_s"), f_ghz=_vec(doc, "f_ghz"),
                          lam=_vec(doc, "lam"), mu=_vec(doc, "mu"), radio=radio)
    inst.validate()
    return inst


def equilibrium_to_json(inst: MarketInstance, eq: Equilibrium, check: Check) -> dict[str, Any]:
    return {
        "prices": eq.prices.tolist(), "demands": eq.demands.tolist(), "U_L": eq.U_L.tolist(),
        "U_F": eq.U_F.tolist(), "theta": eq.theta.tolist(), "delay_binding": eq.delay_binding,
        "follower_status": list(eq.status), "eta": eq.eta.tolist(),
        "expected_delay_s": expected_delay(inst, eq.prices, eq.demands).tolist(),
        "check": check.to_dict(), "iterations": eq.iterations, "converged": eq.converged,
    }


def random_instance(rng: np.random.Generator, n: int, m: int, *, kappa: float = 15.5, mu_alpha: float = 30.0,
                    mu_c: float = 0.1, mu_w: float = 5.0, p_max: float = 1.5) -> MarketInstance:
    """An instance drawn as in Sec. VI-A, clipped to the model's domain (ours): W symmetric with
    zero diagonal and w >= 0, c_j in [0.01, p_max], f_j >= 3 GHz, lam_j <= mu_j - 5."""
    alpha = rng.normal(mu_alpha, 1.0, n)
    beta = rng.normal(30.0, 1.0, n)
    w = np.triu(np.clip(rng.normal(mu_w, 1.0, (n, n)), 0.0, None), 1)
    w = w + w.T
    c = np.clip(rng.normal(mu_c, 0.05, m), 0.01, p_max)
    mu = rng.normal(500, 20, m)
    lam = np.minimum(rng.normal(450, 20, m), mu - 5)
    return make_instance(alpha=alpha, beta=beta, w=w, c=c, p_max=p_max, kappa=kappa,
                         D_mb=rng.uniform(10, 50, n), L_mcycles=np.clip(rng.normal(5000, 500, n), 1000, None),
                         K_s=rng.uniform(2, 4, n), f_ghz=np.clip(rng.normal(15, 5, m), 3.0, None), lam=lam, mu=mu)


def fig3_instance(kappa: float = 15.5) -> MarketInstance:
    """[VTM]'s Fig. 3 (N = 3, M = 2; alpha 30/25/35, c 0.3/0.1); unreported draws at their means (ours)."""
    return make_instance(alpha=[30, 25, 35], beta=[30, 30, 30], w=[[0, 5, 5], [5, 0, 5], [5, 5, 0]], c=[0.3, 0.1],
                         p_max=1.5, kappa=kappa, D_mb=[30, 30, 30], L_mcycles=[5000, 5000, 5000], K_s=[3, 3, 3],
                         f_ghz=[15, 15], lam=[450, 450], mu=[500, 500])
