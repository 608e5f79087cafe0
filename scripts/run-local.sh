#!/usr/bin/env bash
# Set everything up and start a local 4-peer cluster on 127.0.0.1:26650-26653 (Ctrl-C stops it).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec .venv/bin/pocnet cluster up --peers "${PEERS:-4}" --home "${HOME_DIR:-localnet}" --base-port "${BASE_PORT:-26650}" "$@"
