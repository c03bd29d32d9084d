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

use std::sync::{Arc, Mutex};
use std::time::Instant;

use burn::tensor::{ExecutionError, Int, Tensor, TensorReadError, Transaction};
use burn::train::metric::state::{FormatOptions, NumericMetricState};
use burn::train::metric::{
    Adaptor, Metric, MetricAttributes, MetricMetadata, MetricName, Numeric, NumericAttributes,
    NumericEntry, SerializedEntry,
};
use serde::{Deserialize, Serialize};

use crate::eval::{Accuracy, EvalBatch, EvalReport, Evaluation};
use crate::train::step::{EvalStepOutput, TrainStepOutput};

/// Name of the [`TrainRecordMetric`].
pub const TRAIN_RECORD: &str = "Epoch record";
/// Name of the [`EvalReportMetric`].
pub const EVAL_REPORT: &str = "Evaluation report";

fn read_error(what: impl std::fmt::Display) -> TensorReadError {
    ExecutionError::with_context(what.to_string()).into()
}

/// The loss terms of a training step.
#[derive(Debug, Clone)]
pub struct LossTermsInput {
    classification: Tensor<1>,
    contrastive: Option<Tensor<1>>,
}

impl Adaptor<LossTermsInput> for TrainStepOutput {
    fn adapt(&self) -> LossTermsInput {
        LossTermsInput {
            classification: self.classification.clone(),
            contrastive: self.contrastive.clone(),
        }
    }
}

/// Which term a [`LossTermMetric`] shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LossTerm {
    /// The classification term (Siamese Balanced Softmax, or the baselines' loss).
    Classification,
    /// The contrastive term, before its weight.
    Contrastive,
}

/// The mean of one loss term over the epoch's steps.
#[derive(Clone)]
pub struct LossTermMetric {
    term: LossTerm,
    name: MetricName,
    state: NumericMetricState,
}

impl LossTermMetric {
    /// The metric of `term`.
    pub fn new(term: LossTerm) -> Self {
        let name = match term {
            LossTerm::Classification => "Loss (classification)",
            LossTerm::Contrastive => "Loss (contrastive)",
        };
        Self {
            term,
            name: Arc::new(name.to_string()),
            state: NumericMetricState::new(),
        }
    }
}

impl Metric for LossTermMetric {
    type Input = LossTermsInput;

    fn name(&self) -> MetricName {
        self.name.clone()
    }

    fn attributes(&self) -> MetricAttributes {
        NumericAttributes {
            unit: None,
            higher_is_better: false,
        }
        .into()
    }

    fn update(
        &mut self,
        input: &LossTermsInput,
        _metadata: &MetricMetadata,
    ) -> Result<SerializedEntry, TensorReadError> {
        let term = match self.term {
            LossTerm::Classification => Some(&input.classification),
            LossTerm::Contrastive => input.contrastive.as_ref(),
        };
        if let Some(term) = term {
            let value = term.clone().try_into_scalar::<f64>()?;
            self.state.update(value, 1);
        }
        Ok(self
            .state
            .compute_update(FormatOptions::new(self.name()).precision(4)))
    }

    fn compute(&mut self) -> Result<SerializedEntry, TensorReadError> {
        Ok(self
            .state
            .compute_final(FormatOptions::new(self.name()).precision(4)))
    }

    fn clear(&mut self) {
        self.state.reset()
    }
}

impl Numeric for LossTermMetric {
    fn value(&self) -> Option<NumericEntry> {
        Some(self.state.current_value())
    }

    fn running_value(&self) -> Option<NumericEntry> {
        Some(self.state.running_value())
    }

    fn final_value(&self) -> NumericEntry {
        self.state.final_value()
    }
}

/// Logits and labels of an evaluation batch.
#[derive(Debug, Clone)]
pub struct ClassAccuracyInput {
    logits: Tensor<2>,
    targets: Tensor<1, Int>,
}

impl Adaptor<ClassAccuracyInput> for EvalStepOutput {
    fn adapt(&self) -> ClassAccuracyInput {
        ClassAccuracyInput {
            logits: self.logits.clone(),
            targets: self.targets.clone(),
        }
    }
}

impl ClassAccuracyInput {
    /// Adds the batch to `accuracy` (one read of the top classes and one of the labels).
    fn accumulate(&self, accuracy: &mut Accuracy) -> Result<(), TensorReadError> {
        let labels = self.targets.clone().try_into_vec_as::<i64>()?;
        accuracy
            .update(self.logits.clone(), &labels)
            .map_err(read_error)
    }
}

/// Which figure a [`ClassAccuracyMetric`] shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AccuracyFigure {
    /// Top-1 over every test image.
    Top1,
    /// Top-5 (top-`C` with fewer than 5 classes).
    Top5,
    /// Top-1 over the test images of many-shot classes (more than 100 training images).
    Many,
    /// Top-1 over medium-shot classes (20 to 100).
    Medium,
    /// Top-1 over few-shot classes (fewer than 20).
    Few,
}

/// A long-tail accuracy figure over the epoch's evaluation, in percent; the shot groups come
/// from the training histogram.
#[derive(Clone)]
pub struct ClassAccuracyMetric {
    figure: AccuracyFigure,
    name: MetricName,
    train_counts: Arc<[usize]>,
    accuracy: Accuracy,
    value: Option<f64>,
}

impl ClassAccuracyMetric {
    /// The metric of `figure`, for classes with `train_counts` training images.
    pub fn new(figure: AccuracyFigure, train_counts: &[usize]) -> Self {
        let name = match figure {
            AccuracyFigure::Top1 => "Top-1",
            AccuracyFigure::Top5 => "Top-5",
            AccuracyFigure::Many => "Many-shot top-1",
            AccuracyFigure::Medium => "Medium-shot top-1",
            AccuracyFigure::Few => "Few-shot top-1",
        };
        Self {
            figure,
            name: Arc::new(name.to_string()),
            train_counts: train_counts.into(),
            accuracy: Accuracy::new(train_counts.len()),
            value: None,
        }
    }

    /// The five figures.
    pub fn all(train_counts: &[usize]) -> [Self; 5] {
        [
            AccuracyFigure::Top1,
            AccuracyFigure::Top5,
            AccuracyFigure::Many,
            AccuracyFigure::Medium,
            AccuracyFigure::Few,
        ]
        .map(|figure| Self::new(figure, train_counts))
    }

    fn figure_of(&self, report: &EvalReport) -> Option<f64> {
        let fraction = match self.figure {
            AccuracyFigure::Top1 => Some(report.top1),
            AccuracyFigure::Top5 => Some(report.top5),
            AccuracyFigure::Many => report.many,
            AccuracyFigure::Medium => report.medium,
            AccuracyFigure::Few => report.few,
        };
        fraction.map(|f| 100.0 * f)
    }

    fn entry(&self, final_entry: bool) -> SerializedEntry {
        match self.value {
            Some(value) => {
                let serialized = if final_entry {
                    NumericEntry::Final(value).serialize()
                } else {
                    NumericEntry::Value(value).serialize()
                };
                SerializedEntry::new(format!("{value:.2} %"), serialized)
            }
            None => SerializedEntry::not_available(Some("%")),
        }
    }
}

impl Metric for ClassAccuracyMetric {
    type Input = ClassAccuracyInput;

    fn name(&self) -> MetricName {
        self.name.clone()
    }

    fn attributes(&self) -> MetricAttributes {
        NumericAttributes {
            unit: Some("%".into()),
            higher_is_better: true,
        }
        .into()
    }

    fn update(
        &mut self,
        input: &ClassAccuracyInput,
        _metadata: &MetricMetadata,
    ) -> Result<SerializedEntry, TensorReadError> {
        input.accumulate(&mut self.accuracy)?;
        let report = self
            .accuracy
            .report(&self.train_counts)
            .map_err(read_error)?;
        self.value = self.figure_of(&report);
        Ok(self.entry(false))
    }

    fn compute(&mut self) -> Result<SerializedEntry, TensorReadError> {
        Ok(self.entry(true))
    }

    fn clear(&mut self) {
        self.accuracy = Accuracy::new(self.train_counts.len());
        self.value = None;
    }
}

impl Numeric for ClassAccuracyMetric {
    fn value(&self) -> Option<NumericEntry> {
        self.value.map(NumericEntry::Value)
    }

    fn running_value(&self) -> Option<NumericEntry> {
        self.value.map(NumericEntry::Value)
    }

    fn final_value(&self) -> NumericEntry {
        NumericEntry::Final(self.value.unwrap_or(f64::NAN))
    }
}

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

/// What one epoch of training produced (the evaluation comes separately).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrainRecord {
    /// Mean total loss over the steps.
    pub loss: f64,
    /// Mean classification term.
    pub classification: f64,
    /// Mean contrastive term (before its weight); `None` for methods without one.
    pub contrastive: Option<f64>,
    /// Top-1 accuracy on the training rows (augmented views, logits unshifted).
    pub train_top1: f64,
    /// Throughput in images per second (each image counted once, not per view).
    pub images_per_second: f64,
    /// Seconds from the start of the epoch's first step to the end of its last one.
    pub seconds: f64,
}

#[derive(Debug, Clone, Default)]
struct TrainSums {
    steps: usize,
    loss: f64,
    classification: f64,
    contrastive: Option<f64>,
    correct: u64,
    rows: usize,
    images: usize,
    first_started: Option<Instant>,
    last_done: Option<Instant>,
    /// A step of the epoch failed: the epoch has no record.
    failed: bool,
}

/// The training record of an epoch ([`TrainRecord`], as JSON in its final entry). A step
/// whose loss could not be computed, or is not finite, makes the update fail, which stops
/// the run before the epoch's checkpoint; the epoch then has no record.
#[derive(Clone)]
pub struct TrainRecordMetric {
    name: MetricName,
    sums: TrainSums,
}

impl Default for TrainRecordMetric {
    fn default() -> Self {
        Self::new()
    }
}

impl TrainRecordMetric {
    /// An empty record.
    pub fn new() -> Self {
        Self {
            name: Arc::new(TRAIN_RECORD.to_string()),
            sums: TrainSums::default(),
        }
    }

    /// The record of the steps so far.
    pub fn record(&self) -> TrainRecord {
        let s = &self.sums;
        let n = s.steps.max(1) as f64;
        let seconds = match (s.first_started, s.last_done) {
            (Some(a), Some(b)) => b.duration_since(a).as_secs_f64(),
            _ => 0.0,
        };
        TrainRecord {
            loss: s.loss / n,
            classification: s.classification / n,
            contrastive: s.contrastive.map(|c| c / n),
            train_top1: s.correct as f64 / s.rows.max(1) as f64,
            images_per_second: s.images as f64 / seconds.max(1e-9),
            seconds,
        }
    }
}

impl Adaptor<TrainStepOutput> for TrainStepOutput {
    fn adapt(&self) -> TrainStepOutput {
        self.clone()
    }
}

impl Metric for TrainRecordMetric {
    type Input = TrainStepOutput;

    fn name(&self) -> MetricName {
        self.name.clone()
    }

    fn update(
        &mut self,
        step: &TrainStepOutput,
        metadata: &MetricMetadata,
    ) -> Result<SerializedEntry, TensorReadError> {
        let at = || {
            format!(
                "step {} ({} of {} items)",
                metadata.iteration.unwrap_or(0),
                metadata.progress.items_processed,
                metadata.progress.items_total
            )
        };
        if let Some(failure) = &step.failure {
            self.sums.failed = true;
            return Err(read_error(format!(
                "training stopped at {}: {failure}",
                at()
            )));
        }
        let rows = step.targets.dims()[0];
        let hits = step
            .logits
            .clone()
            .argmax(1)
            .reshape([rows])
            .equal(step.targets.clone())
            .int()
            .sum();
        let mut transaction = Transaction::default()
            .register(step.total.clone())
            .register(step.classification.clone())
            .register(hits);
        if let Some(c) = &step.contrastive {
            transaction = transaction.register(c.clone());
        }
        // The finiteness flag of a step that checked on the host, read with its values.
        if let Some(flag) = &step.inputs_finite {
            transaction = transaction.register(flag.clone().int());
        }
        let values = transaction
            .try_execute()
            .map_err(|e| read_error(format!("{e:?}")))?;
        if step.inputs_finite.is_some()
            && let Some(flag) = values.last()
            && flag.clone().convert::<i64>().try_into_vec::<i64>().ok() == Some(vec![0])
        {
            self.sums.failed = true;
            return Err(read_error(format!(
                "training stopped at {}: the network's logits or projections hold NaN or \
                 infinity",
                at()
            )));
        }
        let scalar = |i: usize| -> f64 {
            values[i]
                .clone()
                .convert::<f64>()
                .try_into_vec::<f64>()
                .ok()
                .and_then(|v| v.first().copied())
                .unwrap_or(f64::NAN)
        };
        let (total, classification, hits) = (scalar(0), scalar(1), scalar(2));
        let contrastive = step.contrastive.as_ref().map(|_| scalar(3));
        if !total.is_finite() {
            self.sums.failed = true;
            return Err(read_error(format!(
                "the loss is not finite at {}: total = {total}, classification = \
                 {classification}, contrastive = {contrastive:?}",
                at()
            )));
        }
        let s = &mut self.sums;
        s.steps += 1;
        s.loss += total;
        s.classification += classification;
        if let Some(c) = contrastive {
            *s.contrastive.get_or_insert(0.0) += c;
        }
        s.correct += hits as u64;
        s.rows += rows;
        s.images += step.images;
        s.first_started.get_or_insert(step.started);
        s.last_done = Some(Instant::now());
        Ok(SerializedEntry::not_available(None))
    }

    fn compute(&mut self) -> Result<SerializedEntry, TensorReadError> {
        if self.sums.failed {
            return Ok(SerializedEntry::not_available(None));
        }
        let record = self.record();
        let json = serde_json::to_string(&record).map_err(read_error)?;
        Ok(SerializedEntry::new(
            format!(
                "loss {:.4}, train top-1 {:.3}, {:.0} img/s",
                record.loss, record.train_top1, record.images_per_second
            ),
            json,
        ))
    }

    fn clear(&mut self) {
        self.sums = TrainSums::default();
    }
}
