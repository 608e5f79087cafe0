"""The production BFT driver (node/bft.py) in the seeded virtual-time simulation (node/sim.py)."""
import pytest

from pocnet.node import bft
from pocnet.node.sim import DriverSimConfig, Partition, run_driver_sim, scenario


def _assert_ok(r):
    assert not r.problems, (r.seed, r.problems)
    assert r.completed, (r.seed, r.heights, r.txs_committed, r.txs_accepted)


@pytest.mark.parametrize("seed", range(10))  # two of each scenario class (seed % 5)
def test_driver_sim_seeds(seed):
    r = run_driver_sim(scenario(seed))
    _assert_ok(r)
    assert r.txs_accepted > 0 and r.delivered > 0
    assert all(len(set(v)) == len(v) for v in r.hashes.values())  # a chain, one block per height


def test_same_seed_same_run():
    a, b = run_driver_sim(scenario(3)), run_driver_sim(scenario(3))
    assert a.hashes == b.hashes and a.time_ms == b.time_ms and a.delivered == b.delivered


def test_crash_restart_resumes_from_storage_and_privval():
    r = run_driver_sim(DriverSimConfig(seed=7, restart=(("v1", 300, 2500),), heights=4))
    _assert_ok(r)
    assert r.heights["v1"] >= 4


def test_a_split_network_stalls_and_the_check_says_so():
    halves = (frozenset({"v0", "v1"}), frozenset({"v2", "v3"}))
    r = run_driver_sim(DriverSimConfig(seed=1, partitions=(Partition(0, 10**9, halves),), max_time_ms=4000))
    assert not r.completed and not r.problems  # no quorum anywhere: nothing decided, nothing forked
    assert max(r.heights.values()) == 0


def test_a_driver_with_a_wrong_quorum_forks_and_the_check_catches_it(monkeypatch):
    """Not vacuous: the safety check sees a fork when the driver counts 2 of 4 as a quorum."""
    monkeypatch.setattr(bft, "quorum_size", lambda n: 2)
    from pocnet.consensus import engine
    monkeypatch.setattr(engine, "quorum_size", lambda n: 2)
    halves = (frozenset({"v0", "v1"}), frozenset({"v2", "v3"}))
    r = run_driver_sim(DriverSimConfig(seed=2, partitions=(Partition(0, 10**9, halves),), max_time_ms=4000,
                                       txs=6))
    assert any("disagreement" in p for p in r.problems), r.problems


@pytest.mark.slow
def test_driver_sim_sweep_200_seeds():
    failed = []
    for seed in range(200):
        r = run_driver_sim(scenario(seed))
        if not r.ok:
            failed.append((seed, r.heights, r.problems[:2]))
    assert not failed, failed


CHANGES = (("j0", "join", 200), ("v1", "leave", 1500))


@pytest.mark.parametrize("seed", range(5))  # one of each fault class, with a changing set
def test_driver_sim_with_a_joining_and_a_leaving_validator(seed):
    """j0 joins by tx, v1 leaves by tx; agreement, certificates checked against the set of each
    height, identical roots; j0 ends up signing commits and v1 is out of the final set."""
    from dataclasses import replace
    r = run_driver_sim(replace(scenario(seed), joiners=1, set_changes=CHANGES, heights=12, max_time_ms=90_000))
    _assert_ok(r)
    assert r.final_set == ("v0", "v2", "v3", "j0"), r.final_set
    assert r.signers.get("j0", 0) > 0 and r.heights["j0"] >= 12
    assert r.heights["v1"] >= 12            # the leaver keeps following as a full node
