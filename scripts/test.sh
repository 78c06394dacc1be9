#!/usr/bin/env bash
# Set up (scripts/setup.sh) and run the whole test suite, slow end-to-end tests included.
# Extra arguments go to pytest, e.g. `scripts/test.sh -m "not slow"` for the quick suite.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh
# shellcheck disable=SC1091
. .venv/bin/activate
ruff check src tests benchmarks scripts
ruff format --check src tests benchmarks scripts
python -m pytest "$@"
