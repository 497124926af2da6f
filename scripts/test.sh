#!/usr/bin/env bash
# Sets up (scripts/setup.sh) and runs every test: lint, then pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
.venv/bin/ruff check damo tests bench
exec .venv/bin/python -m pytest "$@"
