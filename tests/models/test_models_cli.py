"""CLI: allocate with every solver (objective == eq. 1), tiny data generation,
and (slow) a tiny end-to-end generate -> train -> distill -> eval run."""
import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from pocnet.models.cli import app
from pocnet.models.objective import total_latency
from pocnet.models.scenario import load_scenario

EXAMPLE = Path(__file__).resolve().parents[2] / "models" / "examples" / "scenario_small.json"
runner = CliRunner()


@pytest.mark.parametrize("solver", ["ga", "teacher", "student", "greedy", "exact"])
def test_allocate_objective_is_eq1(solver):
    res = runner.invoke(app, ["allocate", "--scenario", str(EXAMPLE), "--solver", solver])
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout)
    scn = load_scenario(EXAMPLE)
    assert len(out["allocation"]) == scn.n_tasks
    assert all(0 <= k < scn.n_providers for k in out["allocation"])
    assert out["objective"] == float(total_latency(scn, out["allocation"]))


def test_allocate_exact_is_best():
    objs = {}
    for solver in ("ga", "greedy", "exact", "student"):
        res = runner.invoke(app, ["allocate", "--scenario", str(EXAMPLE), "--solver", solver])
        objs[solver] = json.loads(res.stdout)["objective"]
    assert objs["exact"] <= min(objs.values())


def test_allocate_rejects_unknown_solver():
    res = runner.invoke(app, ["allocate", "--scenario", str(EXAMPLE), "--solver", "magic"])
    assert res.exit_code != 0


def test_generate_tiny(tmp_path):
    res = runner.invoke(app, ["generate", "--out", str(tmp_path), "--seed", "5", "--n-train", "2",
                              "--n-val", "1", "--n-test", "1", "--n-small", "1"])
    assert res.exit_code == 0, res.output
    small = json.loads((tmp_path / "small.json").read_text())[0]
    assert small["exact_obj"] <= small["ga_obj"] <= small["greedy_obj"]
    assert len(json.loads((tmp_path / "train.json").read_text())) == 2
    assert (tmp_path / "train_aug.json").exists()


@pytest.mark.slow
def test_tiny_pipeline(tmp_path):
    data, model, ev = tmp_path / "d", tmp_path / "m", tmp_path / "e"
    assert runner.invoke(app, ["generate", "--out", str(data), "--n-train", "8", "--n-val", "2",
                               "--n-test", "3", "--n-small", "2"]).exit_code == 0
    r = runner.invoke(app, ["train-teacher", "--data", str(data), "--out", str(model), "--epochs", "1"])
    assert r.exit_code == 0, r.output
    r = runner.invoke(app, ["distill", "--data", str(data), "--out", str(model), "--epochs", "1"])
    assert r.exit_code == 0, r.output
    r = runner.invoke(app, ["eval", "--data", str(data), "--model-dir", str(model), "--out", str(ev)])
    assert r.exit_code == 0, r.output
    m = json.loads((ev / "metrics.json").read_text())["summary"]
    assert m["n_test"] == 3 and (ev / "total_delay.png").exists()
