//! Mutations of seed files: bit flips, byte changes, truncations, extensions, extreme header
//! fields, splices, deletions, insertions, block copies and random bytes; and line-level
//! mutations of text lists.

use rescom::Rng;

/// Inputs never grow beyond this many bytes (it keeps an input fast to write and read).
pub const MAX_LEN: usize = 4 << 20;

/// A header field the mutator sets to extreme values: `width` bytes at `offset`.
#[derive(Debug, Clone, Copy)]
pub struct Field {
    /// Byte offset in the file.
    pub offset: usize,
    /// 1, 2, 4 or 8 bytes.
    pub width: usize,
    /// Byte order of the field.
    pub big_endian: bool,
}

impl Field {
    /// A big-endian field.
    pub fn be(offset: usize, width: usize) -> Self {
        Self {
            offset,
            width,
            big_endian: true,
        }
    }

    /// A little-endian field.
    pub fn le(offset: usize, width: usize) -> Self {
        Self {
            offset,
            width,
            big_endian: false,
        }
    }
}

/// Values that break size arithmetic: zero, one, powers of two and their neighbours, the
/// extremes of the signed and unsigned integer types.
const EXTREMES: [u64; 26] = [
    0,
    1,
    2,
    3,
    4,
    7,
    8,
    16,
    32,
    64,
    0x7f,
    0x80,
    0xff,
    0x100,
    0x7fff,
    0x8000,
    0xffff,
    0x1_0000,
    0x7fff_ffff,
    0x8000_0000,
    0xffff_fffe,
    0xffff_ffff,
    0x1_0000_0000,
    i64::MAX as u64,
    u64::MAX - 1,
    u64::MAX,
];

/// Bytes that often carry meaning (zero, all ones, sign bits, ASCII space and newline).
const BYTES: [u8; 9] = [0, 1, 0x7f, 0x80, 0xff, b' ', b'\n', b'0', b'9'];

/// A position, half the time in the first 64 bytes (where the headers are).
fn position(rng: &mut Rng, len: usize) -> usize {
    if len == 0 {
        0
    } else if rng.bernoulli(0.5) {
        rng.index(len.min(64))
    } else {
        rng.index(len)
    }
}

/// `count` bytes of one kind: random, zeros, all ones, or a copy from `data`.
fn filler(rng: &mut Rng, count: usize, data: &[u8]) -> Vec<u8> {
    match rng.index(4) {
        0 => vec![0; count],
        1 => vec![0xff; count],
        2 if !data.is_empty() => (0..count).map(|i| data[i % data.len()]).collect(),
        _ => (0..count).map(|_| rng.next_u64() as u8).collect(),
    }
}

/// Writes `value` (truncated to the field's width) into `data`, growing it if needed.
fn write_field(data: &mut Vec<u8>, field: Field, value: u64) {
    let end = field.offset + field.width;
    if data.len() < end {
        data.resize(end, 0);
    }
    let bytes = if field.big_endian {
        value.to_be_bytes()[8 - field.width..].to_vec()
    } else {
        value.to_le_bytes()[..field.width].to_vec()
    };
    data[field.offset..end].copy_from_slice(&bytes);
}

/// An extreme value for a field, or one derived from the input's length.
fn extreme(rng: &mut Rng, len: usize) -> u64 {
    let v = match rng.index(10) {
        0 => len as u64,
        1 => (len as u64).wrapping_add(1),
        2 => (len as u64).wrapping_sub(1),
        3 => rng.next_u64() >> rng.index(64),
        _ => EXTREMES[rng.index(EXTREMES.len())],
    };
    if rng.bernoulli(0.2) {
        v.wrapping_add(rng.below(5)).wrapping_sub(2)
    } else {
        v
    }
}

/// Applies one to six stacked mutations to `data`; `fields` are its known header fields and
/// `others` the seeds splices take their tails from.
pub fn mutate(rng: &mut Rng, data: &mut Vec<u8>, fields: &[Field], others: &[Vec<u8>]) {
    let mut rounds = 1;
    while rounds < 6 && rng.bernoulli(0.5) {
        rounds += 1;
    }
    for _ in 0..rounds {
        mutate_once(rng, data, fields, others);
        data.truncate(MAX_LEN);
    }
}

fn mutate_once(rng: &mut Rng, data: &mut Vec<u8>, fields: &[Field], others: &[Vec<u8>]) {
    let len = data.len();
    match rng.index(100) {
        // Bit flips.
        0..20 if len > 0 => {
            for _ in 0..1 + rng.index(8) {
                let at = position(rng, len);
                data[at] ^= 1 << rng.index(8);
            }
        }
        // Byte changes.
        20..35 if len > 0 => {
            for _ in 0..1 + rng.index(8) {
                let at = position(rng, len);
                data[at] = if rng.bernoulli(0.5) {
                    BYTES[rng.index(BYTES.len())]
                } else {
                    rng.next_u64() as u8
                };
            }
        }
        // An extreme value in a header field, known or guessed.
        35..50 => {
            let field = if !fields.is_empty() && rng.bernoulli(0.75) {
                fields[rng.index(fields.len())]
            } else {
                Field {
                    offset: position(rng, len),
                    width: [1, 2, 4, 8][rng.index(4)],
                    big_endian: rng.bernoulli(0.5),
                }
            };
            let value = extreme(rng, len);
            write_field(data, field, value);
        }
        // Truncation: in the header, anywhere, or by a few bytes.
        50..60 => {
            let cut = match rng.index(3) {
                0 => rng.index(len.min(64) + 1),
                1 => rng.index(len + 1),
                _ => len.saturating_sub(1 + rng.index(16)),
            };
            data.truncate(cut);
        }
        // Extension: a few bytes or a few kilobytes.
        60..68 => {
            let count = if rng.bernoulli(0.5) {
                1 + rng.index(16)
            } else {
                1 + rng.index(4096)
            };
            let extra = filler(rng, count, data);
            data.extend(extra);
        }
        // Splice: this input's head with another seed's tail.
        68..75 if !others.is_empty() => {
            let other = &others[rng.index(others.len())];
            let head = rng.index(len + 1);
            let tail = rng.index(other.len() + 1);
            data.truncate(head);
            data.extend_from_slice(&other[tail..]);
        }
        // Deletion of a range.
        75..82 if len > 0 => {
            let at = position(rng, len);
            let most = if rng.bernoulli(0.5) { 16 } else { len };
            let count = 1 + rng.index(most);
            data.drain(at..(at + count).min(len));
        }
        // Insertion of a range.
        82..89 => {
            let at = position(rng, len);
            let most = if rng.bernoulli(0.5) { 16 } else { 1024 };
            let count = 1 + rng.index(most);
            let extra = filler(rng, count, data);
            data.splice(at..at, extra);
        }
        // A block copied over another part of the input.
        89..95 if len > 1 => {
            let count = 1 + rng.index(len.min(256));
            let from = rng.index(len - count + 1);
            let to = rng.index(len - count + 1);
            data.copy_within(from..from + count, to);
        }
        // Random bytes, sometimes behind the seed's first bytes (its magic number).
        95..100 => {
            let count = rng.index(len.max(32) * 2 + 1);
            let keep = if rng.bernoulli(0.5) { len.min(8) } else { 0 };
            data.truncate(keep);
            data.extend((0..count).map(|_| rng.next_u64() as u8));
        }
        // A mutation whose precondition failed: flip one bit of whatever is there.
        _ => {
            if len > 0 {
                let at = rng.index(len);
                data[at] ^= 1 << rng.index(8);
            } else {
                data.push(rng.next_u64() as u8);
            }
        }
    }
}

/// Paths an image list may name: directories, escapes, the list itself, missing files, names
/// too long for the file system, a NUL byte, non-ASCII and padded names.
const PATHS: [&str; 22] = [
    "",
    ".",
    "..",
    "/",
    "n01",
    "n01/",
    "n01/a.png/",
    "./n01/a.png",
    "n01//a.png",
    "../images/n01/a.png",
    "/dev/null",
    "list.txt",
    "../list.txt",
    "missing.png",
    "broken.jpg",
    "empty.png",
    "g.png g.png",
    "n01/b c.jpg",
    "n01/a.png\0",
    "\u{e9}/\u{fc}.png",
    " n01/a.png ",
    "n01\\a.png",
];

/// Labels a list line may carry: in and out of range, signed, padded, overflowing, not decimal.
const LABELS: [&str; 18] = [
    "0",
    "1",
    "4",
    "5",
    "-1",
    "+1",
    "01",
    "1.0",
    "1e3",
    "4294967295",
    "4294967296",
    "18446744073709551615",
    "18446744073709551616",
    "99999999999999999999999999",
    "",
    "x",
    "\u{663}",
    "0x1",
];

/// Separators between a path and its label, some of them whitespace only to Unicode.
const SEPARATORS: [&str; 7] = [" ", "\t", "  ", "\u{a0}", "\u{3000}", "", "\r"];

/// Line-level mutations of a text list (paths, labels, separators, comments, blank and
/// duplicated lines), then, sometimes, byte-level ones on top.
pub fn mutate_list(rng: &mut Rng, text: &str, others: &[Vec<u8>]) -> Vec<u8> {
    let mut lines: Vec<String> = text.lines().map(str::to_string).collect();
    for _ in 0..1 + rng.index(4) {
        let n = lines.len();
        let pick = |rng: &mut Rng| rng.index(n.max(1));
        match rng.index(9) {
            0 | 1 if n > 0 => {
                let i = pick(rng);
                let label = lines[i]
                    .rsplit_once(' ')
                    .map_or("0", |(_, l)| l)
                    .to_string();
                let path = if rng.bernoulli(0.1) {
                    "a".repeat([256, 5000][rng.index(2)])
                } else if rng.bernoulli(0.05) {
                    "a/".repeat(3000)
                } else {
                    PATHS[rng.index(PATHS.len())].to_string()
                };
                lines[i] = format!("{path} {label}");
            }
            2 | 3 if n > 0 => {
                let i = pick(rng);
                let path = lines[i].rsplit_once(' ').map_or("", |(p, _)| p).to_string();
                lines[i] = format!("{path} {}", LABELS[rng.index(LABELS.len())]);
            }
            4 if n > 0 => {
                let i = pick(rng);
                let sep = SEPARATORS[rng.index(SEPARATORS.len())];
                lines[i] = lines[i].replacen(' ', sep, 1);
            }
            5 if n > 0 => {
                let i = pick(rng);
                let line = lines[i].clone();
                let most = if rng.bernoulli(0.1) { 2000 } else { 3 };
                for _ in 0..1 + rng.index(most) {
                    lines.insert(i, line.clone());
                }
            }
            6 if n > 0 => {
                lines.remove(pick(rng));
            }
            7 => {
                let extra = ["", "#", "# n01/a.png 0", "   ", "\r", "\u{feff}n01/a.png 0"];
                let at = rng.index(n + 1);
                lines.insert(at, extra[rng.index(extra.len())].to_string());
            }
            _ if n > 1 => {
                let (i, j) = (pick(rng), pick(rng));
                lines.swap(i, j);
            }
            _ => lines.push("n01/a.png 0".into()),
        }
    }
    let ending = if rng.bernoulli(0.8) { "\n" } else { "\r\n" };
    let mut bytes = lines.join(ending).into_bytes();
    if rng.bernoulli(0.7) {
        bytes.extend_from_slice(ending.as_bytes());
    }
    if rng.bernoulli(0.3) {
        mutate(rng, &mut bytes, &[], others);
    }
    bytes
}

/// Rewrites the CRC of every whole PNG chunk, so that a mutation reaches the decoder instead
/// of stopping at the checksum.
pub fn fix_png_crcs(data: &mut [u8]) {
    let mut at = 8;
    while at + 12 <= data.len() {
        let len = u32::from_be_bytes([data[at], data[at + 1], data[at + 2], data[at + 3]]) as usize;
        let Some(end) = at.checked_add(12).and_then(|e| e.checked_add(len)) else {
            break;
        };
        if end > data.len() {
            break;
        }
        let mut crc = flate2::Crc::new();
        crc.update(&data[at + 4..end - 4]);
        data[end - 4..end].copy_from_slice(&crc.sum().to_be_bytes());
        at = end;
    }
}

/// The header fields of a PNG: each chunk's length, and the IHDR's width, height, bit depth,
/// colour type and interlace method.
pub fn png_fields(data: &[u8]) -> Vec<Field> {
    let mut fields = vec![
        Field::be(16, 4),
        Field::be(20, 4),
        Field::be(24, 1),
        Field::be(25, 1),
        Field::be(28, 1),
    ];
    let mut at = 8;
    while at + 12 <= data.len() {
        fields.push(Field::be(at, 4));
        let len = u32::from_be_bytes([data[at], data[at + 1], data[at + 2], data[at + 3]]) as usize;
        at += 12 + len;
    }
    fields
}

/// The header fields of a baseline JPEG: each marker segment's length, and the frame's
/// precision, height, width and component count.
pub fn jpeg_fields(data: &[u8]) -> Vec<Field> {
    let mut fields = Vec::new();
    let mut at = 2;
    while at + 4 <= data.len() && data[at] == 0xff {
        let marker = data[at + 1];
        fields.push(Field::be(at + 2, 2));
        if (0xc0..=0xc2).contains(&marker) {
            fields.extend([
                Field::be(at + 4, 1),
                Field::be(at + 5, 2),
                Field::be(at + 7, 2),
                Field::be(at + 9, 1),
            ]);
        }
        if marker == 0xda {
            break;
        }
        at += 2 + u16::from_be_bytes([data[at + 2], data[at + 3]]) as usize;
    }
    fields
}
