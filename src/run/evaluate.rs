//! Reading a run back: the model of its latest checkpoint, and its evaluation.

use std::io::IsTerminal;
use std::path::Path;
use std::sync::Arc;

use burn::module::Module;
use burn::train::renderer::MetricsRenderer;

use super::state::{RunState, ensure_writable};
use crate::data::EvalLoader;
use crate::error::{Error, Result};
use crate::eval::EvalReport;
use crate::report::SilentRenderer;
use crate::train::{
    AccuracyFigure, CheckpointDir, ClassAccuracyMetric, EvalReportMetric, LongTailModel,
    ResComNetwork, TrainConfig,
};

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

/// Evaluates the model of the latest checkpoint in `out` on `test` with burn-train's
/// evaluator; returns the report and the epochs the checkpoint completed.
///
/// # Errors
/// As [`load_checkpoint`]; [`Error::Checkpoint`] naming `run.json` when it is missing or
/// damaged, or its training class counts do not fit the test set (another number of classes)
/// or `config` (a class without samples); [`Error::OutputNotWritable`] when `out` cannot be
/// written (the evaluator logs there); an invalid `config`; or a failure of the evaluation.
pub fn evaluate_checkpoint<N: ResComNetwork>(
    config: &TrainConfig,
    network: N,
    test: EvalLoader,
    out: &Path,
    renderer: Option<Box<dyn MetricsRenderer>>,
) -> Result<(EvalReport, usize)> {
    config.validate()?;
    let counts = RunState::read(out)?.train_counts;
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
    // burn-train's evaluator writes its metric logs into `out`.
    ensure_writable(out)?;
    let device = network.devices().first().cloned().unwrap_or_default();
    let objective = config.objective(&counts, &device).map_err(|e| {
        damaged(format!(
            "its class counts do not fit the configuration: {e}"
        ))
    })?;
    let (model, epoch) = load_checkpoint(LongTailModel::new(network, objective), out)?;
    let report = EvalReportMetric::new(&counts);
    let latest = report.latest();
    let mut evaluator = burn::train::EvaluatorBuilder::new(out)
        .metric_numeric(ClassAccuracyMetric::new(AccuracyFigure::Top1, &counts))
        .metric(report);
    if let Some(renderer) = renderer {
        evaluator = evaluator.renderer(renderer);
    } else if !std::io::stdout().is_terminal() {
        evaluator = evaluator.renderer(Box::new(SilentRenderer));
    }
    let result = evaluator.build(model.valid()).eval("test", Arc::new(test));
    if let Some(error) = result.error {
        return Err(Error::Training {
            reason: error.to_string(),
        });
    }
    let report = latest.get().ok_or_else(|| Error::Training {
        reason: "the evaluation saw no batch".into(),
    })?;
    Ok((report, epoch))
}
