"""Allocation solvers scored by eq. 1: greedy EFT baseline, exact brute force
for small instances, and the DEAP genetic algorithm (the meta-strategy that
labels training data).

Tie-breaking (all solvers): among equal-objective options the lowest
provider index wins (greedy, local search); exact returns the
lexicographically smallest optimal allocation; GA keeps the first best
individual found in its seeded run.
"""
from __future__ import annotations

import itertools
import random
from dataclasses import dataclass

import numpy as np
from deap import base, creator, tools

from pocnet.models.objective import batch_total_latency, initial_free, proc_times, total_latency
from pocnet.models.scenario import Scenario

EXACT_MAX_SPACE = 3 ** 13  # refuse brute force beyond ~1.6M allocations


def greedy_eft(scn: Scenario) -> np.ndarray:
    """Earliest-finish-time: tasks in arrival order, each to the provider that
    completes it first given the queue so far (ties: lowest index)."""
    proc = proc_times(scn)
    free = initial_free(scn).copy()
    alloc = np.zeros(scn.n_tasks, dtype=np.int64)
    for i in range(scn.n_tasks):
        finish = np.maximum(free, scn.arrival[i]) + proc[i]
        p = int(np.argmin(finish))
        alloc[i] = p
        free[p] = finish[p]
    return alloc


def lookahead_greedy(scn: Scenario) -> np.ndarray:
    """Ablation baseline: pick the provider with the lowest look-ahead cost
    feature (task latency + next LOOKAHEAD tasks placed by greedy EFT), i.e.
    the hand-made signal the networks receive, without any learning."""
    from pocnet.models.features import pair_features, relative_capacity
    proc = proc_times(scn)
    free = initial_free(scn).copy()
    capq = relative_capacity(scn)
    alloc = np.zeros(scn.n_tasks, dtype=np.int64)
    for i in range(scn.n_tasks):
        p = int(np.argmin(pair_features(free, i, scn.arrival, proc, capq)[:, 6]))
        alloc[i] = p
        free[p] = max(int(free[p]), int(scn.arrival[i])) + int(proc[i, p])
    return alloc


def exact_solve(scn: Scenario, chunk: int = 1 << 16) -> np.ndarray:
    """Brute force over all m^n allocations (vectorised in chunks); returns the
    lexicographically smallest optimum. Only for small instances."""
    n, m = scn.n_tasks, scn.n_providers
    if m ** n > EXACT_MAX_SPACE:
        raise ValueError(f"exact solver limited to m^n <= {EXACT_MAX_SPACE} (got {m}^{n})")
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    best_val, best = None, None
    it = itertools.product(range(m), repeat=n)  # lexicographic order
    while True:
        block = np.array(list(itertools.islice(it, chunk)), dtype=np.int64)
        if block.size == 0:
            break
        vals = batch_total_latency(scn, block)
        k = int(np.argmin(vals))  # first minimum = lexicographically smallest
        if best_val is None or vals[k] < best_val:
            best_val, best = int(vals[k]), block[k].copy()
    assert best is not None  # n > 0: at least one block was scored
    return best


def local_search(scn: Scenario, alloc: np.ndarray, max_passes: int = 20) -> np.ndarray:
    """Best-improvement single-task reassignment until no move helps
    (vectorised: all n*(m-1) neighbours evaluated per pass)."""
    n, m = scn.n_tasks, scn.n_providers
    cur = np.asarray(alloc, dtype=np.int64).copy()
    if n == 0 or m < 2:
        return cur
    cur_val = total_latency(scn, cur)
    for _ in range(max_passes):
        neigh = np.repeat(cur[None, :], n * m, axis=0)
        idx = np.arange(n * m)
        neigh[idx, idx // m] = idx % m
        vals = batch_total_latency(scn, neigh)
        k = int(np.argmin(vals))
        if vals[k] >= cur_val:
            break
        cur, cur_val = neigh[k].copy(), int(vals[k])
    return cur


@dataclass(frozen=True)
class GAConfig:
    """GA hyper-parameters (defaults used for all training labels)."""

    pop_size: int = 48
    generations: int = 60
    cx_prob: float = 0.7
    mut_prob: float = 0.6
    tournament: int = 2
    elite: int = 2
    mut_indpb: float = 0.2  # per-gene mutation probability (at least 1/n)
    polish: int = 5      # best-improvement local search on the top-k distinct individuals (memetic step)


def _deap_types() -> None:
    if not hasattr(creator, "PocFitnessMin"):
        creator.create("PocFitnessMin", base.Fitness, weights=(-1.0,))
        creator.create("PocIndividual", list, fitness=creator.PocFitnessMin)


def ga_solve(scn: Scenario, seed: int = 0, cfg: GAConfig = GAConfig()) -> np.ndarray:
    """Genetic algorithm (DEAP): tournament selection, two-point crossover,
    uniform-int mutation, elitism; population seeded with greedy EFT, its
    mutants and random allocations. Fitness = eq. 1, evaluated in a batch.
    Seeded and deterministic (restores the global `random` state after)."""
    n, m = scn.n_tasks, scn.n_providers
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    if m == 1:
        return np.zeros(n, dtype=np.int64)
    _deap_types()
    saved = random.getstate()
    random.seed(seed)
    try:
        tb = base.Toolbox()
        tb.register("mate", tools.cxTwoPoint if n > 2 else tools.cxUniform, **({} if n > 2 else {"indpb": 0.5}))
        tb.register("mutate", tools.mutUniformInt, low=0, up=m - 1, indpb=max(1.0 / n, cfg.mut_indpb))
        tb.register("select", tools.selTournament, tournsize=cfg.tournament)

        def evaluate(inds: list) -> None:
            todo = [ind for ind in inds if not ind.fitness.valid]
            if todo:
                vals = batch_total_latency(scn, np.array(todo, dtype=np.int64))
                for ind, v in zip(todo, vals):
                    ind.fitness.values = (float(v),)

        g = [int(x) for x in greedy_eft(scn)]
        pop = [creator.PocIndividual(g)]
        while len(pop) < cfg.pop_size:
            if len(pop) < cfg.pop_size // 2:
                ind = creator.PocIndividual(g)
                tb.mutate(ind)
            else:
                ind = creator.PocIndividual(random.randrange(m) for _ in range(n))
            pop.append(ind)
        evaluate(pop)
        for _ in range(cfg.generations):
            elite = [tb.clone(x) for x in tools.selBest(pop, cfg.elite)]
            off = [tb.clone(x) for x in tb.select(pop, len(pop) - cfg.elite)]
            for a, b in zip(off[::2], off[1::2]):
                if random.random() < cfg.cx_prob:
                    tb.mate(a, b)
                    del a.fitness.values, b.fitness.values
            for ind in off:
                if random.random() < cfg.mut_prob:
                    tb.mutate(ind)
                    del ind.fitness.values
            evaluate(off)
            pop = elite + off
        ranked = tools.selBest(pop, len(pop))
    finally:
        random.setstate(saved)
    cands: list[np.ndarray] = []
    for ind in ranked:
        a = np.array(ind, dtype=np.int64)
        if not any(np.array_equal(a, c) for c in cands):
            cands.append(a)
        if len(cands) >= max(1, cfg.polish):
            break
    if cfg.polish:
        cands = [local_search(scn, c) for c in cands]
    vals = [total_latency(scn, c) for c in cands]
    return cands[int(np.argmin(vals))]


SOLVERS = ("ga", "greedy", "exact")


def solve(scn: Scenario, solver: str, seed: int = 0) -> np.ndarray:
    """Dispatch by name for the classic solvers."""
    if solver == "ga":
        return ga_solve(scn, seed=seed)
    if solver == "greedy":
        return greedy_eft(scn)
    if solver == "exact":
        return exact_solve(scn)
    raise ValueError(f"unknown solver {solver!r}")
