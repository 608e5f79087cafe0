#!/usr/bin/env bash
# Set everything up and start a local 4-peer cluster on 127.0.0.1:26650-26653 (Ctrl-C stops it).
# The cluster home is ./localnet relative to where you run this (HOME_DIR=... to change it);
# extra arguments go to `pocnet cluster up`, e.g. --fund ADDRESS:AMOUNT (new homes only).
set -euo pipefail
repo=$(cd -P "$(dirname "$0")/.." && pwd)
bash "$repo/scripts/setup.sh"
exec "$repo/.venv/bin/pocnet" cluster up --home "${HOME_DIR:-localnet}" ${PEERS:+--peers "$PEERS"} \
  ${BASE_PORT:+--base-port "$BASE_PORT"} "$@"
