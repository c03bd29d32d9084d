//! [`ResComLoss`]: the four parts of ResCom composed ([method](crate::method)).
//!
//! `L = L_cls + lambda * L_con`, where `L_cls` is the Siamese Balanced Softmax over both views
//! and `L_con` the class-balanced supervised contrastive loss over in-batch pairs and pairs mined
//! from the class-balanced queue. The queue is read as it was before the step; the view-1 keys of
//! the step are enqueued only after the loss is computed.

use burn::config::Config;
use burn::module::Module;
use burn::tensor::{Device, Int, Tensor};

use serde::{Deserialize, Serialize};

use crate::check;
use crate::error::{Error, Result};
use crate::fifo::{FifoQueue, FifoQueueConfig};
use crate::loss::{BalancedSoftmaxLoss, ClassBalancedContrastiveLoss};
use crate::mining::{HardPairMiner, HardPairMinerConfig};
use crate::normalize::l2_normalize;
use crate::queue::{ClassBalancedQueue, ClassBalancedQueueConfig};
use crate::stats::{ClassStats, EmptyClassPolicy};

/// Configuration of [`ResComLoss`]. The defaults are the published CIFAR-100-LT recipe
/// ([method](crate::method#published-recipes)): `tau = 0.2`, `K = 10`, `k_pos = 1`,
/// `k_neg = 400`, `lambda = 0.5`, `beta = 0.999999`, `eta = 0`, projection dimension 32.
#[derive(Config, Debug)]
pub struct ResComLossConfig {
    /// Training samples per class `n_c` (the long-tailed histogram).
    pub class_counts: Vec<usize>,
    /// Projection dimension `D`.
    #[config(default = 32)]
    pub dim: usize,
    /// Queue keys per class `K`.
    #[config(default = 10)]
    pub queue_per_class: usize,
    /// Mined hard positives per row, `1 <= k_pos <= K`.
    #[config(default = 1)]
    pub hard_positives: usize,
    /// Mined hard negatives per row, `0 <= k_neg <= (C - 1) * K`.
    #[config(default = 400)]
    pub hard_negatives: usize,
    /// Contrastive temperature `tau > 0`.
    #[config(default = 0.2)]
    pub temperature: f64,
    /// Weight `lambda >= 0` of the contrastive term.
    #[config(default = 0.5)]
    pub contrast_weight: f64,
    /// Effective-number `beta` in `[0, 1)` of the class weights; 0 disables the weighting.
    #[config(default = 0.999999)]
    pub effective_num_beta: f64,
    /// Prior strength `eta >= 0` inside the contrast.
    #[config(default = 0.0)]
    pub prior_strength: f64,
    /// Seed of the random initial queue.
    #[config(default = 0)]
    pub seed: u64,
    /// Rule for classes with no training sample.
    #[config(default = "EmptyClassPolicy::Reject")]
    pub empty_classes: EmptyClassPolicy,
    /// Which memory the contrastive branch mines from. ResCom uses the class-balanced queue;
    /// [`MemoryKind::Fifo`] is the ablation with a plain FIFO queue of the same `C * K` size.
    #[config(default = "MemoryKind::ClassBalanced")]
    pub memory: MemoryKind,
    /// Shift the classifier logits by the log prior (Balanced Softmax). `false` is the
    /// ablation with plain cross-entropy.
    #[config(default = true)]
    pub balanced_softmax: bool,
}

/// The key memory of the contrastive branch.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MemoryKind {
    /// `K` keys per class (ResCom).
    #[default]
    ClassBalanced,
    /// The most recent `C * K` keys whatever their class.
    Fifo,
}

/// The memory a [`ResComLoss`] mines from.
#[derive(Module, Debug)]
pub enum KeyMemory {
    /// The class-balanced queue.
    ClassBalanced(ClassBalancedQueue),
    /// A FIFO queue (ablation).
    Fifo(FifoQueue),
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
        let classes = stats.num_classes();
        let miner = HardPairMinerConfig::new()
            .with_hard_positives(self.hard_positives)
            .with_hard_negatives(self.hard_negatives)
            .init(classes, self.queue_per_class)?;
        let memory = match self.memory {
            MemoryKind::ClassBalanced => KeyMemory::ClassBalanced(
                ClassBalancedQueueConfig::new(classes, self.queue_per_class, self.dim)
                    .with_seed(self.seed)
                    .init(device)?,
            ),
            MemoryKind::Fifo => KeyMemory::Fifo(
                FifoQueueConfig::new(classes * self.queue_per_class, self.dim).init(device)?,
            ),
        };
        let classification = if self.balanced_softmax {
            BalancedSoftmaxLoss::from_stats(&stats, device)
        } else {
            BalancedSoftmaxLoss::unshifted(classes, device)
        };
        Ok(ResComLoss {
            classification,
            contrastive: ClassBalancedContrastiveLoss::from_stats(
                &stats,
                self.temperature,
                self.effective_num_beta,
                self.prior_strength,
                device,
            )?,
            miner,
            memory,
            dim: self.dim,
            contrast_weight: self.contrast_weight,
        })
    }
}

/// The three loss values of a step, each a tensor of shape `[1]`.
#[derive(Debug, Clone)]
pub struct ResComOutput {
    /// `classification + lambda * contrastive`; call `backward` on this.
    pub total: Tensor<1>,
    /// Siamese Balanced Softmax `L_cls`.
    pub classification: Tensor<1>,
    /// Class-balanced contrastive loss `L_con` (before the weight `lambda`).
    pub contrastive: Tensor<1>,
}

/// Rebalanced Siamese Contrastive Mining loss with its class-balanced queue.
///
/// The queue is part of the module, so it is saved and loaded with the record of any model
/// that holds the loss.
///
/// ```
/// use burn::tensor::{Device, Distribution, Int, Tensor};
/// use rescom::ResComLossConfig;
///
/// let device = Device::flex().autodiff();
/// let mut loss = ResComLossConfig::new(vec![50, 20, 5])
///     .with_dim(8)
///     .with_queue_per_class(4)
///     .with_hard_negatives(6)
///     .init(&device)?;
/// // Two views of 3 images, view-major: labels repeat.
/// let features = Tensor::<2>::random([6, 8], Distribution::Normal(0.0, 1.0), &device)
///     .require_grad();
/// let logits = Tensor::<2>::random([6, 3], Distribution::Normal(0.0, 1.0), &device)
///     .require_grad();
/// let labels = Tensor::<1, Int>::from_ints([0, 1, 2, 0, 1, 2], &device);
/// let out = loss.forward(features.clone(), logits, labels)?;
/// let grads = out.total.backward();
/// assert_eq!(features.grad(&grads).unwrap().dims(), [6, 8]);
/// # Ok::<(), rescom::Error>(())
/// ```
#[derive(Module, Debug)]
pub struct ResComLoss {
    classification: BalancedSoftmaxLoss,
    contrastive: ClassBalancedContrastiveLoss,
    miner: HardPairMiner,
    memory: KeyMemory,
    dim: usize,
    contrast_weight: f64,
}

impl ResComLoss {
    /// Computes the loss of a step, then enqueues the normalised view-1 projections.
    ///
    /// # Shapes
    /// - `features`: `[2N, D]` raw projections, view-major (rows `0..N` view 1, `N..2N`
    ///   view 2); the loss L2-normalises them and gradients flow through the normalisation
    /// - `logits`: `[2N, C]` classifier logits (unshifted)
    /// - `labels`: `Int [2N]` with `labels[i] == labels[i + N]`, in `0..C`
    ///
    /// # Errors
    /// Wrong ranks or shapes, an odd or zero row count, views whose labels differ, labels out
    /// of range, NaN or infinite features or logits. On error the queue is unchanged.
    pub fn forward(
        &mut self,
        features: Tensor<2>,
        logits: Tensor<2>,
        labels: Tensor<1, Int>,
    ) -> Result<ResComOutput> {
        self.check(&features, &logits, &labels)?;
        let rows = features.dims()[0];
        let normalized = l2_normalize(features);
        let output = self.compute(normalized.clone(), logits, labels.clone());
        let half = rows / 2;
        let (keys, labels) = (normalized.narrow(0, 0, half), labels.narrow(0, 0, half));
        match &mut self.memory {
            KeyMemory::ClassBalanced(queue) => queue.enqueue_unchecked(keys, labels),
            KeyMemory::Fifo(queue) => queue.enqueue_unchecked(keys, labels),
        }
        Ok(output)
    }

    /// The loss of a step without touching the queue (for evaluation). Same inputs and errors
    /// as [`ResComLoss::forward`].
    pub fn loss(
        &self,
        features: Tensor<2>,
        logits: Tensor<2>,
        labels: Tensor<1, Int>,
    ) -> Result<ResComOutput> {
        self.check(&features, &logits, &labels)?;
        Ok(self.compute(l2_normalize(features), logits, labels))
    }

    /// The class-balanced queue.
    ///
    /// # Panics
    /// Never for a loss built with the default [`MemoryKind::ClassBalanced`]; use
    /// [`ResComLoss::memory`] for a loss built with another memory.
    pub fn queue(&self) -> &ClassBalancedQueue {
        match &self.memory {
            KeyMemory::ClassBalanced(queue) => queue,
            KeyMemory::Fifo(_) => panic!("this ResComLoss mines from a FIFO queue"),
        }
    }

    /// The memory the contrastive branch mines from.
    pub fn memory(&self) -> &KeyMemory {
        &self.memory
    }

    /// Replaces the class-balanced queue's state (see [`ClassBalancedQueue::with_state`]).
    /// Errors for a loss built with another memory.
    pub fn with_queue_state(mut self, keys: Tensor<2>, pointers: Tensor<1, Int>) -> Result<Self> {
        self.memory = match self.memory {
            KeyMemory::ClassBalanced(queue) => {
                KeyMemory::ClassBalanced(queue.with_state(keys, pointers)?)
            }
            KeyMemory::Fifo(_) => {
                return Err(Error::config(
                    "memory",
                    "queue state can only be set on the class-balanced queue",
                ));
            }
        };
        Ok(self)
    }

    /// The Balanced Softmax branch.
    pub fn classification(&self) -> &BalancedSoftmaxLoss {
        &self.classification
    }

    /// The contrastive branch.
    pub fn contrastive(&self) -> &ClassBalancedContrastiveLoss {
        &self.contrastive
    }

    /// The hard pair miner.
    pub fn miner(&self) -> &HardPairMiner {
        &self.miner
    }

    /// Weight `lambda` of the contrastive term.
    pub fn contrast_weight(&self) -> f64 {
        self.contrast_weight
    }

    fn check(
        &self,
        features: &Tensor<2>,
        logits: &Tensor<2>,
        labels: &Tensor<1, Int>,
    ) -> Result<()> {
        let [rows, _] = check::shape("features", features, [None, Some(self.dim)])?;
        if rows == 0 || !rows.is_multiple_of(2) {
            return Err(Error::OddRows { rows });
        }
        check::shape(
            "logits",
            logits,
            [Some(rows), Some(self.classification.num_classes())],
        )?;
        check::shape("labels", labels, [Some(rows)])?;
        let values = check::labels(labels, self.classification.num_classes())?;
        check::paired_views(&values)?;
        check::finite(&[("features", features.clone()), ("logits", logits.clone())])
    }

    fn compute(
        &self,
        normalized: Tensor<2>,
        logits: Tensor<2>,
        labels: Tensor<1, Int>,
    ) -> ResComOutput {
        let classification = self
            .classification
            .per_row_unchecked(logits, labels.clone())
            .mean();
        let mined = match &self.memory {
            KeyMemory::ClassBalanced(queue) => self
                .miner
                .mine_unchecked(queue.similarities(normalized.clone()), labels.clone()),
            KeyMemory::Fifo(queue) => self.miner.mine_labelled_unchecked(
                queue.similarities(normalized.clone()),
                queue.labels(),
                labels.clone(),
            ),
        };
        let contrastive =
            self.contrastive
                .weighted_mean_unchecked(normalized, labels, Some(&mined));
        let total = classification.clone() + contrastive.clone().mul_scalar(self.contrast_weight);
        ResComOutput {
            total,
            classification,
            contrastive,
        }
    }
}
