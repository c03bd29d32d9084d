//! The classification and contrastive terms of the loss, epoch means.

use std::sync::Arc;

use burn::tensor::{Tensor, TensorReadError};
use burn::train::metric::state::{FormatOptions, NumericMetricState};
use burn::train::metric::{
    Adaptor, Metric, MetricAttributes, MetricMetadata, MetricName, Numeric, NumericAttributes,
    NumericEntry, SerializedEntry,
};

use crate::train::TrainStepOutput;

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
