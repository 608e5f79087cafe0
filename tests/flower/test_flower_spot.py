"""Spot checks with Flower learners (fml.flower.spot) and the multi-learner node layout.

What must hold: an honest learner's revealed steps re-execute, a lazy learner's skipped
steps and a free rider's do not, a tampered reveal or a chain that does not end at the
update fails, and the work the Flower strategy computes equals what the in-process
driver's heads compute (``Trainer.train_round``'s ``verified``) on the same inputs.
No Flower needed (the strategy and ClientApp call exactly these functions).
"""
from __future__ import annotations

import numpy as np
import pytest

from pocnet.fml.data import DataMissingError, load_dataset
from pocnet.fml.flower.common import group_by_node, hosted_learners, misbehaviour, model_digest, update_digest
from pocnet.fml.flower.local import node_layout
from pocnet.fml.flower.spot import (
    chain_arrays, chain_is_sound, checkpoint_chain, draw_challenges, iterations, pad_with_noise, reveal, verify_member,
)
from pocnet.fml.learners import make_population
from pocnet.fml.model import select
from pocnet.fml.perfedavg import PerFedAvgConfig, sampling_noise
from pocnet.fml.training import Trainer

TAU = 10


def _pop(n: int = 8, seed: int = 3):
    try:
        data = load_dataset("fashion-mnist", 2000)
    except DataMissingError as exc:
        pytest.skip(str(exc))
    return make_population(data, n, seed=seed)


def _flower_side(tr: Trainer, partition: dict[int, list[int]], kinds: dict[int, str], tau: int = TAU):
    """What the strategy + ClientApps compute for one round: chains, commitments, challenges, work."""
    order = [(h, ms) for h, ms in sorted(partition.items()) if ms]
    members = [m for _, ms in order for m in ms]
    starts = {m: h for h, ms in order for m in ms}
    noise = sampling_noise(len(members), tau, tr.cfg.batch, tr.gen)
    chains = {}
    for k, m in enumerate(members):
        x, y = tr.pop.train_of(m)
        it = iterations(kinds.get(m, "honest"), tau, 2)
        chain = checkpoint_chain(select(tr.models, [starts[m]]), x, y, noise[:, :, k, :], tau, it, tr.cfg)
        if kinds.get(m) == "noisy":
            chain[-1] = pad_with_noise(chain[0], chain[-1], 5.0, m)
        chains[m] = chain_arrays(chain)
    steps = draw_challenges(members, tau, tr.challenge_gen)
    work = {}
    for k, m in enumerate(members):
        commit = [model_digest(a) for a in chains[m]]
        assert chain_is_sound(commit, tau, model_digest(chains[m][0]), chains[m][-1])
        work[m] = verify_member(m, steps[m], commit, reveal(chains[m], steps[m]), noise[:, :, k, :], tr.sampler, tr.cfg)
    return members, chains, steps, noise, work


def test_flower_work_equals_the_drivers_spot_checks():
    pop = _pop()
    partition = {0: [1, 2, 3], 4: [5, 6, 7]}
    kinds = {2: "lazy", 6: "free-rider", 7: "lazy"}
    cfg = PerFedAvgConfig()
    driver, flower = Trainer(pop, cfg, seed=11), Trainer(pop, cfg, seed=11)
    for _ in range(3):  # several rounds: the challenge generator must stay in step
        iters = {m: iterations(kinds.get(m, "honest"), TAU, 2) for ms in partition.values() for m in ms}
        res = driver.train_round(partition, iters, committed=TAU)
        verified = {m: v for r in res.values() for m, v in r.verified.items()}
        members, chains, steps, _, work = _flower_side(flower, partition, kinds)
        assert work == verified
        for m in members:
            expect = 1.0 if kinds.get(m, "honest") == "honest" else sum(t <= iters[m] for t in steps[m]) / len(steps[m])
            assert work[m] == expect
        # the learners' models equal the driver's stacked ones; keep both trainers in step
        flower.gen.set_state(driver.gen.get_state())
        flower.models = tuple(p.clone() for p in driver.models)
        flower.global_model = driver.global_model


def test_honest_passes_lazy_and_free_rider_fail_and_tampering_is_caught():
    pop = _pop()
    tr = Trainer(pop, PerFedAvgConfig(), seed=5)
    partition = {0: [1, 2, 3, 4]}
    kinds = {2: "lazy", 3: "free-rider", 4: "noisy"}
    members, chains, steps, noise, work = _flower_side(tr, partition, kinds)
    assert work[1] == 1.0
    assert work[3] == 0.0  # a free rider has no genuine step at all
    for m in (2, 4):  # 2 of 10 steps run: a challenge passes iff it hits one of them
        assert work[m] == sum(t <= 2 for t in steps[m]) / len(steps[m])
    # every skipped step of the lazy learner fails, every run step passes
    commit = [model_digest(a) for a in chains[2]]
    k = members.index(2)
    for t in range(1, TAU + 1):
        one = verify_member(2, [t], commit, reveal(chains[2], [t]), noise[:, :, k, :], tr.sampler, tr.cfg)
        assert one == (1.0 if t <= 2 else 0.0)
    # an honest learner that reveals a model other than the one it committed fails
    commit1, k1 = [model_digest(a) for a in chains[1]], members.index(1)
    t = steps[1][0]
    before, after = chains[1][t - 1], chains[1][t]
    bad = {t: (before, [a + np.float32(1e-3) for a in after])}
    assert verify_member(1, [t], commit1, bad, noise[:, :, k1, :], tr.sampler, tr.cfg) == 0.0
    # ... or a made-up step that matches a made-up commitment (the re-execution catches it)
    forged = [model_digest(before), model_digest(bad[t][1])] + commit1[2:]
    assert verify_member(1, [1], forged, {1: (before, bad[t][1])}, noise[:, :, k1, :][t - 1:], tr.sampler, tr.cfg) == 0.0
    # a chain that does not end at the update sent proves nothing about it
    assert not chain_is_sound(commit1, TAU, commit1[0], [a + np.float32(1) for a in chains[1][-1]])
    assert not chain_is_sound(commit1[:-1], TAU, commit1[0], chains[1][-2])
    # the commitment is part of what a learner signs
    assert update_digest(1, 1, chains[1][-1], commit1) != update_digest(1, 1, chains[1][-1], commit1[::-1])


def test_multi_learner_node_layout_and_config():
    layout = node_layout(40, 5)
    assert len(layout) == 8 and all(len(h) == 5 for h in layout)
    assert sorted(j for h in layout for j in h) == list(range(40))
    assert layout[0] == [0, 8, 16, 24, 32]
    assert node_layout(6, 1) == [[j] for j in range(6)]  # default: one learner per node
    assert sorted(j for h in node_layout(7, 3) for j in h) == list(range(7))
    with pytest.raises(ValueError):
        node_layout(6, 0)
    assert hosted_learners({"learner": 3}) == [3]
    assert hosted_learners({"learners": "0,8,16"}) == [0, 8, 16]
    for bad in ({}, {"learners": "1,1"}, {"learners": "-1"}):
        with pytest.raises(ValueError):
            hosted_learners(bad)
    assert misbehaviour({"misbehave": "lazy"}, 8) == "lazy"
    assert misbehaviour({"misbehave": "8=lazy,16=free-rider"}, 16) == "free-rider"
    assert misbehaviour({"misbehave": "8=lazy"}, 0) == "honest"
    assert misbehaviour({}, 0) == "honest"
    with pytest.raises(ValueError):
        misbehaviour({"misbehave": "sleepy"}, 0)
    # learner -> node: the strategy sends one message per node with all its learners' parts;
    # a node that never answers takes all of them with it
    nodes = {j: 100 + k for k, hosted in enumerate(layout) for j in hosted}
    by_node = group_by_node(nodes, [0, 8, 3, 11, 39, 99])
    assert by_node == {100: [0, 8], 103: [3, 11], 107: [39]}
    dead = 103
    missing = [j for j in (0, 8, 3, 11, 39) if nodes[j] == dead]
    assert missing == [3, 11]
