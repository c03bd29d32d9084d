//! A network with its long-tail objective as burn-train's Learner sees it: [`TrainStep`] and
//! [`InferenceStep`].
//!
//! A training step runs the network on a two-view batch and the objective on its output. For
//! ResCom the loss reads the class-balanced queue and enqueues the step's view-1 keys through
//! a shared reference (see [`crate::loss::memory`]), so the Learner may clone the model every
//! step and its strategies may fork it to several devices. The baselines (cross-entropy,
//! Balanced Softmax) train the backbone and classifier only. An inference step gives the
//! classifier's (unshifted) logits.
//!
//! A step cannot return an error to the Learner. A batch the objective rejects (NaN or
//! infinite logits, above all: a diverged run) yields no gradient and carries the error in
//! its output; the run's [`TrainRecordMetric`](crate::train::TrainRecordMetric) turns it into
//! a stop of the run, before the epoch's checkpoint.
//!
//! On a GPU a step reads nothing from the device ([`StepChecks`]): the labels are checked
//! from the batch's host copy, mining stays on the device, and whether the network's outputs
//! were finite is a flag that [`TrainRecordMetric`](crate::train::TrainRecordMetric) reads
//! with the step's loss values, stopping the run when it is `false`. On the CPU backends,
//! where a read costs nothing, a step checks its inputs as the plain API does.

use std::time::Instant;

use burn::module::{Module, ModuleDisplay};
use burn::optim::lr_scheduler::module_lr_scheduler::ModuleLearningRate;
use burn::optim::{GradientsParams, ModuleOptimizer, MultiGradientsParams};
use burn::tensor::{Bool, ExecutionError, Int, Tensor};
use burn::train::metric::{AccuracyInput, Adaptor, ItemLazy, LossInput};
use burn::train::{InferenceStep, TrainOutput, TrainStep};

use crate::data::Batch;
use crate::eval::EvalBatch;
use crate::loss::{BalancedSoftmaxLoss, ResComLoss, ResComLossInput};
use crate::model::ResComModel;

/// A network a [`LongTailModel`] can train: classifier logits and projections from images.
///
/// Implemented for the crate's [`ResComModel`]; implement it for a network of your own to
/// train it with the bundled runs.
pub trait ResComNetwork: Module + ModuleDisplay + 'static {
    /// Training forward pass.
    ///
    /// # Shapes
    /// - `images`: `[B, C, H, W]`
    /// - output: logits `[B, classes]`, projections `[B, D]`
    fn heads(&self, images: Tensor<4>) -> ResComLossInput;

    /// Classifier logits only (the baselines, and inference).
    ///
    /// # Shapes
    /// - `images`: `[B, C, H, W]`
    /// - output: `[B, classes]`
    fn logits(&self, images: Tensor<4>) -> Tensor<2>;

    /// What an evaluation reads: the logits and, where the network has them, the backbone
    /// features and the projections (for the feature-space diagnostics). The default gives
    /// the logits only.
    ///
    /// # Shapes
    /// - `images`: `[B, C, H, W]`
    /// - output: logits `[B, classes]`, features `[B, F]`, projections `[B, D]`
    fn evaluate(&self, images: Tensor<4>) -> EvalBatch {
        EvalBatch {
            logits: self.logits(images),
            features: None,
            projections: None,
        }
    }
}

impl ResComNetwork for ResComModel {
    fn heads(&self, images: Tensor<4>) -> ResComLossInput {
        self.forward(images)
    }

    fn logits(&self, images: Tensor<4>) -> Tensor<2> {
        ResComModel::logits(self, images)
    }

    fn evaluate(&self, images: Tensor<4>) -> EvalBatch {
        let features = self.backbone.forward(images);
        let output = self.head.forward(features.clone());
        EvalBatch {
            logits: output.logits,
            features: Some(features),
            projections: Some(output.projections),
        }
    }
}

/// The objective a [`LongTailModel`] trains with.
// One objective per model: the size of the larger variant costs nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Module, Debug)]
pub enum Objective {
    /// ResCom: Siamese Balanced Softmax and the class-balanced contrastive loss with hard
    /// mining from the class-balanced queue (the queue is part of the record).
    ResCom(ResComLoss),
    /// A loss on the classifier logits alone: Balanced Softmax, or cross-entropy when built
    /// unshifted.
    Classifier(BalancedSoftmaxLoss),
}

impl Objective {
    /// The ResCom loss, for ResCom runs.
    pub fn rescom(&self) -> Option<&ResComLoss> {
        match self {
            Objective::ResCom(loss) => Some(loss),
            Objective::Classifier(_) => None,
        }
    }
}

/// Where a training step validates its batch and the network's outputs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StepChecks {
    /// [`StepChecks::Host`] on GPUs (the devices of the `vulkan` and `cuda` features), where
    /// every read stalls the device, and [`StepChecks::Device`] on the CPU backends, whose
    /// reads cost nothing (the default).
    #[default]
    Auto,
    /// The plain API's checks, before the loss: the labels and the finiteness of the logits
    /// (and projections) are read from the device. A batch that fails them yields no gradient
    /// and stops the run.
    Device,
    /// Nothing read inside the step: the labels are checked from the batch's host copy
    /// ([`ResComLoss::forward_trusted`](crate::ResComLoss::forward_trusted)), and the
    /// finiteness flag is read with the step's metrics, which stop the run when it is
    /// `false`. Such a step has already updated the model in memory (possibly with NaN), but
    /// the run stops before the epoch's checkpoint, which keeps the last good state.
    Host,
}

impl StepChecks {
    /// Whether a step on `device` checks on the host.
    pub fn on_host(self, device: &burn::tensor::Device) -> bool {
        match self {
            StepChecks::Auto => crate::device::is_accelerator(device),
            StepChecks::Device => false,
            StepChecks::Host => true,
        }
    }
}

/// A network and its objective: the model burn-train's Learner trains.
///
/// With `P` replicas of a multi-device strategy that adds up the replicas' gradients, set
/// [`LongTailModel::with_gradient_scale`] to `1 / P` so that the update follows their mean,
/// and declare the replica devices on the ResCom loss
/// ([`ResComLoss::set_replicas`](crate::ResComLoss::set_replicas)).
#[derive(Module, Debug)]
pub struct LongTailModel<N> {
    /// The network.
    pub network: N,
    /// The training objective.
    pub objective: Objective,
    /// Factor applied to the loss before the backward pass.
    #[module(skip)]
    gradient_scale: f64,
    /// Where a step validates its inputs.
    #[module(skip)]
    checks: StepChecks,
}

impl<N: ResComNetwork> LongTailModel<N> {
    /// `network` trained with `objective`.
    pub fn new(network: N, objective: Objective) -> Self {
        Self {
            network,
            objective,
            gradient_scale: 1.0,
            checks: StepChecks::Auto,
        }
    }

    /// Where a step validates its batch and the network's outputs (default
    /// [`StepChecks::Auto`]: on the host on GPUs, so that a step reads nothing from the
    /// device).
    pub fn with_step_checks(mut self, checks: StepChecks) -> Self {
        self.checks = checks;
        self
    }

    /// Multiplies the loss by `scale` before the backward pass (the reported loss is not
    /// scaled).
    pub fn with_gradient_scale(mut self, scale: f64) -> Self {
        self.gradient_scale = scale;
        self
    }

    /// Writes the queue keys staged by the replicas of an incomplete step (see
    /// [`ResComLoss::flush_staged_keys`]).
    fn flush_staged_keys(&self) {
        if let Objective::ResCom(loss) = &self.objective {
            loss.flush_staged_keys();
        }
    }

    /// The network's logits on `batch` and the objective's losses, checked where
    /// [`StepChecks`] says.
    fn losses(&self, batch: Batch) -> (Tensor<2>, crate::Result<StepLosses>) {
        let on_host = self.checks.on_host(&batch.labels.device());
        match &self.objective {
            Objective::ResCom(loss) => {
                let output = self.network.heads(batch.images);
                let logits = output.logits.clone();
                let out = if on_host {
                    loss.forward_trusted(output, batch.labels, &batch.host_labels)
                } else {
                    loss.forward(output, batch.labels)
                };
                let losses = out.map(|out| StepLosses {
                    total: out.total,
                    classification: out.classification,
                    contrastive: Some(out.contrastive),
                    inputs_finite: on_host.then_some(out.inputs_finite),
                });
                (logits, losses)
            }
            Objective::Classifier(loss) => {
                let logits = self.network.logits(batch.images);
                let losses = if on_host {
                    loss.forward_trusted(logits.clone(), batch.labels, &batch.host_labels)
                        .map(|out| StepLosses::classifier(out.loss, Some(out.inputs_finite)))
                } else {
                    loss.forward(logits.clone(), batch.labels)
                        .map(|value| StepLosses::classifier(value, None))
                };
                (logits, losses)
            }
        }
    }

    fn scaled(&self, total: Tensor<1>) -> Tensor<1> {
        if self.gradient_scale == 1.0 {
            total
        } else {
            total.mul_scalar(self.gradient_scale)
        }
    }
}

/// The losses of one training step, before the backward pass.
struct StepLosses {
    /// The loss the gradients come from, `[1]`.
    total: Tensor<1>,
    /// The classification term, `[1]`.
    classification: Tensor<1>,
    /// The contrastive term before its weight, `[1]`, for ResCom.
    contrastive: Option<Tensor<1>>,
    /// The finiteness flag, when the step checked on the host.
    inputs_finite: Option<Tensor<1, Bool>>,
}

impl StepLosses {
    /// A classifier-only objective, whose total is its classification term.
    fn classifier(loss: Tensor<1>, inputs_finite: Option<Tensor<1, Bool>>) -> Self {
        Self {
            total: loss.clone(),
            classification: loss,
            contrastive: None,
            inputs_finite,
        }
    }
}

/// What a training step reports: the loss and its parts, the logits of the training rows, and
/// what the run's records need.
#[derive(Debug, Clone)]
pub struct TrainStepOutput {
    /// Total loss, `[1]`.
    pub total: Tensor<1>,
    /// Classification term, `[1]`.
    pub classification: Tensor<1>,
    /// Contrastive term before its weight, `[1]`; `None` for the baselines.
    pub contrastive: Option<Tensor<1>>,
    /// Logits of every training row (both views), `[rows, C]`.
    pub logits: Tensor<2>,
    /// Labels of the rows, `Int [rows]`.
    pub targets: Tensor<1, Int>,
    /// Distinct images in the batch (rows / 2).
    pub images: usize,
    /// When the step started.
    pub started: Instant,
    /// The error that kept the step from computing its loss, if any.
    pub failure: Option<String>,
    /// Whether the network's outputs were free of NaN and infinity, `Bool [1]`, when the step
    /// checked them on the host ([`StepChecks::Host`]): read with the metrics, where `false`
    /// stops the run. `None` when the step read it itself.
    pub inputs_finite: Option<Tensor<1, Bool>>,
}

impl ItemLazy for TrainStepOutput {
    fn sync(self) -> Result<Self, ExecutionError> {
        self.total.device().flush()?;
        Ok(Self {
            total: self.total.without_autodiff(),
            classification: self.classification.without_autodiff(),
            contrastive: self.contrastive.map(Tensor::without_autodiff),
            logits: self.logits.without_autodiff(),
            targets: self.targets.without_autodiff(),
            inputs_finite: self.inputs_finite.map(Tensor::without_autodiff),
            ..self
        })
    }
}

impl Adaptor<LossInput> for TrainStepOutput {
    fn adapt(&self) -> LossInput {
        LossInput::new(self.total.clone())
    }
}

impl Adaptor<AccuracyInput> for TrainStepOutput {
    fn adapt(&self) -> AccuracyInput {
        AccuracyInput::new(self.logits.clone(), self.targets.clone())
    }
}

impl<N: ResComNetwork> TrainStep for LongTailModel<N> {
    type Input = Batch;
    type Output = TrainStepOutput;

    fn step(&self, batch: Batch) -> TrainOutput<TrainStepOutput> {
        let started = Instant::now();
        let images = batch.images_in_batch;
        let targets = batch.labels.clone();
        let (logits, losses) = self.losses(batch);
        match losses {
            Ok(losses) => {
                let grads = self.scaled(losses.total.clone()).backward();
                TrainOutput::new(
                    self,
                    grads,
                    TrainStepOutput {
                        total: losses.total.detach(),
                        classification: losses.classification.detach(),
                        contrastive: losses.contrastive.map(Tensor::detach),
                        logits: logits.detach(),
                        targets,
                        images,
                        started,
                        failure: None,
                        inputs_finite: losses.inputs_finite,
                    },
                )
            }
            Err(error) => {
                let device = targets.device();
                let nan = || Tensor::<1>::full([1], f32::NAN, &device);
                TrainOutput {
                    grads: GradientsParams::new(),
                    item: TrainStepOutput {
                        total: nan(),
                        classification: nan(),
                        contrastive: None,
                        logits: logits.detach(),
                        targets,
                        images,
                        started,
                        failure: Some(error.to_string()),
                        inputs_finite: None,
                    },
                }
            }
        }
    }

    fn optimize(
        self,
        optim: &mut ModuleOptimizer,
        lr: ModuleLearningRate,
        grads: GradientsParams,
    ) -> Self {
        let model = optim.step(lr, self, grads);
        model.flush_staged_keys();
        model
    }

    fn optimize_multi(
        self,
        optim: &mut ModuleOptimizer,
        lr: ModuleLearningRate,
        grads: MultiGradientsParams,
    ) -> Self {
        let model = optim.step_multi(lr, self, grads);
        model.flush_staged_keys();
        model
    }
}

/// What an inference step reports: the classifier's logits, the labels, and the features
/// and projections of the feature-space diagnostics.
#[derive(Debug, Clone)]
pub struct EvalStepOutput {
    /// Unshifted logits, `[B, C]`.
    pub logits: Tensor<2>,
    /// Labels, `Int [B]`.
    pub targets: Tensor<1, Int>,
    /// The same labels on the host.
    pub host_labels: Vec<i64>,
    /// The backbone's features, `[B, F]`, when the network gives them.
    pub features: Option<Tensor<2>>,
    /// The projections, `[B, D]`, for a model trained with the contrastive branch.
    pub projections: Option<Tensor<2>>,
}

impl ItemLazy for EvalStepOutput {
    fn sync(self) -> Result<Self, ExecutionError> {
        self.logits.device().flush()?;
        Ok(Self {
            logits: self.logits.without_autodiff(),
            targets: self.targets.without_autodiff(),
            host_labels: self.host_labels,
            features: self.features.map(Tensor::without_autodiff),
            projections: self.projections.map(Tensor::without_autodiff),
        })
    }
}

impl Adaptor<AccuracyInput> for EvalStepOutput {
    fn adapt(&self) -> AccuracyInput {
        AccuracyInput::new(self.logits.clone(), self.targets.clone())
    }
}

impl<N: ResComNetwork> InferenceStep for LongTailModel<N> {
    type Input = Batch;
    type Output = EvalStepOutput;

    fn step(&self, batch: Batch) -> EvalStepOutput {
        let out = self.network.evaluate(batch.images);
        // Projections mean something only where the contrastive branch trained them.
        let projections = out
            .projections
            .filter(|_| self.objective.rescom().is_some());
        EvalStepOutput {
            logits: out.logits,
            targets: batch.labels,
            host_labels: batch.host_labels,
            features: out.features,
            projections,
        }
    }
}
