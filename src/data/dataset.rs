//! Labelled image collections.
//!
//! [`Dataset`] is what the loaders read: a length, a class count, cheap labels and images
//! decoded on demand. [`InMemoryDataset`] holds equally sized images in one contiguous buffer
//! (CIFAR, MNIST-like IDX files); [`crate::data::ListDataset`] decodes files lazily; [`Subset`]
//! restricts either to some indices (a long-tailed subsample, a validation slice).

use std::sync::Arc;

use crate::data::image::Image;
use crate::error::{Error, Result};

/// A labelled image collection read by index.
///
/// Implementations guarantee `label(i) < num_classes()` for every `i < len()`; `label` may
/// panic on an index out of range (a programming error), `image` returns an error.
pub trait Dataset: Send + Sync {
    /// Number of images.
    fn len(&self) -> usize;
    /// Whether the collection is empty.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// Number of classes; every label lies in `0..num_classes()`.
    fn num_classes(&self) -> usize;
    /// Label of image `index` (no decoding).
    fn label(&self, index: usize) -> usize;
    /// Image `index` (decoded on demand for file-backed datasets).
    fn image(&self, index: usize) -> Result<Image>;

    /// Every label, in index order.
    fn labels(&self) -> Vec<usize> {
        (0..self.len()).map(|i| self.label(i)).collect()
    }

    /// Images per class.
    fn class_counts(&self) -> Vec<usize> {
        let mut counts = vec![0; self.num_classes()];
        for i in 0..self.len() {
            if let Some(n) = counts.get_mut(self.label(i)) {
                *n += 1;
            }
        }
        counts
    }
}

/// Equally sized images held in one contiguous buffer (CIFAR, MNIST-like data).
///
/// ```
/// use rescom::data::{Dataset, InMemoryDataset};
/// // Two 1x2x2 images, classes 1 and 0.
/// let ds = InMemoryDataset::new(1, 2, 2, vec![0, 1, 2, 3, 4, 5, 6, 7], vec![1, 0], 2)?;
/// assert_eq!(ds.image(1)?.pixels, vec![4, 5, 6, 7]);
/// assert_eq!(ds.class_counts(), vec![1, 1]);
/// assert!(InMemoryDataset::new(1, 2, 2, vec![0; 8], vec![1, 2], 2).is_err()); // label 2
/// # Ok::<(), rescom::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct InMemoryDataset {
    channels: usize,
    height: usize,
    width: usize,
    pixels: Vec<u8>,
    labels: Vec<usize>,
    num_classes: usize,
}

impl InMemoryDataset {
    /// A dataset of `labels.len()` CHW images of `channels x height x width` stored back to
    /// back in `pixels`; errors on a size mismatch or a label `>= num_classes`.
    pub fn new(
        channels: usize,
        height: usize,
        width: usize,
        pixels: Vec<u8>,
        labels: Vec<usize>,
        num_classes: usize,
    ) -> Result<Self> {
        let size = channels
            .checked_mul(height)
            .and_then(|n| n.checked_mul(width))
            .unwrap_or(0);
        let needed = size.checked_mul(labels.len());
        if size == 0 || needed != Some(pixels.len()) {
            return Err(Error::InvalidDataset(format!(
                "{} labels of {channels}x{height}x{width} images need {} bytes, got {}",
                labels.len(),
                needed.map_or_else(|| "more than usize::MAX".into(), |n| n.to_string()),
                pixels.len()
            )));
        }
        if let Some((i, &l)) = labels.iter().enumerate().find(|(_, l)| **l >= num_classes) {
            return Err(Error::InvalidDataset(format!(
                "label {l} of image {i} is out of range for {num_classes} classes"
            )));
        }
        Ok(Self {
            channels,
            height,
            width,
            pixels,
            labels,
            num_classes,
        })
    }

    /// Image shape `(channels, height, width)`.
    pub fn shape(&self) -> (usize, usize, usize) {
        (self.channels, self.height, self.width)
    }

    /// The raw CHW bytes of image `index`.
    ///
    /// # Panics
    /// When `index >= len()`.
    pub fn raw(&self, index: usize) -> &[u8] {
        let size = self.channels * self.height * self.width;
        &self.pixels[index * size..(index + 1) * size]
    }
}

impl Dataset for InMemoryDataset {
    fn len(&self) -> usize {
        self.labels.len()
    }

    fn num_classes(&self) -> usize {
        self.num_classes
    }

    fn label(&self, index: usize) -> usize {
        self.labels[index]
    }

    fn image(&self, index: usize) -> Result<Image> {
        if index >= self.len() {
            return Err(Error::InvalidDataset(format!(
                "index {index} out of range for {} images",
                self.len()
            )));
        }
        Image::new(
            self.channels,
            self.height,
            self.width,
            self.raw(index).to_vec(),
        )
    }
}

/// A view of a dataset restricted to some indices (e.g. a long-tailed subsample).
#[derive(Clone)]
pub struct Subset {
    inner: Arc<dyn Dataset>,
    indices: Vec<usize>,
}

impl Subset {
    /// The images `indices` of `inner`, in that order; errors on an index out of range.
    pub fn new(inner: Arc<dyn Dataset>, indices: Vec<usize>) -> Result<Self> {
        if let Some(&i) = indices.iter().find(|&&i| i >= inner.len()) {
            return Err(Error::InvalidDataset(format!(
                "subset index {i} out of range for {} images",
                inner.len()
            )));
        }
        Ok(Self { inner, indices })
    }

    /// Indices into the underlying dataset.
    pub fn indices(&self) -> &[usize] {
        &self.indices
    }

    /// The underlying dataset.
    pub fn inner(&self) -> &Arc<dyn Dataset> {
        &self.inner
    }
}

impl std::fmt::Debug for Subset {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Subset")
            .field("images", &self.indices.len())
            .field("of", &self.inner.len())
            .field("num_classes", &self.inner.num_classes())
            .finish()
    }
}

impl Dataset for Subset {
    fn len(&self) -> usize {
        self.indices.len()
    }

    fn num_classes(&self) -> usize {
        self.inner.num_classes()
    }

    fn label(&self, index: usize) -> usize {
        self.inner.label(self.indices[index])
    }

    fn image(&self, index: usize) -> Result<Image> {
        let i = *self.indices.get(index).ok_or_else(|| {
            Error::InvalidDataset(format!(
                "index {index} out of range for {} images",
                self.len()
            ))
        })?;
        self.inner.image(i)
    }
}
