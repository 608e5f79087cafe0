"""The repository stands alone: no machine or scratch paths, no links or references to
files outside it (design notes, paper copies), and every relative Markdown link resolves
to a file inside the repository."""
from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
THIS = Path(__file__).resolve().relative_to(ROOT).as_posix()

# Built from pieces so this file does not match itself.
FORBIDDEN = {
    "absolute machine path": re.compile(r"(?<![\w.~-])/(" + "work|tmp|root|Users|home" + r")/\w"),
    "link outside the repository": re.compile(r"\.\./" + "shared|" + "shared/" + "(seeds|DESIGN|FORMULAS|MARKET)"),
    "design note outside the repository": re.compile(r"\b(" + "FORMULAS|DESIGN|MARKET" + r")\.md\b"),
    "unidentified paper (cite it, see docs/model.md)": re.compile(r"\b" + "seed" + r" 00\d\b", re.I),
}
# docs/model.md § References is where the old seed numbers are mapped to the papers.
ALLOWED = {("docs/model.md", "unidentified paper (cite it, see docs/model.md)")}
BINARY = {".png", ".pt", ".gz", ".db", ".npz", ".ico", ".woff", ".woff2", ".ttf", ".jpg", ".pdf"}


def tracked_files() -> list[str]:
    try:
        out = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        pytest.skip("not a git checkout")
    return [f for f in out.splitlines() if Path(f).suffix not in BINARY and (ROOT / f).is_file()]


def read_text(rel: str) -> str | None:
    try:
        return (ROOT / rel).read_text(encoding="utf-8")
    except UnicodeDecodeError:
        return None


def test_no_machine_paths_or_outside_references():
    found = []
    for rel in tracked_files():
        if rel == THIS:
            continue
        text = read_text(rel)
        if text is None:
            continue
        for what, pattern in FORBIDDEN.items():
            if (rel, what) in ALLOWED:
                continue
            for m in pattern.finditer(text):
                line = text.count("\n", 0, m.start()) + 1
                found.append(f"{rel}:{line}: {what}: {m.group(0)!r}")
    assert not found, "\n".join(found[:50])


LINK = re.compile(r"\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)|^\s*\[[^\]]+\]:\s*(\S+)", re.M)


def test_markdown_links_stay_inside_the_repository():
    bad = []
    for rel in tracked_files():
        if not rel.endswith(".md"):
            continue
        text = read_text(rel) or ""
        text = re.sub(r"```.*?```", "", text, flags=re.S)  # code blocks hold commands, not links
        for m in LINK.finditer(text):
            target = (m.group(1) or m.group(2)).split("#", 1)[0]
            if not target or re.match(r"^[a-z][a-z0-9+.-]*:", target):  # anchors, http(s), mailto
                continue
            path = ((ROOT / rel).parent / target).resolve()
            if ROOT not in path.parents and path != ROOT:
                bad.append(f"{rel}: {target} points outside the repository")
            elif not path.exists():
                bad.append(f"{rel}: {target} does not exist")
    assert not bad, "\n".join(bad)


def test_docs_cite_the_papers():
    model = (ROOT / "docs" / "model.md").read_text(encoding="utf-8")
    for arxiv in ("2408.03694", "2409.07460", "2312.17081"):
        assert f"arXiv:{arxiv}" in model
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert "docs/architecture.md" in readme and "docs/model.md" in readme
