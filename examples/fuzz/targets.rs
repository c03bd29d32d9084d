//! The readers under test, one [`Target`] each, with the seeds their inputs are mutated from.
//!
//! A new reader is one more entry in [`TARGETS`]: a name, and a function that writes any fixed
//! files into the target's directory and returns the [`Target`] (its seeds, how to mutate
//! them, how to call the reader, and how much memory an input justifies).

use std::io::{Cursor, Read, Write};
use std::path::{Path, PathBuf};

use burn::tensor::Device;
use burn::train::renderer::MetricsRenderer;
use rescom::data::MAX_IMAGE_BYTES;
use rescom::data::{Cifar, Dataset, ListDataset, OnUnreadable, load_cifar_file, load_idx_pair};
use rescom::report::{SilentRenderer, read_history};
use rescom::run::{RunOptions, evaluate_checkpoint, fit};
use rescom::train::TrainConfig;
use rescom::{Error, Result, Rng};

use crate::mutate::{Field, fix_png_crcs, jpeg_fields, mutate, mutate_list, png_fields};
use rescom_support::small_run::{Small, eval_loader, run_data};

/// The files of one input: names relative to the target's directory, and their bytes.
pub type Files = Vec<(&'static str, Vec<u8>)>;

/// Memory any input may use besides what its bytes justify (buffers of the standard library,
/// Burn's small tensors).
const SLACK: usize = 1 << 20;

/// Gzip inflates at most 1032 bytes per compressed byte; the harness measures the real length
/// up to this cap.
const INFLATE_CAP: u64 = 256 << 20;

/// One reader under test.
pub trait Target {
    /// The files of one input, drawn from `rng` (mutated seeds).
    fn generate(&self, rng: &mut Rng) -> Files;
    /// The largest single allocation, in bytes, the input's files justify.
    fn budget(&self, files: &Files) -> usize;
    /// How many seeds the inputs are mutated from.
    fn seeds(&self) -> usize;
    /// Calls the reader on the files written into `dir`.
    fn read(&self, dir: &Path) -> Result<()>;
}

/// A reader's entry: its name on the command line, what it reads, and how to set it up in a
/// directory of its own.
pub struct Entry {
    /// Name (`--reader`), also part of every input's key.
    pub name: &'static str,
    /// What is read, in a few words.
    pub about: &'static str,
    /// Writes the fixed files into the directory and returns the target.
    pub make: fn(&Path) -> Result<Box<dyn Target>>,
}

/// Every reader of outside bytes.
pub const TARGETS: &[Entry] = &[
    Entry {
        name: "cifar10",
        about: "CIFAR-10 binary batch (load_cifar_file)",
        make: |dir| CifarTarget::make(dir, Cifar::Ten),
    },
    Entry {
        name: "cifar100",
        about: "CIFAR-100 binary batch (load_cifar_file)",
        make: |dir| CifarTarget::make(dir, Cifar::Hundred),
    },
    Entry {
        name: "idx",
        about: "IDX image and label files, raw (load_idx_pair)",
        make: |_| IdxTarget::make(false),
    },
    Entry {
        name: "idx-gz",
        about: "IDX image and label files, gzipped (load_idx_pair)",
        make: |_| IdxTarget::make(true),
    },
    Entry {
        name: "list",
        about: "list file and its image paths (ListDataset::open, image)",
        make: ListTarget::make,
    },
    Entry {
        name: "png",
        about: "PNG image through a list (ListDataset::open, image)",
        make: |dir| ImageTarget::make(dir, false),
    },
    Entry {
        name: "jpeg",
        about: "JPEG image through a list (ListDataset::open, image)",
        make: |dir| ImageTarget::make(dir, true),
    },
    Entry {
        name: "checkpoint",
        about: "a run's checkpoint directory, run.json and metrics.jsonl (--resume, --eval-only)",
        make: CheckpointTarget::make,
    },
];

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> Error + '_ {
    move |e| Error::Io {
        path: path.to_path_buf(),
        source: e,
    }
}

fn write(path: &Path, bytes: &[u8]) -> Result<()> {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).map_err(io(parent))?;
    }
    std::fs::write(path, bytes).map_err(io(path))
}

/// The crate's directory (fixtures and fetched data are found from it).
fn crate_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn pick<'a, T>(rng: &mut Rng, items: &'a [T]) -> &'a T {
    &items[rng.index(items.len())]
}

// ----- CIFAR ------------------------------------------------------------------------------

struct CifarTarget {
    cifar: Cifar,
    seeds: Vec<Vec<u8>>,
    fields: Vec<Field>,
}

impl CifarTarget {
    fn make(_dir: &Path, cifar: Cifar) -> Result<Box<dyn Target>> {
        let (name, label_bytes) = match cifar {
            Cifar::Ten => ("cifar10_test20.bin", 1),
            Cifar::Hundred => ("cifar100_test20.bin", 2),
        };
        let path = crate_dir().join("tests/fixtures").join(name);
        let bytes = std::fs::read(&path).map_err(io(&path))?;
        let record = label_bytes + 3 * 32 * 32;
        let seeds = vec![
            bytes[..record].to_vec(),
            bytes[..3 * record].to_vec(),
            bytes.clone(),
        ];
        let fields = (0..3)
            .flat_map(|r| (0..label_bytes).map(move |b| Field::be(r * record + b, 1)))
            .collect();
        Ok(Box::new(Self {
            cifar,
            seeds,
            fields,
        }))
    }
}

impl Target for CifarTarget {
    fn generate(&self, rng: &mut Rng) -> Files {
        let mut data = pick(rng, &self.seeds).clone();
        mutate(rng, &mut data, &self.fields, &self.seeds);
        vec![("batch.bin", data)]
    }

    fn budget(&self, files: &Files) -> usize {
        2 * files[0].1.len() + SLACK
    }

    fn seeds(&self) -> usize {
        self.seeds.len()
    }

    fn read(&self, dir: &Path) -> Result<()> {
        load_cifar_file(&dir.join("batch.bin"), self.cifar).map(drop)
    }
}

// ----- IDX ----------------------------------------------------------------------------------

/// An IDX file of unsigned bytes.
fn idx(dims: &[u32], data: &[u8]) -> Vec<u8> {
    let mut out = vec![0, 0, 8, dims.len() as u8];
    for d in dims {
        out.extend(d.to_be_bytes());
    }
    out.extend(data);
    out
}

/// The header and first `records` records of an IDX file (raw or gzipped), with the count
/// rewritten to `records`; `None` when the file is absent or unreadable.
fn idx_prefix(path: &Path, records: usize) -> Option<Vec<u8>> {
    let bytes = std::fs::read(path).ok()?;
    let mut reader: Box<dyn Read> = if bytes.starts_with(&[0x1f, 0x8b]) {
        Box::new(flate2::read::GzDecoder::new(Cursor::new(bytes)))
    } else {
        Box::new(Cursor::new(bytes))
    };
    let mut head = [0u8; 4];
    reader.read_exact(&mut head).ok()?;
    let mut dims = vec![0u8; 4 * head[3] as usize];
    reader.read_exact(&mut dims).ok()?;
    let dims: Vec<u32> = dims
        .chunks_exact(4)
        .map(|b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
        .collect();
    let per_record: usize = dims.iter().skip(1).map(|&d| d as usize).product();
    let mut data = vec![0u8; records * per_record];
    reader.read_exact(&mut data).ok()?;
    let mut dims = dims;
    *dims.first_mut()? = records as u32;
    Some(idx(&dims, &data))
}

fn gzip(bytes: &[u8], level: u32) -> Vec<u8> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::new(level));
    // Writing into a vector cannot fail.
    let _ = encoder.write_all(bytes);
    encoder.finish().unwrap_or_default()
}

/// The length an IDX file stands for: its own; for a gzip stream the length it really inflates
/// to (up to [`INFLATE_CAP`]) or, if smaller, the length its IDX header declares.
fn justified_len(bytes: &[u8]) -> usize {
    if !bytes.starts_with(&[0x1f, 0x8b]) {
        return bytes.len();
    }
    let mut decoder = flate2::read::GzDecoder::new(bytes).take(INFLATE_CAP);
    let mut head = Vec::new();
    let mut total = 0usize;
    let mut buf = [0u8; 64 << 10];
    while let Ok(n) = decoder.read(&mut buf) {
        if n == 0 {
            break;
        }
        if head.len() < 1024 {
            head.extend_from_slice(&buf[..n.min(1024)]);
        }
        total += n;
    }
    let declared = || -> Option<usize> {
        let header = 4 + 4 * *head.get(3)? as usize;
        head.get(4..header)?
            .chunks_exact(4)
            .map(|b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]) as usize)
            .try_fold(1usize, |acc, d| acc.checked_mul(d))?
            .checked_add(header)
    };
    let declared = declared().unwrap_or(usize::MAX);
    total.min(declared).max(bytes.len())
}

struct IdxTarget {
    gz: bool,
    /// `(images, labels)` pairs.
    seeds: Vec<(Vec<u8>, Vec<u8>)>,
    all: Vec<Vec<u8>>,
}

const IDX_IMAGE_FIELDS: [Field; 5] = [
    Field {
        offset: 2,
        width: 1,
        big_endian: true,
    },
    Field {
        offset: 3,
        width: 1,
        big_endian: true,
    },
    Field {
        offset: 4,
        width: 4,
        big_endian: true,
    },
    Field {
        offset: 8,
        width: 4,
        big_endian: true,
    },
    Field {
        offset: 12,
        width: 4,
        big_endian: true,
    },
];

impl IdxTarget {
    fn make(gz: bool) -> Result<Box<dyn Target>> {
        let images: Vec<u8> = (0..3 * 4 * 5).map(|i| (i * 7) as u8).collect();
        let mut seeds = vec![(idx(&[3, 4, 5], &images), idx(&[3], &[9, 0, 4]))];
        // The headers and first records of the fetched sets, when they are there.
        for set in ["fashion-mnist", "mnist"] {
            for split in ["t10k", "train"] {
                let dir = crate_dir().join("data").join(set);
                let find = |kind: &str| {
                    let name = format!("{split}-{kind}");
                    [dir.join(&name), dir.join(format!("{name}.gz"))]
                        .into_iter()
                        .find(|p| p.is_file())
                };
                let (Some(i), Some(l)) = (find("images-idx3-ubyte"), find("labels-idx1-ubyte"))
                else {
                    continue;
                };
                for records in [1, 8] {
                    if let (Some(i), Some(l)) = (idx_prefix(&i, records), idx_prefix(&l, records)) {
                        seeds.push((i, l));
                    }
                }
            }
        }
        let all = seeds
            .iter()
            .flat_map(|(i, l)| [i.clone(), l.clone()])
            .collect();
        Ok(Box::new(Self { gz, seeds, all }))
    }
}

impl Target for IdxTarget {
    fn generate(&self, rng: &mut Rng) -> Files {
        let (mut images, mut labels) = pick(rng, &self.seeds).clone();
        let which = rng.index(10);
        let (on_images, on_labels) = (!(5..8).contains(&which), which >= 5);
        let label_fields = &IDX_IMAGE_FIELDS[..3];
        let mode = if self.gz { rng.index(10) } else { 0 };
        match mode {
            // Mutate the IDX bytes (then gzip them when the target is gzipped).
            0..7 => {
                if on_images {
                    mutate(rng, &mut images, &IDX_IMAGE_FIELDS, &self.all);
                }
                if on_labels {
                    mutate(rng, &mut labels, label_fields, &self.all);
                }
                if self.gz {
                    images = gzip(&images, rng.index(10) as u32);
                    labels = gzip(&labels, rng.index(10) as u32);
                }
            }
            // Mutate the gzip stream itself: its header, deflate blocks, CRC and length.
            7 | 8 => {
                images = gzip(&images, rng.index(10) as u32);
                labels = gzip(&labels, rng.index(10) as u32);
                for (on, file) in [(on_images, &mut images), (on_labels, &mut labels)] {
                    if on {
                        let n = file.len();
                        let fields = [
                            Field::le(3, 1),
                            Field::le(4, 4),
                            Field::le(n - 8, 4),
                            Field::le(n - 4, 4),
                        ];
                        mutate(rng, file, &fields, &self.all);
                    }
                }
            }
            // A compression bomb: a (possibly extreme) header followed by up to 2 MiB of
            // zeros, which compress to a few kilobytes.
            _ => {
                let (file, fields) = if on_images {
                    (&mut images, &IDX_IMAGE_FIELDS[..])
                } else {
                    (&mut labels, label_fields)
                };
                let header = 4 + 4 * file[3] as usize;
                file.truncate(header);
                if rng.bernoulli(0.5) {
                    let field = *pick(rng, fields);
                    let value = [0xffff_ffffu64, 0x8000_0000, 0x1_0000, 1][rng.index(4)];
                    let bytes = value.to_be_bytes();
                    file[field.offset..field.offset + field.width]
                        .copy_from_slice(&bytes[8 - field.width..]);
                }
                file.resize(header + rng.index(2 << 20), 0);
                images = gzip(&images, 1);
                labels = gzip(&labels, 1);
            }
        }
        vec![("images", images), ("labels", labels)]
    }

    fn budget(&self, files: &Files) -> usize {
        16 * files.iter().map(|(_, b)| justified_len(b)).sum::<usize>() + SLACK
    }

    fn seeds(&self) -> usize {
        self.seeds.len()
    }

    fn read(&self, dir: &Path) -> Result<()> {
        load_idx_pair(&dir.join("images"), &dir.join("labels"), 10).map(drop)
    }
}

// ----- images -------------------------------------------------------------------------------

/// A test card: every pixel differs from its neighbours, in every channel.
fn card<P: image::Pixel>(
    width: u32,
    height: u32,
    value: impl Fn(u32, u32, usize) -> P::Subpixel,
) -> image::ImageBuffer<P, Vec<P::Subpixel>> {
    image::ImageBuffer::from_fn(width, height, |x, y| {
        let channels: Vec<P::Subpixel> = (0..P::CHANNEL_COUNT as usize)
            .map(|c| value(x, y, c))
            .collect();
        *P::from_slice(&channels)
    })
}

fn byte(x: u32, y: u32, c: usize) -> u8 {
    (x * 37 + y * 11 + c as u32 * 71) as u8
}

fn word(x: u32, y: u32, c: usize) -> u16 {
    (x * 9001 + y * 313 + c as u32 * 20011) as u16
}

fn encode(image: image::DynamicImage, jpeg_quality: Option<u8>) -> Result<Vec<u8>> {
    let mut out = Vec::new();
    match jpeg_quality {
        Some(q) => image.write_with_encoder(image::codecs::jpeg::JpegEncoder::new_with_quality(
            &mut out, q,
        )),
        None => image.write_with_encoder(image::codecs::png::PngEncoder::new(&mut out)),
    }
    .map_err(|e| Error::InvalidDataset(format!("encoding a seed: {e}")))?;
    Ok(out)
}

fn png_seeds() -> Result<Vec<Vec<u8>>> {
    use image::DynamicImage as D;
    [
        D::ImageRgb8(card(8, 6, byte)),
        D::ImageLuma8(card(5, 5, byte)),
        D::ImageRgba8(card(4, 4, byte)),
        D::ImageLuma16(card(3, 3, word)),
        D::ImageLumaA8(card(2, 7, byte)),
        D::ImageRgb16(card(3, 2, word)),
        D::ImageRgb8(card(1, 1, byte)),
        D::ImageRgb8(card(40, 30, byte)),
    ]
    .into_iter()
    .map(|image| encode(image, None))
    .collect()
}

fn jpeg_seeds() -> Result<Vec<Vec<u8>>> {
    use image::DynamicImage as D;
    [
        (D::ImageRgb8(card(8, 8, byte)), 90),
        (D::ImageLuma8(card(16, 9, byte)), 75),
        (D::ImageRgb8(card(33, 17, byte)), 50),
        (D::ImageRgb8(card(1, 1, byte)), 100),
        (D::ImageRgb8(card(40, 30, byte)), 85),
    ]
    .into_iter()
    .map(|(image, q)| encode(image, Some(q)))
    .collect()
}

/// One image, opened through a one-line list and decoded.
struct ImageTarget {
    jpeg: bool,
    seeds: Vec<Vec<u8>>,
    fields: Vec<Vec<Field>>,
    list: PathBuf,
    root: PathBuf,
}

impl ImageTarget {
    fn make(dir: &Path, jpeg: bool) -> Result<Box<dyn Target>> {
        let seeds = if jpeg { jpeg_seeds()? } else { png_seeds()? };
        let fields = seeds
            .iter()
            .map(|s| if jpeg { jpeg_fields(s) } else { png_fields(s) })
            .collect();
        let list = dir.join("list.txt");
        write(&list, b"img 0\n")?;
        Ok(Box::new(Self {
            jpeg,
            seeds,
            fields,
            list,
            root: dir.join("images"),
        }))
    }
}

impl Target for ImageTarget {
    fn generate(&self, rng: &mut Rng) -> Files {
        let i = rng.index(self.seeds.len());
        let mut data = self.seeds[i].clone();
        mutate(rng, &mut data, &self.fields[i], &self.seeds);
        if !self.jpeg && rng.bernoulli(0.7) {
            fix_png_crcs(&mut data);
        }
        vec![("images/img", data)]
    }

    fn budget(&self, files: &Files) -> usize {
        MAX_IMAGE_BYTES as usize + 16 * files[0].1.len() + SLACK
    }

    fn seeds(&self) -> usize {
        self.seeds.len()
    }

    fn read(&self, _dir: &Path) -> Result<()> {
        let ds = ListDataset::open(&self.list, &self.root, 1, OnUnreadable::Fail)?;
        ds.image(0).map(drop)
    }
}

// ----- list files -----------------------------------------------------------------------------

/// A list file naming images under a root that holds a PNG, a JPEG (in a folder with a space),
/// a grey PNG, a file that is no image and an empty one.
struct ListTarget {
    seeds: Vec<String>,
    bytes: Vec<Vec<u8>>,
    root: PathBuf,
}

impl ListTarget {
    fn make(dir: &Path) -> Result<Box<dyn Target>> {
        use image::DynamicImage as D;
        let root = dir.join("images");
        write(
            &root.join("n01/a.png"),
            &encode(D::ImageRgb8(card(8, 6, byte)), None)?,
        )?;
        write(
            &root.join("n01/b c.jpg"),
            &encode(D::ImageRgb8(card(9, 7, byte)), Some(80))?,
        )?;
        write(
            &root.join("g.png"),
            &encode(D::ImageLuma8(card(5, 5, byte)), None)?,
        )?;
        write(&root.join("broken.jpg"), b"not a jpeg")?;
        write(&root.join("empty.png"), b"")?;
        let seeds: Vec<String> = [
            "n01/a.png 0\nn01/b c.jpg 1\ng.png 2\n",
            "# ImageNet-LT style\n\nn01/a.png 4\r\ng.png\t3\n  n01/b c.jpg 1  \n",
            "broken.jpg 0\nn01/a.png 1\nmissing.png 2\nempty.png 3\n",
            "n01/a.png 0\n",
        ]
        .map(str::to_string)
        .to_vec();
        let bytes = seeds.iter().map(|s| s.clone().into_bytes()).collect();
        Ok(Box::new(Self { seeds, bytes, root }))
    }
}

impl Target for ListTarget {
    fn generate(&self, rng: &mut Rng) -> Files {
        let text = pick(rng, &self.seeds);
        vec![("list.txt", mutate_list(rng, text, &self.bytes))]
    }

    fn budget(&self, files: &Files) -> usize {
        16 * files[0].1.len() + SLACK
    }

    fn seeds(&self) -> usize {
        self.seeds.len()
    }

    fn read(&self, dir: &Path) -> Result<()> {
        let list = dir.join("list.txt");
        // Both policies, chosen by the input itself so that it reproduces alone.
        let len = std::fs::metadata(&list).map_err(io(&list))?.len();
        let policy = if len % 2 == 0 {
            OnUnreadable::Skip
        } else {
            OnUnreadable::Fail
        };
        let ds = ListDataset::open(&list, &self.root, 5, policy)?;
        let _ = (ds.labels(), ds.class_counts(), ds.skipped().len());
        for i in 0..ds.len().min(8) {
            ds.image(i)?;
        }
        Ok(())
    }
}

// ----- checkpoints ----------------------------------------------------------------------------

/// The record files of the seed run's checkpoint directory (two epochs kept), then the other
/// files `--resume` and `--eval-only` read.
const SEED_FILES: [&str; 8] = [
    "run/checkpoint/model-2.bpk",
    "run/checkpoint/optim-2.bpk",
    "run/checkpoint/scheduler-2.bpk",
    "run/checkpoint/model-1.bpk",
    "run/checkpoint/optim-1.bpk",
    "run/checkpoint/scheduler-1.bpk",
    "run/run.json",
    "run/metrics.jsonl",
];

/// Files an input may add: records of a later epoch (a save cut short) and the temporary file
/// of a killed write.
const EXTRA_FILES: [&str; 3] = [
    "run/checkpoint/model-3.bpk",
    "run/checkpoint/optim-3.bpk",
    "run/checkpoint/.model-2.bpk.tmp-1",
];

/// The names of an input's files, one a line: the files an input leaves out are absent from
/// the run directory the reader sees (files of earlier inputs stay in the target's directory).
const MANIFEST: &str = "manifest";

/// A renderer that shows nothing (the worker's standard output carries its reports).
fn silent() -> Option<Box<dyn MetricsRenderer>> {
    Some(Box::new(SilentRenderer))
}

fn run_config() -> TrainConfig {
    rescom_support::small_run::run_config(3, "fuzz seed: 14 images, 3 classes")
}

/// The burnpack header of a record: format version and metadata length.
const BURNPACK_FIELDS: [Field; 2] = [
    Field {
        offset: 4,
        width: 2,
        big_endian: false,
    },
    Field {
        offset: 6,
        width: 4,
        big_endian: false,
    },
];

/// A run's output directory as `--resume` and `--eval-only` read it: `run.json`,
/// `metrics.jsonl` and the Learner's checkpoint directory (model, optimiser and scheduler
/// records of the last two epochs), written by a real run of a small network stopped after
/// two of its three epochs.
struct CheckpointTarget {
    seeds: Vec<(&'static str, Vec<u8>)>,
    records: Vec<Vec<u8>>,
}

impl CheckpointTarget {
    fn make(dir: &Path) -> Result<Box<dyn Target>> {
        let out = dir.join("seed-run");
        let _ = std::fs::remove_dir_all(&out);
        let device = Device::flex().autodiff();
        let mut options = RunOptions::new(&out, device.clone());
        options.stop_after = Some(2);
        options.renderer = silent();
        fit(
            &run_config(),
            Small::new(&device),
            run_data(&device)?,
            options,
        )?;
        let mut seeds = SEED_FILES
            .iter()
            .map(|&name| {
                let path = out.join(name.trim_start_matches("run/"));
                std::fs::read(&path).map(|b| (name, b)).map_err(io(&path))
            })
            .collect::<Result<Vec<_>>>()?;
        // The seed run's measured times differ from process to process: fixed ones keep every
        // input a pure function of the seed, the reader and its index.
        for (name, bytes) in seeds.iter_mut() {
            if name.ends_with("metrics.jsonl") {
                *bytes = with_fixed_timings(bytes)?;
            }
        }
        let records = seeds[..6].iter().map(|(_, b)| b.clone()).collect();
        Ok(Box::new(Self { seeds, records }))
    }
}

/// `metrics.jsonl` with the measured fields of every line (`images_per_second`, `seconds`)
/// set to fixed values.
fn with_fixed_timings(bytes: &[u8]) -> Result<Vec<u8>> {
    let mut out = Vec::new();
    for line in bytes.split(|&b| b == b'\n').filter(|l| !l.is_empty()) {
        let mut record: serde_json::Value = serde_json::from_slice(line)?;
        for (key, fixed) in [("images_per_second", 1000.0), ("seconds", 0.5)] {
            if let Some(value) = record.get_mut(key) {
                *value = serde_json::json!(fixed);
            }
        }
        out.extend(serde_json::to_vec(&record)?);
        out.push(b'\n');
    }
    Ok(out)
}

/// A number in JSON text replaced by an extreme or malformed one.
fn mutate_json_number(rng: &mut Rng, data: &mut Vec<u8>) {
    let starts: Vec<usize> = (0..data.len())
        .filter(|&i| data[i].is_ascii_digit() && (i == 0 || !data[i - 1].is_ascii_alphanumeric()))
        .collect();
    if starts.is_empty() {
        return;
    }
    let at = *pick(rng, &starts);
    let end = (at..data.len())
        .find(|&i| !matches!(data[i], b'0'..=b'9' | b'.' | b'e' | b'E' | b'-' | b'+'))
        .unwrap_or(data.len());
    let values: [&[u8]; 12] = [
        b"0",
        b"-1",
        b"1",
        b"2",
        b"4294967295",
        b"4294967296",
        b"18446744073709551615",
        b"18446744073709551616",
        b"1e309",
        b"-0.0",
        b"NaN",
        b"0.5",
    ];
    data.splice(at..end, pick(rng, &values).iter().copied());
}

impl Target for CheckpointTarget {
    fn generate(&self, rng: &mut Rng) -> Files {
        let mut files = self.seeds.clone();
        let record = |rng: &mut Rng| {
            // Mostly the latest epoch, the one a resume reads.
            if rng.bernoulli(0.8) {
                rng.index(3)
            } else {
                3 + rng.index(3)
            }
        };
        match rng.index(100) {
            0..50 => {
                let i = record(rng);
                mutate(rng, &mut files[i].1, &BURNPACK_FIELDS, &self.records);
            }
            50..80 => {
                // run.json or metrics.jsonl.
                let i = 6 + rng.index(2);
                if rng.bernoulli(0.5) {
                    for _ in 0..1 + rng.index(3) {
                        mutate_json_number(rng, &mut files[i].1);
                    }
                } else {
                    mutate(rng, &mut files[i].1, &[], &[]);
                }
            }
            _ => match rng.index(6) {
                // A file missing.
                0 => drop(files.remove(rng.index(files.len()))),
                // A record of another kind or epoch in a record's place.
                1 => {
                    let (i, j) = (record(rng), rng.index(6));
                    files[i].1 = self.records[j].clone();
                }
                // Records of a later epoch: one save cut short, or all three saved as copies.
                2 => {
                    files.push((EXTRA_FILES[0], self.records[0].clone()));
                    if rng.bernoulli(0.5) {
                        files.push((EXTRA_FILES[1], self.records[1].clone()));
                    }
                }
                // The temporary file of a killed write.
                3 => {
                    let mut torn = self.records[0].clone();
                    torn.truncate(rng.index(torn.len()));
                    files.push((EXTRA_FILES[2], torn));
                }
                // An empty file.
                4 => {
                    let i = rng.index(files.len());
                    files[i].1.clear();
                }
                // Records of the two epochs exchanged.
                _ => {
                    for i in 0..3 {
                        let (a, b) = (files[i].1.clone(), files[i + 3].1.clone());
                        files[i].1 = b;
                        files[i + 3].1 = a;
                    }
                }
            },
        }
        let manifest = files.iter().map(|(n, _)| *n).collect::<Vec<_>>().join("\n");
        files.push((MANIFEST, manifest.into_bytes()));
        files
    }

    fn budget(&self, files: &Files) -> usize {
        // The run's own allocations (loaders, the Learner, its metrics) besides the files.
        16 * files.iter().map(|(_, b)| b.len()).sum::<usize>() + 4 * SLACK
    }

    fn seeds(&self) -> usize {
        1
    }

    fn read(&self, dir: &Path) -> Result<()> {
        // A fresh run directory holding exactly this input's files.
        let run = dir.join("scratch");
        if run.exists() {
            std::fs::remove_dir_all(&run).map_err(io(&run))?;
        }
        let manifest = dir.join(MANIFEST);
        let names = std::fs::read_to_string(&manifest).map_err(io(&manifest))?;
        for name in names.lines() {
            let to = run.join(name.trim_start_matches("run/"));
            if let Some(parent) = to.parent() {
                std::fs::create_dir_all(parent).map_err(io(parent))?;
            }
            std::fs::copy(dir.join(name), &to).map_err(io(&to))?;
        }
        let device = Device::flex().autodiff();
        let config = run_config();
        // `--eval-only`: the latest model on the test set, and the history for the summary.
        let evaluated = evaluate_checkpoint(
            Small::new(&device),
            eval_loader(&device.clone().inner())?,
            &run,
        )
        .and_then(|_| read_history(&run).map(drop));
        // `--resume`: every record checked and handed to the Learner, which trains the last
        // epoch from them.
        let mut options = RunOptions::new(&run, device.clone());
        options.resume = true;
        options.renderer = silent();
        let resumed = fit(&config, Small::new(&device), run_data(&device)?, options)
            .map(drop)
            .map_err(|e| match e {
                // Weights that pass the record checks (finite) may still overflow in the first
                // steps: the loss's own check stops the run, and that stop is reported against
                // the checkpoint it was resumed from.
                Error::Training { reason }
                    if reason.contains("not finite") || reason.contains("NaN or infinit") =>
                {
                    Error::Checkpoint {
                        path: run.join("checkpoint"),
                        reason: format!("restored, but the resumed run stops: {reason}"),
                    }
                }
                e => e,
            });
        evaluated.and(resumed)
    }
}
