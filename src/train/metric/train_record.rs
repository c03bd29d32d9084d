//! The training record of an epoch, exact, serialised as JSON for the run's reports; a
//! failed or non-finite step stops the run.

use std::sync::Arc;
use std::time::Instant;

use burn::tensor::{ExecutionError, TensorReadError, Transaction};
use burn::train::metric::{Adaptor, Metric, MetricMetadata, MetricName, SerializedEntry};
use serde::{Deserialize, Serialize};

use super::{TRAIN_RECORD, read_error};
use crate::train::TrainStepOutput;

/// The values a step's record needs, read from the device in one transaction.
struct StepValues {
    total: f64,
    classification: f64,
    contrastive: Option<f64>,
    /// Training rows whose top class is their label.
    hits: f64,
    /// The finiteness flag, when the step checked on the host.
    inputs_finite: Option<bool>,
}

impl StepValues {
    fn read(step: &TrainStepOutput) -> Result<Self, ExecutionError> {
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
        let values = transaction.try_execute()?;
        let scalar = |i: usize| -> f64 {
            values[i]
                .clone()
                .convert::<f64>()
                .try_into_vec::<f64>()
                .ok()
                .and_then(|v| v.first().copied())
                .unwrap_or(f64::NAN)
        };
        let inputs_finite = step.inputs_finite.as_ref().map(|_| {
            values
                .last()
                .and_then(|flag| flag.clone().convert::<i64>().try_into_vec::<i64>().ok())
                != Some(vec![0])
        });
        Ok(Self {
            total: scalar(0),
            classification: scalar(1),
            contrastive: step.contrastive.as_ref().map(|_| scalar(3)),
            hits: scalar(2),
            inputs_finite,
        })
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
        let read = StepValues::read(step).map_err(|e| read_error(format!("{e:?}")))?;
        if read.inputs_finite == Some(false) {
            self.sums.failed = true;
            return Err(read_error(format!(
                "training stopped at {}: the network's logits or projections hold NaN or \
                 infinity",
                at()
            )));
        }
        let StepValues {
            total,
            classification,
            contrastive,
            hits,
            ..
        } = read;
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
