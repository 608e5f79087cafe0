"""`pip install .` installs one top-level package, `pocnet`, and one console script."""
from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_wheel_holds_only_pocnet_and_its_console_script(tmp_path):
    build_dir_existed = (ROOT / "build").exists()
    try:
        r = subprocess.run([sys.executable, "-m", "pip", "wheel", str(ROOT), "--no-deps", "--no-build-isolation",
                            "-q", "-w", str(tmp_path)], capture_output=True, text=True, timeout=600)
    finally:
        if not build_dir_existed:  # setuptools builds in ROOT/build; leave the checkout as it was
            shutil.rmtree(ROOT / "build", ignore_errors=True)
    assert r.returncode == 0, r.stderr
    (wheel,) = tmp_path.glob("pocnet-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    tops = {n.split("/", 1)[0] for n in names}
    assert {t for t in tops if not t.endswith(".dist-info")} == {"pocnet"}
    for sub in ("node", "ledger", "consensus", "p2p", "models", "games", "fml"):
        assert f"pocnet/{sub}/__init__.py" in names
    info = next(t for t in tops if t.endswith(".dist-info"))
    entry = zipfile.ZipFile(wheel).read(f"{info}/entry_points.txt").decode()
    scripts = [line.split("=")[0].strip() for line in entry.split("[console_scripts]")[1].strip().splitlines()
               if "=" in line and not line.startswith("[")]
    assert scripts == ["pocnet"]
