//! The evaluation report of an epoch, exact, serialised as JSON for the run's reports.

use std::sync::{Arc, Mutex};

use burn::tensor::TensorReadError;
use burn::train::metric::{Adaptor, Metric, MetricMetadata, MetricName, SerializedEntry};

use super::{EVAL_REPORT, read_error};
use crate::eval::{EvalBatch, EvalReport, Evaluation};
use crate::train::EvalStepOutput;

/// An evaluation batch with its labels on the host.
#[derive(Debug, Clone)]
pub struct EvaluationInput {
    batch: EvalBatch,
    labels: Vec<i64>,
}

impl Adaptor<EvaluationInput> for EvalStepOutput {
    fn adapt(&self) -> EvaluationInput {
        EvaluationInput {
            batch: EvalBatch {
                logits: self.logits.clone(),
                features: self.features.clone(),
                projections: self.projections.clone(),
            },
            labels: self.host_labels.clone(),
        }
    }
}

/// The latest report of an [`EvalReportMetric`], readable from outside the metric (burn-train's
/// evaluator keeps its metrics to itself).
#[derive(Debug, Clone, Default)]
pub struct LatestReport(Arc<Mutex<Option<EvalReport>>>);

impl LatestReport {
    /// The report of the last evaluation that ended, if any.
    pub fn get(&self) -> Option<EvalReport> {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    fn set(&self, report: EvalReport) {
        *self.0.lock().unwrap_or_else(|e| e.into_inner()) = Some(report);
    }
}

/// The evaluation of an epoch ([`Evaluation`]): top-1, top-5, shot groups, per-class
/// accuracy, calibration, the confusion matrix and the feature-space diagnostics, serialised
/// as JSON ([`EvalReport`]) in its final entry.
#[derive(Clone)]
pub struct EvalReportMetric {
    name: MetricName,
    train_counts: Arc<[usize]>,
    evaluation: Evaluation,
    latest: LatestReport,
}

impl EvalReportMetric {
    /// The report for classes with `train_counts` training images.
    pub fn new(train_counts: &[usize]) -> Self {
        Self {
            name: Arc::new(EVAL_REPORT.to_string()),
            train_counts: train_counts.into(),
            evaluation: Evaluation::new(train_counts.len()),
            latest: LatestReport::default(),
        }
    }

    /// The full report of the evaluation so far (with the feature-space diagnostics).
    pub fn report(&self) -> crate::Result<EvalReport> {
        self.evaluation.report(&self.train_counts)
    }

    /// A handle on the latest report, set at the end of each evaluation.
    pub fn latest(&self) -> LatestReport {
        self.latest.clone()
    }
}

impl Metric for EvalReportMetric {
    type Input = EvaluationInput;

    fn name(&self) -> MetricName {
        self.name.clone()
    }

    fn update(
        &mut self,
        input: &EvaluationInput,
        _metadata: &MetricMetadata,
    ) -> Result<SerializedEntry, TensorReadError> {
        self.evaluation
            .update(input.batch.clone(), &input.labels)
            .map_err(read_error)?;
        Ok(SerializedEntry::not_available(None))
    }

    fn compute(&mut self) -> Result<SerializedEntry, TensorReadError> {
        let report = self.report().map_err(read_error)?;
        self.latest.set(report.clone());
        let json = serde_json::to_string(&report).map_err(read_error)?;
        Ok(SerializedEntry::new(
            format!("top-1 {:.2} %", 100.0 * report.top1),
            json,
        ))
    }

    fn clear(&mut self) {
        self.evaluation = Evaluation::new(self.train_counts.len());
    }
}
