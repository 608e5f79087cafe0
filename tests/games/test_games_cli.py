"""`pocnet games` commands: answers on the shipped examples, exit 2 naming the field on bad input."""
import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from pocnet import games
from pocnet.games.cli import app

EXAMPLES = Path(games.__file__).parent / "examples"
runner = CliRunner()


def run(cmd, doc, tmp_path):
    f = tmp_path / "in.json"
    f.write_text(json.dumps(doc) if not isinstance(doc, str) else doc)
    return runner.invoke(app, [cmd, "--input", str(f)])


def example(name):
    return json.loads((EXAMPLES / f"{name}.json").read_text())


def test_reputation_example():
    res = runner.invoke(app, ["reputation", "--input", str(EXAMPLES / "reputation.json")])
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout)
    g = (0.49 * 0.9 + 0.7 * 0.6 + 1.0) / 2.19  # alice, decline 0.7
    assert out["global"]["alice"] == pytest.approx(g)
    assert out["global"]["carol"] == 0.5
    assert out["contributions"] == pytest.approx([1.0, 1 / 6, 0.25])
    assert out["task_specific"]["alice"]["h3"] == 0.0


def test_coalition_example():
    res = runner.invoke(app, ["coalition", "--input", str(EXAMPLES / "coalition.json")])
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout)
    assert out["nash_stable"] is True
    assert len(out["heads"]) == example("coalition")["params"]["n_coalitions"]
    placed = [a for m in out["partition"].values() for a in m] + out["sitting_out"] + out["passive"]
    assert sorted(placed) == sorted(p["address"] for p in example("coalition")["learners"])


def test_stackelberg_example():
    res = runner.invoke(app, ["stackelberg", "--input", str(EXAMPLES / "stackelberg.json")])
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout)
    assert 5.0 <= out["incentive"] <= 15.0
    assert set(out["members"]) == {"h1", "m1", "m2", "m3"}
    assert all(m["completion_time"] <= 6.0 for m in out["members"].values())
    doc = example("stackelberg")
    doc["incentive"] = 15.0
    res2 = runner.invoke(app, ["stackelberg", "--input", "-"], input=json.dumps(doc))
    assert res2.exit_code == 0, res2.output
    assert json.loads(res2.stdout)["msp_utility"] <= out["msp_utility"] + 1e-9  # C* is the optimum


@pytest.mark.parametrize(
    "cmd, mutate, field",
    [
        ("coalition", lambda d: d["learners"][2].pop("rate"), "learners[2].rate"),
        ("coalition", lambda d: d["learners"][0].update(f_max=-1), "learners[0].f_max"),
        ("coalition", lambda d: d.update(seed="x"), "seed"),
        ("coalition", lambda d: d["params"].update(bogus=1), "params.bogus"),
        ("coalition", lambda d: d.update(prev_partition={"L00000": ["nobody"]}), "prev_partition.L00000"),
        ("reputation", lambda d: d["histories"]["alice"].append([2, "h1", 0.5]), "histories.alice[3].round"),
        ("reputation", lambda d: d["histories"]["bob"].append([4, "h1", 2]), "histories.bob[1].q"),
        ("reputation", lambda d: d.pop("histories"), "histories"),
        ("reputation", lambda d: d["contributions"]["times"].pop(), "contributions.times"),
        ("stackelberg", lambda d: d["members"][1].pop("reputation"), "members[1].reputation"),
        ("stackelberg", lambda d: d.update(deadline=0), "deadline"),
        ("stackelberg", lambda d: d.update(incentive=99), "incentive"),
        ("stackelberg", lambda d: d["members"][0].update(colour=1), "members[0].colour"),
    ],
)
def test_bad_input_exits_2_naming_the_field(tmp_path, cmd, mutate, field):
    doc = example(cmd)
    mutate(doc)
    res = run(cmd, doc, tmp_path)
    assert res.exit_code == 2
    assert field in res.stderr, res.stderr


def test_unreadable_and_invalid_json(tmp_path):
    res = runner.invoke(app, ["coalition", "--input", str(tmp_path / "missing.json")])
    assert res.exit_code == 2 and "--input" in res.stderr
    res = run("reputation", "{not json", tmp_path)
    assert res.exit_code == 2 and "JSON" in res.stderr
    res = run("reputation", '{"histories": {}, "x": NaN}', tmp_path)
    assert res.exit_code == 2
    res = run("stackelberg", "[1, 2]", tmp_path)
    assert res.exit_code == 2 and "object" in res.stderr
