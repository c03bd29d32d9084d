//! burn-train [`Metric`]s of a long-tailed run: the loss terms, the long-tail accuracy
//! figures, and the two epoch records the run's reports are written from.
//!
//! Burn's own `LossMetric`, `AccuracyMetric` and `LearningRateMetric` show the total loss,
//! the training accuracy and the rate; the metrics here add
//!
//! - [`LossTermMetric`]: the classification and contrastive terms of the ResCom loss;
//! - [`ClassAccuracyMetric`]: top-1, top-5 and the many/medium/few-shot top-1 on the test set;
//! - [`TrainRecordMetric`] and [`EvalReportMetric`]: each epoch's training record and
//!   evaluation report, exact (counts, not averages of averages), serialised as JSON in their
//!   final entry for the report plug-in. The training record also stops a run whose loss is no
//!   longer finite.

mod class_accuracy;
mod eval_report;
mod loss_term;
mod train_record;

pub use class_accuracy::*;
pub use eval_report::*;
pub use loss_term::*;
pub use train_record::*;

use burn::tensor::{ExecutionError, TensorReadError};

/// Name of the [`TrainRecordMetric`].
pub const TRAIN_RECORD: &str = "Epoch record";
/// Name of the [`EvalReportMetric`].
pub const EVAL_REPORT: &str = "Evaluation report";

fn read_error(what: impl std::fmt::Display) -> TensorReadError {
    ExecutionError::with_context(what.to_string()).into()
}
