#!/usr/bin/env bash
# Behaviour-preserving refactors (issue 16) must leave every built artefact byte for byte as it was.
# This runs build → tokenizer train → tokenize → index build on the demo corpus twice, once with the
# source tree of a git revision (default: main's parent commit) and once with the working tree, and
# compares every file's sha256. logs/ (timings, pids) and the stats fields that hold wall-clock time
# are left out: they differ between any two runs of the same code. tantivy names its segment files
# at random, so a full-text index is compared by its content instead: every stored document
# (all fields), sorted.
#
#   scripts/same_outputs.sh [REV] [WORKDIR]
set -euo pipefail
cd "$(dirname "$0")/.."
REV=${1:-HEAD~1}
WORK=${2:-$(mktemp -d)}
CACHE=${STACKCODER_CACHE:-$HOME/.cache/stackcoder/demo}
# shellcheck disable=SC1091
. .venv/bin/activate
stackcoder demo download --cache "$CACHE" >/dev/null

run_all() {  # $1 = source tree (its src/ goes first on sys.path), $2 = output folder
  local py=(env PYTHONPATH="$1/src" python -m stackcoder)
  "${py[@]}" build --repos-dir "$CACHE/repos" --repo-metadata "$CACHE/repo_metadata.jsonl" \
    --output "$2" --workers 2 -q
  "${py[@]}" tokenizer train "$2" --output "$2/tokenizer" --vocab-size 8192 >/dev/null
  "${py[@]}" tokenize "$2" --tokenizer "$2/tokenizer" --overwrite --no-progress >/dev/null
  "${py[@]}" index build "$2" --output "$2/index" --overwrite --no-progress >/dev/null
}

tantivy_digest() {  # $1 = a tantivy index folder: the sha256 of its documents, sorted
  python - "$1" <<'PY'
import hashlib, json, sys, tantivy
ix = tantivy.Index.open(sys.argv[1]); ix.reload(); s = ix.searcher()
hits = s.search(tantivy.Query.all_query(), limit=max(s.num_docs, 1)).hits
docs = sorted(json.dumps(s.doc(a).to_dict(), sort_keys=True) for _, a in hits)
print(hashlib.sha256("\n".join(docs).encode()).hexdigest(), sys.argv[1], len(docs), "documents")
PY
}

digests() {  # every file but logs, with the timing fields of JSON files blanked
  (cd "$1" && find . -type d -path '*/index/text/*' | LC_ALL=C sort | while read -r d; do
    tantivy_digest "$d"
  done)
  (cd "$1" && find . -type f -not -path '*/logs/*' -not -path '*/index/text/*' | LC_ALL=C sort | while read -r f; do
    case "$f" in
      *.json) python - "$f" <<'PY'
import hashlib, json, sys
VOLATILE = {"seconds", "elapsed", "elapsed_s", "time_s", "wall_seconds", "time", "duration", "created",
            "built_at", "mb_per_s", "rate", "throughput"}
def scrub(x):
    if isinstance(x, dict):
        return {k: ("~" if k in VOLATILE or k.endswith(("_seconds", "_per_s")) else scrub(v)) for k, v in x.items()}
    if isinstance(x, list):
        return [scrub(v) for v in x]
    return x
with open(sys.argv[1]) as f:
    print(hashlib.sha256(json.dumps(scrub(json.load(f)), sort_keys=False).encode()).hexdigest(), sys.argv[1])
PY
        ;;
      *) sha256sum "$f" ;;
    esac
  done)
}

git worktree add --detach "$WORK/base-src" "$REV" >/dev/null 2>&1 || test -d "$WORK/base-src"
# both runs write to the same path: artefacts record their own and their inputs' paths
rm -rf "$WORK/out" "$WORK/base" "$WORK/new"
echo "== $REV → $WORK/base"; run_all "$WORK/base-src" "$WORK/out"; mv "$WORK/out" "$WORK/base"
echo "== working tree → $WORK/new"; run_all "$PWD" "$WORK/out"; mv "$WORK/out" "$WORK/new"
digests "$WORK/base" >"$WORK/base.sha256"
digests "$WORK/new" >"$WORK/new.sha256"
git worktree remove --force "$WORK/base-src"
if diff "$WORK/base.sha256" "$WORK/new.sha256"; then
  echo "identical: $(wc -l <"$WORK/new.sha256") files (logs/ and timing fields aside)"
else
  echo "DIFFERENT (above: < $REV, > working tree)"; exit 1
fi
