#!/usr/bin/env bash
# The GPU check in two halves: pack everything a GPU machine without Rust or network needs into
# one folder, then run it there.
#
#   scripts/gpu-check.sh --pack [--quick-check]   # here: build, strip, compress, add data + loaders
#   scripts/gpu-check.sh --run                    # there: unpack and run (results in $OUT)
#
# --pack builds examples/train (whose `gpu-check` subcommand is the check) with `--no-default-features --features flex,report,vulkan`
# (the GPU backend, flex for the dry run, and what the check needs; without gemm's AVX-512
# kernels, which only the CPU paths would use) in its own target directory,
# RESCOM_VULKAN_TARGET_DIR, default ~/.cache/rescom-target-vulkan, since the Burn feature set
# differs from the default build; at the lowest CPU priority; 45+ minutes cold), strips it and
# compresses it with xz into .gpu/, writes the default Fashion-MNIST-LT job's long-tailed
# training subset and the test set there as gzipped IDX files (from data/fashion-mnist, see
# scripts/fetch-data.sh), copies the Vulkan loader packages (from .gl/, or downloads them with
# apt-get), and checks that the travelling tree (tracked files, untracked files not ignored,
# and .gpu/) stays under 64 MiB. --quick-check then runs the packed binary's quick dry run on
# flex against the packed data.
#
# --run expects the GPU machine: root, an NVIDIA driver, python3 with torch and CUDA, no cargo,
# no network. It installs the Vulkan loader from the packages when the machine has none, runs
# the binary on Vulkan (golden cases, gradient checks, loss benches, the ResNet-32 step, a
# 3-epoch Fashion-MNIST-LT run, peak memory), then the PyTorch side of benches/compare.sh on
# CUDA against those figures. Everything lands in $OUT (default runs/gpu-check-out), six
# files: run.log, env.txt, gpu_check.json, gpu_check.md, compare.md, compare.log. It ends
# within 7.5 minutes (each part has its own time limit).
#
# For a rehearsal of --run on a machine without a GPU: GPU_CHECK_BACKEND=flex
# GPU_CHECK_ARGS=--quick GPU_CHECK_TORCH_DEVICE=cpu GPU_CHECK_COMPARE_ARGS=--quick.
set -uo pipefail
cd "$(dirname "$0")/.."
ROOT="$PWD"
PACK="$ROOT/.gpu"
LIMIT_MIB=64

usage() { sed -n 2,27p "$0"; }

pack() {
    local quick_check="$1"
    set -e
    local target="${RESCOM_VULKAN_TARGET_DIR:-$HOME/.cache/rescom-target-vulkan}"
    if [[ ! -d data/fashion-mnist ]]; then
        echo "error: data/fashion-mnist is missing; run scripts/fetch-data.sh first" >&2
        exit 1
    fi
    if ! grep -qx '/.gpu' .gitignore; then
        echo "error: .gpu/ must be ignored by git (.gitignore)" >&2
        exit 1
    fi
    echo "== build (features flex,report,vulkan, target $target, nice 19)"
    RESCOM_COMMIT="$(git describe --always --dirty 2>/dev/null || echo unknown)" \
        CARGO_TARGET_DIR="$target" nice -n 19 \
        cargo build --release --no-default-features --features flex,report,vulkan \
        --example train
    local bin="$target/release/examples/train"

    rm -rf "$PACK"
    mkdir -p "$PACK/data" "$PACK/gl"
    echo "== strip and compress"
    strip -o "$PACK/gpu_check" "$bin"
    xz -T0 -6 "$PACK/gpu_check"

    echo "== data: the default job's long-tailed training subset and the test set"
    local raw
    raw="$(mktemp -d)"
    "$bin" --write-data "$raw" --data-dir data
    mkdir -p "$PACK/data/fashion-mnist"
    for f in "$raw"/fashion-mnist/*; do
        gzip -9n -c "$f" >"$PACK/data/fashion-mnist/$(basename "$f").gz"
    done
    rm -rf "$raw"

    echo "== Vulkan loader packages"
    if compgen -G ".gl/*.deb" >/dev/null; then
        cp .gl/*.deb "$PACK/gl/"
    else
        local lists
        lists="$(mktemp -d)"
        mkdir -p "$lists/partial"
        local o=(-oAPT::Architecture=amd64 -oAPT::Architectures=amd64 "-oDir::State::Lists=$lists")
        apt-get "${o[@]}" update >/dev/null
        (cd "$PACK/gl" && apt-get "${o[@]}" download libvulkan1 libegl1 libglvnd0 libopengl0 \
            libgl1 libglx0 libgles2)
        rm -rf "$lists"
    fi

    echo "== size of what travels (limit $LIMIT_MIB MiB)"
    local tracked untracked packed total
    tracked=$(git ls-files -z | xargs -0 -r stat -c %s 2>/dev/null | awk '{s+=$1} END {print s+0}')
    untracked=$(git ls-files -z --others --exclude-standard | xargs -0 -r stat -c %s 2>/dev/null \
        | awk '{s+=$1} END {print s+0}')
    packed=$(find "$PACK" -type f -printf '%s\n' | awk '{s+=$1} END {print s+0}')
    total=$((tracked + untracked + packed))
    find "$PACK" -type f -printf '%s\t%P\n' | sort -k2 | awk -F'\t' '{printf "  %8.2f MiB  .gpu/%s\n", $1/1048576, $2}'
    awk -v t="$tracked" -v u="$untracked" -v p="$packed" -v a="$total" 'BEGIN {
        printf "  tracked %.2f MiB + untracked %.2f MiB + .gpu %.2f MiB = %.2f MiB\n",
            t/1048576, u/1048576, p/1048576, a/1048576 }'
    if ((total >= LIMIT_MIB * 1048576)); then
        echo "error: the travelling tree is over $LIMIT_MIB MiB" >&2
        exit 1
    fi

    if [[ "$quick_check" == 1 ]]; then
        echo "== dry run of the packed binary on flex (quick)"
        local work
        work="$(mktemp -d)"
        xz -dc "$PACK/gpu_check.xz" >"$work/gpu_check"
        chmod +x "$work/gpu_check"
        "$work/gpu_check" gpu-check --backend flex --quick --data-dir "$PACK/data" --out "$work/out" \
            --criterion-dir "$work/criterion"
        rm -rf "$work"
    fi
    cat <<'EOF'
== packed. On the GPU machine, from a copy of this tree with .gpu/ beside it (a remote runner:
   carry .gpu, allow 480 s):  scripts/gpu-check.sh --run
EOF
}

# Runs "$@" with a time limit, logging how it ended.
limited() {
    local seconds="$1"
    shift
    timeout --kill-after=10 "$seconds" "$@"
    local rc=$?
    if [[ $rc == 124 || $rc == 137 ]]; then
        echo "== stopped after its limit of ${seconds}s: $*"
    fi
    return $rc
}

run_there() {
    local out="${OUT:-$ROOT/runs/gpu-check-out}"
    local backend="${GPU_CHECK_BACKEND:-vulkan}" torch_device="${GPU_CHECK_TORCH_DEVICE:-cuda}"
    local check_args compare_args
    read -r -a check_args <<<"${GPU_CHECK_ARGS:-}"
    read -r -a compare_args <<<"${GPU_CHECK_COMPARE_ARGS:-}"
    mkdir -p "$out"
    exec > >(tee "$out/run.log") 2>&1
    local start=$SECONDS
    stamp() { echo "== [$((SECONDS - start))s] $*"; }
    if [[ ! -f "$PACK/gpu_check.xz" ]]; then
        echo "error: $PACK/gpu_check.xz is missing: run scripts/gpu-check.sh --pack here first, and" \
            "carry .gpu" >&2
        exit 1
    fi
    local work
    work="$(mktemp -d /tmp/rescom-gpu.XXXXXX)"

    stamp "machine"
    {
        date -u +%Y-%m-%dT%H:%M:%SZ
        uname -a
        nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader 2>&1
        python3 -c 'import sys, torch; print("python", sys.version.split()[0], "torch", torch.__version__, "cuda", torch.version.cuda, torch.cuda.is_available())' 2>&1
        echo "cores $(nproc)"
    } | tee "$out/env.txt"

    if [[ "$backend" == vulkan ]]; then
        stamp "Vulkan loader"
        if ! ldconfig -p | grep -q 'libvulkan\.so\.1'; then
            for f in "$PACK"/gl/*.deb; do dpkg -x "$f" /; done
            ldconfig
        fi
        ldconfig -p | grep 'libvulkan\.so\.1' || echo "no libvulkan.so.1 after unpacking the packages"
        local icd=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json
        if ! compgen -G "/usr/share/vulkan/icd.d/*.json" >/dev/null \
            && ! compgen -G "/etc/vulkan/icd.d/*.json" >/dev/null && [[ -f "$icd" ]]; then
            export VK_DRIVER_FILES="$icd"
            export __EGL_VENDOR_LIBRARY_FILENAMES=/usr/local/nvidia/share/glvnd/egl_vendor.d/10_nvidia.json
            echo "VK_DRIVER_FILES=$VK_DRIVER_FILES"
        fi
        echo "Vulkan: VK_DRIVER_FILES=${VK_DRIVER_FILES:-unset}" >>"$out/env.txt"
    fi

    stamp "unpack the check binary"
    if command -v xz >/dev/null; then
        xz -dc "$PACK/gpu_check.xz" >"$work/gpu_check"
    else
        python3 -c 'import lzma, shutil, sys; shutil.copyfileobj(lzma.open(sys.argv[1]), open(sys.argv[2], "wb"))' \
            "$PACK/gpu_check.xz" "$work/gpu_check"
    fi
    chmod +x "$work/gpu_check"

    stamp "gpu_check on $backend"
    limited 300 "$work/gpu_check" gpu-check --backend "$backend" --data-dir "$PACK/data" --out "$work/check" \
        --criterion-dir "$work/criterion" ${check_args[@]+"${check_args[@]}"} >"$out/gpu_check.md"
    local rc=$?
    cat "$out/gpu_check.md"
    cp "$work/check/gpu_check.json" "$out/gpu_check.json" 2>/dev/null \
        || echo "no gpu_check.json was written"
    echo "gpu_check exit status $rc"

    stamp "PyTorch on $torch_device (benches/compare.sh against the figures above)"
    CRITERION_HOME="$work/criterion" RAYON_NUM_THREADS="$(nproc)" \
        limited 110 benches/compare.sh --no-run-rust --device "$torch_device" \
        ${compare_args[@]+"${compare_args[@]}"} >"$out/compare.md" 2>"$out/compare.log"
    echo "compare.sh exit status $?"
    cat "$out/compare.md"

    stamp "done; files in $out:"
    ls -l "$out"
    rm -rf "$work"
    return "$rc"
}

case "${1:-}" in
    --pack)
        quick=0
        [[ "${2:-}" == "--quick-check" ]] && quick=1
        pack "$quick"
        ;;
    --run) run_there ;;
    -h | --help) usage ;;
    *)
        usage >&2
        exit 2
        ;;
esac
