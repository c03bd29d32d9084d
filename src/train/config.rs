//! What defines a long-tailed training run: the method, its ablations, the loss
//! hyper-parameters, the schedule and the optimiser. Stored with a run and compared on resume.

use burn::optim::{SgdConfig, decay::WeightDecayConfig, momentum::MomentumConfig};
use burn::tensor::Device;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::loss::{BalancedSoftmaxLoss, BalancedSoftmaxLossConfig, ResComLossConfig};
use crate::memory::MemoryKind;
use crate::stats::ClassStats;
use crate::train::schedule::LrSchedule;
use crate::train::step::Objective;

/// The training objective.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Method {
    /// ResCom: Siamese Balanced Softmax + class-balanced supervised contrastive loss with
    /// hard mining from the class-balanced queue.
    Rescom,
    /// Plain cross-entropy on the classifier logits.
    CrossEntropy,
    /// Balanced Softmax on the classifier logits.
    BalancedSoftmax,
}

/// Parts of ResCom that can be switched off for ablations (all on by default).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Parts {
    /// Effective-number class weights in the contrastive loss (off: `beta = 0`).
    pub class_weights: bool,
    /// The class-balanced queue (off: a FIFO queue of the same size).
    pub balanced_queue: bool,
    /// Hard mining (off: every key of the queue is used as a positive or a negative).
    pub hard_mining: bool,
    /// Balanced Softmax in the classification branch (off: cross-entropy).
    pub balanced_softmax: bool,
}

impl Default for Parts {
    fn default() -> Self {
        Self {
            class_weights: true,
            balanced_queue: true,
            hard_mining: true,
            balanced_softmax: true,
        }
    }
}

/// Hyper-parameters of the ResCom loss (defaults: those of [`ResComLossConfig`], the CIFAR
/// recipe).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LossSettings {
    /// Projection dimension `D`.
    pub dim: usize,
    /// Queue keys per class `K`.
    pub queue_per_class: usize,
    /// Mined hard positives.
    pub hard_positives: usize,
    /// Mined hard negatives.
    pub hard_negatives: usize,
    /// Temperature.
    pub temperature: f64,
    /// Weight of the contrastive term.
    pub contrast_weight: f64,
    /// Effective-number beta.
    pub effective_num_beta: f64,
    /// Prior strength inside the contrast.
    pub prior_strength: f64,
}

impl Default for LossSettings {
    fn default() -> Self {
        let recipe = ResComLossConfig::new(Vec::new());
        Self {
            dim: recipe.dim,
            queue_per_class: recipe.queue_per_class,
            hard_positives: recipe.hard_positives,
            hard_negatives: recipe.hard_negatives,
            temperature: recipe.temperature,
            contrast_weight: recipe.contrast_weight,
            effective_num_beta: recipe.effective_num_beta,
            prior_strength: recipe.prior_strength,
        }
    }
}

/// Everything that defines a training run; stored with the run (`run.json`) and compared on
/// resume.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrainConfig {
    /// The objective.
    pub method: Method,
    /// ResCom parts (ignored by the baselines).
    pub parts: Parts,
    /// Loss hyper-parameters (ResCom only).
    pub loss: LossSettings,
    /// Number of epochs.
    pub epochs: usize,
    /// Learning-rate schedule.
    pub schedule: LrSchedule,
    /// SGD momentum (no dampening, as in PyTorch).
    pub momentum: f64,
    /// L2 weight decay.
    pub weight_decay: f64,
    /// Seed of every random choice of the run.
    pub seed: u64,
    /// Evaluate every this many epochs (and always after the last one).
    pub eval_every: usize,
    /// Free-form description of the data (kept in the summary).
    pub dataset: String,
}

impl TrainConfig {
    /// The ResCom loss configuration for a class histogram, with the ablations applied.
    pub fn rescom_loss(&self, class_counts: &[usize]) -> ResComLossConfig {
        let s = &self.loss;
        let classes = class_counts.len();
        let (hard_positives, hard_negatives) = if self.parts.hard_mining {
            (s.hard_positives, s.hard_negatives)
        } else {
            (
                s.queue_per_class,
                classes.saturating_sub(1) * s.queue_per_class,
            )
        };
        ResComLossConfig::new(class_counts.to_vec())
            .with_dim(s.dim)
            .with_queue_per_class(s.queue_per_class)
            .with_hard_positives(hard_positives)
            .with_hard_negatives(hard_negatives)
            .with_temperature(s.temperature)
            .with_contrast_weight(s.contrast_weight)
            .with_effective_num_beta(if self.parts.class_weights {
                s.effective_num_beta
            } else {
                0.0
            })
            .with_prior_strength(s.prior_strength)
            .with_seed(self.seed)
            .with_memory(if self.parts.balanced_queue {
                MemoryKind::ClassBalanced
            } else {
                MemoryKind::Fifo
            })
            .with_balanced_softmax(self.parts.balanced_softmax)
    }

    /// A short name of the method with its ablations, e.g. `rescom-no-mining`.
    pub fn method_name(&self) -> String {
        match self.method {
            Method::CrossEntropy => "cross-entropy".into(),
            Method::BalancedSoftmax => "balanced-softmax".into(),
            Method::Rescom => {
                let p = &self.parts;
                let mut name = String::from("rescom");
                for (on, part) in [
                    (p.class_weights, "weights"),
                    (p.balanced_queue, "queue"),
                    (p.hard_mining, "mining"),
                    (p.balanced_softmax, "balanced-softmax"),
                ] {
                    if !on {
                        name.push_str("-no-");
                        name.push_str(part);
                    }
                }
                name
            }
        }
    }
}

impl TrainConfig {
    /// Checks the run can start: at least one epoch, a valid schedule, `eval_every >= 1`.
    pub fn validate(&self) -> Result<()> {
        self.schedule.validate()?;
        if self.epochs == 0 {
            return Err(Error::config("epochs", "must be at least 1"));
        }
        if self.eval_every == 0 {
            return Err(Error::config("eval_every", "must be at least 1"));
        }
        Ok(())
    }

    /// The objective of the run for a training histogram, on `device`.
    ///
    /// # Errors
    /// An invalid histogram or loss configuration.
    pub fn objective(&self, class_counts: &[usize], device: &Device) -> Result<Objective> {
        Ok(match self.method {
            Method::Rescom => Objective::ResCom(self.rescom_loss(class_counts).init(device)?),
            Method::BalancedSoftmax => Objective::Classifier(
                BalancedSoftmaxLossConfig::new(class_counts.to_vec()).init(device)?,
            ),
            Method::CrossEntropy => {
                // Validates the histogram like the other methods.
                ClassStats::new(class_counts)?;
                Objective::Classifier(BalancedSoftmaxLoss::unshifted(class_counts.len(), device))
            }
        })
    }

    /// SGD with the run's momentum (no dampening, as in PyTorch) and L2 weight decay.
    pub fn optimizer(&self) -> SgdConfig {
        SgdConfig::new()
            .with_momentum(Some(
                MomentumConfig::new()
                    .with_momentum(self.momentum)
                    .with_dampening(0.0),
            ))
            .with_weight_decay(Some(WeightDecayConfig::new(self.weight_decay as f32)))
    }

    /// Whether the model is evaluated after epoch `epoch` (0-based): every `eval_every`
    /// epochs and after the last one.
    pub fn evaluates_after(&self, epoch: usize) -> bool {
        epoch + 1 == self.epochs || (epoch + 1).is_multiple_of(self.eval_every.max(1))
    }
}
