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

use std::any::Any;
use std::ops::Range;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{Receiver, sync_channel};

use burn::data::dataloader::{DataLoader, DataLoaderIterator, Progress};
use burn::data::dataset::DatasetError;
use burn::tensor::{Device, Int, Tensor, TensorData};
use rayon::prelude::*;

use crate::data::augment::Pipeline;
use crate::data::dataset::Dataset;
use crate::error::{Error, Result};
use crate::rng::Rng;

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

    fn validate(&self) -> Result<()> {
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

/// Builds one batch of `indices` with `views` views per image, stacked view-major.
fn build(
    dataset: &dyn Dataset,
    pipeline: &Pipeline,
    indices: &[usize],
    views: u64,
    key: (u64, u64),
) -> Result<HostBatch> {
    let (c, h, w) = pipeline.output_shape();
    let len = c * h * w;
    let n = indices.len();
    let rows = n * views as usize;
    let mut pixels = vec![0f32; rows * len];
    pixels
        .par_chunks_mut(len)
        .enumerate()
        .try_for_each(|(row, out)| -> Result<()> {
            let (view, slot) = (row / n, row % n);
            let index = indices[slot];
            let image = dataset.image(index)?;
            let mut rng = Rng::from_key(&[key.0, key.1, index as u64, view as u64]);
            pipeline.apply_into(&image, &mut rng, out)
        })?;
    let labels = (0..rows)
        .map(|row| dataset.label(indices[row % n]) as i64)
        .collect();
    Ok(HostBatch {
        pixels,
        labels,
        shape: [rows, c, h, w],
        images: n,
        indices: indices.to_vec(),
    })
}

/// The error reporting a worker's panic while building the batch of `indices`.
/// Rejects a pipeline whose views hold no value.
fn check_views(pipeline: &Pipeline) -> Result<()> {
    if pipeline.output_len() == 0 {
        return Err(Error::config(
            "pipeline",
            format!("views of shape {:?} are empty", pipeline.output_shape()),
        ));
    }
    Ok(())
}

fn worker_panic(indices: &[usize], payload: &(dyn Any + Send)) -> Error {
    let reason = payload
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "(no message)".into());
    let shown: Vec<String> = indices.iter().take(8).map(usize::to_string).collect();
    let more = if indices.len() > 8 {
        format!(", ... ({} in all)", indices.len())
    } else {
        String::new()
    };
    Error::WorkerPanic {
        indices: format!("[{}{more}]", shown.join(", ")),
        reason,
    }
}

/// Runs `build` for every batch in a background thread, `prefetch` batches ahead.
fn spawn(
    dataset: Arc<dyn Dataset>,
    pipeline: Arc<Pipeline>,
    batches: Vec<Vec<usize>>,
    views: u64,
    key: (u64, u64),
    config: &LoaderConfig,
) -> Result<Receiver<Result<HostBatch>>> {
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(config.workers)
        .thread_name(|i| format!("rescom-data-{i}"))
        .build()
        .map_err(|e| Error::config("workers", format!("cannot start worker threads: {e}")))?;
    let (sender, receiver) = sync_channel(config.prefetch);
    std::thread::Builder::new()
        .name("rescom-loader".into())
        .spawn(move || {
            for indices in batches {
                // A panic in a worker (a dataset's or a transform's bug) becomes this batch's
                // error, so the consumer never sees a silently shortened epoch.
                let batch = std::panic::catch_unwind(AssertUnwindSafe(|| {
                    pool.install(|| build(&*dataset, &pipeline, &indices, views, key))
                }))
                .unwrap_or_else(|payload| Err(worker_panic(&indices, payload.as_ref())));
                let failed = batch.is_err();
                // A closed channel means the consumer stopped: stop too.
                if sender.send(batch).is_err() || failed {
                    return;
                }
            }
        })
        .map_err(|e| Error::config("workers", format!("cannot start the loader thread: {e}")))?;
    Ok(receiver)
}

/// Two augmented views of every image, batch by batch; a Burn [`DataLoader`] whose
/// [`iter`](DataLoader::iter) is the next epoch.
///
/// # Shapes
/// Each batch holds `2B` rows `[view 1 of the B images; view 2 of the same images]` of the
/// pipeline's output shape `[C, H, W]`, labels repeated: images `[2B, C, H, W]`, labels
/// `[2B]`.
///
/// ```
/// use std::sync::Arc;
/// use burn::tensor::Device;
/// use rescom::data::{InMemoryDataset, LoaderConfig, Pipeline, TwoViewLoader};
///
/// // Ten 3x32x32 images of two classes.
/// let labels: Vec<usize> = (0..10).map(|i| i % 2).collect();
/// let data = InMemoryDataset::new(3, 32, 32, vec![128; 10 * 3072], labels, 2)?;
/// let mut config = LoaderConfig::new(4, 7); // batch 4, seed 7
/// config.workers = 2;
/// let loader = TwoViewLoader::new(Arc::new(data), Pipeline::cifar_train(), config, &Device::flex())?;
///
/// let batches: Vec<_> = loader.host_batches(0, 0)?.collect::<Result<_, _>>()?;
/// assert_eq!(batches.len(), 3); // 4 + 4 + 2 images
/// assert_eq!(batches[0].shape, [8, 3, 32, 32]);
/// assert_eq!(batches[0].labels[..4], batches[0].labels[4..]);
/// // Resuming at batch 1 gives the same batches 1 and 2.
/// let resumed: Vec<_> = loader.host_batches(0, 1)?.collect::<Result<_, _>>()?;
/// assert_eq!(resumed[..], batches[1..]);
/// # Ok::<(), rescom::Error>(())
/// ```
pub struct TwoViewLoader {
    dataset: Arc<dyn Dataset>,
    pipeline: Arc<Pipeline>,
    config: LoaderConfig,
    device: Device,
    /// The positions of the epoch's shuffled order this loader serves.
    share: Range<usize>,
    /// The epoch the next [`DataLoader::iter`] yields.
    next_epoch: AtomicUsize,
}

impl TwoViewLoader {
    /// A loader over `dataset` producing tensors on `device`.
    pub fn new(
        dataset: Arc<dyn Dataset>,
        pipeline: Pipeline,
        config: LoaderConfig,
        device: &Device,
    ) -> Result<Self> {
        config.validate()?;
        check_views(&pipeline)?;
        if dataset.is_empty() {
            return Err(Error::InvalidDataset("the training set is empty".into()));
        }
        Ok(Self {
            share: 0..dataset.len(),
            dataset,
            pipeline: Arc::new(pipeline),
            config,
            device: device.clone(),
            next_epoch: AtomicUsize::new(0),
        })
    }

    /// The same loader, whose next [`DataLoader::iter`] yields epoch `epoch` (0-based): how a
    /// resumed run continues with the data order and augmentations it would have seen.
    pub fn starting_at(self, epoch: usize) -> Self {
        self.next_epoch.store(epoch, Ordering::SeqCst);
        self
    }

    /// Images per class of the training set.
    pub fn class_counts(&self) -> Vec<usize> {
        self.dataset.class_counts()
    }

    /// Batches per epoch of each of `replicas` devices when a multi-device strategy splits
    /// the loader ([`DataLoader::slice`] into `replicas` contiguous shares, the last taking
    /// the remainder): the longest share's count, which is the number of optimiser steps per
    /// epoch. With one device, the loader's number of batches.
    pub fn steps_per_epoch(&self, replicas: usize) -> usize {
        let n = self.share.len();
        let replicas = replicas.max(1);
        let step = n / replicas;
        (0..replicas)
            .map(|i| {
                let len = if i + 1 == replicas {
                    n - i * step
                } else {
                    step
                };
                self.batches_in(len)
            })
            .max()
            .unwrap_or(0)
    }

    fn batches_in(&self, images: usize) -> usize {
        let b = self.config.batch_size;
        if self.config.drop_last {
            images / b
        } else {
            images.div_ceil(b)
        }
    }

    fn with_share(&self, share: Range<usize>, device: &Device) -> Self {
        Self {
            dataset: self.dataset.clone(),
            pipeline: self.pipeline.clone(),
            config: self.config.clone(),
            device: device.clone(),
            share,
            next_epoch: AtomicUsize::new(self.next_epoch.load(Ordering::SeqCst)),
        }
    }

    /// The configuration.
    pub fn config(&self) -> &LoaderConfig {
        &self.config
    }

    /// The image order of epoch `epoch` (dataset indices) in this loader's share, split into
    /// batches.
    pub fn epoch_batches(&self, epoch: usize) -> Vec<Vec<usize>> {
        let mut order: Vec<usize> = (0..self.dataset.len()).collect();
        Rng::from_key(&[self.config.seed, epoch as u64, SHUFFLE_STREAM]).shuffle(&mut order);
        order[self.share.clone()]
            .chunks(self.config.batch_size)
            .filter(|b| !self.config.drop_last || b.len() == self.config.batch_size)
            .map(<[usize]>::to_vec)
            .collect()
    }

    /// Host batches of `epoch` from batch `start` on (0 for a whole epoch), prepared in the
    /// background. Dropping the iterator stops the workers.
    pub fn host_batches(
        &self,
        epoch: usize,
        start: usize,
    ) -> Result<impl Iterator<Item = Result<HostBatch>> + use<>> {
        let batches: Vec<Vec<usize>> = self.epoch_batches(epoch).into_iter().skip(start).collect();
        let receiver = spawn(
            self.dataset.clone(),
            self.pipeline.clone(),
            batches,
            2,
            (self.config.seed, epoch as u64),
            &self.config,
        )?;
        Ok(receiver.into_iter())
    }
}

impl TwoViewLoader {
    /// Device batches of `epoch` from batch `start` on: the exact continuation of an epoch
    /// interrupted after `start` steps.
    pub fn batches_from(
        &self,
        epoch: usize,
        start: usize,
    ) -> Result<impl Iterator<Item = Result<Batch>> + use<>> {
        let device = self.device.clone();
        Ok(self
            .host_batches(epoch, start)?
            .map(move |b| b.map(|b| b.to_batch(&device))))
    }
}

impl TwoViewLoader {
    /// Device batches of a whole epoch, in order.
    pub fn epoch(&self, epoch: usize) -> Result<impl Iterator<Item = Result<Batch>> + use<>> {
        self.batches_from(epoch, 0)
    }
}

impl Clone for TwoViewLoader {
    fn clone(&self) -> Self {
        self.with_share(self.share.clone(), &self.device)
    }
}

impl DataLoader<Batch> for TwoViewLoader {
    fn iter<'a>(&'a self) -> Box<dyn DataLoaderIterator<Batch> + 'a> {
        let epoch = self.next_epoch.fetch_add(1, Ordering::SeqCst);
        let sizes = self.epoch_batches(epoch).iter().map(Vec::len).collect();
        Box::new(Epoch::new(self.batches_from(epoch, 0), sizes))
    }

    fn num_items(&self) -> usize {
        self.share.len()
    }

    fn to_device(&self, device: &Device) -> Arc<dyn DataLoader<Batch>> {
        Arc::new(self.with_share(self.share.clone(), device))
    }

    fn slice(&self, start: usize, end: usize) -> Arc<dyn DataLoader<Batch>> {
        let end = end.min(self.share.len());
        let start = start.min(end);
        let share = self.share.start + start..self.share.start + end;
        Arc::new(self.with_share(share, &self.device))
    }
}

/// The batches of one epoch as a Burn [`DataLoaderIterator`], with its progress in images.
struct Epoch<I> {
    batches: Option<I>,
    /// A failure to start the epoch, reported as its only item.
    failed: Option<Error>,
    sizes: std::vec::IntoIter<usize>,
    done: usize,
    total: usize,
}

impl<I> Epoch<I> {
    fn new(batches: Result<I>, sizes: Vec<usize>) -> Self {
        let total = sizes.iter().sum();
        let (batches, failed) = match batches {
            Ok(batches) => (Some(batches), None),
            Err(error) => (None, Some(error)),
        };
        Self {
            batches,
            failed,
            sizes: sizes.into_iter(),
            done: 0,
            total,
        }
    }
}

impl<I: Iterator<Item = Result<Batch>>> Iterator for Epoch<I> {
    type Item = std::result::Result<Batch, DatasetError>;

    fn next(&mut self) -> Option<Self::Item> {
        if let Some(error) = self.failed.take() {
            return Some(Err(DatasetError::new(error)));
        }
        let item = self.batches.as_mut()?.next()?;
        self.done += self.sizes.next().unwrap_or(0);
        Some(item.map_err(DatasetError::new))
    }
}

impl<I: Iterator<Item = Result<Batch>>> DataLoaderIterator<Batch> for Epoch<I> {
    fn progress(&self) -> Progress {
        Progress::new(self.done, self.total, Some("images".into()))
    }
}

/// Single evaluation views in dataset order; a Burn [`DataLoader`]. Each
/// [`iter`](DataLoader::iter) is the evaluation after the next epoch; with
/// [`EvalLoader::evaluating`] it is empty after the epochs that are not evaluated.
///
/// # Shapes
/// Each batch holds `B` rows (the last one possibly fewer) of the pipeline's output shape:
/// images `[B, C, H, W]`, labels `[B]`.
pub struct EvalLoader {
    dataset: Arc<dyn Dataset>,
    pipeline: Arc<Pipeline>,
    config: LoaderConfig,
    device: Device,
    /// The dataset indices this loader serves.
    share: Range<usize>,
    /// Which epochs (0-based) are evaluated.
    evaluates: Arc<dyn Fn(usize) -> bool + Send + Sync>,
    /// The epoch of the next [`DataLoader::iter`].
    next_epoch: AtomicUsize,
}

impl EvalLoader {
    /// A loader over `dataset` producing tensors on `device`.
    pub fn new(
        dataset: Arc<dyn Dataset>,
        pipeline: Pipeline,
        config: LoaderConfig,
        device: &Device,
    ) -> Result<Self> {
        config.validate()?;
        check_views(&pipeline)?;
        Ok(Self {
            share: 0..dataset.len(),
            dataset,
            pipeline: Arc::new(pipeline),
            config,
            device: device.clone(),
            evaluates: Arc::new(|_| true),
            next_epoch: AtomicUsize::new(0),
        })
    }

    /// The same loader, evaluating only after the epochs (0-based) for which `evaluates`
    /// holds: the other epochs' [`DataLoader::iter`] is empty.
    pub fn evaluating(mut self, evaluates: impl Fn(usize) -> bool + Send + Sync + 'static) -> Self {
        self.evaluates = Arc::new(evaluates);
        self
    }

    /// The same loader, whose next [`DataLoader::iter`] is the evaluation after epoch
    /// `epoch` (0-based).
    pub fn starting_at(self, epoch: usize) -> Self {
        self.next_epoch.store(epoch, Ordering::SeqCst);
        self
    }

    /// Classes of the dataset this loader serves.
    pub fn num_classes(&self) -> usize {
        self.dataset.num_classes()
    }

    /// Test images this loader serves.
    pub fn len(&self) -> usize {
        self.share.len()
    }

    /// Whether the loader serves no image.
    pub fn is_empty(&self) -> bool {
        self.share.is_empty()
    }

    fn batch_sizes(&self) -> Vec<usize> {
        let (n, b) = (self.share.len(), self.config.batch_size);
        (0..n.div_ceil(b)).map(|i| b.min(n - i * b)).collect()
    }

    fn with_share(&self, share: Range<usize>, device: &Device) -> Self {
        Self {
            dataset: self.dataset.clone(),
            pipeline: self.pipeline.clone(),
            config: self.config.clone(),
            device: device.clone(),
            share,
            evaluates: self.evaluates.clone(),
            next_epoch: AtomicUsize::new(self.next_epoch.load(Ordering::SeqCst)),
        }
    }
}

impl EvalLoader {
    /// Host batches of the whole set in dataset order, prepared in the background (all of
    /// them, `drop_last` does not apply). A random evaluation pipeline draws from
    /// `Rng::from_key(&[seed, u64::MAX, i, 0])`.
    pub fn host_batches(&self) -> Result<impl Iterator<Item = Result<HostBatch>> + use<>> {
        let order: Vec<usize> = self.share.clone().collect();
        let batches = order
            .chunks(self.config.batch_size)
            .map(<[usize]>::to_vec)
            .collect();
        let receiver = spawn(
            self.dataset.clone(),
            self.pipeline.clone(),
            batches,
            1,
            (self.config.seed, u64::MAX),
            &self.config,
        )?;
        Ok(receiver.into_iter())
    }
}

impl EvalLoader {
    /// Device batches of the whole set, in order.
    pub fn batches(&self) -> Result<impl Iterator<Item = Result<Batch>> + use<>> {
        let device = self.device.clone();
        Ok(self
            .host_batches()?
            .map(move |b| b.map(|b| b.to_batch(&device))))
    }
}

impl Clone for EvalLoader {
    fn clone(&self) -> Self {
        self.with_share(self.share.clone(), &self.device)
    }
}

impl DataLoader<Batch> for EvalLoader {
    fn iter<'a>(&'a self) -> Box<dyn DataLoaderIterator<Batch> + 'a> {
        let epoch = self.next_epoch.fetch_add(1, Ordering::SeqCst);
        if (self.evaluates)(epoch) {
            Box::new(Epoch::new(self.batches(), self.batch_sizes()))
        } else {
            Box::new(Epoch::new(Ok(std::iter::empty()), Vec::new()))
        }
    }

    fn num_items(&self) -> usize {
        self.share.len()
    }

    fn to_device(&self, device: &Device) -> Arc<dyn DataLoader<Batch>> {
        Arc::new(self.with_share(self.share.clone(), device))
    }

    fn slice(&self, start: usize, end: usize) -> Arc<dyn DataLoader<Batch>> {
        let end = end.min(self.share.len());
        let start = start.min(end);
        let share = self.share.start + start..self.share.start + end;
        Arc::new(self.with_share(share, &self.device))
    }
}
