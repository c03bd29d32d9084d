//! Class-balanced supervised contrastive loss
//! ([method](crate::method#class-balanced-supervised-contrastive-loss)).
//!
//! For each row `i` of the normalised embeddings `q`, the contrast logits are
//! 1. `q_i · q_j` for every other batch row `j != i`,
//! 2. the mined hard positives and 3. the mined hard negatives from the queue,
//!
//! each divided by the temperature `tau` and shifted by `eta * log(pi_class + 1e-9)`, where the
//! class is that of the batch row or of the queue slot. The positive set `P(i)` holds the other
//! batch rows of the same class and all mined positives. With
//! `l_i = -(1/|P(i)|) sum_{p in P(i)} log_softmax(a_i)_p` (`l_i = 0` when `P(i)` is empty),
//! the loss is `(1/M) sum_i w_{y_i} l_i` with effective-number weights `w`.
//!
//! The log-sum-exp is accumulated over the three parts separately (with a shared row maximum),
//! so the `[M, M - 1 + k_pos + k_neg]` logit matrix is never materialised; the self pair is
//! excluded by masking the diagonal. On flex devices one fused operation takes the parts side
//! by side instead (host memory is plentiful; each exponential is computed once).

use burn::config::Config;
use burn::module::{Content, DisplaySettings, Module, ModuleDisplay};
use burn::tensor::{Bool, DType, Device, Int, Tensor};

use crate::check;
use crate::error::{Error, Result};
#[cfg(feature = "flex")]
use crate::kernels::flex::log_sum_exp as fused;
use crate::mining::{MinedPairs, MinedSet};
use crate::stats::{ClassStats, ClassVector};

/// Configuration of a [`ClassBalancedContrastiveLoss`]: its hyper-parameters. The class
/// histogram comes with [`ClassStats`] when the loss is built. The defaults are the published
/// recipe's ([method](crate::method#published-recipes)).
#[derive(Config, Debug, PartialEq)]
pub struct ClassBalancedContrastiveLossConfig {
    /// Temperature `tau > 0`.
    #[config(default = 0.2)]
    pub temperature: f64,
    /// Effective-number `beta` in `[0, 1)`; 0 gives unit weights.
    #[config(default = 0.999999)]
    pub effective_num_beta: f64,
    /// Prior strength `eta >= 0` of the logit adjustment inside the contrast.
    #[config(default = 0.0)]
    pub prior_strength: f64,
}

impl ClassBalancedContrastiveLossConfig {
    /// Builds the loss for the classes of `stats`, validating the temperature, beta and eta.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] for a temperature that is not finite and positive, an eta that
    /// is not finite and non-negative, or a beta outside `[0, 1)`.
    pub fn init(
        &self,
        stats: &ClassStats,
        device: &Device,
    ) -> Result<ClassBalancedContrastiveLoss> {
        let (temperature, prior_strength) = (self.temperature, self.prior_strength);
        if !(temperature.is_finite() && temperature > 0.0) {
            return Err(Error::config(
                "temperature",
                format!("must be finite and > 0, got {temperature}"),
            ));
        }
        if !(prior_strength.is_finite() && prior_strength >= 0.0) {
            return Err(Error::config(
                "prior_strength",
                format!("must be finite and >= 0, got {prior_strength}"),
            ));
        }
        Ok(ClassBalancedContrastiveLoss {
            class_weights: ClassVector::new(
                stats.effective_number_weights(self.effective_num_beta)?,
                device,
            ),
            log_prior: ClassVector::new(stats.log_prior(), device),
            temperature,
            effective_num_beta: self.effective_num_beta,
            prior_strength,
            num_classes: stats.num_classes(),
        })
    }
}

/// Supervised contrastive loss over in-batch pairs and mined queue pairs, weighted per class.
///
/// ```
/// use burn::tensor::{Device, Int, Tensor};
/// use rescom::{ClassBalancedContrastiveLossConfig, ClassStats, l2_normalize};
///
/// let device = Device::flex();
/// let loss = ClassBalancedContrastiveLossConfig::new()
///     .with_effective_num_beta(0.0)
///     .init(&ClassStats::new(&[10, 10])?, &device)?;
/// println!("{loss}"); // ClassBalancedContrastiveLoss {num_classes: 2, temperature: 0.2, ...}
/// // Two views of two images: rows 0 and 2 are class 0, rows 1 and 3 class 1.
/// let q = l2_normalize(Tensor::<2>::from_floats(
///     [[1.0, 0.1], [0.0, 1.0], [1.0, -0.1], [0.1, 1.0]],
///     &device,
/// ));
/// let labels = Tensor::<1, Int>::from_ints([0, 1, 0, 1], &device);
/// let value = loss.forward(q, labels, None)?.into_scalar::<f32>();
/// assert!(value.is_finite() && value > 0.0);
/// # Ok::<(), rescom::Error>(())
/// ```
#[derive(Module, Debug)]
#[module(custom_display)]
pub struct ClassBalancedContrastiveLoss {
    class_weights: ClassVector,
    log_prior: ClassVector,
    temperature: f64,
    effective_num_beta: f64,
    prior_strength: f64,
    num_classes: usize,
}

impl ModuleDisplay for ClassBalancedContrastiveLoss {
    fn custom_settings(&self) -> Option<DisplaySettings> {
        DisplaySettings::new()
            .with_new_line_after_attribute(false)
            .optional()
    }

    fn custom_content(&self, content: Content) -> Option<Content> {
        content
            .add("num_classes", &self.num_classes)
            .add("temperature", &self.temperature)
            .add("effective_num_beta", &self.effective_num_beta)
            .add("prior_strength", &self.prior_strength)
            .optional()
    }
}

impl ClassBalancedContrastiveLoss {
    /// The per-class weights `w_c` as an `f32` tensor of shape `[C]`.
    pub fn class_weights(&self) -> Tensor<1> {
        self.class_weights.tensor.clone()
    }

    /// Temperature `tau`.
    pub fn temperature(&self) -> f64 {
        self.temperature
    }

    /// Weighted mean loss `(1/M) sum_i w_{y_i} l_i`.
    ///
    /// # Shapes
    /// - `embeddings`: `[M, D]`, rows of unit L2 norm (see [`crate::l2_normalize`]), `M >= 2`
    /// - `labels`: `Int [M]`, in `0..C` (checked)
    /// - `mined`: pairs from [`crate::HardPairMiner`] for the same rows, or `None` for a purely
    ///   in-batch loss
    /// - output: `[1]`
    pub fn forward(
        &self,
        embeddings: Tensor<2>,
        labels: Tensor<1, Int>,
        mined: Option<&MinedPairs>,
    ) -> Result<Tensor<1>> {
        self.check(&embeddings, &labels, mined)?;
        Ok(self.weighted_mean_unchecked(embeddings, labels, mined))
    }

    /// The unweighted per-row losses `l_i`.
    ///
    /// # Shapes
    /// Inputs as [`ClassBalancedContrastiveLoss::forward`]; output `[M]`.
    pub fn forward_no_reduction(
        &self,
        embeddings: Tensor<2>,
        labels: Tensor<1, Int>,
        mined: Option<&MinedPairs>,
    ) -> Result<Tensor<1>> {
        self.check(&embeddings, &labels, mined)?;
        Ok(self.per_row_unchecked(embeddings, labels, mined))
    }

    fn check(
        &self,
        embeddings: &Tensor<2>,
        labels: &Tensor<1, Int>,
        mined: Option<&MinedPairs>,
    ) -> Result<usize> {
        let [rows, _] = check::shape("embeddings", embeddings, [None, None])?;
        if rows < 2 {
            return Err(Error::Shape {
                name: "embeddings",
                actual: embeddings.dims().to_vec(),
                expected: "[M, D] with M >= 2".into(),
            });
        }
        check::shape("labels", labels, [Some(rows)])?;
        if let Some(mined) = mined {
            check::shape(
                "mined.positives.similarities",
                &mined.positives.similarities,
                [Some(rows), None],
            )?;
            if let Some(negatives) = &mined.negatives {
                check::shape(
                    "mined.negatives.similarities",
                    &negatives.similarities,
                    [Some(rows), None],
                )?;
            }
        }
        check::labels(labels, self.num_classes)?;
        check::finite(&[("embeddings", embeddings.clone())])?;
        Ok(rows)
    }

    /// `w_{y_i} l_i` summed and divided by `M`, for inputs validated by the caller.
    pub(crate) fn weighted_mean_unchecked(
        &self,
        embeddings: Tensor<2>,
        labels: Tensor<1, Int>,
        mined: Option<&MinedPairs>,
    ) -> Tensor<1> {
        let rows = embeddings.dims()[0];
        let weights = self
            .class_weights
            .get(embeddings.dtype(), &embeddings.device())
            .select(0, labels.clone());
        let per_row = self.per_row_unchecked(embeddings, labels, mined);
        // `mul_scalar(1/M)` rather than `div_scalar(M)`: the backward of the latter loses
        // precision in float64 on some backends.
        (weights * per_row).sum().mul_scalar(1.0 / rows as f64)
    }

    /// Per-row `l_i` for inputs validated by the caller.
    pub(crate) fn per_row_unchecked(
        &self,
        embeddings: Tensor<2>,
        labels: Tensor<1, Int>,
        mined: Option<&MinedPairs>,
    ) -> Tensor<1> {
        let [rows, _] = embeddings.dims();
        let (device, dtype) = (embeddings.device(), embeddings.dtype());
        let log_prior = self.log_prior.get(dtype, &device);
        let mut contrast = self.in_batch(embeddings, labels.clone(), &log_prior);
        if let Some(mined) = mined {
            self.add_mined_positives(&mut contrast, mined, labels, &log_prior);
            if let Some(negatives) = &mined.negatives {
                contrast
                    .parts
                    .push(self.negative_logits(negatives, &log_prior));
            }
        }
        let log_sum_exp = log_sum_exp(contrast.parts, rows, &device, dtype); // [M, 1]
        let has_positive = contrast.positive_count.clone().greater_elem(0.0);
        let mean_positive = contrast.positive_sum / contrast.positive_count.clamp_min(1.0);
        (log_sum_exp - mean_positive)
            .mask_fill(has_positive.bool_not(), 0.0)
            .reshape([rows])
    }

    /// `eta * log prior` of each class in `classes`, shaped `shape`.
    fn prior_term<const D: usize>(
        &self,
        log_prior: &Tensor<1>,
        classes: Tensor<1, Int>,
        shape: [usize; D],
    ) -> Tensor<D> {
        log_prior
            .clone()
            .select(0, classes)
            .mul_scalar(self.prior_strength)
            .reshape(shape)
    }

    /// The in-batch part: `[M, M]` logits with the self pair excluded, and the sums and counts
    /// of the in-batch positives.
    fn in_batch(
        &self,
        embeddings: Tensor<2>,
        labels: Tensor<1, Int>,
        log_prior: &Tensor<1>,
    ) -> Contrast {
        let [rows, _] = embeddings.dims();
        let (device, dtype) = (embeddings.device(), embeddings.dtype());
        let row_labels = labels.clone().reshape([rows, 1]).expand([rows, rows]);
        let col_labels = labels.clone().reshape([1, rows]).expand([rows, rows]);
        let not_self = Tensor::<2, Bool>::diag_mask([rows, rows], 0, &device);
        let positive = row_labels.equal(col_labels).bool_and(not_self.clone());
        let mut batch = embeddings
            .clone()
            .matmul(embeddings.transpose())
            .mul_scalar(1.0 / self.temperature);
        if self.prior_strength != 0.0 {
            let column_prior = self.prior_term(log_prior, labels, [1, rows]);
            batch = batch + column_prior.expand([rows, rows]);
        }
        let positive = positive.float().cast(dtype);
        Contrast {
            positive_sum: (batch.clone() * positive.clone()).sum_dim(1),
            positive_count: positive.sum_dim(1),
            parts: vec![batch.mask_fill(not_self.bool_not(), f32::NEG_INFINITY)],
        }
    }

    /// Adds the mined positives (all positive) to `contrast`.
    fn add_mined_positives(
        &self,
        contrast: &mut Contrast,
        mined: &MinedPairs,
        labels: Tensor<1, Int>,
        log_prior: &Tensor<1>,
    ) {
        let positives = mined
            .positives
            .similarities
            .clone()
            .mul_scalar(1.0 / self.temperature);
        let [rows, k_pos] = positives.dims();
        let positives = if self.prior_strength != 0.0 {
            let own_prior = self.prior_term(log_prior, labels, [rows, 1]);
            positives + own_prior.expand([rows, k_pos])
        } else {
            positives
        };
        match &mined.positives.valid {
            None => {
                contrast.positive_sum =
                    contrast.positive_sum.clone() + positives.clone().sum_dim(1);
                contrast.positive_count = contrast.positive_count.clone().add_scalar(k_pos as f64);
                contrast.parts.push(positives);
            }
            Some(valid) => {
                let weight = valid.clone().float().cast(positives.dtype());
                contrast.positive_sum =
                    contrast.positive_sum.clone() + (positives.clone() * weight.clone()).sum_dim(1);
                contrast.positive_count = contrast.positive_count.clone() + weight.sum_dim(1);
                contrast
                    .parts
                    .push(positives.mask_fill(valid.clone().bool_not(), f32::NEG_INFINITY));
            }
        }
    }

    /// The logits of the mined negatives, invalid entries at minus infinity.
    fn negative_logits(&self, negatives: &MinedSet, log_prior: &Tensor<1>) -> Tensor<2> {
        let mut logits = negatives
            .similarities
            .clone()
            .mul_scalar(1.0 / self.temperature);
        if self.prior_strength != 0.0 {
            let [rows, k_neg] = logits.dims();
            let classes = negatives.classes.clone().reshape([rows * k_neg]);
            logits = logits + self.prior_term(log_prior, classes, [rows, k_neg]);
        }
        if let Some(valid) = &negatives.valid {
            logits = logits.mask_fill(valid.clone().bool_not(), f32::NEG_INFINITY);
        }
        logits
    }
}

/// The contrast logits of every row in parts (in-batch, mined positives, mined negatives), with
/// the sum and the count of each row's positive logits.
struct Contrast {
    parts: Vec<Tensor<2>>,
    /// `[M, 1]`.
    positive_sum: Tensor<2>,
    /// `[M, 1]`.
    positive_count: Tensor<2>,
}

/// The log-sum-exp of each row over all `parts`, with one shared, detached row maximum.
///
/// # Shapes
/// - `parts`: `[M, *]` each
/// - output: `[M, 1]`
fn log_sum_exp(parts: Vec<Tensor<2>>, rows: usize, device: &Device, dtype: DType) -> Tensor<2> {
    // On flex, one fused operation over the parts side by side: each exponential computed
    // once, the backward step a product with the forward's softmax.
    #[cfg(feature = "flex")]
    if parts.first().is_some_and(fused::handles) {
        return fused::log_sum_exp(Tensor::cat(parts, 1));
    }
    let row_max = Tensor::cat(parts.iter().map(|p| p.clone().max_dim(1)).collect(), 1)
        .max_dim(1)
        .detach(); // [M, 1]
    let sum_exp = parts
        .into_iter()
        .map(|p| {
            let width = p.dims()[1];
            (p - row_max.clone().expand([rows, width])).exp().sum_dim(1)
        })
        .fold(Tensor::<2>::zeros([rows, 1], (device, dtype)), |a, b| a + b);
    sum_exp.log() + row_max
}
