#!/usr/bin/env bash
# Create .venv and install stackcoder with everything the demo and the tests need.
set -euo pipefail
cd "$(dirname "$0")/.."

# Debian packages: git is required; clamav (`clamscan`, malware scanning, docs/malware.md) is
# optional: without it a build skips malware scanning unless a database is configured, and its
# tests are skipped with the reason.
missing=()
command -v git >/dev/null || missing+=(git)
command -v clamscan >/dev/null || missing+=(clamav)
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    apt-get update -qq && apt-get install -y -qq "${missing[@]}"
  elif ! command -v git >/dev/null; then
    echo "setup: please install git (and clamav for malware scanning)" >&2; exit 1
  else
    echo "setup: clamav is not installed: malware scanning and its tests will be skipped" >&2
  fi
fi

PY=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$PY" -m venv .venv
# shellcheck disable=SC1091
. .venv/bin/activate
pip install -q --upgrade pip
# the CPU build of torch first (from this machine's local wheel), or pip would pull a multi-GB CUDA build
pip install -q torch==2.13.0
pip install -q -e ".[ray,model,test]"
echo "setup: ready (.venv)"
