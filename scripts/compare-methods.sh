#!/usr/bin/env bash
# Cross-entropy, Balanced Softmax and ResCom on the same long-tailed data, model and epoch
# budget, several seeds each; prints the table of RESULTS.md. Interrupted runs are resumed.
#
#   scripts/compare-methods.sh [extra flags for examples/train.rs]
#   OUT=runs/results SEEDS="0 1 2" METHODS="cross-entropy balanced-softmax rescom"
set -euo pipefail
cd "$(dirname "$0")/.."
out="${OUT:-runs/results}"
seeds="${SEEDS:-0 1 2}"
methods="${METHODS:-cross-entropy balanced-softmax rescom}"
cargo build --release --example train
# Run a private copy: later builds in this tree cannot change the binary between runs.
target="${CARGO_TARGET_DIR:-target}"
bin="$(mktemp -d)/train"
cp "$target/release/examples/train" "$bin"
# A run is done when its summary covers every epoch of its run.json.
finished() {
  python3 - "$1" <<'PY' 2>/dev/null
import json, sys
d = sys.argv[1]
run = json.load(open(d + "/run.json"))
summary = json.load(open(d + "/summary.json"))
sys.exit(0 if summary["epochs"] == run["config"]["epochs"] else 1)
PY
}
for method in $methods; do
  for seed in $seeds; do
    dir="$out/$method-seed$seed"
    if finished "$dir"; then
      echo "== $dir done"; continue
    fi
    resume=()
    compgen -G "$dir/checkpoint/model-*.bpk" > /dev/null && resume=(--resume)
    echo "== $method, seed $seed -> $dir"
    "$bin" --method "$method" --seed "$seed" --out "$dir" "${resume[@]}" "$@"
  done
done
python3 scripts/results-table.py "$out"
