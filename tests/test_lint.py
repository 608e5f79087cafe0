"""ruff + mypy (scripts/lint.sh) in the fast suite, so land.sh catches what CI would."""
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def test_ruff_and_mypy_pass():
    try:
        import mypy  # noqa: F401
        import ruff  # noqa: F401
    except ImportError:
        pytest.skip("ruff/mypy not installed (pip install -e '.[test]')")
    if shutil.which("bash") is None:
        pytest.skip("no bash")
    r = subprocess.run(["bash", "scripts/lint.sh"], cwd=ROOT, capture_output=True, text=True,
                       env={"PY": sys.executable, "PATH": "/usr/bin:/bin"}, timeout=600)
    assert r.returncode == 0, (r.stdout + r.stderr)[-4000:]
