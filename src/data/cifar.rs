//! The official binary versions of CIFAR-10 and CIFAR-100 (Krizhevsky, 2009).
//!
//! CIFAR-10: `cifar-10-batches-bin/data_batch_{1..5}.bin` and `test_batch.bin`, each 10,000
//! records of 3,073 bytes (label byte, then the red, green and blue 32x32 planes, row-major).
//! CIFAR-100: `cifar-100-binary/train.bin` (50,000 records) and `test.bin` (10,000) of 3,074
//! bytes (coarse label, fine label, then the pixels); the fine label is used.

use std::path::{Path, PathBuf};

use crate::data::dataset::InMemoryDataset;
use crate::data::idx::Split;
use crate::error::{Error, Result};

const PIXELS: usize = 3 * 32 * 32;
const SOURCE: &str = "https://www.cs.toronto.edu/~kriz/";

/// Which CIFAR.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cifar {
    /// CIFAR-10: 10 classes, one label byte.
    Ten,
    /// CIFAR-100: 100 fine classes, a coarse and a fine label byte.
    Hundred,
}

impl Cifar {
    fn label_bytes(self) -> usize {
        match self {
            Cifar::Ten => 1,
            Cifar::Hundred => 2,
        }
    }

    /// Number of classes.
    pub fn num_classes(self) -> usize {
        match self {
            Cifar::Ten => 10,
            Cifar::Hundred => 100,
        }
    }

    fn folder(self) -> &'static str {
        match self {
            Cifar::Ten => "cifar-10-batches-bin",
            Cifar::Hundred => "cifar-100-binary",
        }
    }

    fn archive(self) -> (&'static str, &'static str) {
        match self {
            Cifar::Ten => ("cifar-10-binary.tar.gz", "c32a1d4ab5d03f1284b67883e8d87530"),
            Cifar::Hundred => (
                "cifar-100-binary.tar.gz",
                "03b5dce01913d631647c71ecec9e9cb8",
            ),
        }
    }

    fn files(self, split: Split) -> Vec<String> {
        match (self, split) {
            (Cifar::Ten, Split::Train) => (1..=5).map(|i| format!("data_batch_{i}.bin")).collect(),
            (Cifar::Ten, Split::Test) => vec!["test_batch.bin".into()],
            (Cifar::Hundred, Split::Train) => vec!["train.bin".into()],
            (Cifar::Hundred, Split::Test) => vec!["test.bin".into()],
        }
    }

    fn records(self, split: Split) -> usize {
        match (self, split) {
            (Cifar::Ten, _) => 10_000,
            (Cifar::Hundred, Split::Train) => 50_000,
            (Cifar::Hundred, Split::Test) => 10_000,
        }
    }
}

/// Parses CIFAR binary records; `expected` records when given (sizes are validated).
pub fn parse_records(
    bytes: &[u8],
    cifar: Cifar,
    expected: Option<usize>,
    path: &Path,
) -> Result<(Vec<u8>, Vec<usize>)> {
    let record = cifar.label_bytes() + PIXELS;
    let corrupt = |reason: String| Error::CorruptData {
        path: path.to_path_buf(),
        reason,
    };
    if bytes.is_empty() || !bytes.len().is_multiple_of(record) {
        return Err(corrupt(format!(
            "{} bytes is not a whole number of {record}-byte records",
            bytes.len()
        )));
    }
    let count = bytes.len() / record;
    if let Some(n) = expected.filter(|&n| n != count) {
        return Err(corrupt(format!("{count} records, expected {n}")));
    }
    let mut pixels = Vec::with_capacity(count * PIXELS);
    let mut labels = Vec::with_capacity(count);
    for (i, r) in bytes.chunks_exact(record).enumerate() {
        let label = r[cifar.label_bytes() - 1] as usize;
        if label >= cifar.num_classes() {
            return Err(corrupt(format!(
                "record {i} has label {label}, out of range for {} classes",
                cifar.num_classes()
            )));
        }
        labels.push(label);
        pixels.extend_from_slice(&r[cifar.label_bytes()..]);
    }
    Ok((pixels, labels))
}

/// Reads one CIFAR binary file (any number of records) as a dataset.
pub fn load_cifar_file(path: &Path, cifar: Cifar) -> Result<InMemoryDataset> {
    let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    let (pixels, labels) = parse_records(&bytes, cifar, None, path)?;
    InMemoryDataset::new(3, 32, 32, pixels, labels, cifar.num_classes())
}

/// Loads a split from `dir`, which may be the extracted folder (`cifar-10-batches-bin`,
/// `cifar-100-binary`) or its parent. With `verify_md5`, each file's md5 is compared with
/// `known` entries `(file name, md5)` the caller supplies (e.g. from a release manifest).
pub fn load_cifar(
    dir: &Path,
    cifar: Cifar,
    split: Split,
    verify_md5: &[(&str, &str)],
) -> Result<InMemoryDataset> {
    let folder = [dir.join(cifar.folder()), dir.to_path_buf()]
        .into_iter()
        .find(|d| cifar.files(split).iter().all(|f| d.join(f).is_file()));
    let Some(folder) = folder else {
        let (archive, md5) = cifar.archive();
        return Err(Error::DatasetMissing {
            path: dir.to_path_buf(),
            hint: format!(
                "expected {} in {} (or in {}/{}); download the binary version {archive} \
                 (md5 {md5}) from {SOURCE} and unpack it there: tar xzf {archive} -C {}",
                cifar.files(split).join(", "),
                dir.display(),
                dir.display(),
                cifar.folder(),
                dir.display()
            ),
        });
    };
    let mut pixels = Vec::new();
    let mut labels = Vec::new();
    let files = cifar.files(split);
    let per_file = cifar.records(split) / files.len();
    for name in &files {
        let path: PathBuf = folder.join(name);
        let bytes = std::fs::read(&path).map_err(|e| Error::io(&path, e))?;
        if let Some((_, expected)) = verify_md5.iter().find(|(n, _)| n == name) {
            let actual = format!("{:x}", md5::compute(&bytes));
            if !actual.eq_ignore_ascii_case(expected) {
                return Err(Error::Checksum {
                    path,
                    expected: expected.to_string(),
                    actual,
                });
            }
        }
        let (p, l) = parse_records(&bytes, cifar, Some(per_file), &path)?;
        pixels.extend(p);
        labels.extend(l);
    }
    InMemoryDataset::new(3, 32, 32, pixels, labels, cifar.num_classes())
}

/// CIFAR-10 from `dir` (see [`load_cifar`]).
pub fn load_cifar10(dir: &Path, split: Split) -> Result<InMemoryDataset> {
    load_cifar(dir, Cifar::Ten, split, &[])
}

/// CIFAR-100 (fine labels) from `dir` (see [`load_cifar`]).
pub fn load_cifar100(dir: &Path, split: Split) -> Result<InMemoryDataset> {
    load_cifar(dir, Cifar::Hundred, split, &[])
}
