"""Similarity, contribution and reputation (docs/model.md eqs. 11-18).

Scalar functions use ``math.fsum`` (exactly rounded sums) and the portable
``games.pmath`` (no libm ``exp``/``pow``) so every peer gets the same bits
whatever its CPU; ``reputation_matrix`` is the vectorised form used by round
planning, checked against the scalar functions in the tests.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Iterable, Mapping, Sequence

import numpy as np

from pocnet.games import pmath
from pocnet.games.params import GameParams


@dataclass(frozen=True)
class ContributionRecord:
    """q_i earned in one round, and the head the learner worked with."""

    round: int
    head: str
    q: float


@dataclass(frozen=True)
class ReputationHistory:
    """One learner's record of contributions, oldest first (what the chain keeps)."""

    records: tuple[ContributionRecord, ...] = ()

    def add(self, round_no: int, head: str, q: float) -> "ReputationHistory":
        """A new history with one more record; rounds must increase."""
        if self.records and round_no <= self.records[-1].round:
            raise ValueError(f"round: {round_no} is not after the last recorded round {self.records[-1].round}")
        if not (0.0 <= q <= 1.0):
            raise ValueError(f"q: must be in [0, 1], got {q!r}")
        return ReputationHistory(self.records + (ContributionRecord(int(round_no), str(head), float(q)),))

    @property
    def last_round(self) -> int | None:
        return self.records[-1].round if self.records else None

    def to_list(self) -> list[list]:
        """JSON form: [[round, head, q], ...]."""
        return [[r.round, r.head, r.q] for r in self.records]

    @classmethod
    def from_list(cls, items: Iterable[Sequence]) -> "ReputationHistory":
        hist = cls()
        for item in items:
            if len(item) != 3:
                raise ValueError("history entries must be [round, head, q]")
            rnd, head, q = item
            hist = hist.add(int(rnd), str(head), float(q))
        return hist


EMPTY_HISTORY = ReputationHistory()


def similarity(a: Sequence[float], b: Sequence[float]) -> float:
    """s = max(0, cos(a, b)) (eq. 13); 0 when either vector is zero."""
    if len(a) != len(b):
        raise ValueError(f"embedding: length mismatch {len(a)} != {len(b)}")
    dot = math.fsum(x * y for x, y in zip(a, b))
    na = math.sqrt(math.fsum(x * x for x in a))
    nb = math.sqrt(math.fsum(y * y for y in b))
    if na == 0.0 or nb == 0.0:
        return 0.0
    return min(1.0, max(0.0, dot / (na * nb)))


def reputation_fn(r: float, params: GameParams) -> float:
    """Phi(r) = 2 rho0 / (1 + exp(-theta (r - r_th))) (eq. 11, logistic ours)."""
    z = -params.theta * (r - params.r_th)
    if z > 700.0:  # exp would overflow; Phi is 0 to double precision
        return 0.0
    return 2.0 * params.rho0 / (1.0 + pmath.exp(z))


def coalition_reputation(reputations: Sequence[float]) -> float:
    """r_bar_k = mean of the members' overall reputations (eq. 12)."""
    if len(reputations) == 0:
        raise ValueError("coalition_reputation: empty coalition")
    return math.fsum(reputations) / len(reputations)


def contributions(loss_reductions: Sequence[float], times: Sequence[float], params: GameParams) -> list[float]:
    """q_i = omega phi_loss + (1 - omega) phi_time within one coalition (eqs. 14-15).

    Loss reductions are clipped at 0; each part is min-max normalised inside
    the coalition (1 when all values are equal), so the least useful and
    slowest member scores 0 and q stays in [0, 1].
    """
    if len(loss_reductions) != len(times):
        raise ValueError("contributions: loss_reductions and times differ in length")
    for name, seq in (("loss_reductions", loss_reductions), ("times", times)):
        for x in seq:
            if not math.isfinite(x):
                raise ValueError(f"{name}: non-finite value {x!r}")
    if not loss_reductions:
        return []
    ell = [max(0.0, float(x)) for x in loss_reductions]
    lo, hi = min(ell), max(ell)
    t_lo, t_hi = min(times), max(times)
    out = []
    for li, ti in zip(ell, times):
        phi_loss = 1.0 if hi == lo else (li - lo) / (hi - lo)
        phi_time = 1.0 if t_hi == t_lo else (t_hi - ti) / (t_hi - t_lo)
        q = params.omega * phi_loss + (1.0 - params.omega) * phi_time
        out.append(min(1.0, max(0.0, q)))
    return out


def _decay_weights(history: ReputationHistory, params: GameParams) -> list[float]:
    """theta^(t - tau) relative to the latest record (the normalisation cancels t)."""
    t = history.records[-1].round
    return [pmath.powi(params.decline, t - r.round) for r in history.records]


def global_reputation(history: ReputationHistory, params: GameParams) -> float:
    """R^g = sum theta^(t-tau) q / sum theta^(t-tau) (eq. 16); newcomers get r_th."""
    if not history.records:
        return params.r_th
    w = _decay_weights(history, params)
    num = math.fsum(wi * r.q for wi, r in zip(w, history.records))
    den = math.fsum(w)
    return min(1.0, max(0.0, num / den))


def head_similarity(past_head: str, head: str, embeddings: Mapping[str, Sequence[float]]) -> float:
    """sigma(h', h): 1 for the same head (direct trust), else clipped cosine (indirect)."""
    if past_head == head:
        return 1.0
    a = embeddings.get(past_head)
    b = embeddings.get(head)
    if a is None or b is None:
        return 0.0
    return similarity(a, b)


def task_specific_reputation(
    history: ReputationHistory,
    head: str,
    head_embeddings: Mapping[str, Sequence[float]],
    params: GameParams,
) -> float:
    """R^ts_{i,h} (eq. 17, direct + indirect in one weighted mean); 0 without related history."""
    if not history.records:
        return 0.0
    w = _decay_weights(history, params)
    sig = [head_similarity(r.head, head, head_embeddings) for r in history.records]
    den = math.fsum(wi * si for wi, si in zip(w, sig))
    if den <= 0.0:
        return 0.0
    num = math.fsum(wi * si * r.q for wi, si, r in zip(w, sig, history.records))
    return min(1.0, max(0.0, num / den))


def overall_reputation(
    history: ReputationHistory,
    head: str,
    head_embeddings: Mapping[str, Sequence[float]],
    params: GameParams,
) -> float:
    """r_{i,k} = lam R^g + (1 - lam) R^ts_{i,h_k} (eq. 18)."""
    g = global_reputation(history, params)
    ts = task_specific_reputation(history, head, head_embeddings, params)
    return params.lam * g + (1.0 - params.lam) * ts


def unit_rows(vectors: np.ndarray) -> np.ndarray:
    """Rows scaled to unit length (zero rows stay zero); squares summed one dimension at a time (fixed order)."""
    sq = np.zeros(vectors.shape[0])
    for d in range(vectors.shape[1]):
        sq += vectors[:, d] * vectors[:, d]
    norms = np.sqrt(sq)  # sqrt is correctly rounded (IEEE-754), hence portable
    safe = np.where(norms > 0, norms, 1.0)
    return vectors / safe[:, None]


def cosine_matrix(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """max(0, cos) between every row of a and every row of b.

    Accumulates one embedding dimension at a time instead of calling BLAS, so
    the summation order (and hence the bits) is fixed on every machine.
    """
    if a.shape[1] != b.shape[1]:
        raise ValueError(f"embedding: dimension mismatch {a.shape[1]} != {b.shape[1]}")
    ua, ub = unit_rows(a), unit_rows(b)
    out = np.zeros((a.shape[0], b.shape[0]))
    for d in range(a.shape[1]):
        out += ua[:, d, None] * ub[None, :, d]
    return np.clip(out, 0.0, 1.0)


def reputation_matrix(
    learners: Sequence[str],
    heads: Sequence[str],
    histories: Mapping[str, ReputationHistory],
    embeddings: Mapping[str, Sequence[float]],
    params: GameParams,
) -> tuple[np.ndarray, np.ndarray]:
    """(R^g per learner, r_{i,k} for every learner x head), vectorised over heads."""
    n, k = len(learners), len(heads)
    glob = np.full(n, params.r_th)
    ts = np.zeros((n, k))
    head_index = {h: j for j, h in enumerate(heads)}
    dims = {len(e) for e in embeddings.values()}
    if len(dims) > 1:
        raise ValueError("embedding: all embeddings must have the same length")
    dim = dims.pop() if dims else 0
    head_emb = np.array([embeddings.get(h, [0.0] * dim) for h in heads], dtype=float).reshape(k, dim)
    head_unit = unit_rows(head_emb) if k else head_emb
    sim_cache: dict[str, np.ndarray] = {}

    def sigma_row(past: str) -> np.ndarray:
        row = sim_cache.get(past)
        if row is None:
            if past in embeddings and k:
                e = np.asarray(embeddings[past], dtype=float)[None, :]
                row = cosine_matrix(e, head_unit)[0]
                row = np.where(np.array([h in embeddings for h in heads]), row, 0.0)
            else:
                row = np.zeros(k)
            if past in head_index:
                row = row.copy()
                row[head_index[past]] = 1.0
            sim_cache[past] = row
        return row

    for i, addr in enumerate(learners):
        hist = histories.get(addr)
        if hist is None or not hist.records:
            continue
        glob[i] = global_reputation(hist, params)
        t = hist.records[-1].round
        num = np.zeros(k)
        den = np.zeros(k)
        for rec in hist.records:
            w = pmath.powi(params.decline, t - rec.round)
            sig = sigma_row(rec.head)
            den += w * sig
            num += (w * rec.q) * sig
        ts[i] = np.clip(np.divide(num, den, out=np.zeros(k), where=den > 0), 0.0, 1.0)
    overall = params.lam * glob[:, None] + (1.0 - params.lam) * ts
    return glob, overall
