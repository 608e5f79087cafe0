#!/usr/bin/env bash
# Create .venv and install pocnet with everything it needs (idempotent, ~1 min on a fresh machine).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
# torch is pinned in pyproject (==2.13.0, CPU build); install it first so no other
# requirement can pull a multi-GB CUDA build.
.venv/bin/pip install -q --disable-pip-version-check "torch==2.13.0"
.venv/bin/pip install -q --disable-pip-version-check -e ".[test,postgres]"
# Debian packages: Fashion-MNIST for the FML experiments (offline IDX files) and a
# PostgreSQL server for the --db-url test. Missing ones are reported, not fatal.
APT_PKGS=""
[ -d /usr/share/datasets/fashion-mnist ] || APT_PKGS="$APT_PKGS dataset-fashion-mnist"
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || APT_PKGS="$APT_PKGS postgresql"
if [ -n "$APT_PKGS" ] && command -v apt-get >/dev/null 2>&1; then
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  ($SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq $APT_PKGS >/dev/null) \
    || echo "warning: could not install$APT_PKGS; the tests that need them will say so" >&2
fi
