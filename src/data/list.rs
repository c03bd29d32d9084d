//! List-file datasets in the ImageNet-LT / Places-LT / iNaturalist convention: each line of
//! the list is `relative/path/to/image.jpg label`, paths relative to an image root. Images
//! (JPEG or PNG) are decoded to RGB on demand.

use std::path::{Path, PathBuf};

use crate::data::dataset::Dataset;
use crate::data::image::Image;
use crate::error::{Error, Result};

/// What to do with list entries whose image cannot be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnUnreadable {
    /// Fail when the dataset is opened.
    Fail,
    /// Leave them out and report them in [`ListDataset::skipped`].
    Skip,
}

/// Images listed in a text file.
#[derive(Debug, Clone)]
pub struct ListDataset {
    entries: Vec<(PathBuf, usize)>,
    num_classes: usize,
    skipped: Vec<(PathBuf, String)>,
}

impl ListDataset {
    /// Reads `list` (lines `path label`, blank lines ignored) with paths under `root`. Every
    /// image's header is checked at open time; unreadable ones fail or are skipped as
    /// `on_unreadable` says. Labels must lie in `0..num_classes`.
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
        let mut entries = Vec::new();
        let mut skipped = Vec::new();
        for (n, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() {
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
            let path = root.join(path.trim());
            match image::image_dimensions(&path) {
                Ok(_) => entries.push((path, label)),
                Err(e) => match on_unreadable {
                    OnUnreadable::Fail => {
                        return Err(Error::Image {
                            path,
                            reason: format!("{e} (listed on line {} of {})", n + 1, list.display()),
                        });
                    }
                    OnUnreadable::Skip => skipped.push((path, e.to_string())),
                },
            }
        }
        Ok(Self {
            entries,
            num_classes,
            skipped,
        })
    }

    /// Entries left out because their image could not be read, with the reason.
    pub fn skipped(&self) -> &[(PathBuf, String)] {
        &self.skipped
    }

    /// The file of image `index`.
    pub fn path(&self, index: usize) -> &Path {
        &self.entries[index].0
    }
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
        let decoded = image::open(path).map_err(|e| Error::Image {
            path: path.clone(),
            reason: e.to_string(),
        })?;
        let rgb = decoded.to_rgb8();
        let (w, h) = rgb.dimensions();
        Image::from_interleaved(3, h as usize, w as usize, rgb.as_raw())
    }
}
