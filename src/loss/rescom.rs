//! [`ResComLoss`]: the four parts of ResCom composed ([method](crate::method)).
//!
//! `L = L_cls + lambda * L_con`, where `L_cls` is the Siamese Balanced Softmax over both views
//! and `L_con` the class-balanced supervised contrastive loss over in-batch pairs and pairs mined
//! from the class-balanced queue. The queue is read as it was before the step; the view-1 keys of
//! the step are enqueued only after the loss is computed.

use burn::module::{Content, Module, ModuleDisplay};
use burn::tensor::{Bool, Device, Int, Tensor};

use super::{BalancedSoftmaxLoss, ClassBalancedContrastiveLoss, l2_normalize};
use crate::check;
use crate::error::{Error, Result};
use crate::memory::{ClassBalancedQueue, KeyMemory, SharedMemory};
use crate::mining::HardPairMiner;
use crate::ops::on_device;

/// What a network gives the ResCom loss for one two-view batch: the two heads' outputs, named
/// so that they cannot be swapped (with `D == C` both have the same shape).
///
/// # Shapes
/// - `logits`: `[2N, C]` classifier logits (unshifted)
/// - `projections`: `[2N, D]` raw (unnormalised) projections
///
/// Rows are view-major: rows `0..N` hold view 1 of the `N` images, rows `N..2N` view 2 of the
/// same images in the same order.
#[derive(Debug, Clone)]
pub struct ResComLossInput {
    /// Classifier logits (unshifted), `[2N, C]`.
    pub logits: Tensor<2>,
    /// Projections before L2 normalisation, `[2N, D]`.
    pub projections: Tensor<2>,
}

/// The three loss values of a step, each a tensor of shape `[1]`, and whether the inputs were
/// finite.
#[derive(Debug, Clone)]
pub struct ResComOutput {
    /// `classification + lambda * contrastive`; call `backward` on this.
    pub total: Tensor<1>,
    /// Siamese Balanced Softmax `L_cls`.
    pub classification: Tensor<1>,
    /// Class-balanced contrastive loss `L_con` (before the weight `lambda`).
    pub contrastive: Tensor<1>,
    /// Whether the projections and logits were free of NaN and infinity, `Bool [1]`, on the
    /// device. [`ResComLoss::forward`] and [`ResComLoss::loss`] have read it already (they
    /// return [`Error::NonFinite`] instead of a `false`);
    /// [`ResComLoss::forward_trusted`] leaves it to the caller to read with the step's other
    /// results.
    pub inputs_finite: Tensor<1, Bool>,
}

/// Rebalanced Siamese Contrastive Mining loss with its class-balanced queue.
///
/// The loss is used through a shared reference, as a training framework calls a model's step:
/// [`ResComLoss::forward`] reads the queue, computes the loss and enqueues the step's view-1
/// keys. The queue is shared by every clone and fork of the loss (interior mutability, like
/// batch-norm running statistics), so a model holding the loss may be cloned every step and
/// forked to several devices without losing an update; it is part of the module, so it is
/// saved and loaded with the record of any model that holds the loss, and an optimiser never
/// changes it.
///
/// # Replicas
/// By default a loss has one replica: each [`ResComLoss::forward`] reads the memory, computes
/// the loss, then enqueues its view-1 keys, exactly as a plain training loop would. With `P`
/// replicas ([`ResComLoss::set_replicas`], one device each, in a fixed order), every replica
/// computes its loss from the memory as it stood before the step (its own batch against the
/// shared queue: the contrast is local to the replica) and stages its view-1 keys instead of
/// writing them. When the last of the `P` replicas has staged, the staged keys are enqueued in
/// one call, in replica order and then row order: the memory becomes the one a single device
/// would hold after enqueueing the concatenated batch of the replicas' keys. A replica that
/// stages twice before the step completes (a retried step) replaces its keys; keys are never
/// duplicated nor dropped. A step that only some replicas took (the last, shorter batch of an
/// epoch) is written by [`ResComLoss::flush_staged_keys`], which a training step calls after
/// the optimiser step.
///
/// ```
/// use burn::tensor::{Device, Distribution, Int, Tensor};
/// use rescom::{HardPairMinerConfig, ResComLossConfig, ResComLossInput};
///
/// let device = Device::flex().autodiff();
/// let loss = ResComLossConfig::new(vec![50, 20, 5])
///     .with_projection_dim(8)
///     .with_queue_per_class(4)
///     .with_mining(HardPairMinerConfig::new().with_hard_negatives(6))
///     .init(&device)?;
/// // Two views of 3 images, view-major: labels repeat.
/// let projections = Tensor::<2>::random([6, 8], Distribution::Normal(0.0, 1.0), &device)
///     .require_grad();
/// let logits = Tensor::<2>::random([6, 3], Distribution::Normal(0.0, 1.0), &device)
///     .require_grad();
/// let labels = Tensor::<1, Int>::from_ints([0, 1, 2, 0, 1, 2], &device);
/// let before = loss.queue().pointers().try_into_vec_as::<i64>().unwrap();
/// let output = ResComLossInput { logits, projections: projections.clone() };
/// let out = loss.forward(output, labels)?;
/// let grads = out.total.backward();
/// assert_eq!(projections.grad(&grads).unwrap().dims(), [6, 8]);
/// // One view-1 key of each class was enqueued.
/// let after = loss.queue().pointers().try_into_vec_as::<i64>().unwrap();
/// assert_eq!((before, after), (vec![0, 0, 0], vec![1, 1, 1]));
/// # Ok::<(), rescom::Error>(())
/// ```
#[derive(Module, Debug)]
#[module(custom_display)]
pub struct ResComLoss {
    pub(super) classification: BalancedSoftmaxLoss,
    pub(super) contrastive: ClassBalancedContrastiveLoss,
    pub(super) miner: HardPairMiner,
    pub(super) memory: SharedMemory,
    pub(super) projection_dim: usize,
    pub(super) contrast_weight: f64,
}

impl ModuleDisplay for ResComLoss {
    fn custom_content(&self, content: Content) -> Option<Content> {
        content
            .add("projection_dim", &self.projection_dim)
            .add("contrast_weight", &self.contrast_weight)
            .add("classification", &self.classification)
            .add("contrastive", &self.contrastive)
            .add("miner", &self.miner)
            .add("memory", &self.memory)
            .optional()
    }
}

impl ResComLoss {
    /// Computes the loss of a step from the queue as it stands, then enqueues the normalised
    /// view-1 projections. With several replicas ([`ResComLoss::set_replicas`]) the keys are
    /// enqueued once every replica has computed its loss of the step, replica by replica.
    ///
    /// # Shapes
    /// - `output.projections`: `[2N, D]` raw projections, view-major (rows `0..N` view 1,
    ///   `N..2N` view 2); the loss L2-normalises them and gradients flow through the
    ///   normalisation
    /// - `output.logits`: `[2N, C]` classifier logits (unshifted)
    /// - `labels`: `Int [2N]` with `labels[i] == labels[i + N]`, in `0..C`
    ///
    /// # Errors
    /// Wrong ranks or shapes, an odd or zero row count, views whose labels differ, labels out
    /// of range, NaN or infinite projections or logits, or a device that is not one of the
    /// declared replicas. On error the queue is unchanged.
    pub fn forward(&self, output: ResComLossInput, labels: Tensor<1, Int>) -> Result<ResComOutput> {
        let ResComLossInput {
            logits,
            projections,
        } = output;
        let inputs_finite = self.check(&projections, &logits, &labels)?;
        self.step(projections, logits, labels, inputs_finite)
    }

    /// [`ResComLoss::forward`] without any read from the device: the trusted path of a training
    /// step on a GPU, where each read would stall the device until it has caught up.
    ///
    /// The caller promises that `host_labels` holds exactly the values of `labels` (a data
    /// loader has both: it uploaded the one from the other). What is checked, and where:
    /// - shapes and the row count, from metadata, as in [`ResComLoss::forward`];
    /// - the labels, on the host, from `host_labels`: one per row, in `0..C`, and the two views
    ///   of every image agreeing; `labels` itself is not read;
    /// - NaN and infinity in the projections and logits are **not** refused here: the loss is
    ///   computed regardless, and [`ResComOutput::inputs_finite`] holds the flag, which the
    ///   caller must read with the step's other results (the loss values it reports anyway)
    ///   and treat `false` as [`Error::NonFinite`]. The training steps of `rescom::train`
    ///   (feature `train`) do so, reading it with the step's metrics. Until then the step's
    ///   gradient and its enqueued keys may hold NaN.
    ///
    /// Mining reads nothing from the device either: the hardest negatives are chosen with a
    /// top-k on the device, except on the CPU backends, whose tensors live in host memory and
    /// where an exact selection over the similarities is faster.
    ///
    /// For the same inputs the values, the gradients and the queue afterwards are exactly
    /// those of [`ResComLoss::forward`].
    ///
    /// # Shapes
    /// As [`ResComLoss::forward`]; `host_labels` has one value per row.
    ///
    /// # Errors
    /// Wrong ranks or shapes, an odd or zero row count, `host_labels` of another length, views
    /// whose labels differ, labels out of range, or a device that is not one of the declared
    /// replicas. On error the queue is unchanged.
    ///
    /// ```
    /// use burn::tensor::{Device, Distribution, Int, Tensor};
    /// use rescom::{HardPairMinerConfig, ResComLossConfig, ResComLossInput};
    ///
    /// let device = Device::flex().autodiff();
    /// let loss = ResComLossConfig::new(vec![50, 20, 5])
    ///     .with_projection_dim(8)
    ///     .with_queue_per_class(4)
    ///     .with_mining(HardPairMinerConfig::new().with_hard_negatives(6))
    ///     .init(&device)?;
    /// let host_labels = vec![0, 1, 2, 0, 1, 2];
    /// let labels = Tensor::<1, Int>::from_ints(host_labels.as_slice(), &device);
    /// let output = ResComLossInput {
    ///     logits: Tensor::<2>::random([6, 3], Distribution::Normal(0.0, 1.0), &device),
    ///     projections: Tensor::<2>::random([6, 8], Distribution::Normal(0.0, 1.0), &device),
    /// };
    /// let out = loss.forward_trusted(output, labels, &host_labels)?;
    /// // Later, with the step's other results:
    /// assert!(out.inputs_finite.into_scalar::<bool>());
    /// # Ok::<(), rescom::Error>(())
    /// ```
    pub fn forward_trusted(
        &self,
        output: ResComLossInput,
        labels: Tensor<1, Int>,
        host_labels: &[i64],
    ) -> Result<ResComOutput> {
        let ResComLossInput {
            logits,
            projections,
        } = output;
        self.check_shapes(&projections, &logits, &labels)?;
        check::host_labels(host_labels, &labels, self.classification.num_classes())?;
        check::paired_views(host_labels)?;
        let inputs_finite = check::finite_flag(&[
            ("projections", projections.clone()),
            ("logits", logits.clone()),
        ]);
        self.step(projections, logits, labels, inputs_finite)
    }

    /// The loss of validated inputs from the queue as it stands, then the view-1 keys staged
    /// (enqueued at once with a single replica).
    fn step(
        &self,
        projections: Tensor<2>,
        logits: Tensor<2>,
        labels: Tensor<1, Int>,
        inputs_finite: Tensor<1, Bool>,
    ) -> Result<ResComOutput> {
        let rows = projections.dims()[0];
        let normalized = l2_normalize(projections);
        // The queue before the step: a replica's keys are written only after every replica
        // has read it.
        let memory = self.memory.snapshot();
        let output = self.compute(
            &memory,
            normalized.clone(),
            logits,
            labels.clone(),
            inputs_finite,
        );
        let half = rows / 2;
        self.memory
            .stage(normalized.narrow(0, 0, half), labels.narrow(0, 0, half))?;
        Ok(output)
    }

    /// The loss of a step without touching the queue (for evaluation). Same inputs and errors
    /// as [`ResComLoss::forward`].
    pub fn loss(&self, output: ResComLossInput, labels: Tensor<1, Int>) -> Result<ResComOutput> {
        let ResComLossInput {
            logits,
            projections,
        } = output;
        let inputs_finite = self.check(&projections, &logits, &labels)?;
        let memory = self.memory.snapshot();
        Ok(self.compute(
            &memory,
            l2_normalize(projections),
            logits,
            labels,
            inputs_finite,
        ))
    }

    /// Declares the devices of the replicas that train copies of this loss together, in
    /// replica order (see [Replicas](ResComLoss#replicas)); every clone and fork shares the
    /// declaration. One device, or none, is a single replica: each step enqueues at once.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] if a device is listed twice.
    pub fn set_replicas(&self, devices: &[Device]) -> Result<()> {
        self.memory.set_replicas(devices)
    }

    /// The replica devices, in order (empty for a single replica).
    pub fn replicas(&self) -> Vec<Device> {
        self.memory.replicas()
    }

    /// Enqueues the keys staged by the replicas that took the last step when not all of them
    /// did (the shorter last batch of an epoch split between devices). A training step calls
    /// this after its optimiser step; with a single replica there is never anything to write.
    /// Returns the rows written.
    pub fn flush_staged_keys(&self) -> usize {
        self.memory.flush()
    }

    /// The class-balanced queue as it stands (a cheap copy: tensors are reference-counted).
    ///
    /// # Panics
    /// Never for a loss built with the default [`MemoryKind::ClassBalanced`](crate::MemoryKind::ClassBalanced); use
    /// [`ResComLoss::memory`] for a loss built with another memory.
    pub fn queue(&self) -> ClassBalancedQueue {
        match self.memory.snapshot() {
            KeyMemory::ClassBalanced(queue) => queue,
            KeyMemory::Fifo(_) => panic!("this ResComLoss mines from a FIFO queue"),
        }
    }

    /// The memory the contrastive branch mines from, as it stands.
    pub fn memory(&self) -> KeyMemory {
        self.memory.snapshot()
    }

    /// Replaces the class-balanced queue's state (see [`ClassBalancedQueue::with_state`]);
    /// clones of the loss share the new state. Errors for a loss built with another memory.
    pub fn with_queue_state(self, keys: Tensor<2>, pointers: Tensor<1, Int>) -> Result<Self> {
        let memory = match self.memory.snapshot() {
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
        self.memory.replace(memory);
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

    /// Shapes and the row count, from metadata.
    fn check_shapes(
        &self,
        projections: &Tensor<2>,
        logits: &Tensor<2>,
        labels: &Tensor<1, Int>,
    ) -> Result<()> {
        let [rows, _] = check::shape(
            "projections",
            projections,
            [None, Some(self.projection_dim)],
        )?;
        if rows == 0 || !rows.is_multiple_of(2) {
            return Err(Error::OddRows { rows });
        }
        check::shape(
            "logits",
            logits,
            [Some(rows), Some(self.classification.num_classes())],
        )?;
        check::shape("labels", labels, [Some(rows)])?;
        Ok(())
    }

    /// Every check of the plain API, reading the labels and the finiteness flags from the
    /// device; returns the (true) finiteness flag.
    fn check(
        &self,
        projections: &Tensor<2>,
        logits: &Tensor<2>,
        labels: &Tensor<1, Int>,
    ) -> Result<Tensor<1, Bool>> {
        self.check_shapes(projections, logits, labels)?;
        let values = check::labels(labels, self.classification.num_classes())?;
        check::paired_views(&values)?;
        check::finite(&[
            ("projections", projections.clone()),
            ("logits", logits.clone()),
        ])
    }

    fn compute(
        &self,
        memory: &KeyMemory,
        normalized: Tensor<2>,
        logits: Tensor<2>,
        labels: Tensor<1, Int>,
        inputs_finite: Tensor<1, Bool>,
    ) -> ResComOutput {
        let classification = self
            .classification
            .per_row_unchecked(logits, labels.clone())
            .mean();
        let similarities = memory.similarities(normalized.clone());
        let mined = match memory {
            KeyMemory::ClassBalanced(_) => self.miner.mine_unchecked(similarities, labels.clone()),
            KeyMemory::Fifo(queue) => self.miner.mine_labelled_unchecked(
                similarities,
                on_device(queue.labels(), &labels.device()).cast(labels.dtype()),
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
            inputs_finite,
        }
    }
}
