//! The readers under test, one [`Target`] each, with the seeds their inputs are mutated from.
//!
//! A new reader is one more entry in [`TARGETS`]: a name, and a function that writes any fixed
//! files into the target's directory and returns the [`Target`] (its seeds, how to mutate
//! them, how to call the reader, and how much memory an input justifies).

use std::io::{Cursor, Read, Write};
use std::path::{Path, PathBuf};

use burn::module::{Module, ModuleMapper, Param, ParamId};
use burn::optim::{
    GradientsParams, ModuleOptimizer, SgdConfig, decay::WeightDecayConfig, momentum::MomentumConfig,
};
use burn::tensor::{Bool, Bytes, Device, Distribution, Int, Tensor, TensorData};
use rescom::data::list::MAX_IMAGE_BYTES;
use rescom::data::{Cifar, Dataset, ListDataset, OnUnreadable, load_cifar_file, load_idx_pair};
use rescom::head::{ResComHead, ResComHeadConfig};
use rescom::train::{
    Checkpoint, EpochRecord, LossSettings, LrSchedule, Method, Parts, TrainConfig,
};
use rescom::{Error, ResComLoss, Result, Rng};
use serde::{Deserialize, Serialize};

use crate::mutate::{Field, fix_png_crcs, jpeg_fields, mutate, mutate_list, png_fields};

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
        about: "checkpoint container and its records (Checkpoint::load, as resume reads it)",
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

/// Checkpoint metadata shaped like a training run's: configuration, histogram, position and
/// history.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Meta {
    config: TrainConfig,
    train_counts: Vec<usize>,
    epochs_done: usize,
    history: Vec<EpochRecord>,
}

const MAGIC: &[u8; 8] = b"RESCOMCK";

/// A checkpoint's parts: metadata bytes and named sections.
type Pieces = (Vec<u8>, Vec<(Vec<u8>, Vec<u8>)>);

/// Splits a well-formed checkpoint into its parts (the seed only).
fn split(bytes: &[u8]) -> Option<Pieces> {
    let mut cursor = bytes.get(16..)?;
    let count = u32::from_le_bytes(bytes.get(12..16)?.try_into().ok()?);
    let mut take = || {
        let len = u64::from_le_bytes(cursor.get(..8)?.try_into().ok()?) as usize;
        let data = cursor.get(8..8 + len)?.to_vec();
        cursor = &cursor[8 + len..];
        Some(data)
    };
    let meta = take()?;
    let mut sections = Vec::new();
    for _ in 0..count {
        sections.push((take()?, take()?));
    }
    Some((meta, sections))
}

/// Writes parts back into the container layout: magic, version, section count, then each
/// block behind its little-endian `u64` length.
fn join(meta: &[u8], sections: &[(Vec<u8>, Vec<u8>)]) -> Vec<u8> {
    let mut out = MAGIC.to_vec();
    out.extend(1u32.to_le_bytes());
    out.extend((sections.len() as u32).to_le_bytes());
    let mut put = |b: &[u8]| {
        out.extend((b.len() as u64).to_le_bytes());
        out.extend_from_slice(b);
    };
    put(meta);
    for (name, data) in sections {
        put(name);
        put(data);
    }
    out
}

/// The burnpack header of a record section: format version and metadata length.
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

/// A real checkpoint of a small ResCom head, its loss (with the queue) and its optimiser
/// after one step, read back the way a resumed run reads it.
struct CheckpointTarget {
    seed: Vec<u8>,
    parts: Pieces,
    fields: Vec<Field>,
    head: ResComHead,
    loss: ResComLoss,
    optimizer: ModuleOptimizer,
}

fn optimizer() -> ModuleOptimizer {
    SgdConfig::new()
        .with_momentum(Some(
            MomentumConfig::new().with_momentum(0.9).with_dampening(0.0),
        ))
        .with_weight_decay(Some(WeightDecayConfig::new(5e-4)))
        .init()
}

/// A burnpack record rewritten with its tensors in name order (Burn writes them in the order
/// of a hash map, which differs from process to process) and the random ids [`Renumber`] does
/// not reach (batch-norm running statistics) replaced by fixed ones.
fn canonical(bytes: Bytes) -> std::result::Result<Vec<u8>, burn_pack::Error> {
    let reader = burn_pack::Reader::from_bytes(bytes)?;
    let scalars = reader.scalars().clone();
    let metadata = reader.metadata().clone();
    let mut tensors = reader.into_tensors()?;
    tensors.sort_by(|a, b| a.name.cmp(&b.name));
    for (i, tensor) in tensors.iter_mut().enumerate() {
        if tensor.param_id.is_some_and(|id| id > 1000) {
            tensor.param_id = Some(10_000 + i as u64);
        }
    }
    let mut writer = burn_pack::Writer::new(tensors);
    for (key, value) in &scalars {
        writer = writer.with_scalar(key, *value);
    }
    for (key, value) in &metadata {
        writer = writer.with_metadata(key, value);
    }
    Ok(writer.into_bytes()?.to_vec())
}

/// Numbers a module's parameters from `self.0 + 1` on.
struct Renumber(u64);

impl Renumber {
    fn next<T: burn::module::ParameterValue>(&mut self, param: Param<T>) -> Param<T> {
        self.0 += 1;
        let (_, value, mapper) = param.consume();
        Param::from_mapped_value(ParamId::from(self.0), value, mapper)
    }
}

impl ModuleMapper for Renumber {
    fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
        self.next(param)
    }

    fn map_int<const D: usize>(&mut self, param: Param<Tensor<D, Int>>) -> Param<Tensor<D, Int>> {
        self.next(param)
    }

    fn map_bool<const D: usize>(
        &mut self,
        param: Param<Tensor<D, Bool>>,
    ) -> Param<Tensor<D, Bool>> {
        self.next(param)
    }
}

impl CheckpointTarget {
    fn make(dir: &Path) -> Result<Box<dyn Target>> {
        let device = Device::flex().autodiff();
        // The same seed checkpoint in every process, so that an input reproduces alone.
        device.seed(7);
        let counts = vec![6, 3, 1];
        let config = TrainConfig {
            method: Method::Rescom,
            parts: Parts::default(),
            loss: LossSettings {
                dim: 4,
                queue_per_class: 2,
                hard_positives: 1,
                hard_negatives: 2,
                ..LossSettings::default()
            },
            epochs: 3,
            schedule: LrSchedule::Constant { lr: 0.1 },
            momentum: 0.9,
            weight_decay: 5e-4,
            seed: 7,
            eval_every: 1,
            dataset: "fuzz seed: 10 images, 3 classes".into(),
        };
        // Parameter ids are random in Burn; fixed ones make the seed the same in every run.
        let head = ResComHeadConfig::new(8, 3, 16, 4)
            .init(&device)?
            .map(&mut Renumber(100));
        let loss = config
            .rescom_loss(&counts)
            .init(&device)?
            .map(&mut Renumber(200));
        let mut optimizer = optimizer();
        // One step, so that the optimiser holds momentum state.
        let features = Tensor::<2>::random([4, 8], Distribution::Normal(0.0, 1.0), &device);
        let (logits, projections) = head.forward(features);
        let total = logits.sum() + projections.powf_scalar(2.0).sum();
        let grads = GradientsParams::from_grads(total.backward(), &head);
        let head = optimizer.step(0.1, head, grads);
        let record_error = |e: &dyn std::fmt::Debug| Error::Checkpoint {
            path: dir.to_path_buf(),
            reason: format!("{e:?}"),
        };
        let record_bytes = |bytes: std::result::Result<Bytes, _>| -> Result<Vec<u8>> {
            canonical(bytes.map_err(|e| record_error(&e))?).map_err(|e| record_error(&e))
        };
        let sections = vec![
            (
                "model".to_string(),
                record_bytes(head.clone().into_record().into_bytes())?,
            ),
            (
                "loss".to_string(),
                record_bytes(loss.clone().into_record().into_bytes())?,
            ),
            (
                "optimizer".to_string(),
                record_bytes(optimizer.into_bytes())?,
            ),
        ];
        let meta = Meta {
            config,
            train_counts: counts,
            epochs_done: 1,
            history: vec![EpochRecord {
                epoch: 0,
                lr: 0.1,
                loss: 1.5,
                classification: 1.2,
                contrastive: Some(0.6),
                train_top1: 0.25,
                images_per_second: 120.0,
                seconds: 0.08,
                eval: None,
            }],
        };
        let path = dir.join("seed.bin");
        Checkpoint { meta, sections }.save(&path)?;
        let seed = std::fs::read(&path).map_err(io(&path))?;
        let parts = split(&seed).ok_or_else(|| record_error(&"the seed does not split"))?;
        // Version, count, and the length in front of every block.
        let mut fields = vec![Field::le(8, 4), Field::le(12, 4)];
        let mut at = 16;
        for block in std::iter::once(&parts.0).chain(parts.1.iter().flat_map(|(n, d)| [n, d])) {
            fields.push(Field::le(at, 8));
            at += 8 + block.len();
        }
        Ok(Box::new(Self {
            seed,
            parts,
            fields,
            head,
            loss,
            optimizer,
        }))
    }
}

impl Target for CheckpointTarget {
    fn generate(&self, rng: &mut Rng) -> Files {
        let seeds = std::slice::from_ref(&self.seed);
        let (mut meta, mut sections) = self.parts.clone();
        let data = match rng.index(100) {
            // The container as bytes.
            0..35 => {
                let mut data = self.seed.clone();
                mutate(rng, &mut data, &self.fields, seeds);
                data
            }
            // The metadata, re-framed with correct lengths.
            35..60 => {
                mutate(rng, &mut meta, &[], &[]);
                join(&meta, &sections)
            }
            // One record section (burnpack), re-framed.
            60..90 => {
                let i = rng.index(sections.len());
                mutate(rng, &mut sections[i].1, &BURNPACK_FIELDS, &[]);
                join(&meta, &sections)
            }
            // The list of sections: one dropped, duplicated, renamed, or two swapped.
            _ => {
                let i = rng.index(sections.len());
                let j = rng.index(sections.len());
                match rng.index(4) {
                    0 => drop(sections.remove(i)),
                    1 => sections.insert(j, sections[i].clone()),
                    2 => mutate(rng, &mut sections[i].0, &[], &[]),
                    _ => {
                        let data = sections[i].1.clone();
                        sections[i].1 = std::mem::replace(&mut sections[j].1, data);
                    }
                }
                join(&meta, &sections)
            }
        };
        vec![("checkpoint.bin", data)]
    }

    fn budget(&self, files: &Files) -> usize {
        16 * files[0].1.len() + SLACK
    }

    fn seeds(&self) -> usize {
        1
    }

    fn read(&self, dir: &Path) -> Result<()> {
        let path = dir.join("checkpoint.bin");
        let checkpoint = Checkpoint::<Meta>::load(&path)?;
        let head = checkpoint.load_module("model", self.head.clone(), &path)?;
        let mut loss = checkpoint.load_module("loss", self.loss.clone(), &path)?;
        let mut optimizer =
            checkpoint.load_optimizer("optimizer", self.optimizer.clone(), &head, &path)?;
        let bad = |what: &str, e: &dyn std::fmt::Debug| Error::Checkpoint {
            path: path.clone(),
            reason: format!("{what}: {e:?}"),
        };
        // The first step of the resumed run: the restored head, loss and optimiser in use.
        let device = Device::flex().autodiff();
        let features = Tensor::<2>::from_data(
            TensorData::new((0..32).map(|i| (i as f32 * 0.37).sin()).collect(), [4, 8]),
            &device,
        );
        let labels =
            Tensor::<1, Int>::from_data(TensorData::new(vec![0i64, 1, 0, 1], [4]), &device);
        let (logits, projections) = head.forward(features);
        // Finite weights may still overflow: the loss's own check stops such a state, and
        // that stop is reported against the checkpoint.
        let output = loss
            .forward(projections, logits, labels)
            .map_err(|e| match e {
                Error::NonFinite { .. } => {
                    bad("restored, but its first step stops", &e.to_string())
                }
                e => e,
            })?;
        let value = output
            .total
            .clone()
            .detach()
            .into_data()
            .convert::<f64>()
            .try_to_vec::<f64>()
            .map_err(|e| bad("loss value", &e))?;
        if !value.iter().all(|v| v.is_finite()) {
            return Err(bad("loss value", &value));
        }
        let grads = GradientsParams::from_grads(output.total.backward(), &head);
        let head = optimizer.step(0.1, head, grads);
        head.into_record()
            .into_bytes()
            .map_err(|e| bad("model after a step", &e))?;
        optimizer
            .into_bytes()
            .map_err(|e| bad("optimizer after a step", &e))?;
        Ok(())
    }
}
