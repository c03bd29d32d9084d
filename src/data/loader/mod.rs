//! Parallel loaders of two-view training batches and single-view evaluation batches, as
//! Burn [`DataLoader`]s for burn-train's Learner.
//!
//! A background thread prepares batches ahead of the training step (up to `prefetch` of
//! them wait in a bounded channel), spreading the rows of each batch over a pool of `workers`
//! threads, so loading, decoding and augmentation overlap the step. Randomness is keyed,
//! never shared:
//!
//! - the image order of epoch `e` is a Fisher-Yates shuffle by
//!   `Rng::from_key(&[seed, e, SHUFFLE_STREAM])`, a pure function of `(seed, e)`;
//! - view `v` (0 or 1) of sample `i` (its index in the loader's dataset) in epoch `e` is
//!   augmented with `Rng::from_key(&[seed, e, i, v])`.
//!
//! Batches are therefore identical whatever the number of workers or the prefetch depth, and
//! an epoch resumed at batch `k` ([`TwoViewLoader::host_batches`],
//! [`TwoViewLoader::batches_from`]) sees exactly the batches `k..` it would have seen.
//!
//! A batch that cannot be built (an unreadable image, a pipeline that does not fit the
//! images, even a panic in a dataset or a transform, reported as [`Error::WorkerPanic`])
//! arrives as an `Err` item and ends the epoch's iterator; nothing panics on the consumer's
//! thread.
//!
//! Two-view batches: for `N` images, rows `0..N` are view 1 and rows `N..2N` view 2 of the
//! same images in the same order, labels repeated ([method](crate::method#notation-and-layout)).
//!
//! # As Burn data loaders
//! Burn's own batch loader shuffles with a generator that advances at every epoch and its
//! batcher is not told the epoch, so neither the order nor the augmentations of an epoch could
//! be reproduced after a restart. These loaders implement Burn's [`DataLoader`] trait instead:
//! each [`DataLoader::iter`] is the next epoch (from [`TwoViewLoader::starting_at`]), and
//! [`DataLoader::slice`] (how multi-device strategies give each device its share) keeps a
//! contiguous range of the epoch's shuffled order, so every share is reproducible too.
//! A loader item that cannot be built ends the epoch with a [`DatasetError`] holding the
//! crate's [`Error`].

mod eval;
mod source;
mod two_view;
mod workers;

pub use eval::EvalLoader;
pub use two_view::TwoViewLoader;

use burn::tensor::{Device, Int, Tensor, TensorData};

use crate::error::{Error, Result};

/// A batch on the training device.
#[derive(Debug, Clone)]
pub struct Batch {
    /// Images, `[rows, C, H, W]` (two-view batches stack view 1 then view 2).
    pub images: Tensor<4>,
    /// Labels, `Int [rows]`.
    pub labels: Tensor<1, Int>,
    /// The same labels on the host.
    pub host_labels: Vec<i64>,
    /// Number of distinct images in the batch (rows / 2 for two-view batches).
    pub images_in_batch: usize,
}

/// Last element of the epoch-shuffle generator keys, separating them from other streams.
pub(crate) const SHUFFLE_STREAM: u64 = 0x5348_5546_464c_4521; // "SHUFFLE!"

/// Batching and parallelism settings.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct LoaderConfig {
    /// Images per batch (a two-view batch has twice as many rows).
    pub batch_size: usize,
    /// Threads preparing images.
    pub workers: usize,
    /// Batches prepared ahead of the consumer.
    pub prefetch: usize,
    /// Drop the last incomplete batch of an epoch.
    pub drop_last: bool,
    /// Seed of the order and the augmentations.
    pub seed: u64,
}

impl LoaderConfig {
    /// `batch_size` images per batch, 2 workers, 4 batches of prefetch, last batch kept,
    /// seed `seed`.
    pub fn new(batch_size: usize, seed: u64) -> Self {
        Self {
            batch_size,
            workers: 2,
            prefetch: 4,
            drop_last: false,
            seed,
        }
    }

    pub(super) fn validate(&self) -> Result<()> {
        if self.batch_size == 0 || self.workers == 0 || self.prefetch == 0 {
            return Err(Error::config(
                "batch_size/workers/prefetch",
                "must all be at least 1",
            ));
        }
        Ok(())
    }
}

/// A batch prepared on the host.
///
/// # Shapes
/// `pixels` is `[rows, C, H, W]` row-major (NCHW) and `labels` is `[rows]`; a two-view batch
/// of `N` images has `rows = 2N`, view 1 in rows `0..N`, view 2 in rows `N..2N`.
#[derive(Debug, Clone, PartialEq)]
pub struct HostBatch {
    /// Normalised views, `[rows, C, H, W]` row-major.
    pub pixels: Vec<f32>,
    /// One label per row.
    pub labels: Vec<i64>,
    /// `[rows, C, H, W]`.
    pub shape: [usize; 4],
    /// Distinct images in the batch (`N`).
    pub images: usize,
    /// Dataset index of each image, in row order of view 1.
    pub indices: Vec<usize>,
}

impl HostBatch {
    /// The batch as Burn tensors on `device`: images `Float [rows, C, H, W]` and labels
    /// `Int [rows]`.
    ///
    /// # Shapes
    /// `([rows, C, H, W], [rows])`.
    pub fn to_tensors(&self, device: &Device) -> (Tensor<4>, Tensor<1, Int>) {
        let rows = self.shape[0];
        (
            Tensor::from_data(TensorData::new(self.pixels.clone(), self.shape), device),
            Tensor::<1, Int>::from_data(TensorData::new(self.labels.clone(), [rows]), device),
        )
    }

    /// Uploads the batch to `device` as a [`Batch`].
    ///
    /// # Shapes
    /// `images: [rows, C, H, W]`, `labels: [rows]`.
    pub fn to_batch(self, device: &Device) -> Batch {
        let rows = self.shape[0];
        Batch {
            images: Tensor::from_data(TensorData::new(self.pixels, self.shape), device),
            labels: Tensor::<1, Int>::from_data(
                TensorData::new(self.labels.clone(), [rows]),
                device,
            ),
            host_labels: self.labels,
            images_in_batch: self.images,
        }
    }
}
