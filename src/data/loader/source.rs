//! What both loaders hold: a dataset, its pipeline, the loader settings, the device, the share
//! of the dataset a loader serves (how multi-device strategies split it), and the epoch of the
//! next [`DataLoader::iter`](burn::data::dataloader::DataLoader::iter); and the iterator of
//! one epoch's batches.

use std::ops::Range;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use burn::data::dataloader::{DataLoaderIterator, Progress};
use burn::data::dataset::DatasetError;
use burn::tensor::Device;

use super::workers::check_views;
use super::{Batch, LoaderConfig};
use crate::data::augment::Pipeline;
use crate::data::dataset::Dataset;
use crate::error::{Error, Result};

/// A dataset with its pipeline and settings, as a loader serves it.
pub(super) struct Source {
    pub(super) dataset: Arc<dyn Dataset>,
    pub(super) pipeline: Arc<Pipeline>,
    pub(super) config: LoaderConfig,
    pub(super) device: Device,
    /// The positions (of the epoch's order) this loader serves.
    pub(super) share: Range<usize>,
    /// The epoch the next `iter` yields.
    next_epoch: AtomicUsize,
}

impl Source {
    /// The whole of `dataset`, checked: valid settings and non-empty views.
    pub(super) fn new(
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
            next_epoch: AtomicUsize::new(0),
        })
    }

    /// The same source serving `share` on `device`.
    pub(super) fn with_share(&self, share: Range<usize>, device: &Device) -> Self {
        Self {
            dataset: self.dataset.clone(),
            pipeline: self.pipeline.clone(),
            config: self.config.clone(),
            device: device.clone(),
            share,
            next_epoch: AtomicUsize::new(self.next_epoch.load(Ordering::SeqCst)),
        }
    }

    /// The positions `start..end` of this source's share (clamped), as `DataLoader::slice`
    /// takes them.
    pub(super) fn slice(&self, start: usize, end: usize) -> Range<usize> {
        let end = end.min(self.share.len());
        let start = start.min(end);
        self.share.start + start..self.share.start + end
    }

    /// Sets the epoch of the next `iter`.
    pub(super) fn start_at(&self, epoch: usize) {
        self.next_epoch.store(epoch, Ordering::SeqCst);
    }

    /// The epoch of this `iter`, and moves on to the next.
    pub(super) fn next_epoch(&self) -> usize {
        self.next_epoch.fetch_add(1, Ordering::SeqCst)
    }
}

impl Clone for Source {
    fn clone(&self) -> Self {
        self.with_share(self.share.clone(), &self.device)
    }
}

/// The batches of one epoch as a Burn [`DataLoaderIterator`], with its progress in images.
pub(super) struct Epoch<I> {
    batches: Option<I>,
    /// A failure to start the epoch, reported as its only item.
    failed: Option<Error>,
    sizes: std::vec::IntoIter<usize>,
    done: usize,
    total: usize,
}

impl<I> Epoch<I> {
    /// The epoch of `batches`, whose images per batch are `sizes`.
    pub(super) fn new(batches: Result<I>, sizes: Vec<usize>) -> Self {
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
