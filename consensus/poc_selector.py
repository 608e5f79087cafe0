"""Proof-of-contribution proposer selection: ranking_h from committed state after h-1.

Inputs (all from the committed state, so every honest peer sees the same):
* tasks: ``task`` entries still ``queued`` and committed at least two heights
  earlier (``arrival_height <= h-2``), so the proposer of h-1 cannot add tasks
  that steer its own successor's ranking; at most MAX_TASKS_PER_SUBMITTER per
  submitter among the oldest, so one account cannot flood what the model sees;
* providers: every validator's ``prov`` record (capacity, backlog, delivered
  history, reputation); providers offering capacity 0 take no tasks.

The shipped student (integer inference, models/poc.py) allocates those tasks;
contribution = allocated work × reputation (history-based when no task is
queued). The allocation and the contribution are recorded by the state machine
at height h (tasks move to ``allocated``; ``poc/weights`` holds the contribution).

The proposer order of h is a contribution-weighted sample without replacement,
weight = (contribution recorded at h-1, i.e. computed from the state committed at
h-2) + 1, drawn with integers from SHA-256(beacon_{h-1} ‖ "poc-sample" ‖ position),
where beacon_{h-1} is the ECVRF output in the header of h-1 (ledger/beacon.py).
The proposer of h-1 can neither choose that beacon (one valid VRF output per key and
input) nor move the weights with its txs (they were fixed a height earlier); it can
only withhold its block (measured in bench/bench_grinding.py, README). The header's
``poc_digest`` commits to the inputs, the allocation and the ranking.

Submitters pay a task fee (genesis), so splitting a flood over many accounts costs
as much as sending it from one.
"""
from __future__ import annotations

import hashlib
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from pocnet.consensus.proposer import SelectionContext, hash_order_key
from pocnet.ledger.encoding import hash_object

log = logging.getLogger("pocnet.poc")

MAX_TASKS_PER_SUBMITTER = 16
MAX_QUEUE_SCAN = 64
TASK_MIN_AGE = 2


@dataclass(frozen=True)
class PocOutcome:
    ranking: tuple[str, ...]
    allocation: tuple[tuple[str, str], ...]   # (task_id, provider_id)
    contribution: dict[str, int]
    model_digest: str
    digest: str                               # goes into the block header


def weighted_order(ids: Sequence[str], weights: Sequence[int], seed: str) -> tuple[str, ...]:
    """Sample ``ids`` without replacement with probability ∝ weight (integers only)."""
    pool = sorted(zip(ids, weights))
    out: list[str] = []
    pos = 0
    while pool:
        total = sum(w for _, w in pool)
        r = int(hashlib.sha256(f"{seed}|poc-sample|{pos}".encode()).hexdigest(), 16) % total
        acc = 0
        for i, (pid, w) in enumerate(pool):
            acc += w
            if r < acc:
                out.append(pid)
                pool.pop(i)
                break
        pos += 1
    return tuple(out)


def poc_inputs(state: Any, height: int) -> tuple[list, list, list[str]]:
    """(tasks, providers with capacity, idle validator ids) from committed state."""
    from pocnet.ledger import queries
    from pocnet.models.poc import PocProvider, PocTask
    queued = [t for t in queries.tasks(state, "queued") if t.arrival_height <= height - TASK_MIN_AGE]
    per_submitter: dict[str, int] = {}
    tasks: list[PocTask] = []
    for t in queued:
        if len(tasks) >= MAX_QUEUE_SCAN:
            break
        n = per_submitter.get(t.submitter, 0)
        if n >= MAX_TASKS_PER_SUBMITTER:
            continue
        per_submitter[t.submitter] = n + 1
        tasks.append(PocTask(t.id, t.work, t.demand, t.arrival_ms, t.arrival_ms + t.deadline_ms))
    if tasks:  # the model sees times relative to the oldest considered task (keeps values small)
        base = min(t.arrival for t in tasks)
        tasks = [PocTask(t.task_id, t.work, t.demand, t.arrival - base, t.deadline - base) for t in tasks]
    providers, idle = [], []
    for p in queries.providers(state):
        if p.capacity >= 1:
            providers.append(PocProvider(p.address, p.capacity, p.backlog, p.history, p.reputation_ppm))
        else:
            idle.append(p.address)
    return tasks, providers, idle


class PocSelector:
    """ProposerSelector backed by the PoC student; also gives the chain its allocation."""

    def __init__(self, weights_path: str | None = None) -> None:
        from pocnet.models.quant import load_quant
        self.weights = load_quant(weights_path)
        self._cache: dict[tuple[int, str], PocOutcome] = {}

    def outcome(self, state: Any, height: int, seed: str) -> PocOutcome:
        """Allocation and contribution of ``height`` from ``state`` (committed after height-1);
        ranking of ``height`` from the contribution recorded at height-1 and ``seed`` (beacon)."""
        from pocnet.ledger.txtypes.providers import lagged_contribution
        key = (height, seed)
        hit = self._cache.get(key)
        if hit is not None:
            return hit
        from pocnet.models.poc import compute_ranking
        tasks, providers, idle = poc_inputs(state, height)
        res = None
        if providers:
            try:
                res = compute_ranking(tasks, providers, seed, self.weights)
            except ValueError as exc:
                # Deterministic: every peer gets the same error from the same inputs, so all
                # fall back alike (hash order, no allocation) instead of stalling consensus.
                log.error("PoC ranking failed at height %d (%s); falling back on hash order", height, exc)
        if res is not None:
            contribution = dict(res.contribution)
            ids = sorted({p.provider_id for p in providers})
            allocation = tuple((t.task_id, ids[k]) for t, k in
                               zip(sorted(tasks, key=lambda t: (t.arrival, t.task_id)), res.allocation))
            model_digest = res.digest
        else:
            contribution = {p.provider_id: 0 for p in providers}
            allocation, model_digest = (), hash_object({"providers": [], "fallback": True})
        for pid in idle:
            contribution[pid] = 0
        lagged = lagged_contribution(state)
        ids = sorted(set(contribution) | set(lagged))
        order = weighted_order(ids, [lagged.get(p, 0) + 1 for p in ids], seed)
        digest = hash_object({"model_digest": model_digest, "ranking": list(order),
                              "allocation": [list(a) for a in allocation], "height": height})
        out = PocOutcome(order, allocation, contribution, model_digest, digest)
        self._cache = {key: out}
        return out

    def ranking(self, height: int, ctx: SelectionContext) -> tuple[str, ...]:
        order = self.outcome(ctx.poc_inputs, height, ctx.random_seed).ranking
        allowed = set(ctx.validators)
        order = tuple(v for v in order if v in allowed)   # jailed / departed providers do not propose
        missing = [v for v in ctx.validators if v not in order]
        # validators without a provider record go last, in hash order
        return order + tuple(sorted(missing, key=lambda v: hash_order_key(ctx.random_seed, v)))
