//! Parallel loaders of two-view training batches and single-view evaluation batches.
//!
//! A background thread prepares batches ahead of the training step (up to `prefetch` of
//! them), spreading the images of each batch over a pool of `workers` threads. Randomness is
//! keyed, never shared: the order of epoch `e` is a shuffle by `Rng::from_key(&[seed, e])`,
//! and view `v` of dataset image `i` in epoch `e` is augmented with
//! `Rng::from_key(&[seed, e, i, v])`. Batches are therefore identical whatever the number of
//! workers, and a resumed epoch sees exactly the augmentations it would have seen.

use std::sync::Arc;
use std::sync::mpsc::{Receiver, sync_channel};

use burn::tensor::{Device, Int, Tensor, TensorData};
use rayon::prelude::*;

use crate::data::augment::Pipeline;
use crate::data::dataset::Dataset;
use crate::error::{Error, Result};
use crate::rng::Rng;
use crate::train::trainer::{Batch, EvalData, TrainData};

/// Batching and parallelism settings.
#[derive(Debug, Clone, PartialEq, Eq)]
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
    /// `batch_size` images per batch, 2 workers, 4 batches of prefetch, last batch kept.
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
#[derive(Debug, Clone, PartialEq)]
pub struct HostBatch {
    /// `[rows, C, H, W]` row-major.
    pub pixels: Vec<f32>,
    /// One label per row.
    pub labels: Vec<i64>,
    /// `(rows, C, H, W)`.
    pub shape: [usize; 4],
    /// Distinct images in the batch.
    pub images: usize,
}

impl HostBatch {
    /// Uploads the batch to `device`.
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
    })
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
                let batch = pool.install(|| build(&*dataset, &pipeline, &indices, views, key));
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

/// Two augmented views of every image, batch by batch; implements [`TrainData`].
///
/// # Shapes
/// Each batch holds `2B` rows `[view 1 of the B images; view 2 of the same images]` of the
/// pipeline's output shape, labels repeated.
pub struct TwoViewLoader {
    dataset: Arc<dyn Dataset>,
    pipeline: Arc<Pipeline>,
    config: LoaderConfig,
    device: Device,
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
        if dataset.is_empty() {
            return Err(Error::InvalidDataset("the training set is empty".into()));
        }
        Ok(Self {
            dataset,
            pipeline: Arc::new(pipeline),
            config,
            device: device.clone(),
        })
    }

    /// The image order of epoch `epoch`, split into batches.
    pub fn epoch_batches(&self, epoch: usize) -> Vec<Vec<usize>> {
        let mut order: Vec<usize> = (0..self.dataset.len()).collect();
        Rng::from_key(&[self.config.seed, epoch as u64]).shuffle(&mut order);
        order
            .chunks(self.config.batch_size)
            .filter(|b| !self.config.drop_last || b.len() == self.config.batch_size)
            .map(<[usize]>::to_vec)
            .collect()
    }

    /// Host batches of `epoch` from batch `start` on, prepared in the background.
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

impl TrainData for TwoViewLoader {
    fn steps_per_epoch(&self) -> usize {
        let (n, b) = (self.dataset.len(), self.config.batch_size);
        if self.config.drop_last {
            n / b
        } else {
            n.div_ceil(b)
        }
    }

    fn epoch(&mut self, epoch: usize) -> Result<Box<dyn Iterator<Item = Result<Batch>> + '_>> {
        let device = self.device.clone();
        Ok(Box::new(
            self.host_batches(epoch, 0)?
                .map(move |b| b.map(|b| b.to_batch(&device))),
        ))
    }
}

/// Single evaluation views in dataset order; implements [`EvalData`].
pub struct EvalLoader {
    dataset: Arc<dyn Dataset>,
    pipeline: Arc<Pipeline>,
    config: LoaderConfig,
    device: Device,
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
        Ok(Self {
            dataset,
            pipeline: Arc::new(pipeline),
            config,
            device: device.clone(),
        })
    }
}

impl EvalData for EvalLoader {
    fn len(&self) -> usize {
        self.dataset.len()
    }

    fn batches(&mut self) -> Result<Box<dyn Iterator<Item = Result<Batch>> + '_>> {
        let order: Vec<usize> = (0..self.dataset.len()).collect();
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
        let device = self.device.clone();
        Ok(Box::new(
            receiver
                .into_iter()
                .map(move |b| b.map(|b| b.to_batch(&device))),
        ))
    }
}
