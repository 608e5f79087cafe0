"""Scenario format, generator, chain loader and task-graph rule."""
from pathlib import Path

import numpy as np
import pytest

from pocnet.models.scenario import (HISTORY_LEN, Scenario, generate_scenario, load_scenario, save_scenario,
                             scenario_from_chain, scenario_from_dict, scenario_to_dict, task_graph_edges)

EXAMPLE = Path(__file__).resolve().parents[2] / "models" / "examples" / "scenario_small.json"


def _same(a: Scenario, b: Scenario) -> bool:
    return scenario_to_dict(a) == scenario_to_dict(b)


def test_generator_is_seeded():
    assert _same(generate_scenario(3), generate_scenario(3))
    assert not _same(generate_scenario(3), generate_scenario(4))
    s = generate_scenario(11, (8, 64), (3, 8))
    assert 8 <= s.n_tasks <= 64 and 3 <= s.n_providers <= 8
    assert list(s.arrival) == sorted(s.arrival)


def test_json_roundtrip(tmp_path):
    s = generate_scenario(5)
    save_scenario(s, tmp_path / "s.json")
    assert _same(load_scenario(tmp_path / "s.json"), s)


def test_example_file_loads():
    s = load_scenario(EXAMPLE)
    assert s.n_tasks == 10 and s.n_providers == 3


def test_chain_loader_sorts_pads_and_clamps():
    tasks = [{"task_id": "b", "work": 5, "demand": [2000, -3], "arrival": 10, "deadline": 20},
             {"task_id": "a", "work": 7, "demand": [1, 2, 3, 4], "arrival": 10, "deadline": 30},
             {"task_id": "c", "work": 1, "demand": [], "arrival": 2, "deadline": 3}]
    provs = [{"provider_id": "x", "capacity": 2, "backlog": 0, "history": list(range(12)), "reputation_ppm": 5},
             {"provider_id": "y", "capacity": 1, "backlog": 3, "history": [9], "reputation_ppm": 5}]
    s = scenario_from_chain(tasks, provs)
    assert s.task_ids == ("c", "a", "b")
    assert s.demand.tolist() == [[0, 0, 0], [1, 2, 3], [1000, 0, 0]]
    assert s.history.shape == (2, HISTORY_LEN)
    assert s.history[0].tolist() == list(range(4, 12))
    assert s.history[1].tolist() == [0] * 7 + [9]


@pytest.mark.parametrize("bad", [
    {"capacity": 0}, {"backlog": -1}, {"reputation_ppm": 1 << 41}])
def test_chain_loader_rejects_bad_providers(bad):
    p = {"provider_id": "x", "capacity": 1, "backlog": 0, "history": [], "reputation_ppm": 1}
    p.update(bad)
    with pytest.raises(ValueError):
        scenario_from_chain([], [p])


def test_chain_loader_rejects_duplicates_and_float_json():
    p = {"provider_id": "x", "capacity": 1, "backlog": 0, "history": [], "reputation_ppm": 1}
    with pytest.raises(ValueError):
        scenario_from_chain([], [p, dict(p)])
    with pytest.raises(ValueError):
        scenario_from_dict({"version": 1, "tasks": [], "providers": [dict(p, capacity=1.5)]})


def test_task_graph_rule_by_hand():
    # t0/t1: same direction, 50 ms apart -> edge; t2: orthogonal demand -> none;
    # t3: same direction as t0 but 500 ms later -> none; t4: zero demand -> none.
    tasks = [{"task_id": f"t{i}", "work": 1, "demand": d, "arrival": a, "deadline": a}
             for i, (d, a) in enumerate([([100, 0, 0], 0), ([200, 10, 0], 50), ([0, 100, 0], 60),
                                          ([100, 0, 0], 500), ([0, 0, 0], 0)])]
    s = scenario_from_chain(tasks, [{"provider_id": "p", "capacity": 1, "backlog": 0, "history": [],
                                      "reputation_ppm": 1}])
    src, dst = task_graph_edges(s)
    edges = {(s.task_ids[a], s.task_ids[b]) for a, b in zip(src, dst)}
    assert edges == {("t0", "t1"), ("t1", "t0")}


def test_task_graph_is_symmetric():
    s = generate_scenario(9)
    src, dst = task_graph_edges(s)
    e = set(zip(src.tolist(), dst.tolist()))
    assert e == {(b, a) for a, b in e} and all(a != b for a, b in e)
    assert np.all(np.abs(s.arrival[src] - s.arrival[dst]) <= 100)
