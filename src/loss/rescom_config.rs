//! The configuration of [`ResComLoss`]: the published recipe's hyper-parameters, and the
//! nested configurations of the loss's parts.

use burn::config::Config;
use burn::tensor::Device;

use super::{BalancedSoftmaxLoss, ClassBalancedContrastiveLossConfig, ResComLoss};
use crate::error::{Error, Result};
use crate::memory::{
    ClassBalancedQueueConfig, FifoQueueConfig, KeyMemory, MemoryKind, SharedMemory,
};
use crate::mining::HardPairMinerConfig;
use crate::stats::{ClassStats, EmptyClassPolicy};

/// Configuration of [`ResComLoss`]. The defaults are the published CIFAR-100-LT recipe
/// ([method](crate::method#published-recipes)): projection dimension 32, `K = 10`,
/// `lambda = 0.5`, and those of the nested [`ClassBalancedContrastiveLossConfig`] (`tau = 0.2`,
/// `beta = 0.999999`, `eta = 0`) and [`HardPairMinerConfig`] (`k_pos = 1`, `k_neg = 400`).
#[derive(Config, Debug, PartialEq)]
pub struct ResComLossConfig {
    /// Training samples per class `n_c` (the long-tailed histogram).
    pub class_counts: Vec<usize>,
    /// Projection dimension `D` (the network's projection head gives rows of this length).
    #[config(default = 32)]
    pub projection_dim: usize,
    /// Queue keys per class `K`.
    #[config(default = 10)]
    pub queue_per_class: usize,
    /// The class-balanced contrastive loss: temperature, effective-number beta, prior strength.
    #[config(default = "ClassBalancedContrastiveLossConfig::new()")]
    pub contrastive: ClassBalancedContrastiveLossConfig,
    /// Hard pair mining from the queue: `1 <= k_pos <= K`, `0 <= k_neg <= (C - 1) * K`.
    #[config(default = "HardPairMinerConfig::new()")]
    pub mining: HardPairMinerConfig,
    /// Weight `lambda >= 0` of the contrastive term.
    #[config(default = 0.5)]
    pub contrast_weight: f64,
    /// Seed of the random initial queue.
    #[config(default = 0)]
    pub seed: u64,
    /// Rule for classes with no training sample.
    #[config(default = "EmptyClassPolicy::default()")]
    pub empty_classes: EmptyClassPolicy,
    /// Which memory the contrastive branch mines from. ResCom uses the class-balanced queue;
    /// [`MemoryKind::Fifo`] is the ablation with a plain FIFO queue of the same `C * K` size.
    #[config(default = "MemoryKind::default()")]
    pub memory: MemoryKind,
    /// Shift the classifier logits by the log prior (Balanced Softmax). `false` is the
    /// ablation with plain cross-entropy.
    #[config(default = true)]
    pub balanced_softmax: bool,
}

impl ResComLossConfig {
    /// Builds the loss and its queue on `device`, validating every value (histogram, beta,
    /// temperature, lambda, eta, mining counts against `K` and `C`).
    pub fn init(&self, device: &Device) -> Result<ResComLoss> {
        let stats = ClassStats::with_policy(&self.class_counts, self.empty_classes)?;
        if !(self.contrast_weight.is_finite() && self.contrast_weight >= 0.0) {
            return Err(Error::config(
                "contrast_weight",
                format!("must be finite and >= 0, got {}", self.contrast_weight),
            ));
        }
        for (field, value) in [
            ("projection_dim", self.projection_dim),
            ("queue_per_class", self.queue_per_class),
        ] {
            if value == 0 {
                return Err(Error::config(field, "must be at least 1"));
            }
        }
        let classes = stats.num_classes();
        let miner = self.mining.init(classes, self.queue_per_class)?;
        let memory = match self.memory {
            MemoryKind::ClassBalanced => KeyMemory::ClassBalanced(
                ClassBalancedQueueConfig::new(classes, self.queue_per_class, self.projection_dim)
                    .with_seed(self.seed)
                    .init(device)?,
            ),
            MemoryKind::Fifo => KeyMemory::Fifo(
                FifoQueueConfig::new(classes * self.queue_per_class, self.projection_dim)
                    .init(device)?,
            ),
        };
        let classification = if self.balanced_softmax {
            BalancedSoftmaxLoss::from_stats(&stats, device)
        } else {
            BalancedSoftmaxLoss::unshifted(classes, device)
        };
        Ok(ResComLoss {
            classification,
            contrastive: self.contrastive.init(&stats, device)?,
            miner,
            memory: SharedMemory::new(memory),
            projection_dim: self.projection_dim,
            contrast_weight: self.contrast_weight,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_printed_loss_shows_its_hyper_parameters() {
        let loss = ResComLossConfig::new(vec![50, 20, 5])
            .with_projection_dim(8)
            .with_queue_per_class(4)
            .with_mining(HardPairMinerConfig::new().with_hard_negatives(6))
            .init(&Device::flex())
            .unwrap();
        let text = loss.to_string();
        for expected in [
            "projection_dim: 8",
            "contrast_weight: 0.5",
            "temperature: 0.2",
            "effective_num_beta: 0.999999",
            "queue_per_class: 4",
            "hard_negatives: 6",
            "prior_shift: true",
        ] {
            assert!(text.contains(expected), "{expected} missing from {text}");
        }
    }
}
