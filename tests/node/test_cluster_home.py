"""Cluster homes without running peers: locks, options an existing home refuses, catching_up."""
from __future__ import annotations

import shlex
import subprocess
import sys

import pytest

from pocnet.ledger.keys import KeyPair
from pocnet.node import homelock
from pocnet.node.cli import main
from pocnet.node.cluster import cluster_status, running, shell_command
from pocnet.node.setup_home import existing_home_conflicts, init_cluster_home
from tests.conftest import ROOT

ALICE = KeyPair.from_seed(b"\x31" * 32)

HOLD = ("import sys, time; from pocnet.node import homelock; homelock.acquire(sys.argv[1], sys.argv[2]); "
        "print('locked', flush=True); time.sleep(60)")


def hold_lock(path, name=homelock.NODE_LOCK) -> subprocess.Popen:
    """Another process holding a home lock (flock is per open file, so it must be another process)."""
    p = subprocess.Popen([sys.executable, "-c", HOLD, str(path), name], stdout=subprocess.PIPE, text=True, cwd=ROOT)
    assert p.stdout.readline().strip() == "locked"
    return p


def test_lock_names_its_holder_and_is_freed_when_the_process_dies(tmp_path):
    assert homelock.holder(tmp_path) is None
    p = hold_lock(tmp_path)
    try:
        assert homelock.holder(tmp_path) == p.pid
        with pytest.raises(homelock.HomeLocked) as exc:
            homelock.acquire(tmp_path)
        assert exc.value.pid == p.pid and f"pid {p.pid}" in str(exc.value)
    finally:
        p.kill()
        p.wait()
    assert homelock.holder(tmp_path) is None  # the kernel dropped it, even after SIGKILL
    homelock.acquire(tmp_path)
    try:
        assert homelock.holder(tmp_path) == __import__("os").getpid()
    finally:
        homelock.release(tmp_path)
    assert homelock.holder(tmp_path) is None


def test_second_node_on_a_home_refuses(tmp_path, capsys):
    init_cluster_home(tmp_path, 1, 29950, [])
    p = hold_lock(tmp_path / "peer0")
    try:
        code = main(["node", "--home", str(tmp_path / "peer0")])
        err = capsys.readouterr().err.strip()
        assert code == 1 and len(err.splitlines()) == 1
        assert f"is in use by pid {p.pid}" in err and "another `pocnet node` runs on it" in err
        assert running(tmp_path) == {"peer0": p.pid}
    finally:
        p.kill()
        p.wait()


def test_cluster_up_refuses_a_running_home(tmp_path, capsys):
    init_cluster_home(tmp_path, 2, 29960, [])
    p = hold_lock(tmp_path, homelock.CLUSTER_LOCK)
    try:
        code = main(["cluster", "up", "--home", str(tmp_path)])
        err = capsys.readouterr().err.strip()
        assert code == 1 and err.startswith(f"error: {tmp_path} is already running (cluster up pid {p.pid})")
        assert "pocnet cluster down --home" in err
    finally:
        p.kill()
        p.wait()


def test_options_an_existing_home_cannot_take_are_refused(tmp_path, capsys):
    g = init_cluster_home(tmp_path, 2, 29970, [(ALICE.address, 500)], chain_id="fixed")
    assert existing_home_conflicts(tmp_path, 2, 29970, "fixed", [(ALICE.address, 500)]) == []
    assert existing_home_conflicts(tmp_path) == []
    bad = existing_home_conflicts(tmp_path, 4, 30000, "other", [(ALICE.address, 7)])
    assert [b.split()[0] for b in bad] == ["--peers", "--base-port", "--chain-id", "--fund"]
    for argv, named in ((["--peers", "3"], "--peers 3"), (["--base-port", "30000"], "--base-port 30000"),
                        (["--chain-id", "x"], "--chain-id x"), (["--fund", f"{ALICE.address}:1"], "faucet.json")):
        code = main(["cluster", "up", "--home", str(tmp_path)] + argv)
        err = capsys.readouterr().err.strip()
        assert code == 2 and len(err.splitlines()) == 1 and "only apply to a new home" in err and named in err
        code = main(["genesis", "new", "--home", str(tmp_path), "--peers", "2", "--base-port", "29970"] + argv)
        err = capsys.readouterr().err.strip()
        assert code == 2 and named in err
    assert g.chain_id == "fixed"


def test_status_of_a_stopped_cluster(tmp_path, capsys):
    init_cluster_home(tmp_path, 3, 29980, [])
    rows = cluster_status(tmp_path, timeout_s=0.2)
    assert [(r["name"], r["pid"], r["health"]) for r in rows] == [(f"peer{i}", None, "stopped") for i in range(3)]
    assert main(["cluster", "status", "--home", str(tmp_path)]) == 1
    out, err = capsys.readouterr()
    assert "peer2" in out and err.strip() == "error: 3 of 3 peer(s) not ready: peer0 stopped, peer1 stopped, peer2 stopped"
    assert main(["cluster", "down", "--home", str(tmp_path)]) == 0
    assert "nothing is running" in capsys.readouterr().out
    assert main(["cluster", "status", "--home", str(tmp_path / "nope")]) == 1
    assert "not a cluster home" in capsys.readouterr().err


def test_restart_command_is_absolute_and_runnable(tmp_path):
    cmd = shlex.split(shell_command(tmp_path / "peer0"))
    assert cmd[0].startswith("/") and cmd[-3:] == ["node", "--home", str((tmp_path / "peer0").resolve())]
    p = subprocess.run(cmd[:-2] + ["--help"], capture_output=True, text=True, timeout=120)
    assert p.returncode == 0 and "--home" in p.stdout


def test_catching_up_in_status_and_health(tmp_path):
    from fastapi.testclient import TestClient

    from pocnet.node.node import Node
    init_cluster_home(tmp_path, 4, 29990, [])
    node = Node(tmp_path / "peer0")
    assert node.catching_up() is False
    node.driver.best_peer_height = node.chain.height + 1   # consensus may lag one height
    assert node.catching_up() is False
    node.driver.best_peer_height = node.chain.height + 5
    assert node.catching_up() is True
    app = node.create_app()
    with TestClient(app) as c:
        node.driver.best_peer_height = 10**6
        assert c.get("/health").json()["catching_up"] is True
        assert c.get("/status").json()["catching_up"] is True
    node.driver.best_peer_height = 0
    assert node.status()["catching_up"] is False


def test_task_result_needs_exactly_one_key_source(capsys, tmp_path):
    code = main(["tx", "task-result", "--task-id", "ab" * 32])
    assert code == 2 and "exactly one of --key" in capsys.readouterr().err
    code = main(["tx", "task-result", "--task-id", "ab" * 32, "--key", "k.json", "--home", str(tmp_path)])
    assert code == 2 and "exactly one of --key" in capsys.readouterr().err
