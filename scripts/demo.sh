#!/usr/bin/env bash
# The main job on real input: set up, fetch the demo corpus (real PyPI/npm/Debian packages, pinned
# checksums, cached), build a dataset from it, train a tokenizer on it, tokenize it, and train a small
# StarCoder2 on the CPU for a few minutes, evaluate it, index the dataset (membership test and
# search); then say where everything is.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh
# shellcheck disable=SC1091
. .venv/bin/activate
CACHE=${STACKCODER_CACHE:-$HOME/.cache/stackcoder/demo}
OUT=${1:-out/demo}
STEPS=${STACKCODER_DEMO_STEPS:-300}
stackcoder demo download --cache "$CACHE" >/dev/null  # prints paths we already know
echo "== 1/6 dataset: The Stack v2 recipe on $(ls "$CACHE/repos" | wc -l) repositories"
stackcoder build --repos-dir "$CACHE/repos" --repo-metadata "$CACHE/repo_metadata.jsonl" --output "$OUT"
echo "== 2/6 tokenizer: byte-level BPE with StarCoder2's special tokens"
stackcoder tokenizer train "$OUT" --output "$OUT/tokenizer" --vocab-size 8192
echo "== 3/6 token shards: train and held-out repositories"
stackcoder tokenize "$OUT" --tokenizer "$OUT/tokenizer" --overwrite
echo "== 4/6 training: the tiny preset on the CPU, $STEPS steps (a few minutes)"
stackcoder train --preset cpu_tiny --data "$OUT/tokens" --max-steps "$STEPS" --output "$OUT/run"
echo "== 5/6 evaluation on the held-out repositories: perplexity, and FIM with and without repository context"
stackcoder eval perplexity --model "$OUT/run/model" --dataset "$OUT" --output "$OUT/eval-perplexity.json"
stackcoder eval fim --model "$OUT/run/model" --dataset "$OUT" --fim-examples 40 --output "$OUT/eval-fim.json"
echo "== 6/6 index: Bloom filters of 50-character n-grams and a full-text index, with provenance"
stackcoder index build "$OUT" --output "$OUT/index" --overwrite
echo
echo "dataset card: $OUT/README.md    loss curve: $OUT/run/loss.png"
echo "try it:       .venv/bin/stackcoder generate --model $OUT/run/model 'def '"
echo "serve it:     .venv/bin/stackcoder serve --model $OUT/run/model --index $OUT/index   # then open http://127.0.0.1:8000/"
echo "in the data?  .venv/bin/python -c \"import glob, pyarrow.parquet as pq; print(pq.read_table(sorted(glob.glob('$OUT/files/*.parquet'))[0])['content'][0].as_py()[:600])\" | .venv/bin/stackcoder index query --index $OUT/index --min-ngrams 2"
echo "search it:    .venv/bin/stackcoder index search '\"def __init__\"' --index $OUT/index --language Python"
echo "HumanEval:    .venv/bin/stackcoder eval humaneval --model $OUT/run/model --output $OUT/eval-humaneval.json"
