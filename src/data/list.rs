//! List-file datasets in the ImageNet-LT / Places-LT / iNaturalist convention: each line of
//! the list is `relative/path/to/image.jpg label` (the label last, after whitespace; paths may
//! contain spaces), paths relative to an image root. Images (JPEG or PNG, the format taken
//! from the file's content) are decoded to 8-bit RGB on demand, so the dataset itself holds
//! only paths and labels.

use std::fs::File;
use std::io::BufReader;
use std::path::{Path, PathBuf};

use image::ImageDecoder;
use rayon::prelude::*;

use crate::data::dataset::Dataset;
use crate::data::image::Image;
use crate::error::{Error, Result};

/// What to do with list entries whose image cannot be read (`"fail"` or `"skip"` in files).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OnUnreadable {
    /// Fail when the dataset is opened.
    Fail,
    /// Leave them out and report them in [`ListDataset::skipped`].
    Skip,
}

/// Images listed in a text file, decoded on demand.
#[derive(Debug, Clone)]
pub struct ListDataset {
    entries: Vec<(PathBuf, usize)>,
    num_classes: usize,
    skipped: Vec<(PathBuf, String)>,
}

impl ListDataset {
    /// Reads `list` (lines `path label`; blank lines and lines starting with `#` ignored) with
    /// paths under `root`. Labels must lie in `0..num_classes`: a malformed line or a label out
    /// of range is an [`Error::CorruptData`] naming the line. Every image's header is read at
    /// open time (in parallel): with [`OnUnreadable::Fail`] the first unreadable image is an
    /// [`Error::Image`]; with [`OnUnreadable::Skip`] such entries are left out and reported by
    /// [`ListDataset::skipped`]. An image larger than [`MAX_IMAGE_SIDE`] a side or
    /// [`MAX_IMAGE_BYTES`] of RGB counts as unreadable.
    ///
    /// ```
    /// use rescom::data::{Dataset, ListDataset, OnUnreadable};
    /// let dir = std::env::temp_dir().join(format!("rescom-list-doc-{}", std::process::id()));
    /// std::fs::create_dir_all(dir.join("n01"))?;
    /// image::RgbImage::new(8, 6).save(dir.join("n01/a.png")).map_err(std::io::Error::other)?;
    /// std::fs::write(dir.join("n01/b.jpg"), b"not an image")?;
    /// std::fs::write(dir.join("train.txt"), "n01/a.png 1\nn01/b.jpg 0\n")?;
    ///
    /// let ds = ListDataset::open(&dir.join("train.txt"), &dir, 2, OnUnreadable::Skip)?;
    /// assert_eq!((ds.len(), ds.skipped().len()), (1, 1));
    /// assert_eq!(ds.image(0)?.shape(), (3, 6, 8));
    /// assert!(ListDataset::open(&dir.join("train.txt"), &dir, 2, OnUnreadable::Fail).is_err());
    /// std::fs::remove_dir_all(&dir)?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn open(
        list: &Path,
        root: &Path,
        num_classes: usize,
        on_unreadable: OnUnreadable,
    ) -> Result<Self> {
        if !root.is_dir() {
            return Err(Error::DatasetMissing {
                path: root.to_path_buf(),
                hint: "the image root directory does not exist; point it at the folder the \
                       list's relative paths start from"
                    .into(),
            });
        }
        let text = std::fs::read_to_string(list).map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => Error::DatasetMissing {
                path: list.to_path_buf(),
                hint: "the list file does not exist (ImageNet-LT, Places-LT and iNaturalist \
                       ship theirs with the benchmark's split files)"
                    .into(),
            },
            _ => Error::io(list, e),
        })?;
        let mut listed = Vec::new();
        for (n, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let bad = |reason: String| Error::CorruptData {
                path: list.to_path_buf(),
                reason: format!("line {}: {reason}", n + 1),
            };
            let (path, label) = line
                .rsplit_once(char::is_whitespace)
                .ok_or_else(|| bad(format!("expected `path label`, got `{line}`")))?;
            let label: usize = label
                .parse()
                .map_err(|_| bad(format!("label `{label}` is not a non-negative integer")))?;
            if label >= num_classes {
                return Err(bad(format!(
                    "label {label} is out of range for {num_classes} classes"
                )));
            }
            listed.push((n + 1, root.join(path.trim()), label));
        }
        // Probe every header in parallel; results stay in list order.
        let probed: Vec<Option<String>> = listed
            .par_iter()
            .map(|(_, path, _)| probe(path).err())
            .collect();
        let mut entries = Vec::with_capacity(listed.len());
        let mut skipped = Vec::new();
        for ((line, path, label), problem) in listed.into_iter().zip(probed) {
            match (problem, on_unreadable) {
                (None, _) => entries.push((path, label)),
                (Some(reason), OnUnreadable::Fail) => {
                    return Err(Error::Image {
                        path,
                        reason: format!("{reason} (listed on line {line} of {})", list.display()),
                    });
                }
                (Some(reason), OnUnreadable::Skip) => skipped.push((path, reason)),
            }
        }
        Ok(Self {
            entries,
            num_classes,
            skipped,
        })
    }

    /// Entries left out because their image could not be read, with the reason (the counted
    /// warning of [`OnUnreadable::Skip`]).
    pub fn skipped(&self) -> &[(PathBuf, String)] {
        &self.skipped
    }

    /// The file of image `index`, if there is one.
    pub fn path(&self, index: usize) -> Option<&Path> {
        self.entries.get(index).map(|(p, _)| p.as_path())
    }
}

/// The longest side, in pixels, of an image a [`ListDataset`] decodes; a larger one is an
/// [`Error::Image`] (the largest images of ImageNet, Places and iNaturalist are far below it).
pub const MAX_IMAGE_SIDE: u32 = 16_384;

/// The most memory, in bytes, one image may take while it is decoded: the decoder's own
/// allocations are bounded by it (the image crate's `Limits::max_alloc`), and so is the 8-bit
/// RGB result (`3 x width x height`), checked from the header before decoding.
pub const MAX_IMAGE_BYTES: u64 = 512 << 20;

/// The decoding limits: [`MAX_IMAGE_SIDE`] and [`MAX_IMAGE_BYTES`].
fn limits() -> image::Limits {
    let mut limits = image::Limits::default();
    limits.max_image_width = Some(MAX_IMAGE_SIDE);
    limits.max_image_height = Some(MAX_IMAGE_SIDE);
    limits.max_alloc = Some(MAX_IMAGE_BYTES);
    limits
}

/// An image reader with its format taken from the content and the decoding limits set.
fn reader(path: &Path) -> std::result::Result<image::ImageReader<BufReader<File>>, String> {
    let mut reader = image::ImageReader::open(path)
        .map_err(|e| e.to_string())?
        .with_guessed_format()
        .map_err(|e| e.to_string())?;
    reader.limits(limits());
    Ok(reader)
}

/// Reads an image's header (its format from the content, then its dimensions) and checks the
/// dimensions against the limits.
fn probe(path: &Path) -> std::result::Result<(), String> {
    let (w, h) = reader(path)?.into_dimensions().map_err(|e| e.to_string())?;
    check_dimensions(w, h)
}

fn check_dimensions(w: u32, h: u32) -> std::result::Result<(), String> {
    if w == 0 || h == 0 {
        return Err(format!("the image is {w}x{h}"));
    }
    let rgb = 3 * w as u64 * h as u64;
    if w > MAX_IMAGE_SIDE || h > MAX_IMAGE_SIDE || rgb > MAX_IMAGE_BYTES {
        return Err(format!(
            "the image is {w}x{h}, beyond the limits of {MAX_IMAGE_SIDE} pixels a side and \
             {MAX_IMAGE_BYTES} bytes of RGB"
        ));
    }
    Ok(())
}

/// Decodes an image file to 8-bit RGB within the limits: the dimensions are checked from the
/// header, and the decoder's output buffer counts towards its allocation limit.
fn decode(path: &Path) -> Result<Image> {
    let rgb = decode_dynamic(path)?.into_rgb8();
    let (w, h) = rgb.dimensions();
    Image::from_interleaved(3, h as usize, w as usize, rgb.as_raw())
}

/// Decodes an image file (JPEG or PNG, the format taken from the content) within the limits
/// of [`ListDataset`], keeping grey images grey: one 8-bit channel for a grey image (its alpha
/// dropped), three (RGB) for any other.
///
/// # Errors
/// [`Error::Image`] naming the file when it cannot be read or decoded (missing, truncated,
/// not an image, beyond the limits).
pub(crate) fn decode_image_file(path: &Path) -> Result<Image> {
    let decoded = decode_dynamic(path)?;
    if decoded.color().has_color() {
        let rgb = decoded.into_rgb8();
        let (w, h) = rgb.dimensions();
        Image::from_interleaved(3, h as usize, w as usize, rgb.as_raw())
    } else {
        let grey = decoded.into_luma8();
        let (w, h) = grey.dimensions();
        Image::new(1, h as usize, w as usize, grey.into_raw())
    }
}

/// Decodes an image file within the limits: the dimensions are checked from the header, and
/// the decoder's output buffer counts towards its allocation limit.
fn decode_dynamic(path: &Path) -> Result<image::DynamicImage> {
    let fail = |reason: String| Error::Image {
        path: path.to_path_buf(),
        reason,
    };
    let mut decoder = reader(path)
        .map_err(fail)?
        .into_decoder()
        .map_err(|e| fail(e.to_string()))?;
    let (w, h) = decoder.dimensions();
    check_dimensions(w, h).map_err(fail)?;
    let mut limits = limits();
    limits
        .reserve(decoder.total_bytes())
        .and_then(|()| decoder.set_limits(limits))
        .map_err(|e| fail(e.to_string()))?;
    image::DynamicImage::from_decoder(decoder).map_err(|e| fail(e.to_string()))
}

impl Dataset for ListDataset {
    fn len(&self) -> usize {
        self.entries.len()
    }

    fn num_classes(&self) -> usize {
        self.num_classes
    }

    fn label(&self, index: usize) -> usize {
        self.entries[index].1
    }

    fn image(&self, index: usize) -> Result<Image> {
        let (path, _) = self.entries.get(index).ok_or_else(|| {
            Error::InvalidDataset(format!(
                "index {index} out of range for {} images",
                self.len()
            ))
        })?;
        decode(path)
    }
}
