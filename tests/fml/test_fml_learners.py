"""Shard split properties and population roles."""
import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from pocnet.fml.data import Dataset
from pocnet.fml.learners import make_population, shard_split, train_test_split


@settings(max_examples=40, deadline=None)
@given(n=st.integers(2, 60), seed=st.integers(0, 10_000), per_class=st.integers(5, 40))
def test_shards_disjoint_two_classes(n, seed, per_class):
    labels = np.repeat(np.arange(10), per_class)
    shards, classes = shard_split(labels, n, np.random.default_rng(seed))
    allidx = np.concatenate(shards)
    assert len(allidx) == len(set(allidx.tolist()))  # disjoint
    for i, (idx, cls) in enumerate(zip(shards, classes)):
        assert len(cls) == 2 and cls[0] != cls[1]
        assert i % 10 in cls
        assert set(labels[idx].tolist()) <= set(cls)
    # every sample of a class held by somebody is used; shards of one class differ by <= 1
    for c in range(10):
        holders = [i for i, cls in enumerate(classes) if c in cls]
        if holders:
            sizes = [int((labels[shards[i]] == c).sum()) for i in holders]
            assert sum(sizes) == per_class and max(sizes) - min(sizes) <= 1


@given(m=st.integers(2, 500), seed=st.integers(0, 1000))
def test_train_test_split_90_10(m, seed):
    tr, te = train_test_split(np.arange(m), np.random.default_rng(seed))
    assert len(tr) + len(te) == m and len(te) >= 1 and len(tr) >= 1
    assert not set(tr.tolist()) & set(te.tolist())
    assert abs(len(tr) - 0.9 * m) <= 1


def test_population_roles_and_pool():
    rng = np.random.default_rng(0)
    y = np.repeat(np.arange(10), 30)
    ds = Dataset(x=rng.random((300, 784), dtype=np.float32), y=y, name="toy")
    pop = make_population(ds, 20, seed=3, misbehave_rate=0.5)
    assert pop.active.sum() == 18
    assert pop.misbehaving.sum() == 9 and not (pop.misbehaving & ~pop.active).any()
    assert int(pop.train_size.sum()) + sum(len(t) for t in pop.test_y) == 300
    for j in range(pop.n):
        x, yy = pop.train_of(j)
        assert len(x) == int(pop.train_size[j])
        assert set(yy.tolist()) | set(pop.test_y[j].tolist()) <= set(pop.classes[j])
        d = pop.devices[j]
        assert 0.1e9 <= d.f_min <= d.f_max <= 2e9 and 5 <= d.tolerated_time <= 15 and 2e6 <= d.rate <= 10e6
