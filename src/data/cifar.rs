//! The official binary versions of CIFAR-10 and CIFAR-100 (Krizhevsky, 2009).
//!
//! CIFAR-10: `cifar-10-batches-bin/data_batch_{1..5}.bin` and `test_batch.bin`, each 10,000
//! records of 3,073 bytes (label byte, then the red, green and blue 32x32 planes, row-major).
//! CIFAR-100: `cifar-100-binary/train.bin` (50,000 records) and `test.bin` (10,000) of 3,074
//! bytes (coarse label, fine label, then the pixels); the fine label is used.
//!
//! Only the binary version is read (not the Python pickles). A missing or wrong directory
//! gives [`Error::DatasetMissing`] naming the expected files, the archive to download and its
//! md5; a file of the wrong size, a truncated record or a label out of range gives
//! [`Error::CorruptData`].

use std::path::{Path, PathBuf};

use crate::data::dataset::InMemoryDataset;
use crate::data::idx::Split;
use crate::error::{Error, Result};

const PIXELS: usize = 3 * 32 * 32;
const SOURCE: &str = "https://www.cs.toronto.edu/~kriz/";

/// Which CIFAR (`"ten"` or `"hundred"` in files).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
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

    /// The folder the official archive unpacks to.
    pub fn folder(self) -> &'static str {
        match self {
            Cifar::Ten => "cifar-10-batches-bin",
            Cifar::Hundred => "cifar-100-binary",
        }
    }

    /// The official archive of the binary version and its md5.
    pub fn archive(self) -> (&'static str, &'static str) {
        match self {
            Cifar::Ten => ("cifar-10-binary.tar.gz", "c32a1d4ab5d03f1284b67883e8d87530"),
            Cifar::Hundred => (
                "cifar-100-binary.tar.gz",
                "03b5dce01913d631647c71ecec9e9cb8",
            ),
        }
    }

    /// The files of a split inside [`Cifar::folder`].
    pub fn files(self, split: Split) -> Vec<String> {
        match (self, split) {
            (Cifar::Ten, Split::Train) => (1..=5).map(|i| format!("data_batch_{i}.bin")).collect(),
            (Cifar::Ten, Split::Test) => vec!["test_batch.bin".into()],
            (Cifar::Hundred, Split::Train) => vec!["train.bin".into()],
            (Cifar::Hundred, Split::Test) => vec!["test.bin".into()],
        }
    }

    /// Number of images of a split (10,000 per CIFAR-10 batch file).
    pub fn records(self, split: Split) -> usize {
        match (self, split) {
            (Cifar::Ten, _) => 10_000,
            (Cifar::Hundred, Split::Train) => 50_000,
            (Cifar::Hundred, Split::Test) => 10_000,
        }
    }
}

/// Parses CIFAR binary records into CHW pixels and (fine) labels; with `expected`, the number
/// of records must match. `path` names the file in errors.
pub(crate) fn parse_records(
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
        if cifar == Cifar::Hundred && r[0] >= 20 {
            return Err(corrupt(format!(
                "record {i} has coarse label {}, out of range for 20 superclasses",
                r[0]
            )));
        }
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

/// Reads one CIFAR binary file (any whole number of records) as a dataset.
///
/// ```
/// use rescom::data::{Cifar, Dataset, load_cifar_file};
/// let path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/cifar10_test20.bin");
/// let ds = load_cifar_file(path.as_ref(), Cifar::Ten)?;
/// assert_eq!(ds.len(), 20);
/// assert_eq!(&ds.labels()[..4], &[3, 8, 8, 0]); // cat, ship, ship, airplane
/// # Ok::<(), rescom::Error>(())
/// ```
pub fn load_cifar_file(path: &Path, cifar: Cifar) -> Result<InMemoryDataset> {
    let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    let (pixels, labels) = parse_records(&bytes, cifar, None, path)?;
    InMemoryDataset::new(3, 32, 32, pixels, labels, cifar.num_classes())
}

/// Loads a split from `dir`, which may be the extracted folder (`cifar-10-batches-bin`,
/// `cifar-100-binary`) or its parent. Each file must hold exactly its number of records.
/// `verify_md5` lists `(file name, md5)` pairs: a listed file whose md5 differs gives
/// [`Error::Checksum`] (an empty list skips the check; [`verify_archive`] checks the
/// downloaded archive against the official md5).
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
        let python = [
            "cifar-10-batches-py",
            "cifar-100-python",
            "data_batch_1",
            "train",
        ]
        .iter()
        .any(|p| dir.join(p).exists());
        let note = if python {
            " (this directory holds the Python version; the binary version is needed)"
        } else {
            ""
        };
        return Err(Error::DatasetMissing {
            path: dir.to_path_buf(),
            hint: format!(
                "expected {} in {}/{} (or directly in {}){note}; download the binary version \
                 {archive} (md5 {md5}) from {SOURCE} and unpack it there: tar xzf {archive} -C {}",
                cifar.files(split).join(", "),
                dir.display(),
                cifar.folder(),
                dir.display(),
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
///
/// ```no_run
/// use rescom::data::{Dataset, Split, load_cifar10};
/// // After `tar xzf cifar-10-binary.tar.gz -C data`:
/// let train = load_cifar10("data".as_ref(), Split::Train)?;
/// assert_eq!(train.class_counts(), vec![5000; 10]);
/// # Ok::<(), rescom::Error>(())
/// ```
pub fn load_cifar10(dir: &Path, split: Split) -> Result<InMemoryDataset> {
    load_cifar(dir, Cifar::Ten, split, &[])
}

/// CIFAR-100 (fine labels) from `dir` (see [`load_cifar`]).
pub fn load_cifar100(dir: &Path, split: Split) -> Result<InMemoryDataset> {
    load_cifar(dir, Cifar::Hundred, split, &[])
}

/// Checks the md5 of a downloaded CIFAR archive (`cifar-10-binary.tar.gz` or
/// `cifar-100-binary.tar.gz`) against the official one.
pub fn verify_archive(path: &Path, cifar: Cifar) -> Result<()> {
    let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    let actual = format!("{:x}", md5::compute(&bytes));
    let expected = cifar.archive().1;
    if actual != expected {
        return Err(Error::Checksum {
            path: path.to_path_buf(),
            expected: expected.to_string(),
            actual,
        });
    }
    Ok(())
}
