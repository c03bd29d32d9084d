#!/usr/bin/env bash
# Compare the rescom (Rust, criterion) benchmarks with the PyTorch baseline.
#
#   benches/compare.sh [--pytorch-only] [--no-run-rust] [--quick] [--rounds N] [--device cpu|cuda]
#                      [--features LIST] [--authors CHECKOUT]
#   benches/compare.sh --job [--epochs N] [--method LIST] [--data-dir DIR] [--lt-data DIR]
#                      [--pytorch-only] [--features LIST]
#   benches/compare.sh --memory [--steps N] [--features LIST]
#
# 1. checks that python3 can import torch and numpy;
# 2. runs `cargo bench --bench loss` and `cargo bench --bench train_step` (unless
#    --pytorch-only or --no-run-rust) and reads criterion's median estimates;
# 3. runs benches/pytorch/bench.py with the same thread count
#    (RAYON_NUM_THREADS if set, else nproc);
# 4. prints one markdown table: case | rescom ms | pytorch ms | ratio (pytorch / rescom).
#
# With --authors CHECKOUT (a dvlab-research/ResCom checkout, the folder holding ResCom/) the
# rounds also time the authors' own loss at both sizes (bench.py's loss_*_authors cases,
# benches/pytorch/authors_loss.py), in rows of their own against the crate's loss.
#
# With --rounds N the short cases (loss, enqueue, mining) run N times, alternating Rust and
# PyTorch, then the training steps N times the same way, and the table shows the median of
# each side and the median (and range) of the per-round ratios: on a shared machine whose
# speed drifts, paired rounds keep the ratio honest.
#
# With --job it compares whole runs instead: the README's main job (the `train` example with
# its defaults, --epochs N) and benches/pytorch/default_job.py, the same job in PyTorch on the
# CPU, one after the other in one sitting, on the same long-tailed subset (written once by
# `train gpu-check --write-data`), with the same thread count and 2 loader workers each; one
# table row per method with the mean images/s over epochs 2.. of each side and their ratio,
# and the peak memory of each whole run (benches/peak_memory.py: the largest total PSS of the
# program and its loader processes).
#
# With --memory it compares the peak memory of the ResNet-32 ResCom step: each side runs N
# steps (default 3) alone in a fresh process (`cargo bench --bench model_step -- --memory N`,
# `bench.py --memory N`) and reports its resident memory before the first step and its peak.
set -euo pipefail

usage() {
    cat <<'EOF'
usage: benches/compare.sh [options]

  --pytorch-only   run only the PyTorch side (rescom column shows n/a)
  --no-run-rust    do not run cargo bench; reuse existing criterion results
  --quick          fewer repetitions on both sides (criterion --quick, bench.py --quick)
  --rounds N       alternate the short cases, then the training steps, N times and report
                   medians (default 1)
  --device DEV     device for the PyTorch side: cpu (default) or cuda
  --features LIST  crate features for the Rust side (e.g. ndarray; a different Burn feature
                   set: use its own CARGO_TARGET_DIR)
  --authors DIR    also time the authors' own loss (DIR: a dvlab-research/ResCom checkout)
  -h, --help       this help

Whole runs (--job):
  --job            run the README's main job with the crate and with PyTorch
                   (benches/pytorch/default_job.py) instead of the benches
  --epochs N       epochs of both runs (default 20, the job's own)
  --method LIST    rescom (default), balanced-softmax, or both, comma-separated
  --data-dir DIR   Fashion-MNIST as scripts/fetch-data.sh leaves it (default data)
  --lt-data DIR    the subset already written by `train gpu-check --write-data DIR`
                   (default: written into a temporary folder)
  --pytorch-only   run only PyTorch (the crate's columns show n/a)
  --features LIST  crate features of the `train` example (e.g. ndarray, with --backend
                   set through TRAIN_ARGS)

Peak memory of the training step (--memory):
  --memory         the ResNet-32 ResCom step, N steps per side in fresh processes
  --steps N        steps per side (default 3)

Environment: RAYON_NUM_THREADS (thread count for both sides; default: nproc),
CARGO_TARGET_DIR / CRITERION_HOME (where criterion results are read), PYTHON
(interpreter, default python3); with --job also TRAIN_BIN (the `train` example's binary to
run instead of building it with cargo) and TRAIN_ARGS (more options for the crate's run).
EOF
}

RUN_RUST=1
PYTORCH_ONLY=0
QUICK=0
ROUNDS=1
DEVICE=cpu
FEATURES=""
JOB=0
MEMORY=0
MEMORY_STEPS=3
JOB_EPOCHS=20
JOB_METHODS=rescom
DATA_DIR=data
LT_DATA=""
AUTHORS=""
while [[ $# -gt 0 ]]; do
    case "$1" in
        --pytorch-only) PYTORCH_ONLY=1; RUN_RUST=0 ;;
        --no-run-rust) RUN_RUST=0 ;;
        --quick) QUICK=1 ;;
        --rounds) [[ $# -ge 2 && "$2" =~ ^[1-9][0-9]*$ ]] || { echo "error: --rounds needs a positive integer" >&2; exit 2; }
                  ROUNDS="$2"; shift ;;
        --device) [[ $# -ge 2 ]] || { echo "error: --device needs a value" >&2; exit 2; }
                  DEVICE="$2"; shift ;;
        --device=*) DEVICE="${1#--device=}" ;;
        --features) [[ $# -ge 2 ]] || { echo "error: --features needs a value" >&2; exit 2; }
                    FEATURES="$2"; shift ;;
        --authors) [[ $# -ge 2 ]] || { echo "error: --authors needs a checkout folder" >&2; exit 2; }
                   AUTHORS="$2"; shift ;;
        --job) JOB=1 ;;
        --memory) MEMORY=1 ;;
        --steps) [[ $# -ge 2 && "$2" =~ ^[1-9][0-9]*$ ]] || { echo "error: --steps needs a positive integer" >&2; exit 2; }
                  MEMORY_STEPS="$2"; shift ;;
        --epochs) [[ $# -ge 2 && "$2" =~ ^[1-9][0-9]*$ ]] || { echo "error: --epochs needs a positive integer" >&2; exit 2; }
                  JOB_EPOCHS="$2"; shift ;;
        --method) [[ $# -ge 2 && "$2" =~ ^(rescom|balanced-softmax)(,(rescom|balanced-softmax))*$ ]] || { echo "error: --method needs rescom, balanced-softmax or both, comma-separated" >&2; exit 2; }
                  JOB_METHODS="$2"; shift ;;
        --data-dir) [[ $# -ge 2 ]] || { echo "error: --data-dir needs a value" >&2; exit 2; }
                    DATA_DIR="$2"; shift ;;
        --lt-data) [[ $# -ge 2 ]] || { echo "error: --lt-data needs a value" >&2; exit 2; }
                   LT_DATA="$2"; shift ;;
        -h|--help) usage; exit 0 ;;
        *) echo "error: unknown option '$1'" >&2; usage >&2; exit 2 ;;
    esac
    shift
done

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# Paths given on the command line are relative to where the script was called from.
abspath() { case "$1" in /*) printf '%s\n' "$1" ;; *) printf '%s\n' "$PWD/$1" ;; esac; }
[[ $JOB -eq 1 && "$DATA_DIR" != data ]] && DATA_DIR="$(abspath "$DATA_DIR")"
[[ -n "$LT_DATA" ]] && LT_DATA="$(abspath "$LT_DATA")"
if [[ -n "$AUTHORS" ]]; then
    AUTHORS="$(abspath "$AUTHORS")"
    [[ -f "$AUTHORS/ResCom/rescom/builder.py" && -f "$AUTHORS/ResCom/losses.py" ]] || {
        echo "error: --authors $AUTHORS: no ResCom/rescom/builder.py or ResCom/losses.py there; pass the folder of a dvlab-research/ResCom checkout" >&2
        exit 2
    }
fi
[[ -n "${TRAIN_BIN:-}" ]] && TRAIN_BIN="$(abspath "$TRAIN_BIN")"
cd "$ROOT"
PY="${PYTHON:-python3}"
export PYTHONDONTWRITEBYTECODE=1

# ---- 1. python side available? ------------------------------------------------------
if ! command -v "$PY" >/dev/null 2>&1; then
    echo "error: '$PY' not found. Install Python 3, then: pip install torch numpy" >&2
    exit 1
fi
if ! "$PY" -c 'import torch, numpy' >/dev/null 2>&1; then
    echo "error: $PY cannot import torch and numpy. Install them with:" >&2
    echo "    pip install torch numpy" >&2
    exit 1
fi

if [[ -n "${RAYON_NUM_THREADS:-}" ]]; then
    THREADS="$RAYON_NUM_THREADS"
else
    THREADS="$(nproc 2>/dev/null || getconf _NPROCESSORS_ONLN 2>/dev/null || echo 1)"
fi
if ! [[ "$THREADS" =~ ^[1-9][0-9]*$ ]]; then
    echo "error: thread count '$THREADS' (RAYON_NUM_THREADS) is not a positive integer" >&2
    exit 2
fi
export RAYON_NUM_THREADS="$THREADS"
echo "== threads: $THREADS (both sides)" >&2

STATUS=0

# ---- 2. Rust side ---------------------------------------------------------------------
if [[ $RUN_RUST -eq 1 && $JOB -eq 0 ]]; then
    if ! command -v cargo >/dev/null 2>&1; then
        echo "error: cargo not found; install Rust (https://rustup.rs) or pass --pytorch-only" >&2
        exit 1
    fi
    CRIT_ARGS=()
    [[ $QUICK -eq 1 ]] && CRIT_ARGS=(--quick)
fi
CARGO_ARGS=()
[[ -n "$FEATURES" ]] && CARGO_ARGS=(--features "$FEATURES")

# ---- peak memory of the step (--memory) ------------------------------------------------
if [[ $MEMORY -eq 1 ]]; then
    WORK="$(mktemp -d "${TMPDIR:-/tmp}/rescom-memory.XXXXXX")"
    trap 'rm -rf "$WORK"' EXIT
    if [[ $PYTORCH_ONLY -eq 0 ]]; then
        echo "== cargo bench ${CARGO_ARGS[*]:-} --bench model_step -- --memory $MEMORY_STEPS" >&2
        cargo bench ${CARGO_ARGS[@]+"${CARGO_ARGS[@]}"} --bench model_step -- --memory "$MEMORY_STEPS" \
            | tee -a "$WORK/rescom.jsonl" >&2 || { echo "warning: the crate's side failed" >&2; STATUS=1; }
    fi
    echo "== $PY benches/pytorch/bench.py --memory $MEMORY_STEPS --threads $THREADS" >&2
    (cd benches/pytorch && "$PY" bench.py --memory "$MEMORY_STEPS" --threads "$THREADS") \
        | tee -a "$WORK/pytorch.jsonl" >&2 || { echo "warning: the PyTorch side failed" >&2; STATUS=1; }
    "$PY" - "$WORK" "$MEMORY_STEPS" <<'PYEOF'
import json, os, sys

work, steps = sys.argv[1], sys.argv[2]


def last(path):
    try:
        with open(path) as fh:
            rows = [json.loads(l) for l in fh if l.startswith("{")]
    except (OSError, ValueError):
        return {}
    return rows[-1] if rows else {}


r, p = last(os.path.join(work, "rescom.jsonl")), last(os.path.join(work, "pytorch.jsonl"))
mb = lambda row, key: None if key not in row else row[key] * 1024 / 1e6  # noqa: E731
fmt = lambda v: "n/a" if v is None else f"{v:,.1f}"  # noqa: E731
print()
print(f"peak memory of the ResNet-32 ResCom step (128 images x 2 views, {steps} steps in a "
      "fresh process per side; MB = 1e6 bytes of resident memory, Linux VmRSS/VmHWM); "
      "ratio = pytorch / rescom (> 1: rescom needs less)")
print()
print("| measure | rescom MB | pytorch MB | ratio |")
print("| --- | ---: | ---: | ---: |")
rows = [("process before the first step", "rss_before_kib"), ("peak of the process", "peak_kib")]
for label, key in rows:
    a, b = mb(r, key), mb(p, key)
    print(f"| {label} | {fmt(a)} | {fmt(b)} | {'n/a' if not a or b is None else f'{b / a:.2f}'} |")
if r and p:
    a, b = mb(r, "peak_kib") - mb(r, "rss_before_kib"), mb(p, "peak_kib") - mb(p, "rss_before_kib")
    print(f"| the steps' own (peak - before) | {fmt(a)} | {fmt(b)} | {b / a:.2f} |")
PYEOF
    exit "$STATUS"
fi

# ---- whole runs (--job): the README's main job, crate and PyTorch -----------------------
if [[ $JOB -eq 1 ]]; then
    if [[ "$DEVICE" != cpu ]]; then
        echo "error: --job runs PyTorch on the CPU only (benches/pytorch/default_job.py)" >&2
        exit 2
    fi
    if ! "$PY" -c 'import torchvision, PIL' >/dev/null 2>&1; then
        echo "error: $PY cannot import torchvision and PIL. Install them with:" >&2
        echo "    pip install torchvision" >&2
        exit 1
    fi
    WORK="$(mktemp -d "${TMPDIR:-/tmp}/rescom-job.XXXXXX")"
    trap 'rm -rf "$WORK"' EXIT
    now() { if [[ -n "${EPOCHREALTIME:-}" ]]; then echo "${EPOCHREALTIME/,/.}"; else date +%s; fi; }
    BIN="${TRAIN_BIN:-}"
    # The binary runs the crate's job and writes the subset, unless both are left out.
    if [[ -z "$BIN" && ( $PYTORCH_ONLY -eq 0 || -z "$LT_DATA" ) ]]; then
        if ! command -v cargo >/dev/null 2>&1; then
            echo "error: cargo not found; install Rust (https://rustup.rs), set TRAIN_BIN, or pass --pytorch-only --lt-data DIR" >&2
            exit 1
        fi
        echo "== cargo build --release ${CARGO_ARGS[*]:-} --example train" >&2
        if ! BIN="$(cargo build --release ${CARGO_ARGS[@]+"${CARGO_ARGS[@]}"} --example train \
                --message-format=json-render-diagnostics | "$PY" -c '
import json, sys
exe = ""
for line in sys.stdin:
    try:
        m = json.loads(line)
    except ValueError:
        continue
    if m.get("reason") == "compiler-artifact" and m.get("target", {}).get("name") == "train":
        exe = m.get("executable") or exe
print(exe)')" || [[ -z "$BIN" || ! -x "$BIN" ]]; then
            echo "error: could not build the train example" >&2
            exit 1
        fi
    fi
    if [[ -z "$LT_DATA" ]]; then
        LT_DATA="$WORK/lt-data"
        echo "== $BIN gpu-check --write-data $LT_DATA --data-dir $DATA_DIR" >&2
        if ! "$BIN" gpu-check --write-data "$LT_DATA" --data-dir "$DATA_DIR" >&2; then
            echo "error: could not write the job's data (scripts/fetch-data.sh brings Fashion-MNIST into data/)" >&2
            exit 1
        fi
    fi
    TRAIN_EXTRA=()
    [[ -n "${TRAIN_ARGS:-}" ]] && read -r -a TRAIN_EXTRA <<< "$TRAIN_ARGS"
    IFS=, read -r -a METHODS <<< "$JOB_METHODS"
    for method in "${METHODS[@]}"; do
        if [[ $PYTORCH_ONLY -eq 0 ]]; then
            out="$WORK/rescom-$method"
            mem="$WORK/memory-rescom-$method.json"
            cmd=("$PY" benches/peak_memory.py "$mem" --
                 "$BIN" --data-dir "$LT_DATA" --epochs "$JOB_EPOCHS" --method "$method" --workers 2
                 --out "$out" ${TRAIN_EXTRA[@]+"${TRAIN_EXTRA[@]}"})
            echo "== ${cmd[*]}" >&2
            t0="$(now)"
            if "${cmd[@]}" >&2; then
                echo "{\"side\": \"rescom\", \"method\": \"$method\", \"start\": $t0, \"end\": $(now), \"metrics\": \"$out/metrics.jsonl\", \"memory\": \"$mem\"}" >> "$WORK/job.jsonl"
            else
                echo "warning: the crate's $method run failed; its columns will show n/a" >&2
                STATUS=1
            fi
        fi
        mem="$WORK/memory-pytorch-$method.json"
        cmd=("$PY" benches/peak_memory.py "$mem" --
             "$PY" benches/pytorch/default_job.py --data-dir "$LT_DATA" --epochs "$JOB_EPOCHS"
             --method "$method" --threads "$THREADS" --workers 2)
        echo "== ${cmd[*]}" >&2
        t0="$(now)"
        if "${cmd[@]}" | tee "$WORK/pytorch-$method.out" >&2; then
            echo "{\"side\": \"pytorch\", \"method\": \"$method\", \"start\": $t0, \"end\": $(now), \"output\": \"$WORK/pytorch-$method.out\", \"memory\": \"$mem\"}" >> "$WORK/job.jsonl"
        else
            echo "warning: the PyTorch $method run failed; its columns will show n/a" >&2
            STATUS=1
        fi
    done
    "$PY" - "$WORK/job.jsonl" "$JOB_METHODS" "$JOB_EPOCHS" "$THREADS" <<'PYEOF'
import json, sys

runs_file, methods, epochs, threads = sys.argv[1], sys.argv[2].split(","), int(sys.argv[3]), sys.argv[4]


def json_lines(path):
    try:
        with open(path) as fh:
            for line in fh:
                line = line.strip()
                if line.startswith("{"):
                    try:
                        yield json.loads(line)
                    except ValueError:
                        pass
    except OSError:
        return


def mean_rate(rates):
    """Mean images/s over epochs 2.. (the first is warm-up), or of the only epoch."""
    rates = rates[1:] if len(rates) > 1 else rates
    return sum(rates) / len(rates) if rates else None


def peak_mb(path):
    """The largest total PSS of the run's processes, MB (1e6 bytes)."""
    rows = list(json_lines(path))
    return rows[-1]["tree_peak_pss_kib"] * 1024 / 1e6 if rows else None


results = {}
for run in json_lines(runs_file):
    key, wall = (run["side"], run["method"]), run["end"] - run["start"]
    peak = peak_mb(run["memory"]) if "memory" in run else None
    if run["side"] == "rescom":
        history = list(json_lines(run["metrics"]))
        evals = [r["eval"] for r in history if r.get("eval")]
        results[key] = {"rate": mean_rate([r["images_per_second"] for r in history]),
                        "top1": evals[-1]["top1"] if evals else None, "wall": wall,
                        "peak": peak}
    else:
        last = [r for r in json_lines(run["output"]) if "images_per_second" in r]
        if last:
            results[key] = {"rate": last[-1]["images_per_second"], "top1": last[-1]["test_top1"],
                            "wall": wall, "peak": peak}


def fmt(v, spec):
    return "n/a" if v is None else format(v, spec)


span = f"epochs 2..{epochs}" if epochs > 1 else "the only epoch"
label = f"{epochs} epoch{'s' if epochs > 1 else ''}"
print()
print(f"the README's main job, {label}; threads: {threads} (both sides), 2 loader "
      f"workers each; img/s: training images per second (each image once, not per view), mean "
      f"over {span}; ratio = rescom / pytorch img/s (> 1: rescom is faster); wall: the whole "
      "program, evaluations and start-up included; peak MB: the largest total proportional "
      "set size of the run's processes (loader workers included), 1e6 bytes")
print()
print("| job | rescom img/s | pytorch img/s | ratio | rescom top-1 | pytorch top-1 | rescom wall s | pytorch wall s | rescom peak MB | pytorch peak MB |")
print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
for method in methods:
    r, p = results.get(("rescom", method), {}), results.get(("pytorch", method), {})
    ratio = r["rate"] / p["rate"] if r.get("rate") and p.get("rate") else None
    pct = lambda v: "n/a" if v is None else f"{100 * v:.2f} %"  # noqa: E731
    print(f"| {method}, {label} | {fmt(r.get('rate'), '.1f')} | {fmt(p.get('rate'), '.1f')} "
          f"| {fmt(ratio, '.2f')} | {pct(r.get('top1'))} | {pct(p.get('top1'))} "
          f"| {fmt(r.get('wall'), '.1f')} | {fmt(p.get('wall'), '.1f')} "
          f"| {fmt(r.get('peak'), ',.0f')} | {fmt(p.get('peak'), ',.0f')} |")
PYEOF
    exit "$STATUS"
fi

# Where criterion writes its results (same order criterion itself uses).
if [[ -n "${CRITERION_HOME:-}" ]]; then
    CRIT_DIR="$CRITERION_HOME"
elif [[ -n "${CARGO_TARGET_DIR:-}" ]]; then
    CRIT_DIR="$CARGO_TARGET_DIR/criterion"
else
    TARGET_DIR=""
    if command -v cargo >/dev/null 2>&1; then
        TARGET_DIR="$(cargo metadata --format-version 1 --no-deps --offline 2>/dev/null \
            | "$PY" -c 'import json, sys; print(json.load(sys.stdin)["target_directory"])' 2>/dev/null \
            || true)"
    fi
    CRIT_DIR="${TARGET_DIR:-$ROOT/target}/criterion"
fi
if [[ $PYTORCH_ONLY -eq 1 ]]; then
    CRIT_DIR=""
else
    echo "== criterion results: $CRIT_DIR" >&2
fi

WORK="$(mktemp -d "${TMPDIR:-/tmp}/rescom-compare.XXXXXX")"
trap 'rm -rf "$WORK"' EXIT
PT_ARGS=(--threads "$THREADS" --device "$DEVICE")
[[ $QUICK -eq 1 ]] && PT_ARGS+=(--quick)
SHORT_CASES=loss_cifar100,loss_cifar100_loop,loss_imagenet_lt,loss_imagenet_lt_loop,enqueue_cifar100,enqueue_cifar100_loop,enqueue_imagenet_lt,enqueue_imagenet_lt_loop,mining_cifar100,mining_imagenet_lt
STEP_CASES=resnet32_step_ce,resnet32_step_rescom
if [[ -n "$AUTHORS" ]]; then
    PT_ARGS+=(--authors "$AUTHORS")
    SHORT_CASES+=,loss_cifar100_authors,loss_imagenet_lt_authors
fi

# Copies criterion's median estimates of the groups in $2 into the JSON lines file $1.
save_rust() {
    [[ -n "$CRIT_DIR" ]] || return 0
    "$PY" - "$CRIT_DIR" "$1" "$2" <<'PYEOF'
import json, os, sys
crit, out, groups = sys.argv[1], sys.argv[2], sys.argv[3].split(",")
with open(out, "a") as fh:
    for group in groups:
        root = os.path.join(crit, group)
        if not os.path.isdir(root):
            continue
        for ident in sorted(os.listdir(root)):
            path = os.path.join(root, ident, "new", "estimates.json")
            try:
                with open(path) as f:
                    ms = json.load(f)["median"]["point_estimate"] / 1e6
            except (OSError, ValueError, KeyError, TypeError):
                continue
            fh.write(json.dumps({"group": group, "ident": ident, "ms": ms}) + "\n")
PYEOF
}

run_pytorch() { # cases, output file
    echo "== $PY benches/pytorch/bench.py ${PT_ARGS[*]} --cases $1" >&2
    if ! "$PY" benches/pytorch/bench.py "${PT_ARGS[@]}" --cases "$1" | tee -a "$2" >&2; then
        echo "warning: bench.py failed; missing PyTorch rows will show n/a" >&2
        STATUS=1
    fi
}

run_rust() { # bench name, criterion groups, output file
    [[ $RUN_RUST -eq 1 ]] || { save_rust "$3" "$2"; return 0; }
    echo "== cargo bench ${CARGO_ARGS[*]:-} --bench $1 ${CRIT_ARGS[*]:-}" >&2
    if ! cargo bench ${CARGO_ARGS[@]+"${CARGO_ARGS[@]}"} --bench "$1" -- ${CRIT_ARGS[@]+"${CRIT_ARGS[@]}"} >&2; then
        echo "warning: 'cargo bench --bench $1' failed; its rows will show n/a" >&2
        STATUS=1
    fi
    save_rust "$3" "$2"
}

# ---- 3. both sides, short cases in rounds, then the training steps in rounds ----------
for round in $(seq 1 "$ROUNDS"); do
    [[ $ROUNDS -gt 1 ]] && echo "== round $round of $ROUNDS" >&2
    run_rust loss loss,enqueue,mining "$WORK/rust.$round"
    run_pytorch "$SHORT_CASES" "$WORK/pytorch.$round"
done
for round in $(seq 1 "$ROUNDS"); do
    [[ $ROUNDS -gt 1 ]] && echo "== training steps, round $round of $ROUNDS" >&2
    run_rust train_step train_step "$WORK/rust.step.$round"
    run_pytorch "$STEP_CASES" "$WORK/pytorch.step.$round"
done
run_pytorch mining_memory_inat "$WORK/pytorch.memory"

# ---- 4. table -------------------------------------------------------------------------
"$PY" - "$WORK" "$ROUNDS" "$THREADS" <<'PYEOF'
import json, os, statistics, sys

work, rounds, threads = sys.argv[1], int(sys.argv[2]), sys.argv[3]


def lines(path):
    try:
        with open(path) as fh:
            for line in fh:
                line = line.strip()
                if line.startswith("{"):
                    try:
                        yield json.loads(line)
                    except ValueError:
                        pass
    except OSError:
        return


# One dict per round: ("rust", group, ident) or ("pt", case) -> ms, from the round's short
# cases and training steps.
pt = {r["case"]: r for r in lines(f"{work}/pytorch.memory") if "case" in r}
per_round = []
for i in range(1, rounds + 1):
    values = {}
    for name in (f"rust.{i}", f"rust.step.{i}"):
        values.update({("rust", r["group"], r["ident"]): r["ms"] for r in lines(f"{work}/{name}")})
    for name in (f"pytorch.{i}", f"pytorch.step.{i}"):
        for r in lines(f"{work}/{name}"):
            if "case" in r:
                values[("pt", r["case"])] = r.get("ms")
                pt.setdefault(r["case"], r)
    per_round.append(values)


def median_of(key):
    vals = [v[key] for v in per_round if v.get(key)]
    return statistics.median(vals) if vals else None


def rust_ms(group, ident):
    return median_of(("rust", group, ident))


def pt_ms(case):
    return median_of(("pt", case))


def ratios(group, ident, case):
    out = []
    for v in per_round:
        r, p = v.get(("rust", group, ident)), v.get(("pt", case))
        if r and p:
            out.append(p / r)
    return out


def fmt(v, digits=3):
    if v is None:
        return "n/a"
    if v < 1:
        return f"{v:.{digits}g}"
    return f"{v:.2f}" if v < 100 else f"{v:.1f}"


ROWS = [
    ("loss cifar100 (fwd+bwd+enqueue)", "loss", "cifar100", "loss_cifar100"),
    ("loss cifar100, PyTorch loop enqueue", "loss", "cifar100", "loss_cifar100_loop"),
    ("loss imagenet_lt (fwd+bwd+enqueue)", "loss", "imagenet_lt", "loss_imagenet_lt"),
    ("loss imagenet_lt, PyTorch loop enqueue", "loss", "imagenet_lt", "loss_imagenet_lt_loop"),
    ("loss cifar100, the authors' code", "loss", "cifar100", "loss_cifar100_authors"),
    ("loss imagenet_lt, the authors' code", "loss", "imagenet_lt", "loss_imagenet_lt_authors"),
    ("enqueue cifar100", "enqueue", "cifar100", "enqueue_cifar100"),
    ("enqueue cifar100, PyTorch loop", "enqueue", "cifar100", "enqueue_cifar100_loop"),
    ("enqueue imagenet_lt", "enqueue", "imagenet_lt", "enqueue_imagenet_lt"),
    ("enqueue imagenet_lt, PyTorch loop", "enqueue", "imagenet_lt", "enqueue_imagenet_lt_loop"),
    ("mining cifar100", "mining", "cifar100", "mining_cifar100"),
    ("mining imagenet_lt", "mining", "imagenet_lt", "mining_imagenet_lt"),
    ("ResNet-32 train step, CE", "train_step", "resnet32_ce", "resnet32_step_ce"),
    ("ResNet-32 train step, ResCom", "train_step", "resnet32_rescom", "resnet32_step_rescom"),
]

dev = next((r.get("device") for r in pt.values() if r.get("device")), "n/a")
print()
print(f"threads: {threads}; PyTorch device: {dev}; ratio = pytorch / rescom (> 1: rescom is faster)")
if rounds > 1:
    print(f"median of {rounds} alternating rounds (short cases, then training steps); ratio: "
          "median [min, max] of the per-round ratios")
print()
print("| case | rescom ms | pytorch ms | ratio |")
print("| --- | ---: | ---: | ---: |")
for label, group, ident, case in ROWS:
    if case.endswith("_authors") and pt_ms(case) is None:
        continue  # not asked for (--authors)
    r, p = rust_ms(group, ident), pt_ms(case)
    rs = ratios(group, ident, case)
    if not rs:
        ratio = "n/a"
    elif len(rs) == 1:
        ratio = f"{rs[0]:.2f}"
    else:
        ratio = f"{statistics.median(rs):.2f} [{min(rs):.2f}, {max(rs):.2f}]"
    print(f"| {label} | {fmt(r)} | {fmt(p)} | {ratio} |")


def overhead(ce, rc):
    return "n/a" if not (ce and rc) else f"{(rc - ce) / ce * 100:+.1f}%"


print()
print("ResCom-over-CE overhead of a ResNet-32 step: rescom "
      f"{overhead(rust_ms('train_step', 'resnet32_ce'), rust_ms('train_step', 'resnet32_rescom'))}, "
      f"pytorch {overhead(pt_ms('resnet32_step_ce'), pt_ms('resnet32_step_rescom'))}")

mem = pt.get("mining_memory_inat")
if mem:
    def mb(key):
        v = mem.get(key)
        return "n/a" if v is None else f"{v:,.1f} MB"
    print(f"Mining memory at C={mem['C']}, K={mem['K']}, D={mem['D']}, 2N={mem['rows']} "
          f"(k_pos={mem['k_pos']}, k_neg={mem['k_neg']}, float32): masked top-k "
          f"{mb('masked_topk_mb')} vs index tables {mb('index_table_mb')} "
          f"({mb('index_table_persistent_mb')} of it persistent int64 tables); "
          f"computed from tensor sizes. Measured ({mem.get('measured')}): "
          f"{mb('masked_topk_measured_mb')} vs {mb('index_table_measured_mb')}.")
else:
    print("Mining memory: n/a")
PYEOF

exit "$STATUS"
