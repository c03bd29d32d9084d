#!/usr/bin/env bash
# Renders HTML pages in a real browser (Debian's headless Chromium) and fails when one renders
# blank, when the browser reports a console message (a JavaScript error, a load the page's
# Content-Security-Policy blocked: the crate's pages have no scripts and load nothing, so any
# message is a failure) or when the page itself fails to load.
#
#   scripts/check-pages.sh PATH...    PATH: an HTML file, or a directory whose *.html files
#                                     (at any depth) are checked
#   SHOTS=dir                         keep the screenshots there (PAGE-NAME.png; default: a
#                                     temporary directory, removed at the end)
#
# Each page is rendered at 1280x2400 to a PNG, whose pixels must not all be one colour (read
# with Pillow when python3 has it, otherwise with the standard library's zlib). Installs
# chromium with apt-get when /usr/bin/chromium is absent. Prints one line per page, `ok PAGE`
# or `FAIL PAGE: why`, and exits 1 when a page failed, 2 on bad usage.
set -euo pipefail
[[ $# -ge 1 ]] || { echo "usage: $0 PATH..." >&2; exit 2; }

if [[ ! -x /usr/bin/chromium ]]; then
  echo "installing chromium (apt-get)"
  apt-get install -y chromium >/dev/null 2>&1 ||
    { apt-get update >/dev/null && apt-get install -y chromium >/dev/null; }
fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
shots="${SHOTS:-$work/shots}"
mkdir -p "$shots"

pages=()
for path in "$@"; do
  if [[ -d $path ]]; then
    while IFS= read -r -d '' page; do pages+=("$page"); done \
      < <(find "$path" -name '*.html' -type f -print0 | LC_ALL=C sort -z)
  elif [[ -f $path ]]; then
    pages+=("$path")
  else
    echo "FAIL $path: no such file or directory"; exit 1
  fi
done
[[ ${#pages[@]} -ge 1 ]] || { echo "FAIL: no HTML page under $*"; exit 1; }

# Exits 0 when the PNG has two colours or more, 1 (saying which colour) when it has one.
not_blank() {
  python3 - "$1" <<'PY'
import struct, sys, zlib

def pixels_pillow(path):
    from PIL import Image
    image = Image.open(path).convert("RGB")
    colours = image.getcolors(maxcolors=1)
    return image.size, None if colours is None else colours[0][1]

def pixels_stdlib(path):
    data = open(path, "rb").read()
    if data[:8] != b"\x89PNG\r\n\x1a\n":
        sys.exit("not a PNG file")
    pos, idat, header = 8, [], None
    while pos < len(data):
        length, kind = struct.unpack(">I4s", data[pos:pos + 8])
        body = data[pos + 8:pos + 8 + length]
        if kind == b"IHDR":
            header = struct.unpack(">IIBBBBB", body)
        elif kind == b"IDAT":
            idat.append(body)
        pos += 12 + length
    width, height, depth, colour_type, _, _, interlace = header
    channels = {0: 1, 2: 3, 4: 2, 6: 4}.get(colour_type)
    if depth != 8 or channels is None or interlace:
        sys.exit(f"unsupported PNG (depth {depth}, colour type {colour_type}, interlace {interlace})")
    raw, bpp, stride = zlib.decompress(b"".join(idat)), channels, channels * width
    prev, first = bytearray(stride), None
    for y in range(height):
        kind, line = raw[y * (stride + 1)], bytearray(raw[y * (stride + 1) + 1:(y + 1) * (stride + 1)])
        for i in range(stride):
            a = line[i - bpp] if i >= bpp else 0
            b = prev[i]
            if kind == 1:
                line[i] = (line[i] + a) & 255
            elif kind == 2:
                line[i] = (line[i] + b) & 255
            elif kind == 3:
                line[i] = (line[i] + (a + b) // 2) & 255
            elif kind == 4:
                c = prev[i - bpp] if i >= bpp else 0
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                line[i] = (line[i] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 255
        first = first or bytes(line[:bpp])
        if line != first * width:
            return (width, height), None
        prev = line
    return (width, height), first

try:
    (width, height), colour = pixels_pillow(sys.argv[1])
except ImportError:
    (width, height), colour = pixels_stdlib(sys.argv[1])
if colour is not None:
    value = colour if isinstance(colour, (bytes, tuple)) else (colour,)
    print(f"blank: every pixel of the {width}x{height} screenshot is #" + "".join(f"{v:02x}" for v in value))
    sys.exit(1)
PY
}

failed=0
for page in "${pages[@]}"; do
  name=$(basename "$(dirname "$page")")-$(basename "$page" .html)
  shot="$shots/$name.png" log="$work/$name.log"
  rm -f "$shot"
  url="file://$(realpath "$page")"
  timeout 120 chromium --headless --no-sandbox --disable-gpu --disable-quic --no-first-run \
    --disable-background-networking --disable-component-update --disable-sync \
    --user-data-dir="$(mktemp -d -p "$work")" --enable-logging=stderr --v=0 \
    --screenshot="$shot" --window-size=1280,2400 "$url" >"$log" 2>&1 || true
  why=""
  if grep -q ':CONSOLE' "$log"; then
    why="console: $(grep ':CONSOLE' "$log" | sed 's/^[^]]*] //' | head -3 | tr '\n' ' ')"
  elif grep -q 'Page load failed' "$log"; then
    why="$(grep -o 'Page load failed.*' "$log" | head -1)"
  elif [[ ! -s $shot ]]; then
    why="no screenshot ($(tail -1 "$log"))"
  elif ! blank=$(not_blank "$shot"); then
    why="$blank"
  fi
  if [[ -n $why ]]; then
    echo "FAIL $page: $why"; failed=$((failed + 1))
  else
    echo "ok   $page ($(stat -c %s "$shot") bytes of PNG, not blank, no console message)"
  fi
done
echo "${#pages[@]} pages rendered by $(chromium --version 2>/dev/null | head -1), $failed failed"
[[ $failed -eq 0 ]]
