#!/usr/bin/env bash
# Lint the whole repository and type-check every package (configuration: pyproject.toml [tool.ruff], [tool.mypy]).
# mypy needs the installed names (pocnet.ledger, ...): the repository maps folders with
# package-dir, which an editable install resolves through an import hook mypy cannot follow,
# so a symlinked pocnet/ tree is built under .mypy_tree/ and checked from there.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
PKGS=(ledger consensus p2p node games models fml)
"$PY" -m ruff check .
tree=.mypy_tree
rm -rf "$tree" && mkdir -p "$tree/pocnet"
ln -s "$PWD/pocnet/__init__.py" "$tree/pocnet/__init__.py"
for d in node consensus ledger models p2p games fml; do ln -s "$PWD/$d" "$tree/pocnet/$d"; done
args=()
for d in "${PKGS[@]}"; do args+=(-p "pocnet.$d"); done
MYPYPATH="$tree" "$PY" -m mypy --cache-dir "$tree/.cache" "${args[@]}"
