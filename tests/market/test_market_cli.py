"""`pocnet market solve`: the example's answer, the output keys, one-line errors."""
import json
from pathlib import Path

from typer.testing import CliRunner

from pocnet import games
from pocnet.node.cli import app

EXAMPLE = Path(games.__file__).parent / "examples" / "market_fig3.json"
runner = CliRunner()


def test_solve_example_keys_and_check():
    res = runner.invoke(app, ["market", "solve", "--input", str(EXAMPLE)])
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout)
    for key in ("prices", "demands", "U_L", "U_F", "theta", "delay_binding", "check", "iterations"):
        assert key in out
    assert set(out["check"]) >= {"max_leader_gain", "max_follower_gain"}
    assert len(out["demands"]) == 3 and all(len(r) == 2 for r in out["demands"])
    assert out["check"]["max_leader_gain"] <= 1e-6 and out["check"]["max_follower_gain"] <= 1e-6
    assert abs(out["prices"][0] - 0.933) < 1e-3


def test_solve_start_option(tmp_path):
    res = runner.invoke(app, ["market", "solve", "--input", str(EXAMPLE), "--start", "1.2,0.3", "--no-check"])
    assert res.exit_code == 0, res.output
    assert abs(json.loads(res.stdout)["prices"][1] - 0.788) < 1e-3
    bad = runner.invoke(app, ["market", "solve", "--input", str(EXAMPLE), "--start", "1.2"])
    assert bad.exit_code == 2 and "--start" in bad.stderr


def test_errors_are_one_line(tmp_path):
    doc = json.loads(EXAMPLE.read_text())
    doc["w"][0][1] = 4.0
    f = tmp_path / "bad.json"
    f.write_text(json.dumps(doc))
    res = runner.invoke(app, ["market", "solve", "--input", str(f)])
    assert res.exit_code == 2
    assert res.stderr.strip().count("\n") == 0 and "w[0][1]" in res.stderr and "Traceback" not in res.output
    del doc["alpha"]
    f.write_text(json.dumps(doc))
    assert "alpha: required" in runner.invoke(app, ["market", "solve", "--input", str(f)]).stderr
    f.write_text("{nope")
    assert "not valid JSON" in runner.invoke(app, ["market", "solve", "--input", str(f)]).stderr
    assert "cannot read" in runner.invoke(app, ["market", "solve", "--input", str(tmp_path / "x")]).stderr


def test_solve_random_six_by_four(tmp_path):
    """The largest size the issue asks for: N = 6 MSPs, M = 4 MRPs, with a delay bound binding."""
    import numpy as np

    from pocnet.games import market as mk
    inst = mk.random_instance(np.random.default_rng(4), 6, 4)
    doc = {"alpha": list(inst.alpha), "beta": list(inst.beta), "w": [list(r) for r in inst.w], "c": list(inst.c),
           "p_max": inst.p_max, "kappa": inst.kappa, "D_mb": list(inst.D_mb), "L_mcycles": list(inst.L_mcycles),
           "K_s": list(inst.K_s), "f_ghz": list(inst.f_ghz), "lam": list(inst.lam), "mu": list(inst.mu)}
    f = tmp_path / "in.json"
    f.write_text(json.dumps(doc))
    res = runner.invoke(app, ["market", "solve", "--input", str(f)])
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout)
    assert len(out["prices"]) == 4 and len(out["demands"]) == 6 and any(out["delay_binding"])
    assert out["check"]["passed"] and out["converged"]
