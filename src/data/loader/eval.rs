//! The single-view evaluation loader.

use std::sync::Arc;

use burn::data::dataloader::{DataLoader, DataLoaderIterator};
use burn::tensor::Device;

use super::source::{Epoch, Source};
use super::workers::spawn;
use super::{Batch, HostBatch, LoaderConfig};
use crate::data::augment::Pipeline;
use crate::data::dataset::Dataset;
use crate::error::Result;

/// Single evaluation views in dataset order; a Burn [`DataLoader`]. Each
/// [`iter`](DataLoader::iter) is the evaluation after the next epoch; with
/// [`EvalLoader::evaluating`] it is empty after the epochs that are not evaluated.
///
/// # Shapes
/// Each batch holds `B` rows (the last one possibly fewer) of the pipeline's output shape:
/// images `[B, C, H, W]`, labels `[B]`.
pub struct EvalLoader {
    source: Source,
    /// Which epochs (0-based) are evaluated.
    evaluates: Arc<dyn Fn(usize) -> bool + Send + Sync>,
}

impl EvalLoader {
    /// A loader over `dataset` producing tensors on `device`.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`](crate::Error::InvalidConfig) for a zero batch size, worker or
    /// prefetch count, or empty views.
    pub fn new(
        dataset: Arc<dyn Dataset>,
        pipeline: Pipeline,
        config: LoaderConfig,
        device: &Device,
    ) -> Result<Self> {
        Ok(Self {
            source: Source::new(dataset, pipeline, config, device)?,
            evaluates: Arc::new(|_| true),
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
        self.source.start_at(epoch);
        self
    }

    /// Classes of the dataset this loader serves.
    pub fn num_classes(&self) -> usize {
        self.source.dataset.num_classes()
    }

    /// Test images this loader serves.
    pub fn len(&self) -> usize {
        self.source.share.len()
    }

    /// Whether the loader serves no image.
    pub fn is_empty(&self) -> bool {
        self.source.share.is_empty()
    }

    /// The pipeline that prepares each view.
    pub fn pipeline(&self) -> &Pipeline {
        &self.source.pipeline
    }

    fn batch_sizes(&self) -> Vec<usize> {
        let (n, b) = (self.source.share.len(), self.source.config.batch_size);
        (0..n.div_ceil(b)).map(|i| b.min(n - i * b)).collect()
    }

    /// Host batches of the whole set in dataset order, prepared in the background (all of
    /// them, `drop_last` does not apply). A random evaluation pipeline draws from
    /// `Rng::from_key(&[seed, u64::MAX, i, 0])`.
    pub fn host_batches(&self) -> Result<impl Iterator<Item = Result<HostBatch>> + use<>> {
        let source = &self.source;
        let order: Vec<usize> = source.share.clone().collect();
        let batches = order
            .chunks(source.config.batch_size)
            .map(<[usize]>::to_vec)
            .collect();
        let receiver = spawn(
            source.dataset.clone(),
            source.pipeline.clone(),
            batches,
            1,
            (source.config.seed, u64::MAX),
            &source.config,
        )?;
        Ok(receiver.into_iter())
    }

    /// Device batches of the whole set, in order.
    pub fn batches(&self) -> Result<impl Iterator<Item = Result<Batch>> + use<>> {
        let device = self.source.device.clone();
        Ok(self
            .host_batches()?
            .map(move |b| b.map(|b| b.to_batch(&device))))
    }

    fn with_source(&self, source: Source) -> Self {
        Self {
            source,
            evaluates: self.evaluates.clone(),
        }
    }
}

impl Clone for EvalLoader {
    fn clone(&self) -> Self {
        self.with_source(self.source.clone())
    }
}

impl DataLoader<Batch> for EvalLoader {
    fn iter<'a>(&'a self) -> Box<dyn DataLoaderIterator<Batch> + 'a> {
        let epoch = self.source.next_epoch();
        if (self.evaluates)(epoch) {
            Box::new(Epoch::new(self.batches(), self.batch_sizes()))
        } else {
            Box::new(Epoch::new(Ok(std::iter::empty()), Vec::new()))
        }
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
