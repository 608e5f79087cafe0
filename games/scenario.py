"""Seeded synthetic learner populations for tests, benchmarks and examples.

Draws follow docs/model.md's ranges (ours): f_min ~ U[0.1, 0.5] GHz and
f_max ~ U[1, 2] GHz (inside params.freq_range_hz), rate ~ U(params.rate_range_bps),
tolerated time ~ U(params.tolerated_time_range_s); data sizes and clustered
embeddings are ours. Pure: a function of its arguments only.
"""
from __future__ import annotations

import numpy as np

from pocnet.games.params import GameParams
from pocnet.games.profile import LearnerProfile


def synthetic_learners(
    n: int,
    seed: int,
    params: GameParams,
    dim: int = 8,
    n_clusters: int = 4,
    data_range: tuple[int, int] = (200, 3000),
    active_share: float | None = None,
) -> list[LearnerProfile]:
    """n learners with addresses 'L00000'... ; embeddings drawn around n_clusters centres."""
    rng = np.random.default_rng(seed)
    lo_f, hi_f = params.freq_range_hz
    centres = rng.normal(size=(max(1, n_clusters), dim))
    cluster = rng.integers(0, max(1, n_clusters), size=n)
    emb = centres[cluster] + 0.6 * rng.normal(size=(n, dim))
    share = params.active_share if active_share is None else active_share
    n_active = int(round(share * n))
    active = np.zeros(n, dtype=bool)
    active[rng.permutation(n)[:n_active]] = True
    width = len(str(max(n - 1, 0)))
    out = []
    for i in range(n):
        f_min = float(rng.uniform(lo_f, lo_f + 0.2 * (hi_f - lo_f)))
        f_max = float(rng.uniform(lo_f + 0.5 * (hi_f - lo_f), hi_f))
        out.append(
            LearnerProfile(
                address=f"L{i:0{max(5, width)}d}",
                data_size=float(rng.integers(data_range[0], data_range[1] + 1)),
                kappa=params.kappa,
                f_min=f_min,
                f_max=max(f_min, f_max),
                rate=float(rng.uniform(*params.rate_range_bps)),
                tolerated_time=float(rng.uniform(*params.tolerated_time_range_s)),
                embedding=tuple(float(x) for x in emb[i]),
                active=bool(active[i]),
            )
        )
    return out
