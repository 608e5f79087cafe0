#!/usr/bin/env bash
# Set everything up, lint and type-check, then run the whole test suite (unit, property,
# multi-process, fault injection).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
# ruff + mypy on ledger/ consensus/ p2p/ node/ (config in pyproject.toml); fails fast
bash scripts/lint.sh
# Schemathesis fuzz of the OpenAPI spec (tests/adversarial): examples per operation and mode.
export POCNET_SCHEMATHESIS_EXAMPLES="${POCNET_SCHEMATHESIS_EXAMPLES:-25}"
exec .venv/bin/python -m pytest -q -p no:cacheprovider --timeout=900 "$@"
