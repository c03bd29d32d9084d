//! What defines a long-tailed training run: the method, the loss configuration (with its
//! ablations and the class histogram), the schedule and the optimiser. Stored with a run and
//! compared on resume.

use burn::optim::{SgdConfig, decay::WeightDecayConfig, momentum::MomentumConfig};
use burn::tensor::Device;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::loss::{BalancedSoftmaxLoss, BalancedSoftmaxLossConfig, ResComLossConfig};
use crate::memory::MemoryKind;
use crate::mining::HardPairMinerConfig;
use crate::stats::ClassStats;
use crate::train::schedule::LrSchedule;
use crate::train::step::Objective;

/// The training objective.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Method {
    /// ResCom: Siamese Balanced Softmax + class-balanced supervised contrastive loss with
    /// hard mining from the class-balanced queue.
    #[serde(rename = "rescom")]
    ResCom,
    /// Plain cross-entropy on the classifier logits.
    CrossEntropy,
    /// Balanced Softmax on the classifier logits.
    BalancedSoftmax,
}

/// A part of ResCom that an ablation switches off, as a change of the loss configuration.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Ablation {
    /// The effective-number class weights (`beta = 0`: every weight 1).
    Weights,
    /// The class-balanced queue (a FIFO queue of the same `C * K` keys instead).
    Queue,
    /// Hard mining (every key of the queue is a positive or a negative).
    Mining,
    /// Balanced Softmax in the classification branch (plain cross-entropy instead).
    BalancedSoftmax,
}

impl Ablation {
    /// `config` with this part switched off.
    pub fn apply(self, config: ResComLossConfig) -> ResComLossConfig {
        match self {
            Ablation::Weights => {
                let contrastive = config.contrastive.clone().with_effective_num_beta(0.0);
                config.with_contrastive(contrastive)
            }
            Ablation::Queue => config.with_memory(MemoryKind::Fifo),
            Ablation::Mining => {
                let k = config.queue_per_class;
                let every_key = HardPairMinerConfig::new()
                    .with_hard_positives(k)
                    .with_hard_negatives(config.class_counts.len().saturating_sub(1) * k);
                config.with_mining(every_key)
            }
            Ablation::BalancedSoftmax => config.with_balanced_softmax(false),
        }
    }

    /// Whether `config` has this part switched off.
    pub fn is_applied(self, config: &ResComLossConfig) -> bool {
        let k = config.queue_per_class;
        match self {
            Ablation::Weights => config.contrastive.effective_num_beta == 0.0,
            Ablation::Queue => config.memory == MemoryKind::Fifo,
            Ablation::Mining => {
                config.mining.hard_positives == k
                    && config.mining.hard_negatives
                        == config.class_counts.len().saturating_sub(1) * k
            }
            Ablation::BalancedSoftmax => !config.balanced_softmax,
        }
    }

    /// The ablation's name, as in `rescom-no-queue`.
    pub fn name(self) -> &'static str {
        match self {
            Ablation::Weights => "weights",
            Ablation::Queue => "queue",
            Ablation::Mining => "mining",
            Ablation::BalancedSoftmax => "balanced-softmax",
        }
    }
}

/// Everything that defines a training run; stored with the run (`run.json`) and compared on
/// resume.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrainConfig {
    /// The objective.
    pub method: Method,
    /// The loss: the training set's class histogram (every method's objective is built from
    /// it) and, for ResCom, the loss hyper-parameters with any ablation applied
    /// ([`Ablation::apply`]). Its `seed` is replaced by the run's.
    pub loss: ResComLossConfig,
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
    /// The training set's class histogram.
    pub fn class_counts(&self) -> &[usize] {
        &self.loss.class_counts
    }

    /// The ResCom loss configuration of the run: [`TrainConfig::loss`] with the run's seed.
    pub fn rescom_loss(&self) -> ResComLossConfig {
        self.loss.clone().with_seed(self.seed)
    }

    /// A short name of the method with its ablations, e.g. `rescom-no-mining`.
    pub fn method_name(&self) -> String {
        match self.method {
            Method::CrossEntropy => "cross-entropy".into(),
            Method::BalancedSoftmax => "balanced-softmax".into(),
            Method::ResCom => {
                let mut name = String::from("rescom");
                for ablation in [
                    Ablation::Weights,
                    Ablation::Queue,
                    Ablation::Mining,
                    Ablation::BalancedSoftmax,
                ] {
                    if ablation.is_applied(&self.loss) {
                        name.push_str("-no-");
                        name.push_str(ablation.name());
                    }
                }
                name
            }
        }
    }

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

    /// The objective of the run, on `device`.
    ///
    /// # Errors
    /// An invalid histogram or loss configuration.
    pub fn objective(&self, device: &Device) -> Result<Objective> {
        let counts = self.class_counts();
        Ok(match self.method {
            Method::ResCom => Objective::ResCom(self.rescom_loss().init(device)?),
            Method::BalancedSoftmax => {
                Objective::Classifier(BalancedSoftmaxLossConfig::new(counts.to_vec()).init(device)?)
            }
            Method::CrossEntropy => {
                // Validates the histogram like the other methods.
                ClassStats::new(counts)?;
                Objective::Classifier(BalancedSoftmaxLoss::unshifted(counts.len(), device))
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
