"""fml simulate: Ctrl-C writes the partial report; --on-chain does not silently reuse an old chain."""
import json
import os
import signal

import pytest

from pocnet.fml import cli as fml_cli
from pocnet.node.cli import main
from pocnet.node.setup_home import init_cluster_home


@pytest.mark.slow
def test_ctrl_c_writes_the_partial_report(tmp_path, toy_data, monkeypatch, capsys):
    real = fml_cli._offline_run

    def interrupt_after_first_round(data, tag, key, seed, cfg, on_round=None, stop=None):
        def hook(r):
            if on_round:
                on_round(r)
            if r == 1:
                os.kill(os.getpid(), signal.SIGINT)  # what Ctrl-C in the terminal sends
        return real(data, tag, key, seed, cfg, hook, stop)

    monkeypatch.setattr(fml_cli, "_offline_run", interrupt_after_first_round)
    # A foreground terminal process has Python's KeyboardInterrupt handler; a job started with `&`
    # by a non-interactive shell (how some CI harnesses run) inherits SIGINT ignored. Test the former.
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        _interrupted_run(tmp_path, capsys)
    finally:
        signal.signal(signal.SIGINT, previous)


def _interrupted_run(tmp_path, capsys) -> None:
    out = tmp_path / "rep"
    code = main(["fml", "simulate", "--learners", "6", "--coalitions", "2", "--rounds", "3", "--seeds", "0,1",
                 "--schemes", "gfml", "--out", str(out)])
    err = capsys.readouterr().err
    assert code == 130
    assert "error: interrupted: partial report of 1 of 2 run(s) (1 completed rounds) written to" in err
    rep = json.loads((out / "report.json").read_text())
    assert rep["meta"]["interrupted"] == {"runs_reported": 1, "runs_planned": 2, "partial_runs": 1}
    (run,) = rep["runs"]
    assert len(run["rounds"]) == 1 and run["config"]["rounds_completed"] == 1 and run["config"]["rounds"] == 3
    assert (out / "report.md").exists()
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # handler restored


def test_on_chain_refuses_an_out_holding_a_previous_chain(tmp_path, capsys):
    out = tmp_path / "onchain"
    init_cluster_home(out / "chain", 4, 29930, [], chain_id="fml-sim")
    code = main(["fml", "simulate", "--on-chain", "--out", str(out)])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1
    assert "holds the chain of a previous --on-chain run" in err and "--resume" in err and "--fresh" in err
    code = main(["fml", "simulate", "--on-chain", "--resume", "--fresh", "--out", str(out)])
    assert code == 2 and "at most one of --resume and --fresh" in capsys.readouterr().err
    fml_cli._check_previous_chain(out / "chain", resume=True, fresh=False)  # kept
    assert (out / "chain" / "genesis.json").exists()
    fml_cli._check_previous_chain(out / "chain", resume=False, fresh=True)  # removed
    assert not (out / "chain").exists()
    fml_cli._check_previous_chain(out / "chain", resume=False, fresh=False)  # nothing there: fine
