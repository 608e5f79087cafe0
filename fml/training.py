"""The learning side of a round: local Per-FedAvg, head aggregation,
leave-one-out contributions, embeddings and evaluation.

The :class:`Trainer` knows nothing about games or chains: it receives a
partition ``{head: [members]}`` (learner indices) and per-learner iteration
counts, and returns what heads measure. Every learner keeps the last
meta-model it received; a coalition starts from its head's model.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

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
    local_train_spot,
    mean_loss,
    spot_check,
)

VALIDATION_PER_MEMBER = 64  # held-out samples each member lends its head for leave-one-out
EMBED_BATCH = 64  # samples behind one embedding
REFERENCE_BATCH = 200  # public batch that centres embeddings
PASSIVE_SHOTS = (1, 5, 10)
SPOT_CHECKS = 2  # committed steps a head re-executes per member and round (docs/fml.md "Spot checks")
VALIDATORS_PER_COALITION = 8  # members whose held-out data a head uses for leave-one-out (cost cap)


@dataclass
class CoalitionResult:
    """What a head measured for its coalition in one round."""

    loss_reduction: dict[int, float]
    grad_norm: dict[int, float]
    val_loss: float
    aligned_norm: dict[int, float] = field(default_factory=dict)  # update length along the others' mean
    own_gain: dict[int, float] = field(default_factory=dict)  # evidence of work (see Trainer.own_gain)
    val_grad_norm: dict[int, float] = field(default_factory=dict)  # |grad of the lent validation loss| at the start
    verified: dict[int, float] = field(default_factory=dict)  # share of challenged steps that re-executed (spot checks)


def _stack_repeat(p: Params, n: int) -> Params:
    return tuple(t.expand(n, *t.shape[1:]).clone() for t in p)


def masked_loss_grad(params: Params, x: torch.Tensor, y: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Per-model mean cross-entropy over the real samples of padded batches (differentiable)."""
    logits = forward(params, x)
    n, b, c = logits.shape
    ce = torch.nn.functional.cross_entropy(logits.reshape(n * b, c), y.reshape(n * b), reduction="none").reshape(n, b)
    return (ce * mask).sum(1) / mask.sum(1).clamp_min(1)


def aligned_norms(deltas: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """Evidence of work per member: the length of its update along the others' mean update.

    p_i = <d_i, m_-i> / |m_-i|, m_-i the data-weighted mean of the other members'
    updates, clipped at 0 (alone: |d_i|). Fewer local iterations give a shorter
    update; noise added to look big is (nearly) orthogonal to m_-i in a
    high-dimensional weight space and adds (almost) nothing; a returned,
    untrained model has d = 0.
    """
    n = deltas.shape[0]
    d = deltas.double()
    if n == 1:
        return d.norm(dim=1)
    w = weights.double()
    total = (d * w[:, None]).sum(0, keepdim=True)
    others = (total - d * w[:, None]) / (w.sum() - w).clamp_min(1e-12)[:, None]
    norm = others.norm(dim=1).clamp_min(1e-30)
    return ((d * others).sum(1) / norm).clamp_min(0.0)


class Trainer:
    """Holds every learner's current meta-model and runs the learning steps."""

    def __init__(self, pop: Population, cfg: PerFedAvgConfig, seed: int = 0):
        self.pop = pop
        self.cfg = cfg
        self.gen = torch.Generator().manual_seed(seed)
        # the heads' own randomness for spot checks: apart from the learners' draws, so
        # checking changes nothing they compute
        self.challenge_gen = torch.Generator().manual_seed(seed + 7_919)
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
    def train_round(
        self, partition: dict[int, list[int]], iters: dict[int, int], inflate: frozenset[int] | set[int] = frozenset(),
        local: Callable[..., Params] = local_train, committed: int | None = None,
    ) -> dict[int, CoalitionResult]:
        """Local training in every coalition, then head-side aggregation and LOO.

        ``inflate``: adversarial members that add Gaussian noise to their update
        until its size equals the median honest update of their coalition (the
        "noisy" strategy; the attacker is granted that median as an oracle). A
        member with 0 iterations returns the model it received (free rider).
        ``local`` runs the local step (signature of ``perfedavg.local_train``); fml.flower
        passes one that returns the models its learners trained in their own processes.
        """
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
        verified: dict[int, float] = {}
        if local is local_train:  # spot checks: the head re-executes SPOT_CHECKS random committed steps per member
            tau = committed if committed is not None else max(iters.values())
            challenge = torch.stack([torch.randperm(tau, generator=self.challenge_gen)[:min(SPOT_CHECKS, tau)] + 1
                                     for _ in all_members]) if tau > 0 else torch.zeros(len(all_members), 0, dtype=torch.long)
            trained_all, kept = local_train_spot(stack, self.sampler, who, it, self.cfg, self.gen, challenge,
                                                 self.challenge_gen)
            passed = [0] * len(all_members)
            for row, _t, before, batches, after in kept:
                passed[row] += spot_check(before, batches, after, self.cfg)
            n_checks = challenge.shape[1]
            verified = {row: (passed[row] / n_checks if n_checks else 1.0) for row in range(len(all_members))}
        else:
            trained_all = local(stack, self.sampler, who, it, self.cfg, self.gen)
        delta_all = flat(trained_all) - flat(stack)
        if inflate:
            trained_all, delta_all = self._inflate(order, stack, delta_all, iters, set(inflate))
        pos = 0
        for head, members in order:
            sl = torch.arange(pos, pos + len(members))
            pos += len(members)
            trained = select(trained_all, sl)
            start = select(self.models, [head])
            weights = self.pop.train_size[torch.as_tensor(members)].float()
            agg = aggregate(trained, weights)
            gnorm = {m: float(delta_all[int(sl[k])].norm()) for k, m in enumerate(members)}
            aligned = aligned_norms(delta_all[sl], weights)
            gain, vgn = self.descent(select(stack, sl), trained, members)
            # alone, the "aggregate without i" is the model the member started from
            cand = start if len(members) == 1 else leave_one_out_models(trained, weights)
            validators = members
            if len(members) > VALIDATORS_PER_COALITION:
                pick = torch.randperm(len(members), generator=self.gen)[:VALIDATORS_PER_COALITION]
                validators = [members[int(k)] for k in sorted(pick.tolist())]
            losses = self.personalised_val_loss(tuple(torch.cat([c, a]) for c, a in zip(cand, agg)), validators)
            with_all = float(losses[-1])
            red = {m: max(0.0, float(losses[k]) - with_all) for k, m in enumerate(members)}
            results[head] = CoalitionResult(red, gnorm, with_all,
                                            {m: float(aligned[k]) for k, m in enumerate(members)},
                                            {m: float(gain[k]) for k, m in enumerate(members)},
                                            {m: float(vgn[k]) for k, m in enumerate(members)},
                                            {m: verified[int(sl[k])] for k, m in enumerate(members)} if verified else {})
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

    def own_gain(self, start: Params, trained: Params, members: list[int]) -> torch.Tensor:
        """Evidence of work per member (see ``descent``)."""
        return self.descent(start, trained, members)[0]

    def descent(self, start: Params, trained: Params, members: list[int]) -> tuple[torch.Tensor, torch.Tensor]:
        """(own gain, |g|) per member, g the gradient of its lent validation loss at ``start``.

        Evidence of work per member: how much its returned model lowered the loss on the
        validation samples it lent the head, against the model it received (clipped at 0).

        Local training on a learner's own data lowers the loss on that learner's
        held-out data, more with more iterations; an untrained (free rider) or
        noise-padded update does not.
        """
        n = len(members)
        b = max(len(self.val_idx[m]) for m in members)
        x = torch.zeros(n, b, self.pop.test_x[members[0]].shape[-1])
        y = torch.zeros(n, b, dtype=torch.long)
        mask = torch.zeros(n, b)
        for k, m in enumerate(members):
            v = self.val_idx[m]
            x[k, : len(v)] = self.pop.test_x[m][v]
            y[k, : len(v)] = self.pop.test_y[m][v]
            mask[k, : len(v)] = 1.0
        leaves = tuple(p.detach().clone().requires_grad_(True) for p in start)
        loss = masked_loss_grad(leaves, x, y, mask)
        g = flat(tuple(t.detach() for t in torch.autograd.grad(loss.sum(), leaves)))
        d = flat(trained) - flat(start)
        gn = g.norm(dim=1)
        return ((-(d * g).sum(1)) / gn.clamp_min(1e-30)).clamp_min(0.0), gn

    def _inflate(self, order, stack: Params, delta_all: torch.Tensor, iters: dict[int, int],
                 inflate: set[int]) -> tuple[Params, torch.Tensor]:
        """Noisy strategy: pad the listed members' updates with noise to the honest median size."""
        delta_all = delta_all.clone()
        tau = max(iters.values())
        pos = 0
        for _, members in order:
            honest = [pos + k for k, m in enumerate(members) if m not in inflate and iters[m] == tau]
            if honest:
                target = float(delta_all[honest].norm(dim=1).median())
                for k, m in enumerate(members):
                    if m in inflate:
                        d = delta_all[pos + k]
                        noise = torch.randn(d.shape, generator=self.gen)
                        # solve |d + a n| = target for a >= 0 (0 when d is already that large)
                        nn, dn, dd = float(noise @ noise), float(d @ noise), float(d @ d)
                        disc = dn * dn - nn * (dd - target * target)
                        a = max(0.0, (-dn + disc ** 0.5) / nn) if disc > 0 else 0.0
                        delta_all[pos + k] = d + a * noise
            pos += len(members)
        base = flat(stack)
        new = base + delta_all
        out, off = [], 0
        for p in stack:
            size = p[0].numel()
            out.append(new[:, off:off + size].reshape(p.shape).contiguous())
            off += size
        return tuple(out), delta_all

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
