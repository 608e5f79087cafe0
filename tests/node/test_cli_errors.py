"""Every class of user and network error: one line on stderr, a non-zero exit, no traceback.

The CLI runs through ``pocnet.node.cli.main`` (the console script's body); peer answers
come from a real single-validator peer served by uvicorn on 127.0.0.1.
"""
from __future__ import annotations

import json
import subprocess
import sys
import threading
import time

import httpx
import pytest

from pocnet.ledger.keys import KeyPair
from pocnet.node import cli
from pocnet.node.cli import main
from pocnet.node.setup_home import init_cluster_home
from tests.conftest import ROOT, free_port_block

ALICE = KeyPair.from_seed(b"\x21" * 32)
BOB = KeyPair.from_seed(b"\x22" * 32)


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def one_error_line(err: str) -> str:
    lines = err.strip().splitlines()
    assert "Traceback" not in err, err
    assert len(lines) == 1, err
    assert lines[0].startswith("error: "), err
    return lines[0]


@pytest.fixture(scope="module")
def live_peer(tmp_path_factory):
    """One real peer (single validator, SQLite) served over HTTP on a free loopback port."""
    import uvicorn

    from pocnet.node.node import Node
    home = tmp_path_factory.mktemp("clierr")
    port = free_port_block(1)
    init_cluster_home(home, 1, port, [(ALICE.address, 100)], chain_id="cli-errors",
                      consensus={"block_interval_ms": 10})
    node = Node(home / "peer0")
    server = uvicorn.Server(uvicorn.Config(node.create_app(), host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(url + "/health", timeout=1).status_code == 200:
                break
        except httpx.HTTPError:
            time.sleep(0.1)
    else:
        raise TimeoutError("peer did not start")
    yield url
    server.should_exit = True
    thread.join(timeout=15)


def test_unreachable_peer_is_one_line(capsys):
    port = free_port_block(1)
    code, _, err = run(capsys, "query", "status", "--node", f"http://127.0.0.1:{port}")
    assert code == 1
    assert one_error_line(err) == f"error: cannot reach http://127.0.0.1:{port}: connection refused"


def test_unreachable_peer_via_console_script():
    """The real entry point (a fresh interpreter, as a user runs it)."""
    port = free_port_block(1)
    p = subprocess.run([sys.executable, "-m", "pocnet.node", "tx", "send", "--key", str(ROOT / "nokey.json"),
                        "--to", BOB.address, "--amount", "1", "--node", f"http://127.0.0.1:{port}"],
                       capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert p.returncode == 2
    assert "does not exist" in one_error_line(p.stderr)
    p = subprocess.run([sys.executable, "-m", "pocnet.node", "query", "status", "--node", f"http://127.0.0.1:{port}"],
                       capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert p.returncode == 1
    assert one_error_line(p.stderr) == f"error: cannot reach http://127.0.0.1:{port}: connection refused"


def test_unknown_host_is_one_line(capsys):
    code, _, err = run(capsys, "query", "status", "--node", "http://no-such-host.invalid:1")
    assert code == 1 and one_error_line(err).startswith("error: cannot reach http://no-such-host.invalid:1: ")


def test_peer_answers_404_and_400(capsys, live_peer):
    code, _, err = run(capsys, "query", "block", "999", "--node", live_peer)
    line = one_error_line(err)
    assert code == 1
    assert line.startswith(f"error: peer {live_peer} answered 404 for GET /blocks/999: not found (height): ")
    code, _, err = run(capsys, "query", "account", "nothex", "--node", live_peer)
    assert code == 1 and "answered 400 for GET /accounts/nothex: invalid address (address)" in one_error_line(err)


def test_refused_transaction_is_one_line(capsys, live_peer, tmp_path):
    key = tmp_path / "alice.json"
    ALICE.save(key)
    code, _, err = run(capsys, "tx", "send", "--key", str(key), "--to", BOB.address, "--amount", "1000",
                       "--node", live_peer)
    line = one_error_line(err)
    assert code == 1 and line.startswith(f"error: peer {live_peer} refused the transfer: 422 ")
    assert "balance" in line


@pytest.mark.parametrize("content, expect", [
    (None, "does not exist"),
    ("not json", "is not a pocnet key file"),
    ('{"address": "x"}', "missing field 'private_key'"),
    ('{"private_key": "zz"}', "is not a pocnet key file"),
    ('[1, 2]', "is not a pocnet key file"),
])
def test_key_file_errors(capsys, tmp_path, content, expect):
    key = tmp_path / "k.json"
    if content is not None:
        key.write_text(content)
    for argv in (["keys", "show", str(key)],
                 ["tx", "send", "--key", str(key), "--to", BOB.address, "--amount", "1", "--node", "http://127.0.0.1:9"]):
        code, _, err = run(capsys, *argv)
        assert code == 2 and expect in one_error_line(err)


def test_bad_option_values_are_usage_errors(capsys, tmp_path):
    code, _, err = run(capsys, "tx", "task", "--key", "k.json", "--work", "1", "--demand", "1,x")
    assert code == 2 and "--demand" in one_error_line(err)
    code, _, err = run(capsys, "query", "status", "--bogus")
    assert code == 2 and "No such option: --bogus" in one_error_line(err)
    code, _, err = run(capsys, "cluster", "up", "--home", str(tmp_path / "h"), "--fund", "abc:1")
    assert code == 2 and "--fund" in one_error_line(err)


@pytest.mark.parametrize("content, expect", [
    (None, "cannot read"),
    ("[1", "is not a scenario file"),
    ('{"tasks": []}', "missing field 'providers'"),
    ('{"tasks": [{"task_id": "a", "work": 1.5}], "providers": []}', "must be integer"),
])
def test_models_allocate_bad_input(capsys, tmp_path, content, expect):
    path = tmp_path / "scn.json"
    if content is not None:
        path.write_text(content)
    code, _, err = run(capsys, "models", "allocate", "--scenario", str(path))
    line = one_error_line(err)
    assert code == 2 and "--scenario" in line and expect in line


def test_fml_simulate_bad_numbers_and_unwritable_out(capsys, tmp_path):
    code, _, err = run(capsys, "fml", "simulate", "--seeds", "a", "--out", str(tmp_path / "r"))
    assert code == 2 and "--seeds: 'a' is not an integer" in one_error_line(err)
    code, _, err = run(capsys, "fml", "simulate", "--misbehaviour", "0,x", "--out", str(tmp_path / "r"))
    assert code == 2 and "--misbehaviour" in one_error_line(err)
    blocker = tmp_path / "file"
    blocker.write_text("")
    code, _, err = run(capsys, "fml", "simulate", "--seeds", "0", "--out", str(blocker / "sub"))
    assert code == 1 and one_error_line(err) == f"error: {blocker / 'sub'}: Not a directory"


def test_games_bad_input(capsys, tmp_path):
    path = tmp_path / "in.json"
    path.write_text("{")
    code, _, err = run(capsys, "games", "reputation", "--input", str(path))
    assert code == 2 and "not valid JSON" in one_error_line(err)


def test_unexpected_error_is_one_line_and_debug_shows_traceback(capsys, monkeypatch):
    def boom(*_a, **_k):
        raise RuntimeError("kaput")
    monkeypatch.setattr(cli, "_client", boom)
    code, _, err = run(capsys, "query", "status")
    line = one_error_line(err)
    assert code == 1 and "unexpected RuntimeError: kaput" in line and "--debug" in line
    for argv in (["--debug", "query", "status"], ["query", "status", "--debug"]):
        code, _, err = run(capsys, *argv)
        assert code == 1 and "Traceback" in err and err.strip().splitlines()[-1].startswith("error: unexpected")


def test_help_and_success_still_exit_zero(capsys, tmp_path):
    code, out, _ = run(capsys, "--help")
    assert code == 0 and "--debug" in out
    code, out, err = run(capsys, "keys", "new", "--out", str(tmp_path / "k.json"))
    assert code == 0 and len(out.strip()) == 64 and err == ""
    code, _, err = run(capsys, "keys", "new", "--out", str(tmp_path / "k.json"))
    assert code == 2 and "exists" in one_error_line(err)
    assert json.loads((tmp_path / "k.json").read_text())["address"] == out.strip()
