"""The learning side of a round: local Per-FedAvg, head aggregation,
leave-one-out contributions, embeddings and evaluation.

The :class:`Trainer` knows nothing about games or chains: it receives a
partition ``{head: [members]}`` (learner indices) and per-learner iteration
counts, and returns what heads measure. Every learner keeps the last
meta-model it received; a coalition starts from its head's model.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from pocnet.fml.learners import Population
from pocnet.fml.model import Params, accuracy, flat, forward, init_params, masked_loss, select
from pocnet.fml.perfedavg import (
    PerFedAvgConfig,
    StackedSampler,
    adapt,
    aggregate,
    leave_one_out_models,
    local_train,
    mean_loss,
)

VALIDATION_PER_MEMBER = 64  # held-out samples each member lends its head for leave-one-out
EMBED_BATCH = 64  # samples behind one embedding
REFERENCE_BATCH = 200  # public batch that centres embeddings
PASSIVE_SHOTS = (1, 5, 10)
VALIDATORS_PER_COALITION = 8  # members whose held-out data a head uses for leave-one-out (cost cap)


@dataclass
class CoalitionResult:
    """What a head measured for its coalition in one round."""

    loss_reduction: dict[int, float]
    grad_norm: dict[int, float]
    val_loss: float


def _stack_repeat(p: Params, n: int) -> Params:
    return tuple(t.expand(n, *t.shape[1:]).clone() for t in p)


class Trainer:
    """Holds every learner's current meta-model and runs the learning steps."""

    def __init__(self, pop: Population, cfg: PerFedAvgConfig, seed: int = 0):
        self.pop = pop
        self.cfg = cfg
        self.gen = torch.Generator().manual_seed(seed)
        init = init_params(1, seed)
        self.models: Params = _stack_repeat(init, pop.n)  # learner j's current meta-model
        self.global_model: Params = init  # data-weighted mean of the coalition models
        self.sampler = StackedSampler(pop.train_x, pop.train_y, pop.offset, pop.train_size)
        g = np.random.default_rng(seed + 7919)
        ref = g.choice(len(pop.train_y), size=min(REFERENCE_BATCH, len(pop.train_y)), replace=False)
        self.reference_x = pop.train_x[torch.as_tensor(ref)]
        self.embed_idx = [
            torch.as_tensor(g.choice(int(pop.train_size[j]), size=min(EMBED_BATCH, int(pop.train_size[j])), replace=False))
            for j in range(pop.n)
        ]
        self.val_idx = [torch.arange(min(VALIDATION_PER_MEMBER, len(pop.test_y[j]))) for j in range(pop.n)]

    # ------------------------------------------------------------------ embeddings
    def embeddings(self) -> np.ndarray:
        """``[N, 60]``: mean last-hidden output of the reference (global) model on
        each learner's small batch, minus its mean on a public reference batch.

        One shared model keeps all embeddings in one space (cosine between
        members and heads must compare like with like); centring on a public
        batch removes the large common component of ELU features, which
        otherwise makes every cosine ~0.9 (measured).
        """
        with torch.no_grad():
            ref = forward(self.global_model, self.reference_x.unsqueeze(0), hidden=True)[0].mean(0)
            out = []
            for j in range(self.pop.n):
                x, _ = self.pop.train_of(j)
                h = forward(self.global_model, x[self.embed_idx[j]].unsqueeze(0), hidden=True)[0].mean(0)
                out.append((h - ref).numpy())
        return np.stack(out).astype(np.float64)

    # ------------------------------------------------------------------ training
    def train_round(self, partition: dict[int, list[int]], iters: dict[int, int]) -> dict[int, CoalitionResult]:
        """Local training in every coalition, then head-side aggregation and LOO."""
        results: dict[int, CoalitionResult] = {}
        new_models: dict[int, Params] = {}
        coalition_mass: dict[int, float] = {}
        order = [(h, ms) for h, ms in sorted(partition.items()) if ms]
        if not order:
            return results
        # every member of every coalition trains in one stacked call (models are independent)
        all_members = [m for _, ms in order for m in ms]
        starts = [h for h, ms in order for _ in ms]
        who = torch.as_tensor(all_members, dtype=torch.long)
        stack = select(self.models, starts)
        it = torch.as_tensor([iters[m] for m in all_members], dtype=torch.long)
        trained_all = local_train(stack, self.sampler, who, it, self.cfg, self.gen)
        delta_all = flat(trained_all) - flat(stack)
        pos = 0
        for head, members in order:
            sl = torch.arange(pos, pos + len(members))
            pos += len(members)
            trained = select(trained_all, sl)
            start = select(self.models, [head])
            weights = self.pop.train_size[torch.as_tensor(members)].float()
            agg = aggregate(trained, weights)
            gnorm = {m: float(delta_all[int(sl[k])].norm()) for k, m in enumerate(members)}
            # alone, the "aggregate without i" is the model the member started from
            cand = start if len(members) == 1 else leave_one_out_models(trained, weights)
            validators = members
            if len(members) > VALIDATORS_PER_COALITION:
                pick = torch.randperm(len(members), generator=self.gen)[:VALIDATORS_PER_COALITION]
                validators = [members[int(k)] for k in sorted(pick.tolist())]
            losses = self.personalised_val_loss(tuple(torch.cat([c, a]) for c, a in zip(cand, agg)), validators)
            with_all = float(losses[-1])
            red = {m: max(0.0, float(losses[k]) - with_all) for k, m in enumerate(members)}
            results[head] = CoalitionResult(red, gnorm, with_all)
            new_models[head] = agg
            coalition_mass[head] = float(weights.sum())
        for head, members in partition.items():
            if head in new_models:
                idx = torch.as_tensor(members, dtype=torch.long)
                for p, a in zip(self.models, new_models[head]):
                    p[idx] = a[0]
        if new_models:
            heads = sorted(new_models)
            stacked = tuple(torch.cat([new_models[h][i] for h in heads]) for i in range(len(self.models)))
            self.global_model = aggregate(stacked, torch.tensor([coalition_mass[h] for h in heads]))
        return results

    def personalised_val_loss(self, cands: Params, members: list[int]) -> torch.Tensor:
        """Validation loss of each candidate model *after* personalisation, pooled
        over the validators' held-out samples (at most VALIDATORS_PER_COALITION
        members, drawn each round): for every validator v, each candidate
        takes the alpha-step(s) on a batch of v's training data and is scored on
        v's validation samples. This is the Per-FedAvg objective
        F_v(w - alpha grad F_v(w)); the plain loss of the meta-model was measured
        to credit lazy learners (their small updates keep the non-personalised
        meta-model central), so the head measures what learners actually use.
        """
        n = cands[0].shape[0]
        total = torch.zeros(n)
        count = 0
        for v in members:
            bx, by = self.sampler.sample(torch.full((n,), v, dtype=torch.long), self.cfg.batch, self.gen)
            adapted = adapt(cands, bx, by, self.cfg.alpha, self.cfg.personal_steps)
            vx, vy = self.pop.test_x[v][self.val_idx[v]], self.pop.test_y[v][self.val_idx[v]]
            total += mean_loss(adapted, vx, vy) * len(vy)
            count += len(vy)
        return total / max(count, 1)

    def give_model(self, learner: int, source: int) -> None:
        """Learner ``learner`` downloads learner ``source``'s meta-model (passive learners)."""
        for p in self.models:
            p[learner] = p[source]

    # ------------------------------------------------------------------ evaluation
    def evaluate(self, learners: list[int], seed: int) -> dict[str, np.ndarray]:
        """Personalised (alpha-steps on a local train batch) and un-personalised
        accuracy/loss of each learner's current model on its own test split."""
        if not learners:
            return {k: np.zeros(0) for k in ("acc", "loss", "global_acc", "global_loss")}
        gen = torch.Generator().manual_seed(seed)
        who = torch.as_tensor(learners, dtype=torch.long)
        base = select(self.models, who)
        bx, by = self.sampler.sample(who, self.cfg.batch, gen)
        pers = adapt(base, bx, by, self.cfg.alpha, self.cfg.personal_steps)
        out = {k: np.zeros(len(learners)) for k in ("acc", "loss", "global_acc", "global_loss")}
        for k, j in enumerate(learners):
            x, y = self.pop.test_x[j].unsqueeze(0), self.pop.test_y[j].unsqueeze(0)
            m = torch.ones_like(y, dtype=torch.float32)
            pj, gj = select(pers, [k]), select(base, [k])
            out["acc"][k] = float(accuracy(pj, x, y)[0])
            out["loss"][k] = float(masked_loss(pj, x, y, m)[0])
            out["global_acc"][k] = float(accuracy(gj, x, y)[0])
            out["global_loss"][k] = float(masked_loss(gj, x, y, m)[0])
        return out

    def evaluate_few_shot(self, learners: list[int], shots: tuple[int, ...] = PASSIVE_SHOTS) -> dict[int, np.ndarray]:
        """Accuracy after personalising on only ``k`` local samples (passive learners)."""
        out: dict[int, np.ndarray] = {}
        for k in shots:
            accs = []
            for j in learners:
                x, y = self.pop.train_of(j)
                p = adapt(select(self.models, [j]), x[:k].unsqueeze(0), y[:k].unsqueeze(0), self.cfg.alpha, self.cfg.personal_steps)
                accs.append(float(accuracy(p, self.pop.test_x[j].unsqueeze(0), self.pop.test_y[j].unsqueeze(0))[0]))
            out[k] = np.asarray(accs)
        return out
