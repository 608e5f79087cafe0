"""The pieces of fml.flower that need no Flower: shard rebuild, per-learner training, keys.

What makes a Flower run repeat the in-process simulation bit for bit: a learner's shard
rebuilt in its own process equals its rows of ``make_population``, and ``train_one`` on
one learner equals its row of the stacked ``local_train`` given the same uniforms.
"""
from __future__ import annotations

import numpy as np
import pytest
import torch

from pocnet.fml.data import DataMissingError, load_dataset
from pocnet.fml.flower.common import check_signed, learner_key, update_digest
from pocnet.fml.flower.shard import load_shard
from pocnet.fml.learners import make_population
from pocnet.fml.model import flat, init_params, select
from pocnet.fml.perfedavg import PerFedAvgConfig, StackedSampler, local_train, sampling_noise, train_one
from pocnet.fml.onchain import OnChainCoordinator
from pocnet.games.params import GameParams


def _data(limit: int = 2000):
    try:
        return load_dataset("fashion-mnist", limit)
    except DataMissingError as exc:
        pytest.skip(str(exc))


def test_shard_equals_population_rows():
    data = _data()
    pop = make_population(data, 8, seed=5)
    for j in (0, 3, 7):
        s = load_shard("fashion-mnist", 2000, 8, 5, j)
        x, y = pop.train_of(j)
        assert torch.equal(s.train_x, x) and torch.equal(s.train_y, y)
        assert torch.equal(s.test_x, pop.test_x[j]) and torch.equal(s.test_y, pop.test_y[j])
        assert s.device == pop.devices[j] and s.classes == tuple(pop.classes[j])


def test_train_one_is_bit_identical_to_its_stacked_row():
    data = _data()
    pop = make_population(data, 6, seed=1)
    cfg = PerFedAvgConfig()
    who = torch.tensor([4, 0, 2, 5])
    iters = torch.tensor([5, 5, 2, 0])  # a lazy learner and a free rider among them
    start = tuple(p + 0.01 * torch.randn(p.shape, generator=torch.Generator().manual_seed(3))
                  for p in init_params(4, seed=2))
    sampler = StackedSampler(pop.train_x, pop.train_y, pop.offset, pop.train_size)
    stacked = local_train(start, sampler, who, iters, cfg, torch.Generator().manual_seed(9))
    g = torch.Generator().manual_seed(9)
    noise = sampling_noise(len(who), int(iters.max()), cfg.batch, g)
    for k, j in enumerate(who.tolist()):
        x, y = pop.train_of(j)
        one = train_one(select(start, [k]), x, y, noise[:, :, k, :], int(iters[k]), cfg)
        assert torch.equal(flat(one), flat(select(stacked, [k])))
    # the generator ends where local_train leaves it (the head side draws next)
    g2 = torch.Generator().manual_seed(9)
    local_train(start, sampler, who, iters, cfg, g2)
    assert torch.equal(torch.rand(3, generator=g), torch.rand(3, generator=g2))


def test_learner_keys_match_the_onchain_coordinator_and_sign_updates():
    coord = OnChainCoordinator([], None, GameParams(), key_seed=7)  # type: ignore[arg-type]
    for j in (0, 13):
        assert learner_key(7, j).address == coord.key_of(f"mml{j:03d}").address
    arrays = [np.arange(6, dtype=np.float32).reshape(2, 3)]
    k = learner_key(7, 13)
    sig = k.sign(update_digest(2, 13, arrays))
    assert check_signed(k.address, 2, 13, arrays, sig)
    assert not check_signed(k.address, 3, 13, arrays, sig)  # another round
    assert not check_signed(learner_key(7, 12).address, 2, 13, arrays, sig)  # another learner's key
    tampered = [arrays[0] + 1e-3]
    assert not check_signed(k.address, 2, 13, tampered, sig)
