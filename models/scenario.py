"""Allocation scenarios: tasks, providers, task graph; JSON format, generator,
and the pure loader used by the node (`scenario_from_chain`).

Units (all integers): work in *work units*, capacity in work units per ms,
times (arrival, deadline) in ms, demand components in permille (0..1000),
reputation in ppm (0..1_000_000). Everything that can reach consensus is an
integer so every peer builds the identical scenario.
"""
from __future__ import annotations

import json
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

DEMAND_MAX = 1000       # demand components clamped to [0, DEMAND_MAX] (permille)
DEMAND_DIMS = 3          # demand vector length (cpu, memory, bandwidth); padded/truncated
HISTORY_LEN = 8          # provider time-series length; left-padded with 0 / truncated to newest
TIME_WINDOW_MS = 100     # task-graph edge: |a_i - a_j| <= this ...
SIM_NUM, SIM_DEN = 4, 5  # ... and cosine(demand_i, demand_j) >= 4/5
FORMAT_VERSION = 1
VALUE_LIMIT = 1 << 40    # every integer input must satisfy 0 <= x < VALUE_LIMIT (no int64 overflow)


@dataclass(frozen=True)
class Scenario:
    """One allocation instance. Tasks are sorted by (arrival, task_id)."""

    task_ids: tuple[str, ...]
    work: np.ndarray          # (n,) int64
    demand: np.ndarray        # (n, DEMAND_DIMS) int64
    arrival: np.ndarray       # (n,) int64
    deadline: np.ndarray      # (n,) int64
    provider_ids: tuple[str, ...]
    capacity: np.ndarray      # (m,) int64, >= 1
    backlog: np.ndarray       # (m,) int64, >= 0 (work units queued at t0)
    history: np.ndarray       # (m, HISTORY_LEN) int64, delivered work per past window
    reputation_ppm: np.ndarray  # (m,) int64

    @property
    def n_tasks(self) -> int:
        return len(self.task_ids)

    @property
    def n_providers(self) -> int:
        return len(self.provider_ids)

    @property
    def t0(self) -> int:
        """Time origin: the earliest arrival (provider backlogs start draining here)."""
        return int(self.arrival.min()) if self.n_tasks else 0


def _get(rec: Any, name: str) -> Any:
    """Field of a dict-like record or an attribute of a dataclass record."""
    if type(rec) is dict:
        return rec[name]
    try:
        return getattr(rec, name)
    except AttributeError:
        return rec[name]


def task_sort_key(t: Any) -> tuple:
    """Total order on task records: (arrival, task_id), then the remaining
    fields, so even duplicate ids sort the same way on every peer."""
    if type(t) is not dict:
        try:  # fast path for attribute records (PocTask): same key, ~3x cheaper than _get per field
            return (int(t.arrival), str(t.task_id), int(t.work), int(t.deadline), tuple(map(int, t.demand)))
        except AttributeError:
            pass
    return (int(_get(t, "arrival")), str(_get(t, "task_id")), int(_get(t, "work")), int(_get(t, "deadline")),
            tuple(int(x) for x in _get(t, "demand")))


def _fit(values: Sequence[int], length: int, newest_last: bool, lo: int = 0,
         hi: int | None = None) -> list[int]:
    vals = [max(lo, int(v)) for v in values] if hi is None else [min(hi, max(lo, int(v))) for v in values]
    if newest_last:
        vals = vals[-length:]
        return [0] * (length - len(vals)) + vals
    vals = vals[:length]
    return vals + [0] * (length - len(vals))


def scenario_from_chain(tasks: Sequence[Any], providers: Sequence[Any]) -> Scenario:
    """Build a Scenario from plain integer records (PocTask/PocProvider or dicts).

    Pure and deterministic: tasks sorted by `task_sort_key` ((arrival, task_id)
    first); providers keep
    the order given (callers that need canonical order sort first, as
    `models.poc.compute_ranking` does). Demand is truncated/zero-padded to
    DEMAND_DIMS and clamped to [0, DEMAND_MAX]; history keeps the newest
    HISTORY_LEN entries (left-padded 0, negatives clamped to 0).
    """
    trecs = sorted(task_sort_key(t) for t in tasks)  # (arrival, id, work, deadline, demand)
    for a, _, w, d, _ in trecs:
        for name, v in (("arrival", a), ("work", w), ("deadline", d)):
            if not 0 <= v < VALUE_LIMIT:
                raise ValueError(f"{name} out of range [0, 2^40): {v!r}")
    precs = [(str(_get(p, "provider_id")), int(_get(p, "capacity")), int(_get(p, "backlog")),
              [int(h) for h in _get(p, "history")], int(_get(p, "reputation_ppm"))) for p in providers]
    for _, cap, bl, hist, rep in precs:
        for name, v in (("capacity", cap), ("backlog", bl), ("reputation_ppm", rep)):
            if not 0 <= v < VALUE_LIMIT:
                raise ValueError(f"{name} out of range [0, 2^40): {v!r}")
        if any(not 0 <= h < VALUE_LIMIT for h in hist):
            raise ValueError("history entries must be in [0, 2^40)")
        if cap < 1:
            raise ValueError("provider capacity must be >= 1")
    pids = tuple(p[0] for p in precs)
    if len(set(pids)) != len(pids):
        raise ValueError("duplicate provider_id")
    n, m = len(trecs), len(precs)
    return Scenario(
        task_ids=tuple(t[1] for t in trecs),
        work=np.array([t[2] for t in trecs], dtype=np.int64).reshape(n),
        demand=np.array([_fit(t[4], DEMAND_DIMS, False, 0, DEMAND_MAX) for t in trecs],
                        dtype=np.int64).reshape(n, DEMAND_DIMS),
        arrival=np.array([t[0] for t in trecs], dtype=np.int64).reshape(n),
        deadline=np.array([t[3] for t in trecs], dtype=np.int64).reshape(n),
        provider_ids=pids,
        capacity=np.array([p[1] for p in precs], dtype=np.int64).reshape(m),
        backlog=np.array([p[2] for p in precs], dtype=np.int64).reshape(m),
        history=np.array([_fit(p[3], HISTORY_LEN, True) for p in precs],
                         dtype=np.int64).reshape(m, HISTORY_LEN),
        reputation_ppm=np.array([p[4] for p in precs], dtype=np.int64).reshape(m),
    )


# ---------------------------------------------------------------- task graph
def task_graph_edges(scn: Scenario) -> tuple[np.ndarray, np.ndarray]:
    """Directed edge lists (src, dst) of the task graph, integer-only rule.

    Undirected edge i--j (i != j) iff |a_i - a_j| <= TIME_WINDOW_MS and the
    demand vectors are similar: dot(d_i, d_j) >= 0 and
    SIM_DEN^2 * dot^2 >= SIM_NUM^2 * |d_i|^2 * |d_j|^2 (cosine >= 4/5, squared
    to stay in integers; an all-zero demand is similar to nothing). Both
    directions are listed; self-loops are NOT included (the model adds them).
    Edges are ordered by (src, dst).
    """
    n = scn.n_tasks
    if n == 0:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    d = scn.demand  # components clamped to [0, 1000] by the loader -> no int64 overflow
    dot = (d[:, None, :] * d[None, :, :]).sum(axis=2)  # int64, exact (no BLAS: the module is on the consensus path)
    sq = (d * d).sum(axis=1)
    a = scn.arrival
    close = np.abs(a[:, None] - a[None, :]) <= TIME_WINDOW_MS
    sim = (dot > 0) & (SIM_DEN * SIM_DEN * dot * dot >= SIM_NUM * SIM_NUM * sq[:, None] * sq[None, :])
    sim &= close
    np.fill_diagonal(sim, False)
    src, dst = np.nonzero(sim)
    return src.astype(np.int64), dst.astype(np.int64)


# ---------------------------------------------------------------- JSON format
def scenario_to_dict(scn: Scenario) -> dict:
    """JSON-ready dict (format documented in docs/models.md)."""
    return {
        "version": FORMAT_VERSION,
        "tasks": [
            {"task_id": scn.task_ids[i], "work": int(scn.work[i]),
             "demand": [int(x) for x in scn.demand[i]], "arrival": int(scn.arrival[i]),
             "deadline": int(scn.deadline[i])}
            for i in range(scn.n_tasks)
        ],
        "providers": [
            {"provider_id": scn.provider_ids[p], "capacity": int(scn.capacity[p]),
             "backlog": int(scn.backlog[p]), "history": [int(x) for x in scn.history[p]],
             "reputation_ppm": int(scn.reputation_ppm[p])}
            for p in range(scn.n_providers)
        ],
    }


def scenario_from_dict(obj: Mapping[str, Any]) -> Scenario:
    """Inverse of `scenario_to_dict` (validates version and integer fields)."""
    if int(obj.get("version", FORMAT_VERSION)) != FORMAT_VERSION:
        raise ValueError(f"unsupported scenario version {obj.get('version')}")
    for rec in list(obj["tasks"]) + list(obj["providers"]):
        for k, v in rec.items():
            vals = v if isinstance(v, list) else [v]
            if k not in ("task_id", "provider_id") and not all(
                    isinstance(x, int) and not isinstance(x, bool) for x in vals):
                raise ValueError(f"field {k!r} must be integer(s), got {v!r}")
    return scenario_from_chain(obj["tasks"], obj["providers"])


def save_scenario(scn: Scenario, path: str | Path) -> None:
    Path(path).write_text(json.dumps(scenario_to_dict(scn), indent=1) + "\n")


def load_scenario(path: str | Path) -> Scenario:
    return scenario_from_dict(json.loads(Path(path).read_text()))


# ---------------------------------------------------------------- generator
def generate_scenario(seed: int, n_tasks: int | tuple[int, int] = (8, 64),
                      n_providers: int | tuple[int, int] = (3, 8)) -> Scenario:
    """Seeded random scenario: heterogeneous providers, bursty arrivals.

    Offered load (total work / total capacity / arrival span) is drawn in
    [0.7, 1.4] so queues build up and allocation choices matter. Demand
    vectors come from a few task types plus noise so the similarity edges
    carry structure. Same seed -> identical scenario.
    """
    rng = random.Random(seed)
    n = n_tasks if isinstance(n_tasks, int) else rng.randint(*n_tasks)
    m = n_providers if isinstance(n_providers, int) else rng.randint(*n_providers)
    capacity = [rng.choice([1, 1, 2, 2, 3, 4, 6, 8]) for _ in range(m)]
    cap_sum = sum(capacity)
    types = [[rng.randint(0, 1000) for _ in range(DEMAND_DIMS)] for _ in range(4)]
    work, demand = [], []
    for _ in range(n):
        big = rng.random() < 0.25
        work.append(max(1, int(rng.lognormvariate(5.0 if big else 3.6, 0.5))))
        base = rng.choice(types)
        demand.append([min(1000, max(0, b + rng.randint(-150, 150))) for b in base])
    load = rng.uniform(0.7, 1.4)
    span = max(1, int(sum(work) / (cap_sum * load)))
    arrival = sorted(rng.randint(0, span) for _ in range(n))
    # bursts: pull some arrivals onto their predecessor
    for i in range(1, n):
        if rng.random() < 0.3:
            arrival[i] = arrival[i - 1]
    deadline = [a + max(1, int(w / (cap_sum / m) * rng.uniform(1.5, 4.0))) for a, w in zip(arrival, work)]
    backlog = [rng.randint(0, 40 * c) if rng.random() < 0.6 else 0 for c in capacity]
    history = [[max(0, int(c * 50 * rng.uniform(0.3, 1.0))) for _ in range(HISTORY_LEN)] for c in capacity]
    reputation = [rng.randint(500_000, 1_000_000) for _ in range(m)]
    tasks = [{"task_id": f"t{i:03d}", "work": work[i], "demand": demand[i],
              "arrival": arrival[i], "deadline": deadline[i]} for i in range(n)]
    provs = [{"provider_id": f"p{p}", "capacity": capacity[p], "backlog": backlog[p],
              "history": history[p], "reputation_ppm": reputation[p]} for p in range(m)]
    return scenario_from_chain(tasks, provs)
