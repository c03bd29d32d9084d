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
# Resumable: run the same command again and every run continues where it stopped; runs
# finished in $RESULTS are not run again, even where $OUT is gone (a new machine). Each run's
# BUILD file records the binary that started it (checksum, commit: RESCOM_COMMIT, default
# HEAD, and CPU); a run is resumed only by the binary that started it.
set -euo pipefail
cd "$(dirname "$0")/.."
bin="${1:?usage: scripts/budget-study.sh BIN}"
out="${OUT:-runs/study}"
results="${RESULTS:-results/budget-study}"
mkdir -p "$results" "$out"
# done DIR: the summary in DIR covers every epoch of its run.json.
done_run() {
  python3 - "$1" <<'PY' 2>/dev/null
import json, sys
d = sys.argv[1]
run = json.load(open(d + "/run.json"))
summary = json.load(open(d + "/summary.json"))
sys.exit(0 if summary["epochs"] == run["config"]["epochs"] else 1)
PY
}
# Finished runs kept in $results count as done in $out.
(cd "$results" && find . -name summary.json -printf '%h\n') | while read -r dir; do
  if done_run "$results/$dir" && ! done_run "$out/$dir"; then
    mkdir -p "$out/$dir" && cp "$results/$dir"/{run.json,summary.json,metrics.jsonl,BUILD} "$out/$dir/"
  fi
done
keep() {  # copies the files a table needs from every finished run under $out into $results
  (cd "$out" && find . -name summary.json -printf '%h\n') | while read -r dir; do
    done_run "$out/$dir" || continue
    mkdir -p "$results/$dir"
    for f in run.json summary.json metrics.jsonl BUILD; do
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
# 200 epochs seed by seed, so that every finished pair of runs is a paired difference.
for seed in 0 1 2; do SEEDS=$seed series --budget 200 --eval-every 10; done
SEEDS=0 SUFFIX=-constant-lr series --budget 200 --eval-every 1 --schedule constant
