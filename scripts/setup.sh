#!/usr/bin/env bash
# Create .venv and install stackcoder with everything the demo and the tests need.
set -euo pipefail
cd "$(dirname "$0")/.."

# Debian packages: git is required; clamav (`clamscan`, malware scanning, docs/malware.md) and
# chromium (the playground test) are optional: without them a build skips malware scanning unless a
# database is configured, and their tests are skipped with the reason.
missing=()
command -v git >/dev/null || missing+=(git)
command -v clamscan >/dev/null || missing+=(clamav)
# Debian's Chromium: the playground's browser test (Playwright drives it; no browser download)
command -v chromium >/dev/null || missing+=(chromium)
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    apt-get update -qq && apt-get install -y -qq "${missing[@]}"
  elif ! command -v git >/dev/null; then
    echo "setup: please install git (and clamav for malware scanning)" >&2; exit 1
  else
    echo "setup: ${missing[*]} not installed: malware scanning / the browser test will be skipped" >&2
  fi
fi

PY=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$PY" -m venv .venv
# shellcheck disable=SC1091
. .venv/bin/activate
pip install -q --upgrade pip
# the CPU build of torch first (from this machine's local wheel), or pip would pull a multi-GB CUDA build
pip install -q torch==2.13.0
pip install -q -e ".[ray,model,serve,test]"
echo "setup: ready (.venv)"
