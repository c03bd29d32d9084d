#!/usr/bin/env bash
# The benchmark table on one GPU: rescom on Burn's GPU backends against PyTorch CUDA.
#
#   benches/gpu.sh [--cuda] [--quick]
#
# Runs on a machine with an NVIDIA GPU, its driver and PyTorch with CUDA; no network needed for
# the default Vulkan path (the Vulkan loader must be installed: `ldconfig -p | grep libvulkan`).
# --cuda also runs Burn's CUDA backend, whose build downloads an LLVM bundle (network needed).
# Prints the same table as benches/compare.sh, one section per Burn backend.
set -euo pipefail
cd "$(dirname "$0")/.."
QUICK=""; CUDA=0
for arg in "$@"; do
  case "$arg" in
    --quick) QUICK="--quick" ;;
    --cuda) CUDA=1 ;;
    -h|--help) sed -n 2,9p "$0"; exit 0 ;;
    *) echo "unknown option $arg" >&2; exit 2 ;;
  esac
done
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$PWD/target}"
command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader
python3 -c 'import torch; assert torch.cuda.is_available(), "PyTorch sees no CUDA device"' \
  || { echo "error: PyTorch with CUDA is required (pip install torch numpy)" >&2; exit 1; }
if ! ldconfig -p | grep -q libvulkan; then
  echo "error: no Vulkan loader (libvulkan.so.1) on this machine; install libvulkan1" >&2
  exit 1
fi

run_backend() { # run_backend FEATURE
  local feature="$1"
  echo "== rescom on $feature"
  RESCOM_BENCH_DEVICE="$feature" cargo bench --features "$feature" --bench loss --bench train_step \
    -- $QUICK --warm-up-time 2 --measurement-time 5
  echo "== table: $feature vs PyTorch CUDA"
  benches/compare.sh --no-run-rust --device cuda $QUICK
}

run_backend vulkan
if [ "$CUDA" = 1 ]; then run_backend cuda; fi
