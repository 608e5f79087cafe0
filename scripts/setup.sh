#!/usr/bin/env bash
# Create .venv and install pocnet with everything it needs (idempotent, ~1 min on a fresh
# machine; a second run with an unchanged pyproject.toml skips pip).
#
# Needs Python 3.11 exactly (pyproject: requires-python ">=3.11,<3.12"): the pinned torch
# 2.13.0 CPU build and dgl 2.1.0 have their wheels for 3.11. Set PYTHON=/path/to/python3.11
# if `python3` is another version. Debian packages (apt-get, only when run as root): see below.
set -euo pipefail
cd "$(dirname "$0")/.."
NEED=3.11

pyver() { "$1" -c 'import sys; print("%d.%d" % sys.version_info[:2])' 2>/dev/null || true; }

if [ ! -x .venv/bin/python ]; then
  PY=""
  for cand in ${PYTHON:-} python3.11 python3; do
    if command -v "$cand" >/dev/null 2>&1 && [ "$(pyver "$cand")" = "$NEED" ]; then PY=$cand; break; fi
  done
  if [ -z "$PY" ]; then
    found=$(pyver "${PYTHON:-python3}")
    echo "setup: pocnet needs Python $NEED (torch 2.13.0 CPU and dgl 2.1.0 wheels); ${PYTHON:-python3} is ${found:-missing}." >&2
    echo "setup: install Python $NEED (Debian/Ubuntu: apt-get install python3.11 python3.11-venv) and rerun, or set PYTHON=/path/to/python3.11. Nothing was installed." >&2
    exit 1
  fi
  "$PY" -m venv .venv
fi
have=$(pyver .venv/bin/python)
if [ "$have" != "$NEED" ]; then
  echo "setup: .venv runs Python $have but pocnet needs $NEED; remove .venv and rerun with PYTHON=/path/to/python3.11. Nothing was installed." >&2
  exit 1
fi

# Skip pip when this checkout's pyproject.toml is what .venv was set up from.
STAMP=.venv/.pocnet-setup
want="$(sha256sum pyproject.toml | cut -d' ' -f1) $(pwd -P)"
if [ "$(cat "$STAMP" 2>/dev/null)" != "$want" ] || [ ! -x .venv/bin/pocnet ]; then
  # torch is pinned in pyproject (==2.13.0, CPU build); install it first so no other
  # requirement can pull a multi-GB CUDA build.
  .venv/bin/pip install -q --disable-pip-version-check "torch==2.13.0"
  .venv/bin/pip install -q --disable-pip-version-check -e ".[test,postgres]"
  echo "$want" > "$STAMP"
fi

# GFML with Flower learners (fml/flower/, README "GFML with Flower learners"): flwr 1.42.0 pins an
# older web stack (fastapi, starlette, uvicorn, typer) than the node's, so the Flower processes
# (SuperLink, SuperNodes, ClientApps, ServerApp) get their own venv with pocnet[flower]; the node
# and the tests keep .venv. Same stamp rule as above.
FSTAMP=.venv-flower/.pocnet-setup
if [ "$(cat "$FSTAMP" 2>/dev/null)" != "$want" ] || [ ! -x .venv-flower/bin/flower-superlink ]; then
  [ -x .venv-flower/bin/python ] || .venv/bin/python -m venv .venv-flower
  .venv-flower/bin/pip install -q --disable-pip-version-check "torch==2.13.0"
  .venv-flower/bin/pip install -q --disable-pip-version-check -e ".[flower]"
  echo "$want" > "$FSTAMP"
fi

# Debian packages: dataset-fashion-mnist (offline Fashion-MNIST IDX files for the FML
# experiments), postgresql (a server for the --db-url test) and chromium + chromium-driver
# (the headless browser test of /explorer and /docs). Installed with apt-get only
# when running as root; otherwise, or without apt-get, we say what is missing and go on
# (the tests that need them skip and say why; scripts/test.sh makes the browser test fail).
APT_PKGS=""
[ -d /usr/share/datasets/fashion-mnist ] || APT_PKGS="$APT_PKGS dataset-fashion-mnist"
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || APT_PKGS="$APT_PKGS postgresql"
[ -x /usr/bin/chromium ] || APT_PKGS="$APT_PKGS chromium"
[ -x /usr/bin/chromedriver ] || APT_PKGS="$APT_PKGS chromium-driver"
if [ -n "$APT_PKGS" ]; then
  if ! command -v apt-get >/dev/null 2>&1; then
    echo "setup: no apt-get here; not installing Debian packages:$APT_PKGS (FML Fashion-MNIST runs and the PostgreSQL test will skip; the browser test fails under scripts/test.sh)" >&2
  elif [ "$(id -u)" -ne 0 ]; then
    echo "setup: not root, so not installing Debian packages:$APT_PKGS. To install them: sudo apt-get install$APT_PKGS (FML Fashion-MNIST runs and the PostgreSQL test skip until then; the browser test fails under scripts/test.sh)" >&2
  else
    echo "setup: installing Debian packages with apt-get:$APT_PKGS" >&2
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $APT_PKGS >/dev/null) \
      || echo "setup: warning: could not install$APT_PKGS; the tests that need them will say so" >&2
  fi
fi
