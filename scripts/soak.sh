#!/usr/bin/env bash
# Kill-and-resume soak: a small training run of examples/train.rs is killed with SIGKILL K times
# (default 3) at random moments, resumed with --resume after each kill, and its final state is
# compared with an uninterrupted run of the same seed.
#
#   scripts/soak.sh [K]            # SOAK_SEED=N picks the kill moments; SOAK_KEEP=1 keeps the runs
#
# Each kill draws a moment uniformly from the start of the process to two epochs later. The
# kills take turns among three kinds:
#   - inside a checkpoint write: at the first write of a checkpoint record from that moment on
#     (once the process's own temporary file appears under checkpoint/, `.NAME.tmp-PID`; one a
#     killed process left does not count), after a random part of the write;
#   - at the moment itself;
#   - inside a report write (run.json, metrics, plots, summary): at the first one from that
#     moment on, in the same way.
# To make the writes long enough to be hit, the killed processes run with the test hook
# RESCOM_TEST_SLOW_WRITES_MS (every atomic write pauses halfway through its temporary file).
# The runs that are not killed (the reference and the last resume) run without it.
#
# At the end the run directory must equal the uninterrupted one, file by file and bit for bit:
# the checkpoint records, summary.json, run.json, the plots and burn-train's metric logs. Only
# measured time may differ, and only it is left out: experiment.log (burn-train's log, with
# timestamps and one section per process) is not compared, and the fields `images_per_second`
# and `seconds` are dropped from metrics.jsonl, metrics.csv and train/epoch-*/Epoch_record.log
# before they are compared. No temporary file may remain anywhere under the run directory.
#
# Prints `K kills, K resumes, final state identical` and exits 0, or says what differs and
# exits 1.
set -euo pipefail
cd "$(dirname "$0")/.."

kills=${1:-3}
[[ "$kills" =~ ^[0-9]+$ && "$kills" -ge 1 ]] || { echo "usage: $0 [K >= 1]" >&2; exit 2; }
seed=${SOAK_SEED:-$(( $(date +%s) % 100000 ))}
RANDOM=$seed
# A killed process completes at most three epochs (a report write after the checkpoint of the
# third), mostly none or one: the run must outlast K kills.
epochs=$(( 2 * kills + 3 ))
slow_ms=150

export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/rescom-target}"
work=$(mktemp -d)
if [[ -z "${SOAK_KEEP:-}" ]]; then trap 'rm -rf "$work"' EXIT; else echo "runs kept in $work"; fi
cargo build --release --example train --quiet
# A copy of its own: a later build in the same target directory replaces the binary there.
train="$work/train"
cp "$CARGO_TARGET_DIR/release/examples/train" "$train"
ref="$work/reference" run="$work/killed"
args=(--smoke --epochs "$epochs" --seed 0 --workers 1)

now_ms() { date +%s%3N; }
temporaries() { find "$1" -name '.*.tmp-*' 2>/dev/null; }

echo "soak: $kills kills of a $epochs-epoch run (seed $seed), work in $work"
t0=$(now_ms)
"$train" "${args[@]}" --out "$ref" >"$work/reference.log" 2>&1 ||
  { tail -20 "$work/reference.log"; echo "the uninterrupted run failed" >&2; exit 1; }
ref_ms=$(( $(now_ms) - t0 ))
epoch_ms=$(( ref_ms / epochs ))
echo "uninterrupted run: $(( ref_ms / 1000 )) s ($epoch_ms ms an epoch with start-up)"

killed=0 resumed=0 in_checkpoint=0 in_report=0
for (( i = 0; i < kills; i++ )); do
  resume=()
  [[ $i -gt 0 ]] && resume=(--resume) && resumed=$(( resumed + 1 ))
  log="$work/killed-$i.log"
  RESCOM_TEST_SLOW_WRITES_MS=$slow_ms "$train" "${args[@]}" --out "$run" "${resume[@]}" \
    >"$log" 2>&1 &
  pid=$!
  kind=$(( i % 3 ))
  started=$(now_ms)
  at=$(( started + (RANDOM * 32768 + RANDOM) % (2 * epoch_ms + 1) ))
  # The first run is killed once it has begun its output (run.json): before that it has
  # written nothing to resume.
  deadline=$(( started + 20 * epoch_ms + 60000 ))
  case $kind in
    0) pattern="$run/checkpoint/.*.tmp-$pid" ;;
    1) pattern="" ;;
    2) pattern="$run/.*.tmp-$pid" ;;
  esac
  while kill -0 "$pid" 2>/dev/null; do
    t=$(now_ms)
    [[ $t -gt $deadline ]] && break
    if [[ -f "$run/run.json" && $t -ge $at ]]; then
      [[ -z "$pattern" ]] && break
      if compgen -G "$pattern" >/dev/null; then
        sleep "0.$(printf %03d $(( RANDOM % slow_ms )))"
        break
      fi
    fi
    sleep 0.005
  done
  if ! kill -9 "$pid" 2>/dev/null; then
    wait "$pid" && rc=0 || rc=$?
    tail -20 "$log"
    echo "kill $(( i + 1 )): the process had already ended (status $rc) before its moment" >&2
    exit 1
  fi
  wait "$pid" 2>/dev/null || true
  killed=$(( killed + 1 ))
  where="between writes"
  # Only the killed process's own temporary files tell where it was.
  if compgen -G "$run/checkpoint/.*.tmp-$pid" >/dev/null; then
    where="inside a checkpoint write"; in_checkpoint=$(( in_checkpoint + 1 ))
  elif compgen -G "$run/.*.tmp-$pid" >/dev/null; then
    where="inside a report write"; in_report=$(( in_report + 1 ))
  fi
  # checkpoint/ may not exist yet (a resume that starts again removes it, or a kill before it).
  done_epochs=$( (ls "$run/checkpoint" 2>/dev/null || true) |
    sed -n 's/^model-\([0-9]*\)\.bpk$/\1/p' | sort -n | tail -1)
  echo "kill $(( i + 1 )) after $(( $(now_ms) - started )) ms, $where" \
    "(latest model record: epoch ${done_epochs:-none})"
done

"$train" "${args[@]}" --out "$run" --resume >"$work/final.log" 2>&1 ||
  { tail -20 "$work/final.log"; echo "the last resume failed" >&2; exit 1; }
resumed=$(( resumed + 1 ))

# ----- comparison -------------------------------------------------------------------------
status=0
stray=$( (temporaries "$run"; temporaries "$ref"; find "$run" "$ref" -name '.write-probe-*') )
if [[ -n "$stray" ]]; then echo "stray temporary files:"; echo "$stray"; status=1; fi

listing() { (cd "$1" && find . -type f ! -name experiment.log | LC_ALL=C sort); }
if ! diff <(listing "$ref") <(listing "$run") >"$work/listing.diff"; then
  echo "the two runs hold different files:"; cat "$work/listing.diff"; status=1
fi
untimed() {
  python3 - "$1" <<'EOF'
import csv, io, json, sys
path = sys.argv[1]
timed = {"images_per_second", "seconds"}
text = open(path).read()
if path.endswith(".csv"):
    rows = list(csv.reader(io.StringIO(text)))
    keep = [i for i, name in enumerate(rows[0]) if name not in timed] if rows else []
    for row in rows:
        print(",".join(row[i] for i in keep))
else:
    for line in text.splitlines():
        value = json.loads(line)
        for key in timed:
            value.pop(key, None)
        print(json.dumps(value, sort_keys=True))
EOF
}
compared=0
while read -r file; do
  [[ -f "$run/$file" ]] || continue
  compared=$(( compared + 1 ))
  case "$file" in
    ./metrics.jsonl | ./metrics.csv | */Epoch_record.log)
      if ! cmp -s <(untimed "$ref/$file") <(untimed "$run/$file"); then
        echo "differs (timings left out): $file"; status=1
      fi ;;
    *)
      if ! cmp -s "$ref/$file" "$run/$file"; then echo "differs: $file"; status=1; fi ;;
  esac
done < <(listing "$ref")

echo "$compared files compared; kills inside a checkpoint write: $in_checkpoint," \
  "inside a report write: $in_report, elsewhere: $(( killed - in_checkpoint - in_report ))"
echo "wall time $(( ( $(now_ms) - t0 ) / 1000 )) s"
if [[ $status -eq 0 && $killed -eq $kills && $resumed -eq $kills ]]; then
  echo "$killed kills, $resumed resumes, final state identical"
else
  echo "$killed kills, $resumed resumes, final state NOT identical (seed $seed)"
  exit 1
fi
