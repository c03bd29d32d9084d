//! The two-view training loader.

use std::sync::Arc;

use burn::data::dataloader::{DataLoader, DataLoaderIterator};
use burn::tensor::Device;

use super::source::{Epoch, Source};
use super::workers::spawn;
use super::{Batch, HostBatch, LoaderConfig, SHUFFLE_STREAM};
use crate::data::augment::Pipeline;
use crate::data::dataset::Dataset;
use crate::error::{Error, Result};
use crate::rng::Rng;

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
///
/// Under a multi-device strategy ([`TwoViewLoader::split_across`]) the batch size is the
/// global batch of a step: each of the `P` devices takes `batch_size / P` images of its share
/// per step.
pub struct TwoViewLoader {
    source: Source,
    /// Devices that share each step's batch.
    replicas: usize,
}

impl TwoViewLoader {
    /// A loader over `dataset` producing tensors on `device`.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] for a zero batch size, worker or prefetch count, or empty
    /// views; [`Error::InvalidDataset`] for an empty training set.
    pub fn new(
        dataset: Arc<dyn Dataset>,
        pipeline: Pipeline,
        config: LoaderConfig,
        device: &Device,
    ) -> Result<Self> {
        let source = Source::new(dataset, pipeline, config, device)?;
        if source.dataset.is_empty() {
            return Err(Error::InvalidDataset("the training set is empty".into()));
        }
        Ok(Self {
            source,
            replicas: 1,
        })
    }

    /// The same loader, whose next [`DataLoader::iter`] yields epoch `epoch` (0-based): how a
    /// resumed run continues with the data order and augmentations it would have seen.
    pub fn starting_at(self, epoch: usize) -> Self {
        self.source.start_at(epoch);
        self
    }

    /// The same loader for `replicas` devices that share each step's batch, as the published
    /// runs split one global batch over their GPUs: a multi-device strategy gives each device
    /// a contiguous share of the epoch ([`DataLoader::slice`]), which it takes in batches of
    /// `batch_size / replicas` images, so that one step of all devices together takes
    /// `batch_size` images.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] naming `batch_size` when it is not a multiple of `replicas`
    /// (or `replicas` is 0).
    pub fn split_across(mut self, replicas: usize) -> Result<Self> {
        let batch = self.source.config.batch_size;
        if replicas == 0 || !batch.is_multiple_of(replicas) {
            return Err(Error::config(
                "batch_size",
                format!(
                    "the batch of {batch} images is the global batch of a step; it must split \
                     evenly across {replicas} devices"
                ),
            ));
        }
        self.replicas = replicas;
        Ok(self)
    }

    /// Images per class of the training set.
    pub fn class_counts(&self) -> Vec<usize> {
        self.source.dataset.class_counts()
    }

    /// Images each device takes per step: the batch size split across the devices.
    pub fn replica_batch_size(&self) -> usize {
        self.source.config.batch_size / self.replicas
    }

    /// Optimiser steps per epoch: the batches of the longest device share when a multi-device
    /// strategy splits the loader across its devices ([`DataLoader::slice`] into contiguous
    /// shares, the last taking the remainder); with one device, the loader's batches.
    pub fn steps_per_epoch(&self) -> usize {
        let n = self.source.share.len();
        let step = n / self.replicas;
        (0..self.replicas)
            .map(|i| {
                let len = if i + 1 == self.replicas {
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
        let b = self.replica_batch_size();
        if self.source.config.drop_last {
            images / b
        } else {
            images.div_ceil(b)
        }
    }

    /// The configuration.
    pub fn config(&self) -> &LoaderConfig {
        &self.source.config
    }

    /// The image order of epoch `epoch` (dataset indices) in this loader's share, split into
    /// batches.
    pub fn epoch_batches(&self, epoch: usize) -> Vec<Vec<usize>> {
        let config = &self.source.config;
        let batch = self.replica_batch_size();
        let mut order: Vec<usize> = (0..self.source.dataset.len()).collect();
        Rng::from_key(&[config.seed, epoch as u64, SHUFFLE_STREAM]).shuffle(&mut order);
        order[self.source.share.clone()]
            .chunks(batch)
            .filter(|b| !config.drop_last || b.len() == batch)
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
        let source = &self.source;
        let receiver = spawn(
            source.dataset.clone(),
            source.pipeline.clone(),
            batches,
            2,
            (source.config.seed, epoch as u64),
            &source.config,
        )?;
        Ok(receiver.into_iter())
    }

    /// Device batches of `epoch` from batch `start` on: the exact continuation of an epoch
    /// interrupted after `start` steps.
    pub fn batches_from(
        &self,
        epoch: usize,
        start: usize,
    ) -> Result<impl Iterator<Item = Result<Batch>> + use<>> {
        let device = self.source.device.clone();
        Ok(self
            .host_batches(epoch, start)?
            .map(move |b| b.map(|b| b.to_batch(&device))))
    }

    /// Device batches of a whole epoch, in order.
    pub fn epoch(&self, epoch: usize) -> Result<impl Iterator<Item = Result<Batch>> + use<>> {
        self.batches_from(epoch, 0)
    }

    fn with_source(&self, source: Source) -> Self {
        Self {
            source,
            replicas: self.replicas,
        }
    }
}

impl Clone for TwoViewLoader {
    fn clone(&self) -> Self {
        self.with_source(self.source.clone())
    }
}

impl DataLoader<Batch> for TwoViewLoader {
    fn iter<'a>(&'a self) -> Box<dyn DataLoaderIterator<Batch> + 'a> {
        let epoch = self.source.next_epoch();
        let sizes = self.epoch_batches(epoch).iter().map(Vec::len).collect();
        Box::new(Epoch::new(self.batches_from(epoch, 0), sizes))
    }

    fn num_items(&self) -> usize {
        self.source.share.len()
    }

    fn to_device(&self, device: &Device) -> Arc<dyn DataLoader<Batch>> {
        let share = self.source.share.clone();
        Arc::new(self.with_source(self.source.with_share(share, device)))
    }

    fn slice(&self, start: usize, end: usize) -> Arc<dyn DataLoader<Batch>> {
        let share = self.source.slice(start, end);
        Arc::new(self.with_source(self.source.with_share(share, &self.source.device)))
    }
}
