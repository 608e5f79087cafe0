"""`pocnet cluster up|status|down` as a user runs them: 4 real peers on 127.0.0.1.

Covers: status (PID, URL, height, catching_up, health), a second `cluster up` and a
second `pocnet node` on a running home refused, a killed peer restarted with the printed
command (it catches up), and `cluster down` stopping the launcher and the hand-started peer.
"""
from __future__ import annotations

import json
import os
import re
import shlex
import signal
import subprocess
import sys

import pytest

from pocnet.node import homelock
from tests.conftest import ROOT
from tests.proc_helpers import wait_until

pytestmark = pytest.mark.slow

POCNET = [sys.executable, "-m", "pocnet.node"]


def cli(*args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run(POCNET + list(args), capture_output=True, text=True, timeout=timeout, cwd=ROOT)


def status_rows(home) -> list[dict]:
    return json.loads(cli("cluster", "status", "--home", str(home), "--json").stdout)


def test_cluster_lifecycle(tmp_path, port_block):
    home = tmp_path / "localnet"
    base = port_block(4)
    log = open(tmp_path / "up.log", "w")
    up = subprocess.Popen(POCNET + ["cluster", "up", "--home", str(home), "--base-port", str(base)],
                          stdout=log, stderr=subprocess.STDOUT, cwd=ROOT, start_new_session=True)
    hand = None
    try:
        st = cli("cluster", "status", "--home", str(home), "--wait", "120", timeout=180)
        assert st.returncode == 0, st.stdout + st.stderr
        rows = status_rows(home)
        assert [r["name"] for r in rows] == ["peer0", "peer1", "peer2", "peer3"]
        assert [r["url"] for r in rows] == [f"http://127.0.0.1:{base + i}" for i in range(4)]
        assert all(r["health"] == "ok" and r["catching_up"] is False and r["pid"] > 0 for r in rows)
        assert all(isinstance(r["height"], int) for r in rows)

        again = cli("cluster", "up", "--home", str(home))
        assert again.returncode == 1 and again.stderr.count("\n") == 1 and "is already running" in again.stderr
        second = cli("node", "--home", str(home / "peer1"))
        assert second.returncode == 1 and f"in use by pid {rows[1]['pid']}" in second.stderr
        assert [r["pid"] for r in status_rows(home)] == [r["pid"] for r in rows]  # nothing was disturbed

        # Kill peer2, let the others move on, restart it with the printed command.
        printed = re.search(r"restart a peer by hand \(while it is stopped\) with:  (.+?)  \(or", (tmp_path / "up.log").read_text())
        assert printed, (tmp_path / "up.log").read_text()
        cmd = shlex.split(printed.group(1))
        assert cmd[0].startswith("/") and cmd[-1] == str((home / "peer0").resolve())
        os.kill(rows[2]["pid"], signal.SIGKILL)
        wait_until(lambda: status_rows(home)[2]["health"] == "stopped", 30)
        h0 = status_rows(home)[0]["height"]
        wait_until(lambda: (status_rows(home)[0]["height"] or 0) >= h0 + 3, 60, 0.5)
        hand = subprocess.Popen(cmd[:-1] + [str((home / "peer2").resolve())], stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL, start_new_session=True)
        st = cli("cluster", "status", "--home", str(home), "--wait", "120", timeout=180)
        assert st.returncode == 0, st.stdout + st.stderr
        r2 = status_rows(home)[2]
        assert r2["pid"] == hand.pid and r2["health"] == "ok" and r2["catching_up"] is False

        down = cli("cluster", "down", "--home", str(home), timeout=120)
        assert down.returncode == 0, down.stdout + down.stderr
        assert up.wait(timeout=30) == 0
        assert hand.wait(timeout=30) is not None  # the hand-started peer was stopped too
        assert all(homelock.holder(home / f"peer{i}") is None for i in range(4))
        assert "stopping peer2" in (tmp_path / "up.log").read_text()
        assert all(r["health"] == "stopped" for r in status_rows(home))
    finally:
        for p in (up, hand):
            if p is not None and p.poll() is None:
                os.killpg(p.pid, signal.SIGKILL)
        log.close()
