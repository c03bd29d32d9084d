//! The long-tail accuracy figures of an evaluation: top-1, top-5 and many/medium/few-shot
//! top-1, in percent.

use std::sync::Arc;

use burn::tensor::{Int, Tensor, TensorReadError};
use burn::train::metric::{
    Adaptor, Metric, MetricAttributes, MetricMetadata, MetricName, Numeric, NumericAttributes,
    NumericEntry, SerializedEntry,
};

use super::read_error;
use crate::eval::{Accuracy, EvalReport};
use crate::train::EvalStepOutput;

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
