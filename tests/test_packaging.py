"""The installed package is one namespace, `pocnet.*`, mapped from the top-level folders."""
from __future__ import annotations

import re
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TOP = ("node", "consensus", "ledger", "models", "p2p", "games", "fml")
BARE_IMPORT = re.compile(rf"^\s*(from|import)\s+({'|'.join(TOP)})(\.|\s|$)", re.M)


def _py_files():
    for folder in (*TOP, "pocnet", "tests", "bench", "scripts"):
        yield from (ROOT / folder).rglob("*.py")


def test_no_bare_top_level_imports():
    """A bare `import ledger` would load a second copy of a module (two tx registries)."""
    bad = [f"{p.relative_to(ROOT)}: {m.group(0).strip()}" for p in _py_files()
           for m in BARE_IMPORT.finditer(p.read_text())]
    assert not bad, bad


def test_every_package_folder_is_listed_in_pyproject():
    """package-dir mapping needs the subpackages listed explicitly; a new folder must be added."""
    cfg = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    listed = set(cfg["packages"])
    found = {"pocnet"}
    for top in TOP:
        for init in (ROOT / top).rglob("__init__.py"):
            found.add("pocnet." + ".".join(init.parent.relative_to(ROOT).parts))
    assert found == listed, {"missing": sorted(found - listed), "stale": sorted(listed - found)}
    assert all(cfg["package-dir"][f"pocnet.{t}"] == t for t in TOP)


def test_installed_consensus_numeric_pins_match_pyproject():
    """numpy/numba/llvmlite feed the state machine's switch rule: what runs must be what is pinned
    (a venv built before a pin changed would otherwise replay the golden chain with other bits)."""
    from importlib.metadata import version

    deps = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    pins = dict(d.split("==", 1) for d in (x.split(";")[0].strip() for x in deps) if "==" in d)
    for name in ("numpy", "numba", "llvmlite"):
        assert name in pins, f"{name} must be pinned with == in pyproject.toml"
        assert version(name) == pins[name], (name, version(name), pins[name])
