"""Table VI aggregation, the paired GFML-vs-baseline comparison and merged replots."""
import json
import math

import pytest
from typer.testing import CliRunner

from pocnet.fml.cli import app
from pocnet.fml.report import (adversarial_markdown, adversarial_rows, late_accuracy, paired_markdown, paired_rows,
                               round_latency, table_rows)


def fake_run(scheme: str, seed: int, accs: list[float], latency: float, time: float, profit: float = 1.0) -> dict:
    rounds = [
        {"round": i + 1, "acc": a, "loss": 1 - a, "global_acc": a / 2, "global_loss": 1.0,
         "avg_coalition_latency": latency, "avg_completion_time": time}
        for i, a in enumerate(accs)
    ]
    return {
        "tag": "main",
        "scheme": scheme,
        "seed": seed,
        "config": {"blockchain": True, "misbehave_rate": 0.0, "n_learners": 8, "n_coalitions": 2},
        "rounds": rounds,
        "final": {"acc": accs[-1], "loss": 1 - accs[-1], "global_acc": accs[-1] / 2, "profit_per_active_learner": profit,
                  "avg_completion_time": time, "avg_msp_utility": 10.0, "passive_acc": {"1": 0.5}},
    }


def test_late_accuracy_and_latency():
    run = fake_run("gfml", 0, [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7], latency=6.0, time=4.0)
    assert late_accuracy(run) == pytest.approx(0.5)  # mean of the last 5 rounds
    assert late_accuracy(run, last=2) == pytest.approx(0.65)
    assert round_latency(run) == pytest.approx(6.0)


def test_paired_differences_by_seed():
    runs = []
    # gfml beats "fixed" by 1, 3 and -1 points on seeds 0..2; latency 1 s lower on every seed
    for seed, (g, f) in enumerate([(0.91, 0.90), (0.93, 0.90), (0.89, 0.90)]):
        runs.append(fake_run("gfml", seed, [g], latency=5.0, time=4.0))
        runs.append(fake_run("fixed-stackelberg", seed, [f], latency=6.0 + seed, time=3.0))
    runs.append(fake_run("fixed-stackelberg", 9, [0.5], latency=1.0, time=1.0))  # no gfml partner: ignored
    rows = paired_rows(runs)
    assert [r["scheme"] for r in rows] == ["fixed-stackelberg"]
    row = rows[0]
    assert row["seeds"] == 3
    assert row["acc"]["diff"] == pytest.approx(0.01)
    assert row["acc"]["better_on"] == 2
    # t_{0.975, 2} = 4.3027; sample std of (0.01, 0.03, -0.01) = 0.02
    assert row["acc"]["ci95"] == pytest.approx(4.302653 * 0.02 / math.sqrt(3), rel=1e-5)
    assert row["latency"]["diff"] == pytest.approx(-2.0)
    assert row["latency"]["better_on"] == 3  # lower is better for times
    assert row["time"]["better_on"] == 0
    assert row["loss"]["diff"] == pytest.approx(-0.01)
    assert row["loss"]["better_on"] == 2  # lower loss is better
    md = paired_markdown(rows)
    assert "| Fixed coalition formation + Stackelberg game | 3 | +1.00 ± 4.97 pt (2) |" in md
    assert "| -0.010 ± 0.050 (2) | +1.00 ± 0.00 (0) | -2.00 ± 2.48 (3) |" in md
    # the unpaired table still uses every run
    fixed = next(r for r in table_rows(runs) if r["scheme"] == "fixed-stackelberg")
    assert fixed["seeds"] == 4


def _write(path, runs):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"meta": {"seeds": sorted({r["seed"] for r in runs})}, "runs": runs}))


def test_replot_merges_reports(tmp_path):
    a, b = tmp_path / "a" / "report.json", tmp_path / "b" / "report.json"
    _write(a, [fake_run("gfml", 0, [0.9], 5.0, 4.0), fake_run("random-opt-freq", 0, [0.8], 7.0, 4.5)])
    _write(b, [fake_run("gfml", 1, [0.92], 5.0, 4.0), fake_run("random-opt-freq", 1, [0.85], 7.0, 4.5)])
    out = tmp_path / "merged"
    res = CliRunner().invoke(app, ["replot", str(a), str(b), "--out", str(out)])
    assert res.exit_code == 0, res.output
    merged = json.loads((out / "report.json").read_text())
    assert len(merged["runs"]) == 4
    assert {r["seeds"] for r in merged["table"]} == {2}
    md = (out / "report.md").read_text()
    assert "| Random coalition formation + optimized frequencies | 2 |" in md  # paired table
    assert (out / "personalised_accuracy_loss.png").stat().st_size > 0


def test_replot_refuses_a_run_twice(tmp_path):
    a, b = tmp_path / "a" / "report.json", tmp_path / "b" / "report.json"
    _write(a, [fake_run("gfml", 0, [0.9], 5.0, 4.0)])
    _write(b, [fake_run("gfml", 0, [0.9], 5.0, 4.0)])
    res = CliRunner().invoke(app, ["replot", str(a), str(b), "--out", str(tmp_path / "m")], env={"COLUMNS": "250"})
    assert res.exit_code == 2
    assert "also in" in res.output
    assert not (tmp_path / "m" / "report.md").exists()


def test_replot_rejects_a_file_that_is_not_a_report(tmp_path):
    bad = tmp_path / "x.json"
    bad.write_text("[1, 2]")
    res = CliRunner().invoke(app, ["replot", str(bad)], env={"COLUMNS": "250"})
    assert res.exit_code == 2
    assert "not a report.json" in res.output


def _adv_run(seed: int, rate: float, kind: str, honest: float, bad: float, acc: float, on_chain: bool = True) -> dict:
    run = fake_run("gfml", seed, [acc], 5.0, 4.0)
    run["tag"] = "main" if rate == 0 else "misbehaviour"
    run["on_chain"] = on_chain
    run["config"].update({"misbehave_rate": rate, "misbehaviour_kind": kind})
    run["final"].update({"profit_per_honest": honest, "profit_per_misbehaving": bad})
    return run


def test_adversarial_rows_show_the_worst_seed():
    """A mean margin can hide a seed where shirking pays: the per-seed range and the count show it."""
    runs = [_adv_run(s, 0.0, "noisy", 6.0, 0.0, 0.90) for s in range(3)]
    runs += [_adv_run(0, 0.5, "noisy", 6.0, -0.3, 0.80), _adv_run(1, 0.5, "noisy", 5.0, 5.5, 0.85),
             _adv_run(2, 0.5, "noisy", 7.0, 1.0, 0.70)]
    runs.append(_adv_run(0, 0.5, "noisy", 2.0, 9.0, 0.80, on_chain=False))  # offline twin: own row, no clean run
    rows = adversarial_rows(runs)
    assert [(r["on_chain"], r["seeds"]) for r in rows] == [(False, 1), (True, 3)]
    row = rows[1]
    assert row["margin_range"] == pytest.approx((-0.5, 6.3))
    assert row["honest_wins"] == 2
    assert row["acc_cost"][0] == pytest.approx((0.10 + 0.05 + 0.20) / 3)
    md = adversarial_markdown(rows)
    assert "| noisy | 50% | chain (4 peers) | 3 | 6.00 ± 0.82 | 2.07 ± 2.49 | -0.50 … +6.30 | 2/3 | 78.3 % | +11.7 pts |" in md
    assert "| -7.00 … -7.00 | 0/1 | 80.0 % | – |" in md
