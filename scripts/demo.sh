#!/usr/bin/env bash
# The main job on real input: set up, fetch the demo corpus (real PyPI/npm/Debian packages, pinned
# checksums, cached), build a dataset from it, train a tokenizer on it, tokenize it, and train a small
# StarCoder2 on the CPU for a few minutes; then say where everything is.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh
# shellcheck disable=SC1091
. .venv/bin/activate
CACHE=${STACKCODER_CACHE:-$HOME/.cache/stackcoder/demo}
OUT=${1:-out/demo}
STEPS=${STACKCODER_DEMO_STEPS:-300}
stackcoder demo download --cache "$CACHE" >/dev/null  # prints paths we already know
echo "== 1/4 dataset: The Stack v2 recipe on $(ls "$CACHE/repos" | wc -l) repositories"
stackcoder build --repos-dir "$CACHE/repos" --repo-metadata "$CACHE/repo_metadata.jsonl" --output "$OUT"
echo "== 2/4 tokenizer: byte-level BPE with StarCoder2's special tokens"
stackcoder tokenizer train "$OUT" --output "$OUT/tokenizer" --vocab-size 8192
echo "== 3/4 token shards: train and held-out repositories"
stackcoder tokenize "$OUT" --tokenizer "$OUT/tokenizer" --overwrite
echo "== 4/5 training: the tiny preset on the CPU, $STEPS steps (a few minutes)"
stackcoder train --preset cpu_tiny --data "$OUT/tokens" --max-steps "$STEPS" --output "$OUT/run"
echo "== 5/5 evaluation on the held-out repositories: perplexity, and FIM with and without repository context"
stackcoder eval perplexity --model "$OUT/run/model" --dataset "$OUT" --output "$OUT/eval-perplexity.json"
stackcoder eval fim --model "$OUT/run/model" --dataset "$OUT" --fim-examples 40 --output "$OUT/eval-fim.json"
echo
echo "dataset card: $OUT/README.md    loss curve: $OUT/run/loss.png"
echo "try it:       .venv/bin/stackcoder generate --model $OUT/run/model 'def '"
echo "serve it:     .venv/bin/stackcoder serve --model $OUT/run/model   # then open http://127.0.0.1:8000/"
echo "HumanEval:    .venv/bin/stackcoder eval humaneval --model $OUT/run/model --output $OUT/eval-humaneval.json"
