//! The background preparation of batches: a loader thread that builds each batch on a pool of
//! worker threads, a bounded number of batches ahead, with panics turned into errors.

use std::any::Any;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::sync::mpsc::{Receiver, sync_channel};

use rayon::prelude::*;

use super::{HostBatch, LoaderConfig};
use crate::data::augment::Pipeline;
use crate::data::dataset::Dataset;
use crate::error::{Error, Result};
use crate::rng::Rng;

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

/// Rejects a pipeline whose views hold no value.
pub(super) fn check_views(pipeline: &Pipeline) -> Result<()> {
    if pipeline.output_len() == 0 {
        return Err(Error::config(
            "pipeline",
            format!("views of shape {:?} are empty", pipeline.output_shape()),
        ));
    }
    Ok(())
}

/// The error reporting a worker's panic while building the batch of `indices`.
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
pub(super) fn spawn(
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
