#!/usr/bin/env bash
# Compare the rescom (Rust, criterion) benchmarks with the PyTorch baseline.
#
#   benches/compare.sh [--pytorch-only] [--no-run-rust] [--quick] [--rounds N] [--device cpu|cuda]
#                      [--features LIST]
#
# 1. checks that python3 can import torch and numpy;
# 2. runs `cargo bench --bench loss` and `cargo bench --bench train_step` (unless
#    --pytorch-only or --no-run-rust) and reads criterion's median estimates;
# 3. runs benches/pytorch/bench.py with the same thread count
#    (RAYON_NUM_THREADS if set, else nproc);
# 4. prints one markdown table: case | rescom ms | pytorch ms | ratio (pytorch / rescom).
#
# With --rounds N the short cases (loss, enqueue, mining) run N times, alternating Rust and
# PyTorch, and the table shows the median of each side and the median (and range) of the
# per-round ratios: on a shared machine whose speed drifts, paired rounds keep the ratio
# honest. The training steps run once.
set -euo pipefail

usage() {
    cat <<'EOF'
usage: benches/compare.sh [options]

  --pytorch-only   run only the PyTorch side (rescom column shows n/a)
  --no-run-rust    do not run cargo bench; reuse existing criterion results
  --quick          fewer repetitions on both sides (criterion --quick, bench.py --quick)
  --rounds N       alternate the short cases N times and report medians (default 1)
  --device DEV     device for the PyTorch side: cpu (default) or cuda
  --features LIST  crate features for the Rust side (e.g. ndarray; a different Burn feature
                   set: use its own CARGO_TARGET_DIR)
  -h, --help       this help

Environment: RAYON_NUM_THREADS (thread count for both sides; default: nproc),
CARGO_TARGET_DIR / CRITERION_HOME (where criterion results are read), PYTHON
(interpreter, default python3).
EOF
}

RUN_RUST=1
PYTORCH_ONLY=0
QUICK=0
ROUNDS=1
DEVICE=cpu
FEATURES=""
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
fi
CARGO_ARGS=()
[[ -n "$FEATURES" ]] && CARGO_ARGS=(--features "$FEATURES")

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
LONG_CASES=resnet32_step_ce,resnet32_step_rescom,mining_memory_inat

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

# ---- 3. both sides, short cases in rounds, then the training steps ---------------------
for round in $(seq 1 "$ROUNDS"); do
    [[ $ROUNDS -gt 1 ]] && echo "== round $round of $ROUNDS" >&2
    run_rust loss loss,enqueue,mining "$WORK/rust.$round"
    run_pytorch "$SHORT_CASES" "$WORK/pytorch.$round"
done
run_rust train_step train_step "$WORK/rust.long"
run_pytorch "$LONG_CASES" "$WORK/pytorch.long"

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


# One dict per round: ("rust", group, ident) or ("pt", case) -> ms. The long cases join
# every round (they ran once).
long_rust = {("rust", r["group"], r["ident"]): r["ms"] for r in lines(f"{work}/rust.long")}
long_pt = {}
pt = {}
for r in lines(f"{work}/pytorch.long"):
    if "case" in r:
        long_pt[("pt", r["case"])] = r.get("ms")
        pt[r["case"]] = r
per_round = []
for i in range(1, rounds + 1):
    values = dict(long_rust)
    values.update(long_pt)
    values.update({("rust", r["group"], r["ident"]): r["ms"] for r in lines(f"{work}/rust.{i}")})
    for r in lines(f"{work}/pytorch.{i}"):
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
    print(f"short cases: median of {rounds} alternating rounds; ratio: median [min, max] of the "
          "per-round ratios; training steps: one round")
print()
print("| case | rescom ms | pytorch ms | ratio |")
print("| --- | ---: | ---: | ---: |")
for label, group, ident, case in ROWS:
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
