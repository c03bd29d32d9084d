//! Balanced Softmax (Ren et al., 2020), the classification branch of ResCom
//! ([method](crate::method#siamese-balanced-softmax)).
//!
//! Cross-entropy on prior-shifted logits, `CE(z + log(pi + 1e-9), y)`. In ResCom it is applied
//! to both views of every image ("Siamese Balanced Softmax"); at inference the logits are used
//! unshifted.

use burn::config::Config;
use burn::module::{Content, DisplaySettings, Module, ModuleDisplay};
use burn::tensor::activation::log_softmax;
use burn::tensor::{Bool, Device, Int, Tensor};

use crate::check;
use crate::error::Result;
#[cfg(feature = "flex")]
use crate::kernels::flex::log_sum_exp as fused;
use crate::stats::{ClassStats, ClassVector, EmptyClassPolicy};

/// Configuration of a [`BalancedSoftmaxLoss`].
#[derive(Config, Debug)]
pub struct BalancedSoftmaxLossConfig {
    /// Training samples per class `n_c`.
    pub class_counts: Vec<usize>,
    /// Rule for classes with no training sample.
    #[config(default = "EmptyClassPolicy::default()")]
    pub empty_classes: EmptyClassPolicy,
}

impl BalancedSoftmaxLossConfig {
    /// Builds the loss; errors on an empty histogram or (by default) an empty class.
    pub fn init(&self, device: &Device) -> Result<BalancedSoftmaxLoss> {
        let stats = ClassStats::with_policy(&self.class_counts, self.empty_classes)?;
        Ok(BalancedSoftmaxLoss::from_stats(&stats, device))
    }
}

/// The result of [`BalancedSoftmaxLoss::forward_trusted`]: the loss and whether the logits
/// were finite, both on the device.
#[derive(Debug, Clone)]
pub struct BalancedSoftmaxOutput {
    /// The mean loss, `[1]`; call `backward` on this.
    pub loss: Tensor<1>,
    /// Whether the logits were free of NaN and infinity, `Bool [1]`, for the caller to read
    /// with the step's other results.
    pub inputs_finite: Tensor<1, Bool>,
}

/// Cross-entropy on logits shifted by the log prior.
///
/// ```
/// use burn::tensor::{Device, Int, Tensor};
/// use rescom::BalancedSoftmaxLossConfig;
///
/// let device = Device::flex();
/// let loss = BalancedSoftmaxLossConfig::new(vec![90, 10]).init(&device)?;
/// let logits = Tensor::<2>::zeros([1, 2], &device);
/// let labels = Tensor::<1, Int>::from_ints([1], &device);
/// // Shifted logits are log(0.9), log(0.1): the loss is -log(0.1).
/// let value = loss.forward(logits, labels)?.into_scalar::<f32>();
/// assert!((value - 0.1f32.ln().abs()).abs() < 1e-5);
/// # Ok::<(), rescom::Error>(())
/// ```
#[derive(Module, Debug)]
#[module(custom_display)]
pub struct BalancedSoftmaxLoss {
    log_prior: ClassVector,
    num_classes: usize,
    shifted: bool,
}

impl ModuleDisplay for BalancedSoftmaxLoss {
    fn custom_settings(&self) -> Option<DisplaySettings> {
        DisplaySettings::new()
            .with_new_line_after_attribute(false)
            .optional()
    }

    fn custom_content(&self, content: Content) -> Option<Content> {
        content
            .add("num_classes", &self.num_classes)
            .add("prior_shift", &self.shifted)
            .optional()
    }
}

impl BalancedSoftmaxLoss {
    pub(crate) fn from_stats(stats: &ClassStats, device: &Device) -> Self {
        Self {
            log_prior: ClassVector::new(stats.log_prior(), device),
            num_classes: stats.num_classes(),
            shifted: true,
        }
    }

    /// Plain cross-entropy in the same interface (a zero log prior), for ablations.
    pub(crate) fn unshifted(num_classes: usize, device: &Device) -> Self {
        Self {
            log_prior: ClassVector::new(vec![0.0; num_classes], device),
            num_classes,
            shifted: false,
        }
    }

    /// Number of classes `C`.
    pub fn num_classes(&self) -> usize {
        self.num_classes
    }

    /// The log prior `log(pi + 1e-9)` as an `f32` tensor of shape `[C]`.
    pub fn log_prior(&self) -> Tensor<1> {
        self.log_prior.tensor.clone()
    }

    /// The prior-shifted logits `z + log(pi + 1e-9)`.
    ///
    /// # Shapes
    /// - `logits`: `[rows, C]`
    /// - output: `[rows, C]`
    pub fn shift(&self, logits: Tensor<2>) -> Tensor<2> {
        let [rows, classes] = logits.dims();
        let prior = self
            .log_prior
            .get(logits.dtype(), &logits.device())
            .reshape([1, classes])
            .expand([rows, classes]);
        logits + prior
    }

    /// Mean Balanced Softmax loss over the rows.
    ///
    /// # Shapes
    /// - `logits`: `[rows, C]`
    /// - `labels`: `Int [rows]`, in `0..C` (checked)
    /// - output: `[1]`
    pub fn forward(&self, logits: Tensor<2>, labels: Tensor<1, Int>) -> Result<Tensor<1>> {
        Ok(self.forward_no_reduction(logits, labels)?.mean())
    }

    /// [`BalancedSoftmaxLoss::forward`] without any read from the device (the trusted path
    /// of a training step on a GPU): `host_labels`, the caller's host copy of `labels`, is
    /// checked instead of `labels` (one per row, in `0..C`), and the logits' finiteness is
    /// returned as a `Bool [1]` flag on the device, for the caller to read with the step's
    /// other results and to treat `false` as [`Error::NonFinite`](crate::Error::NonFinite).
    /// Values and gradients are those of [`BalancedSoftmaxLoss::forward`].
    ///
    /// # Shapes
    /// - `logits`: `[rows, C]`
    /// - `labels`: `Int [rows]`, holding `host_labels`
    /// - output: the loss `[1]` and the flag `Bool [1]`
    pub fn forward_trusted(
        &self,
        logits: Tensor<2>,
        labels: Tensor<1, Int>,
        host_labels: &[i64],
    ) -> Result<BalancedSoftmaxOutput> {
        let [rows, _] = check::shape("logits", &logits, [None, Some(self.num_classes)])?;
        check::shape("labels", &labels, [Some(rows)])?;
        check::host_labels(host_labels, &labels, self.num_classes)?;
        let inputs_finite = check::finite_flag(&[("logits", logits.clone())]);
        Ok(BalancedSoftmaxOutput {
            loss: self.per_row_unchecked(logits, labels).mean(),
            inputs_finite,
        })
    }

    /// Per-row Balanced Softmax loss.
    ///
    /// # Shapes
    /// - `logits`: `[rows, C]`
    /// - `labels`: `Int [rows]`, in `0..C` (checked)
    /// - output: `[rows]`
    pub fn forward_no_reduction(
        &self,
        logits: Tensor<2>,
        labels: Tensor<1, Int>,
    ) -> Result<Tensor<1>> {
        let [rows, _] = check::shape("logits", &logits, [None, Some(self.num_classes)])?;
        check::shape("labels", &labels, [Some(rows)])?;
        check::labels(&labels, self.num_classes)?;
        check::finite(&[("logits", logits.clone())])?;
        Ok(self.per_row_unchecked(logits, labels))
    }

    /// Per-row loss for inputs already validated by the caller.
    pub(crate) fn per_row_unchecked(&self, logits: Tensor<2>, labels: Tensor<1, Int>) -> Tensor<1> {
        let rows = logits.dims()[0];
        let labels = labels.reshape([rows, 1]);
        // On flex, `log_softmax(z)[y] = z[y] - lse(z)` with the fused log-sum-exp (each
        // exponential computed once).
        #[cfg(feature = "flex")]
        if fused::handles(&logits) {
            let shifted = self.shift(logits);
            let picked = shifted.clone().gather(1, labels);
            return (fused::log_sum_exp(shifted) - picked).reshape([rows]);
        }
        let log_probs = log_softmax(self.shift(logits), 1);
        log_probs.gather(1, labels).reshape([rows]).neg()
    }
}
