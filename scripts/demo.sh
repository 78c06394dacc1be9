#!/usr/bin/env bash
# The main job on real input: set up, fetch the demo corpus (real PyPI/npm/Debian packages, pinned
# checksums, cached), build a dataset from it, and say where the output and its summary are.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh
# shellcheck disable=SC1091
. .venv/bin/activate
CACHE=${STACKCODER_CACHE:-$HOME/.cache/stackcoder/demo}
OUT=${1:-out/demo}
stackcoder demo download --cache "$CACHE" >/dev/null  # prints paths we already know
stackcoder build --repos-dir "$CACHE/repos" --repo-metadata "$CACHE/repo_metadata.jsonl" --output "$OUT"
