"""The README's "Using a cluster" section, replayed command by command.

The commands are read from README.md (the fenced blocks after ``<!-- readme-replay:
shell-1 -->`` and ``<!-- readme-replay: shell-2 -->``), never copied here, so the README
and this test cannot drift apart. They run unchanged, as bash, in a scratch folder that
stands for the repository root: ``.venv`` and ``scripts`` there are links to this
checkout's (so ``localnet``, ``alice.json``, ... land in the scratch folder, not in the
checkout). The only substitutions are environment variables the CLI documents: a free
port block (``BASE_PORT`` for run-local.sh, ``POCNET_NODE`` for ``--node``).
Shell 1 runs in the background like a second terminal; shell 2 must succeed as a whole
(``set -euo pipefail``) and end with Alice's transfer committed and the cluster stopped.
"""
from __future__ import annotations

import json
import os
import re
import signal
import subprocess

import pytest

from tests.conftest import ROOT

pytestmark = pytest.mark.slow

MARK = re.compile(r"<!-- readme-replay: (?P<name>[\w-]+) -->\s*\n```bash\n(?P<body>.*?)\n```", re.S)


def readme_blocks() -> dict[str, str]:
    blocks = {m["name"]: m["body"] for m in MARK.finditer((ROOT / "README.md").read_text())}
    assert set(blocks) == {"shell-1", "shell-2"}, f"README replay blocks found: {sorted(blocks)}"
    return blocks


def test_readme_blocks_are_found_and_runnable_as_written():
    blocks = readme_blocks()
    assert blocks["shell-1"].strip().startswith("bash scripts/run-local.sh")
    for body in blocks.values():
        assert "<" not in re.sub(r"#.*", "", body), "placeholders like <address> cannot run as written"
        r = subprocess.run(["bash", "-n", "-c", body], capture_output=True, text=True)
        assert r.returncode == 0, r.stderr


def test_readme_cluster_section_replays(tmp_path, port_block):
    blocks = readme_blocks()
    work = tmp_path / "repo"
    work.mkdir()
    (work / ".venv").symlink_to(ROOT / ".venv")
    (work / "scripts").symlink_to(ROOT / "scripts")
    base = port_block(4)
    env = dict(os.environ, BASE_PORT=str(base), POCNET_NODE=f"http://127.0.0.1:{base}")
    env.pop("HOME_DIR", None)
    env.pop("PEERS", None)
    log1 = open(tmp_path / "shell-1.log", "w")
    shell1 = subprocess.Popen(["bash", "-euo", "pipefail", "-c", blocks["shell-1"]], cwd=work, env=env,
                              stdout=log1, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        shell2 = subprocess.run(["bash", "-euxo", "pipefail", "-c", blocks["shell-2"]], cwd=work, env=env,
                                capture_output=True, text=True, timeout=600)
        report = (f"shell 2 exit {shell2.returncode}\n--- stdout\n{shell2.stdout}\n--- stderr\n{shell2.stderr}"
                  f"\n--- shell 1\n{(tmp_path / 'shell-1.log').read_text()}")
        assert shell2.returncode == 0, report
        # Alice's transfer: the JSON `tx send` printed after waiting for the commit.
        alice = json.loads((work / "alice.json").read_text())["address"]
        bob = json.loads((work / "bob.json").read_text())["address"]
        sent = [json.loads(m) for m in re.findall(r"^\{\n.*?^\}", shell2.stdout, re.S | re.M)]
        transfer = [t for t in sent if t.get("tx", {}).get("sender") == alice and t["tx"]["type"] == "transfer"]
        assert len(transfer) == 1 and transfer[0]["status"] == "committed", report
        assert transfer[0]["tx"]["payload"] == {"to": bob, "amount": 25}
        assert any(t.get("address") == bob and t.get("balance") == 25 for t in sent), report
        done = [t for t in sent if isinstance(t.get("tasks"), list)]
        assert done and done[0]["tasks"][0]["status"] == "done" and done[0]["tasks"][0]["delivered_work"] == 500
        # `cluster down` at the end of shell 2 stopped shell 1's cluster cleanly.
        assert shell1.wait(timeout=60) == 0, (tmp_path / "shell-1.log").read_text()
    finally:
        if shell1.poll() is None:
            os.killpg(shell1.pid, signal.SIGKILL)
        log1.close()
