"""Simulated meta-learners (MMLs): data shards and device profiles.

Data split ([GFML] § VI, FedLab's "quantity-based label skew",
``noniid-#label`` of NIID-Bench, Li et al. 2022), re-implemented:

1. learner i holds ``classes_per_learner`` (2) distinct classes: class
   ``i mod 10`` plus one drawn uniformly from the others (so every class is
   held by someone once N >= 10);
2. the samples of each class are shuffled and cut into equal shards, one per
   learner holding that class (``np.array_split``), so shards are disjoint and
   a learner's size depends on how many others share its classes;
3. each learner's samples are split 90 % train / 10 % test at random.

90 % of the learners (rounded) are active, the rest passive; a chosen
fraction of the *active* learners misbehave (train fewer local iterations than
committed). Device draws (ours, docs/model.md): f_min ~ U[0.1, 0.5] GHz,
f_max ~ U[1.0, 2.0] GHz, rate ~ U[2, 10] Mbit/s, tolerated time ~ U[5, 15] s,
kappa = 1e-26.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch

from pocnet.fml.data import Dataset


def shard_split(
    labels: np.ndarray, n_learners: int, rng: np.random.Generator, classes_per_learner: int = 2
) -> tuple[list[np.ndarray], list[tuple[int, ...]]]:
    """Indices held by each learner and the classes it was assigned."""
    classes = np.unique(labels)
    n_cls = len(classes)
    if classes_per_learner > n_cls:
        raise ValueError("more classes per learner than classes in the data")
    assigned: list[list[int]] = []
    for i in range(n_learners):
        cur = [int(classes[i % n_cls])]
        while len(cur) < classes_per_learner:
            c = int(classes[rng.integers(n_cls)])
            if c not in cur:
                cur.append(c)
        assigned.append(sorted(cur))
    parts: list[list[np.ndarray]] = [[] for _ in range(n_learners)]
    for c in classes:
        holders = [i for i, cs in enumerate(assigned) if int(c) in cs]
        if not holders:
            continue
        idx = np.flatnonzero(labels == c)
        rng.shuffle(idx)
        for holder, shard in zip(holders, np.array_split(idx, len(holders))):
            parts[holder].append(shard)
    out = [np.sort(np.concatenate(p)) if p else np.zeros(0, dtype=np.int64) for p in parts]
    return out, [tuple(a) for a in assigned]


def train_test_split(idx: np.ndarray, rng: np.random.Generator, train_share: float = 0.9) -> tuple[np.ndarray, np.ndarray]:
    """Random split of one learner's indices (at least one test sample when possible)."""
    perm = rng.permutation(idx)
    n_train = int(round(train_share * len(perm)))
    if len(perm) > 1:
        n_train = min(max(n_train, 1), len(perm) - 1)
    return perm[:n_train], perm[n_train:]


@dataclass(frozen=True)
class Device:
    """Cost-model parameters of one learner (units of games.params: Hz, bit/s, s)."""

    kappa: float
    f_min: float
    f_max: float
    rate: float
    tolerated_time: float


def draw_device(rng: np.random.Generator) -> Device:
    return Device(
        kappa=1e-26,
        f_min=float(rng.uniform(0.1e9, 0.5e9)),
        f_max=float(rng.uniform(1.0e9, 2.0e9)),
        rate=float(rng.uniform(2e6, 10e6)),
        tolerated_time=float(rng.uniform(5.0, 15.0)),
    )


@dataclass
class Population:
    """All learners of one experiment: who they are and what data they hold."""

    addresses: list[str]
    active: np.ndarray  # bool [N]
    misbehaving: np.ndarray  # bool [N]
    devices: list[Device]
    classes: list[tuple[int, ...]]
    train_x: torch.Tensor  # pooled training data, learner j at offset[j]:offset[j]+train_size[j]
    train_y: torch.Tensor
    offset: torch.Tensor
    train_size: torch.Tensor
    test_x: list[torch.Tensor] = field(default_factory=list)
    test_y: list[torch.Tensor] = field(default_factory=list)

    @property
    def n(self) -> int:
        return len(self.addresses)

    def train_of(self, j: int) -> tuple[torch.Tensor, torch.Tensor]:
        a, b = int(self.offset[j]), int(self.offset[j] + self.train_size[j])
        return self.train_x[a:b], self.train_y[a:b]


def make_population(
    data: Dataset,
    n_learners: int = 40,
    seed: int = 0,
    active_share: float = 0.9,
    misbehave_rate: float = 0.0,
    classes_per_learner: int = 2,
) -> Population:
    """Split the data, draw devices and roles; everything from one seed."""
    rng = np.random.default_rng(seed)
    shards, classes = shard_split(data.y, n_learners, rng, classes_per_learner)
    n_active = int(round(active_share * n_learners))
    active = np.zeros(n_learners, dtype=bool)
    active[rng.permutation(n_learners)[:n_active]] = True
    misbehaving = np.zeros(n_learners, dtype=bool)
    act_idx = np.flatnonzero(active)
    n_bad = int(round(misbehave_rate * len(act_idx)))
    if n_bad:
        misbehaving[rng.choice(act_idx, size=n_bad, replace=False)] = True
    devices = [draw_device(rng) for _ in range(n_learners)]
    xs, ys, sizes, tx, ty = [], [], [], [], []
    for idx in shards:
        tr, te = train_test_split(idx, rng)
        xs.append(data.x[tr])
        ys.append(data.y[tr])
        sizes.append(len(tr))
        tx.append(torch.from_numpy(np.ascontiguousarray(data.x[te])))
        ty.append(torch.from_numpy(np.ascontiguousarray(data.y[te])))
    size = torch.tensor(sizes, dtype=torch.long)
    offset = torch.cumsum(size, 0) - size
    return Population(
        addresses=[f"mml{j:03d}" for j in range(n_learners)],
        active=active,
        misbehaving=misbehaving,
        devices=devices,
        classes=classes,
        train_x=torch.from_numpy(np.ascontiguousarray(np.concatenate(xs))),
        train_y=torch.from_numpy(np.ascontiguousarray(np.concatenate(ys))),
        offset=offset,
        train_size=size,
        test_x=tx,
        test_y=ty,
    )
