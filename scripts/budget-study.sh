#!/usr/bin/env bash
# The budget study of RESULTS.md: Balanced Softmax and ResCom on the main job's task at 20,
# 100 and 200 epochs (seeds 0, 1, 2, evaluations every 10 epochs), the authors' CIFAR protocol
# (constant lr 0.1, an evaluation after every epoch, best of them reported; seed 0, 200 epochs)
# and a lambda sweep (0.1 and 1.0 at 100 epochs, seed 0; 0.5 is the main grid).
#
#   scripts/budget-study.sh BIN      BIN: a fixed build of examples/train.rs (copied out of
#                                    target/, so that later builds cannot change it)
#   OUT=runs/study                   where the runs train (checkpoints included)
#   RESULTS=results/budget-study     where each run's run.json, summary.json and
#                                    metrics.jsonl are kept (committed with the repository)
#
# Resumable: run the same command again and every run continues where it stopped. The
# binary's checksum, the commit it was built from (RESCOM_COMMIT, default: HEAD) and the CPU
# are recorded in $RESULTS/BUILD; a different binary is refused, so that one series is one
# build.
set -euo pipefail
cd "$(dirname "$0")/.."
bin="${1:?usage: scripts/budget-study.sh BIN}"
out="${OUT:-runs/study}"
results="${RESULTS:-results/budget-study}"
mkdir -p "$results"
sum=$(sha256sum "$bin" | cut -d' ' -f1)
if [[ -f "$results/BUILD" ]]; then
  grep -q "^binary-sha256 $sum$" "$results/BUILD" || {
    echo "error: $results/BUILD records another binary; one series is one build" >&2; exit 1; }
else
  cpu=$(sed -n 's/^model name\s*: //p' /proc/cpuinfo | head -1)
  isa=$(grep -o -w -m1 'avx512f' /proc/cpuinfo || echo "avx2")
  {
    echo "commit ${RESCOM_COMMIT:-$(git rev-parse HEAD)}"
    echo "binary-sha256 $sum"
    echo "cpu $cpu ($(nproc) cores, ${isa%f})"
  } > "$results/BUILD.tmp" && mv "$results/BUILD.tmp" "$results/BUILD"
fi
keep() {  # copies the files a table needs from every run under $out into $results
  (cd "$out" && find . -name summary.json -printf '%h\n') | while read -r dir; do
    mkdir -p "$results/$dir"
    for f in run.json summary.json metrics.jsonl; do
      [[ -f "$out/$dir/$f" ]] && cp "$out/$dir/$f" "$results/$dir/.$f.tmp" &&
        mv "$results/$dir/.$f.tmp" "$results/$dir/$f"
    done
  done
}
trap keep EXIT
series() {
  BIN="$bin" OUT="$out" METHODS="${METHODS:-balanced-softmax rescom}" SEEDS="${SEEDS:-0 1 2}" \
    SUFFIX="${SUFFIX:-}" scripts/compare-methods.sh "$@"
  keep
}
series --budget 20 --eval-every 10
series --budget 100 --eval-every 10
METHODS=rescom SEEDS=0 SUFFIX=-lambda0.1 series --budget 100 --eval-every 10 --contrast-weight 0.1
METHODS=rescom SEEDS=0 SUFFIX=-lambda1.0 series --budget 100 --eval-every 10 --contrast-weight 1.0
series --budget 200 --eval-every 10
SEEDS=0 SUFFIX=-constant-lr series --budget 200 --eval-every 1 --schedule constant
