"""Proof-of-contribution ranking: the consensus function the node calls.

Integer-only and deterministic (no torch, no dgl, no floats): every honest
peer given the same committed inputs and weights computes the same
PocResult. Rule (docs/models.md § Consensus ranking):

1. Providers are put in canonical order (sorted by provider_id; duplicate ids
   are rejected). Tasks are sorted by (arrival, task_id) and only the oldest
   MAX_TASKS are considered.
2. The fixed-point student allocates each considered task to one provider
   (argmax over integer logits, ties to the lowest provider index).
3. contribution_p = (sum of work of tasks allocated to p) * reputation_ppm // 1_000_000;
   with no tasks considered, contribution_p = sum(history_p) * reputation_ppm // 1_000_000.
4. ranking = provider ids sorted by contribution descending, ties by
   SHA-256(prev_hash || provider_id) hex ascending (UTF-8 concatenation).
5. digest = sha256 hex of the canonical JSON (sorted keys, no spaces, ASCII)
   of {version, weights_sha256, prev_hash, tasks, providers, allocation,
   contribution, ranking}, tasks/providers in the canonical order above.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from functools import lru_cache
from typing import Sequence

from pocnet import probes
from pocnet.models.quant import QuantStudent, allocate_int, load_quant, weights_sha256
from pocnet.models.scenario import Scenario, scenario_from_chain, task_sort_key

MAX_TASKS = 64
PPM = 1_000_000
RULE_VERSION = 1


@dataclass(frozen=True)
class PocTask:
    task_id: str
    work: int            # work units
    demand: tuple[int, ...]  # permille per resource dimension (first 3 used)
    arrival: int         # ms
    deadline: int        # ms


@dataclass(frozen=True)
class PocProvider:
    provider_id: str
    capacity: int        # work units per ms, >= 1
    backlog: int         # work units queued now
    history: tuple[int, ...]  # delivered work per recent window, oldest first
    reputation_ppm: int  # reputation in [0, 1_000_000]


def inputs_from_scenario(s: Scenario) -> tuple[list[PocTask], list[PocProvider]]:
    """A Scenario (generated or loaded) as compute_ranking's inputs; tests, bench and the golden files use it."""
    tasks = [PocTask(s.task_ids[i], int(s.work[i]), tuple(int(x) for x in s.demand[i]), int(s.arrival[i]),
                     int(s.deadline[i])) for i in range(s.n_tasks)]
    provs = [PocProvider(s.provider_ids[p], int(s.capacity[p]), int(s.backlog[p]),
                         tuple(int(x) for x in s.history[p]), int(s.reputation_ppm[p]))
             for p in range(s.n_providers)]
    return tasks, provs


@dataclass(frozen=True)
class PocResult:
    allocation: tuple[int, ...]      # provider index (canonical order) per considered task
    contribution: dict[str, int]     # provider_id -> contribution
    ranking: tuple[str, ...]         # provider ids, best first
    digest: str


def tie_key(prev_hash: str, provider_id: str) -> str:
    return hashlib.sha256((prev_hash + provider_id).encode("utf-8")).hexdigest()


@lru_cache(maxsize=1)
def _default_weights_sha() -> str:
    return weights_sha256()


def _weights_id(weights: QuantStudent | None) -> tuple[QuantStudent, str]:
    if weights is None:
        return load_quant(), _default_weights_sha()
    from pocnet.models.quant import quant_to_dict
    blob = json.dumps(quant_to_dict(weights), sort_keys=True, separators=(",", ":")) + "\n"
    return weights, hashlib.sha256(blob.encode()).hexdigest()


def select_tasks(tasks: Sequence[PocTask]) -> list[PocTask]:
    """The oldest MAX_TASKS tasks by (arrival, task_id) (full-record tie-break)."""
    return sorted(tasks, key=task_sort_key)[:MAX_TASKS]


def rank_providers(ids: Sequence[str], absorbed: Sequence[int], reputation_ppm: Sequence[int],
                   prev_hash: str) -> tuple[dict[str, int], tuple[str, ...]]:
    """Steps 3-4 of the rule: reputation-weighted contribution and ranking."""
    contribution = {pid: int(w) * int(r) // PPM for pid, w, r in zip(ids, absorbed, reputation_ppm)}
    ranking = tuple(sorted(ids, key=lambda pid: (-contribution[pid], tie_key(prev_hash, pid))))
    return contribution, ranking


def absorbed_work(work: Sequence[int], alloc: Sequence[int], n_providers: int) -> list[int]:
    """Total work allocated to each provider index."""
    out = [0] * n_providers
    for w, k in zip(work, alloc):
        out[int(k)] += int(w)
    return out


@probes.timed("poc_ranking")  # student allocation + ranking; GET /metrics
def compute_ranking(tasks: Sequence[PocTask], providers: Sequence[PocProvider], prev_hash: str,
                    weights: QuantStudent | None = None) -> PocResult:
    """Rank providers by student-allocated, reputation-weighted contribution."""
    provs = sorted(providers, key=lambda p: str(p.provider_id))
    ids = [str(p.provider_id) for p in provs]
    if len(set(ids)) != len(ids):
        raise ValueError("duplicate provider_id")
    for p in provs:
        if not 0 <= int(p.reputation_ppm) <= PPM:
            raise ValueError("reputation_ppm must be in [0, 1_000_000]")
    chosen = select_tasks(tasks)
    q, wsha = _weights_id(weights)
    alloc: tuple[int, ...] = ()
    if chosen and provs:
        scn = scenario_from_chain(chosen, provs)
        alloc = tuple(int(x) for x in allocate_int(q, scn))
        absorbed = absorbed_work(scn.work.tolist(), alloc, len(provs))
    else:
        scenario_from_chain([], provs)  # same validation as the task path
        absorbed = [sum(int(h) for h in p.history) for p in provs]
    contribution, ranking = rank_providers(ids, absorbed, [int(p.reputation_ppm) for p in provs], prev_hash)
    payload = {
        "version": RULE_VERSION, "weights_sha256": wsha, "prev_hash": prev_hash,
        "tasks": [{"task_id": t.task_id, "work": int(t.work), "demand": [int(x) for x in t.demand],
                   "arrival": int(t.arrival), "deadline": int(t.deadline)} for t in chosen],
        "providers": [{"provider_id": p.provider_id, "capacity": int(p.capacity), "backlog": int(p.backlog),
                       "history": [int(x) for x in p.history], "reputation_ppm": int(p.reputation_ppm)}
                      for p in provs],
        "allocation": list(alloc), "contribution": contribution, "ranking": list(ranking),
    }
    digest = hashlib.sha256(json.dumps(payload, sort_keys=True, separators=(",", ":"),
                                       ensure_ascii=True).encode("ascii")).hexdigest()
    return PocResult(alloc, contribution, ranking, digest)
