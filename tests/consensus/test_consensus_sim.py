"""Safety and liveness of the engine in the seeded network simulation."""

from __future__ import annotations

import pytest

from pocnet.consensus.engine import certificate_ok
from pocnet.consensus.messages import Proposal
from pocnet.consensus.proposer import HashOrderSelector, SelectionContext
from pocnet.consensus.sim import (
    EQUIVOCATE,
    FORGE,
    GENESIS_HASH,
    SILENT,
    Partition,
    SimConfig,
    SimResult,
    random_config,
    run,
)


def ids(n: int) -> tuple[str, ...]:
    return tuple(f"v{i}" for i in range(n))


def first_proposer(n: int = 4) -> str:
    """Proposer of height 1, round 0 in the simulation (hash order over 'genesis')."""
    return HashOrderSelector().ranking(1, SelectionContext(GENESIS_HASH, ids(n)))[0]


def check_safe(res: SimResult, n: int, byzantine: set[str]) -> None:
    assert res.agreement(), res.conflicts()
    assert not res.invalid_decisions
    for node in res.honest:
        for d in res.certificates[node].values():
            assert certificate_ok(d, ids(n))
        # honest validators never equivocate, so evidence can only name Byzantine ones
        assert {e.validator for e in res.evidence[node]} <= byzantine


def test_happy_path_decides_every_height_in_round_zero() -> None:
    res = run(SimConfig(n=4, heights=5, seed=1))
    assert res.completed and res.min_decided() == 5
    check_safe(res, 4, set())
    assert res.max_round == 0
    values = [res.decisions["v0"][h] for h in range(1, 6)]
    assert len(set(values)) == 5
    # proposers rotate with the committed prev_hash: not one validator proposing everything
    assert len({v.rsplit(".", 1)[1] for v in values}) > 1


def test_same_seed_same_run_different_seed_different_schedule() -> None:
    cfg = SimConfig(n=4, heights=3, seed=7, drop=0.2, drop_until_ms=3000, delay_ms=(1, 200), byzantine=(("v2", FORGE),))
    a, b = run(cfg), run(cfg)
    assert (a.decisions, a.decide_time_ms, a.events, a.time_ms) == (b.decisions, b.decide_time_ms, b.events, b.time_ms)
    c = run(SimConfig(**{**cfg.__dict__, "seed": 8}))
    assert (c.events, c.decide_time_ms) != (a.events, a.decide_time_ms)


@pytest.mark.slow
def test_safety_sweep_random_faults_and_byzantine() -> None:
    """420 seeds (n = 4, 7, 10): random drop/delay/reorder/duplication/long tails, sometimes a partition,
    f Byzantine peers (silent, equivocating or forging). Agreement must always hold; the
    runs also all finish because drops stop at a GST and partitions heal."""
    failures = []
    for n, seeds in ((4, 300), (7, 100), (10, 20)):
        for seed in range(seeds):
            cfg = random_config(seed, n=n)
            res = run(cfg)
            check_safe(res, n, {b for b, _ in cfg.byzantine})
            if not res.completed:
                failures.append((n, seed))
    assert not failures, f"liveness failed for {failures}"


def test_liveness_after_drops_stop() -> None:
    for seed in range(5):
        cfg = SimConfig(n=4, heights=4, seed=seed, drop=0.5, drop_until_ms=4000, delay_ms=(1, 100), byzantine=(("v3", SILENT),))
        res = run(cfg)
        check_safe(res, 4, {"v3"})
        assert res.completed and res.min_decided() >= 4


def test_liveness_under_persistent_loss_with_relay_gossip() -> None:
    """30 % loss that never stops, plus a vote forger: periodic relaying of every held
    message restores eventual delivery, so all heights are still decided."""
    for seed in range(5):
        cfg = SimConfig(n=4, heights=4, seed=seed, drop=0.3, drop_until_ms=None, delay_ms=(1, 100), byzantine=(("v1", FORGE),))
        res = run(cfg)
        check_safe(res, 4, {"v1"})
        assert res.completed


def test_timeouts_grow_until_they_exceed_message_delay() -> None:
    """Delays up to 1.5 s against a 100 ms base timeout: early rounds fail, linear growth
    eventually makes a round long enough, so every height still gets decided."""
    from pocnet.consensus.messages import TimeoutConfig

    cfg = SimConfig(n=4, heights=2, seed=3, delay_ms=(200, 1500), timeouts=TimeoutConfig(100, 100, 50, 100, 50, 100), gossip_interval_ms=2000)
    res = run(cfg)
    check_safe(res, 4, set())
    assert res.completed
    assert res.max_round >= 2


def test_two_two_partition_decides_nothing_until_healed() -> None:
    heal = 8000
    part = Partition(0, heal, (frozenset({"v0", "v1"}), frozenset({"v2", "v3"})))
    for seed in range(3):
        res = run(SimConfig(n=4, heights=3, seed=seed, partitions=(part,)))
        check_safe(res, 4, set())
        times = [t for node in res.honest for t in res.decide_time_ms[node].values()]
        assert times and min(times) >= heal
        assert res.completed and res.min_decided() == 3


def test_isolated_minority_catches_up_after_heal() -> None:
    part = Partition(0, 6000, (frozenset({"v0", "v1", "v2"}), frozenset({"v3"})))
    res = run(SimConfig(n=4, heights=4, seed=2, partitions=(part,)))
    check_safe(res, 4, set())
    assert res.completed
    assert min(res.decide_time_ms["v0"].values()) < 6000  # the 3-side (a quorum) keeps going
    assert min(res.decide_time_ms["v3"].values()) >= 6000


@pytest.mark.parametrize("invalid_alt", [False, True])
def test_equivocating_proposer_causes_no_fork(invalid_alt: bool) -> None:
    byz = first_proposer()
    seen_evidence = False
    for seed in range(12):
        cfg = SimConfig(
            n=4, heights=3, seed=seed, delay_ms=(1, 80), byzantine=((byz, EQUIVOCATE),), byz_invalid_alt=invalid_alt
        )
        res = run(cfg)
        check_safe(res, 4, {byz})
        assert res.completed
        seen_evidence |= any(
            isinstance(e.first, Proposal) and e.validator == byz for node in res.honest for e in res.evidence[node]
        )
    assert seen_evidence, "honest peers should have caught the double proposal at least once"


def test_forged_votes_cause_no_fork_and_are_recorded() -> None:
    byz = "v1"
    caught = 0
    for seed in range(8):
        res = run(SimConfig(n=4, heights=3, seed=seed, drop=0.1, drop_until_ms=2000, byzantine=((byz, FORGE),)))
        check_safe(res, 4, {byz})
        assert res.completed
        caught += any(e.validator == byz for node in res.honest for e in res.evidence[node])
    assert caught == 8


def test_invalid_block_is_never_decided() -> None:
    bad = f"b1.0.{first_proposer()}"
    res = run(SimConfig(n=4, heights=2, seed=4, invalid_values=frozenset({bad})))
    check_safe(res, 4, set())
    assert res.completed
    assert all(res.decisions[node][1] != bad for node in res.honest)
    assert res.max_round >= 1


def test_more_than_f_silent_stalls_without_deciding() -> None:
    """2 of 4 silent (> f): no quorum, so nothing is decided — and nothing unsafe happens."""
    res = run(SimConfig(n=4, heights=1, seed=0, byzantine=(("v0", SILENT), ("v1", SILENT)), max_time_ms=20_000))
    assert not res.completed
    assert all(not d for d in res.decisions.values())
