#!/usr/bin/env bash
# Create .venv and install stackcoder with everything the demo and the tests need.
set -euo pipefail
cd "$(dirname "$0")/.."

missing=()
for tool in git; do command -v "$tool" >/dev/null || missing+=("$tool"); done
command -v clamscan >/dev/null || missing+=(clamav)  # malware scanning (docs/malware.md)
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    apt-get update -qq && apt-get install -y -qq "${missing[@]}"
  else
    echo "setup: please install: ${missing[*]}" >&2; exit 1
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
