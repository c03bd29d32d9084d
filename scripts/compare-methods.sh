#!/usr/bin/env bash
# Several methods on the same long-tailed data, model and epoch budget, several seeds each
# (the README's main job with only --epochs, --method and --seed changed). Interrupted runs
# are resumed, finished ones skipped, so the same command continues a series where it stopped.
#
#   scripts/compare-methods.sh [--budget EPOCHS] [extra flags for examples/train.rs]
#
#   --budget EPOCHS   epochs of every run (default: the main job's 20); runs go to
#                     $OUT/<EPOCHS>e/<method>-seed<seed>
#   OUT=runs/results  SEEDS="0 1 2"  METHODS="cross-entropy balanced-softmax rescom"
#   BIN=path          a fixed build of examples/train.rs to run (default: build one and run a
#                     private copy, so that later builds cannot change it between runs)
#   RESCOM_COMMIT=rev the commit BIN was built from, for the runs' BUILD files (default: HEAD)
#   SUFFIX=-name      appended to each run's directory name (variants of the same budget)
#   BASELINE=name     the group or method the paired differences are taken against
#                     (default: each group minus those before it)
#
# Each run's BUILD file records the binary that started it (checksum, commit, CPU); a run is
# resumed only by the same binary, so that one run is one build.
#
# At the end it prints the tables of every run under $OUT/<EPOCHS>e (mean ± sample standard
# deviation over seeds, paired differences per seed) through examples/compare.rs, built with
# cargo whatever BIN is, and writes the same as a page, $OUT/<EPOCHS>e/comparison.html.
set -euo pipefail
cd "$(dirname "$0")/.."
budget=20
if [[ "${1:-}" == "--budget" ]]; then
  [[ "${2:-}" =~ ^[1-9][0-9]*$ ]] || { echo "error: --budget needs a number of epochs" >&2; exit 2; }
  budget="$2"; shift 2
fi
out="${OUT:-runs/results}/${budget}e"
seeds="${SEEDS:-0 1 2}"
methods="${METHODS:-cross-entropy balanced-softmax rescom}"
suffix="${SUFFIX:-}"
if [[ -z "${BIN:-}" ]]; then
  cargo build --release --example train
  target="${CARGO_TARGET_DIR:-target}"
  BIN="$(mktemp -d)/train"
  cp "$target/release/examples/train" "$BIN"
fi
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
sum=$(sha256sum "$BIN" | cut -d' ' -f1)
cpu=$(sed -n 's/^model name\s*: //p' /proc/cpuinfo | head -1)
isa=$(grep -o -w -m1 'avx512f' /proc/cpuinfo || echo "avx2")
# stamp DIR: writes DIR/BUILD for a run this binary starts; refuses a run another one started.
stamp() {
  if [[ -f "$1/BUILD" ]]; then
    grep -q "^binary-sha256 $sum$" "$1/BUILD" && return 0
    echo "error: $1 was started by another binary ($1/BUILD); one run is one build" >&2
    exit 1
  fi
  mkdir -p "$1"
  {
    echo "commit ${RESCOM_COMMIT:-$(git rev-parse HEAD)}"
    echo "binary-sha256 $sum"
    echo "cpu $cpu ($(nproc) cores, ${isa%f})"
  } > "$1/.BUILD.tmp" && mv "$1/.BUILD.tmp" "$1/BUILD"
}
for method in $methods; do
  for seed in $seeds; do
    dir="$out/$method-seed$seed$suffix"
    if finished "$dir"; then
      echo "== $dir done"; continue
    fi
    stamp "$dir"
    resume=()
    compgen -G "$dir/checkpoint/model-*.bpk" > /dev/null && resume=(--resume)
    echo "== $method, seed $seed, $budget epochs -> $dir"
    "$BIN" --method "$method" --seed "$seed" --epochs "$budget" --out "$dir" "${resume[@]}" "$@"
  done
done
baseline=()
[[ -n "${BASELINE:-}" ]] && baseline=(--baseline "$BASELINE")
cargo run --release --quiet --example compare -- "${baseline[@]}" --out "$out/comparison.html" "$out" ||
  echo "warning: the tables of $out could not be printed (the runs are complete)" >&2
