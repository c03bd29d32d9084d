#!/usr/bin/env bash
# Compare the rescom (Rust, criterion) benchmarks with the PyTorch baseline.
#
#   benches/compare.sh [--pytorch-only] [--no-run-rust] [--quick] [--device cpu|cuda]
#
# 1. checks that python3 can import torch and numpy;
# 2. runs `cargo bench --bench loss` and `cargo bench --bench train_step` (unless
#    --pytorch-only or --no-run-rust) and reads criterion's median estimates;
# 3. runs benches/pytorch/bench.py with the same thread count
#    (RAYON_NUM_THREADS if set, else nproc);
# 4. prints one markdown table: case | rescom ms | pytorch ms | ratio (pytorch / rescom).
set -euo pipefail

usage() {
    cat <<'EOF'
usage: benches/compare.sh [options]

  --pytorch-only   run only the PyTorch side (rescom column shows n/a)
  --no-run-rust    do not run cargo bench; reuse existing criterion results
  --quick          fewer repetitions on both sides (criterion --quick, bench.py --quick)
  --device DEV     device for the PyTorch side: cpu (default) or cuda
  -h, --help       this help

Environment: RAYON_NUM_THREADS (thread count for both sides; default: nproc),
CARGO_TARGET_DIR / CRITERION_HOME (where criterion results are read), PYTHON
(interpreter, default python3).
EOF
}

RUN_RUST=1
PYTORCH_ONLY=0
QUICK=0
DEVICE=cpu
while [[ $# -gt 0 ]]; do
    case "$1" in
        --pytorch-only) PYTORCH_ONLY=1; RUN_RUST=0 ;;
        --no-run-rust) RUN_RUST=0 ;;
        --quick) QUICK=1 ;;
        --device) [[ $# -ge 2 ]] || { echo "error: --device needs a value" >&2; exit 2; }
                  DEVICE="$2"; shift ;;
        --device=*) DEVICE="${1#--device=}" ;;
        -h|--help) usage; exit 0 ;;
        *) echo "error: unknown option '$1'" >&2; usage >&2; exit 2 ;;
    esac
    shift
done

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
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
if [[ $RUN_RUST -eq 1 ]]; then
    if ! command -v cargo >/dev/null 2>&1; then
        echo "error: cargo not found; install Rust (https://rustup.rs) or pass --pytorch-only" >&2
        exit 1
    fi
    CRIT_ARGS=()
    [[ $QUICK -eq 1 ]] && CRIT_ARGS=(--quick)
    for bench in loss train_step; do
        echo "== cargo bench --bench $bench ${CRIT_ARGS[*]:-}" >&2
        if ! cargo bench --bench "$bench" -- ${CRIT_ARGS[@]+"${CRIT_ARGS[@]}"} >&2; then
            echo "warning: 'cargo bench --bench $bench' failed; its rows will show n/a" >&2
            STATUS=1
        fi
    done
fi

# Where criterion wrote its results (same order criterion itself uses).
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

# ---- 3. PyTorch side ------------------------------------------------------------------
PT_OUT="$(mktemp "${TMPDIR:-/tmp}/rescom-pytorch-bench.XXXXXX")"
trap 'rm -f "$PT_OUT"' EXIT
PT_ARGS=(--threads "$THREADS" --device "$DEVICE")
[[ $QUICK -eq 1 ]] && PT_ARGS+=(--quick)
echo "== $PY benches/pytorch/bench.py ${PT_ARGS[*]}" >&2
if ! "$PY" benches/pytorch/bench.py "${PT_ARGS[@]}" | tee "$PT_OUT" >&2; then
    echo "warning: bench.py failed; missing PyTorch rows will show n/a" >&2
    STATUS=1
fi

# ---- 4. table -------------------------------------------------------------------------
"$PY" - "$PT_OUT" "$CRIT_DIR" "$THREADS" <<'PYEOF'
import json, os, sys

pt_file, crit_dir, threads = sys.argv[1], sys.argv[2], sys.argv[3]
pt = {}
with open(pt_file) as fh:
    for line in fh:
        line = line.strip()
        if line.startswith("{"):
            try:
                rec = json.loads(line)
                pt[rec["case"]] = rec
            except (ValueError, KeyError):
                pass


def rust_ms(group, ident):
    if not crit_dir:
        return None
    path = os.path.join(crit_dir, group, ident, "new", "estimates.json")
    try:
        with open(path) as fh:
            return json.load(fh)["median"]["point_estimate"] / 1e6
    except (OSError, ValueError, KeyError, TypeError):
        return None


def pt_ms(case):
    rec = pt.get(case)
    return None if rec is None else rec.get("ms")


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
print()
print("| case | rescom ms | pytorch ms | ratio |")
print("| --- | ---: | ---: | ---: |")
for label, group, ident, case in ROWS:
    r, p = rust_ms(group, ident), pt_ms(case)
    ratio = f"{p / r:.2f}" if (r and p) else "n/a"
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
