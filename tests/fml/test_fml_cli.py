"""A reduced simulate run through the CLI."""
import json

import pytest
from typer.testing import CliRunner

from pocnet.fml.cli import app


@pytest.mark.slow
def test_simulate_writes_report(tmp_path, toy_data):
    out = tmp_path / "rep"
    res = CliRunner().invoke(
        app,
        ["simulate", "--learners", "8", "--coalitions", "2", "--rounds", "2", "--seeds", "0",
         "--schemes", "gfml,best-effort-opt-freq,random-stackelberg", "--misbehaviour", "0,0.5", "--out", str(out)],
    )
    assert res.exit_code == 0, res.output
    rep = json.loads((out / "report.json").read_text())
    keys = {(r["tag"], r["scheme"], r["config"]["blockchain"], r["config"]["misbehave_rate"]) for r in rep["runs"]}
    assert ("main", "gfml", True, 0.0) in keys and ("misbehaviour", "gfml", False, 0.5) in keys
    assert [row["scheme"] for row in rep["table"]] == ["gfml", "random-stackelberg", "best-effort-opt-freq"]
    run = rep["runs"][0]
    assert len(run["rounds"]) == 2 and 0.0 <= run["final"]["acc"] <= 1.0
    assert set(run["final"]["passive_acc"]) == {"1", "5", "10"}
    assert "| GFML |" in (out / "report.md").read_text()
    assert (out / "personalised_accuracy_loss.png").stat().st_size > 0
    assert (out / "misbehaviour.png").exists()
    # the report can be rebuilt from report.json alone
    (out / "report.md").unlink()
    res = CliRunner().invoke(app, ["replot", str(out / "report.json")])
    assert res.exit_code == 0, res.output
    assert "| GFML |" in (out / "report.md").read_text()


def test_on_chain_cluster_needs_a_key(tmp_path):
    res = CliRunner().invoke(app, ["simulate", "--on-chain", "--cluster", "http://127.0.0.1:1", "--out", str(tmp_path)])
    assert res.exit_code == 2
    assert "msp-key" in res.output


def test_unknown_scheme(tmp_path, toy_data):
    res = CliRunner().invoke(app, ["simulate", "--schemes", "nope", "--out", str(tmp_path)])
    assert res.exit_code != 0


@pytest.mark.slow
def test_parallel_jobs_give_the_same_runs(tmp_path, toy_data):
    """--jobs N only changes where runs execute: every number in report.json is the same."""
    args = ["simulate", "--learners", "8", "--coalitions", "2", "--rounds", "2", "--seeds", "0,1",
            "--schemes", "gfml,fixed-stackelberg"]
    reports = []
    for jobs in ("1", "2"):
        out = tmp_path / f"j{jobs}"
        res = CliRunner().invoke(app, args + ["--jobs", jobs, "--out", str(out)])
        assert res.exit_code == 0, res.output
        reports.append(json.loads((out / "report.json").read_text()))
    assert [(r["scheme"], r["seed"]) for r in reports[1]["runs"]] == [
        ("gfml", 0), ("fixed-stackelberg", 0), ("gfml", 1), ("fixed-stackelberg", 1)]
    assert reports[0]["runs"] == reports[1]["runs"]
    assert reports[0]["table"] == reports[1]["table"]


def test_empty_scheme_list(tmp_path, toy_data):
    res = CliRunner().invoke(app, ["simulate", "--schemes", " , ", "--out", str(tmp_path)], env={"COLUMNS": "250"})
    assert res.exit_code == 2
    assert "no scheme given" in res.output


def test_unknown_misbehaviour_kind_and_sweep_mode(tmp_path, toy_data):
    res = CliRunner().invoke(app, ["simulate", "--misbehaviour-kind", "lazy,sneaky", "--out", str(tmp_path)])
    assert res.exit_code != 0 and "sneaky" in res.output
    res = CliRunner().invoke(app, ["simulate", "--sweep-blockchain", "maybe", "--out", str(tmp_path)])
    assert res.exit_code != 0
