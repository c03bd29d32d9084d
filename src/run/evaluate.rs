//! Reading a run back: the model of its latest checkpoint, and its evaluation.

use std::path::Path;

use burn::module::Module;
use burn::train::InferenceStep;
use serde::{Deserialize, Serialize};

use super::state::{RunState, ensure_writable};
use crate::data::EvalLoader;
use crate::error::{Error, Result};
use crate::eval::{EvalBatch, EvalReport, Evaluation};
use crate::train::{CheckpointDir, LongTailModel, ResComNetwork, TrainConfig, write_atomic};

/// Loads the model of the latest checkpoint in `out` (validated: a damaged or mismatched
/// file is an error, not a panic), with the epochs it completed.
///
/// # Errors
/// [`Error::Checkpoint`] when there is no complete checkpoint or its model record does not
/// fit `model`.
pub fn load_checkpoint<N: ResComNetwork>(
    model: LongTailModel<N>,
    out: &Path,
) -> Result<(LongTailModel<N>, usize)> {
    let checkpoints = CheckpointDir::new(out.join("checkpoint"));
    let epoch = checkpoints.latest()?;
    Ok((checkpoints.load_model(model, epoch)?, epoch))
}

/// The configuration of the run saved in `out` (its `run.json`).
///
/// # Errors
/// [`Error::Checkpoint`] naming `run.json` when it is missing or damaged.
pub fn run_config(out: &Path) -> Result<TrainConfig> {
    Ok(RunState::read(out)?.config)
}

/// `evaluation.json`: what [`evaluate_checkpoint`] found.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CheckpointEvaluation {
    /// Epochs the evaluated checkpoint completed.
    pub epoch: usize,
    /// The evaluation.
    #[serde(flatten)]
    pub report: EvalReport,
}

/// Evaluates the model of the latest checkpoint of the run saved in `out` (as its `run.json`
/// defines it) on `test`: the same figures as the run's own evaluations, written atomically to
/// `out/evaluation.json` and returned with the epochs the checkpoint completed.
///
/// # Errors
/// [`Error::Checkpoint`] naming `run.json` when it is missing or damaged, or its class
/// histogram does not fit the test set (another number of classes) or its objective (a class
/// without samples); as [`load_checkpoint`]; [`Error::OutputNotWritable`] when `out` cannot be
/// written; [`Error::Io`] naming `evaluation.json` when it cannot be written (a full disk);
/// a failure of the evaluation.
pub fn evaluate_checkpoint<N: ResComNetwork>(
    network: N,
    test: EvalLoader,
    out: &Path,
) -> Result<CheckpointEvaluation> {
    let config = run_config(out)?;
    let counts = config.class_counts().to_vec();
    let damaged = |reason: String| Error::Checkpoint {
        path: RunState::path(out),
        reason,
    };
    if counts.len() != test.num_classes() {
        return Err(damaged(format!(
            "its class counts list {} classes, the test set has {}",
            counts.len(),
            test.num_classes()
        )));
    }
    ensure_writable(out)?;
    let device = network.devices().first().cloned().unwrap_or_default();
    let objective = config.objective(&device).map_err(|e| {
        damaged(format!(
            "its class counts do not fit the configuration: {e}"
        ))
    })?;
    let (model, epoch) = load_checkpoint(LongTailModel::new(network, objective), out)?;
    let model = model.valid();
    let mut evaluation = Evaluation::new(counts.len());
    for batch in test.batches()? {
        let step = model.step(batch?);
        let batch = EvalBatch {
            logits: step.logits,
            features: step.features,
            projections: step.projections,
        };
        evaluation.update(batch, &step.host_labels)?;
    }
    let report = evaluation.report(&counts)?;
    if report.images == 0 {
        return Err(Error::InvalidDataset("the test set is empty".into()));
    }
    let evaluated = CheckpointEvaluation { epoch, report };
    write_atomic(
        &out.join("evaluation.json"),
        serde_json::to_string_pretty(&evaluated)?.as_bytes(),
    )?;
    Ok(evaluated)
}
