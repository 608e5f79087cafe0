"""scripts/setup.sh on a machine without Python 3.11: one clear message, nothing installed."""
from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BASH = shutil.which("bash") or "/bin/bash"


def fake_python(path: Path, version: str) -> None:
    path.write_text(f"#!{BASH}\necho {version}\n")
    path.chmod(0o755)


def checkout(tmp_path: Path) -> Path:
    repo = tmp_path / "repo"
    (repo / "scripts").mkdir(parents=True)
    shutil.copy(ROOT / "scripts" / "setup.sh", repo / "scripts" / "setup.sh")
    shutil.copy(ROOT / "pyproject.toml", repo / "pyproject.toml")
    return repo


def run_setup(repo: Path, bindir: Path, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run([BASH, str(repo / "scripts" / "setup.sh")], capture_output=True, text=True, timeout=60,
                          env={"PATH": str(bindir), "HOME": str(repo), **env})


def test_wrong_python_is_refused_before_anything_is_installed(tmp_path):
    repo = checkout(tmp_path)
    bindir = tmp_path / "bin"
    bindir.mkdir()
    os.symlink(shutil.which("dirname"), bindir / "dirname")
    fake_python(bindir / "python3", "3.12")  # only a 3.12 interpreter on PATH
    r = run_setup(repo, bindir)
    assert r.returncode == 1
    assert "pocnet needs Python 3.11" in r.stderr and "python3 is 3.12" in r.stderr
    assert "Nothing was installed" in r.stderr
    assert not (repo / ".venv").exists()


def test_a_venv_of_another_python_is_refused(tmp_path):
    repo = checkout(tmp_path)
    bindir = tmp_path / "bin"
    bindir.mkdir()
    os.symlink(shutil.which("dirname"), bindir / "dirname")
    (repo / ".venv" / "bin").mkdir(parents=True)
    fake_python(repo / ".venv" / "bin" / "python", "3.12")
    r = run_setup(repo, bindir)
    assert r.returncode == 1 and ".venv runs Python 3.12 but pocnet needs 3.11" in r.stderr


def test_pyproject_states_the_python_version():
    text = (ROOT / "pyproject.toml").read_text()
    assert 'requires-python = ">=3.11,<3.12"' in text
