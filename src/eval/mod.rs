//! Evaluation on a test set: accuracy by shot group, calibration, the confusion matrix and
//! feature-space diagnostics.
//!
//! - [`Accuracy`]: top-1, top-5, many/medium/few-shot and per-class accuracy from logits;
//! - [`Evaluation`]: everything a run reports at an evaluation, batch by batch: the accuracy,
//!   the calibration of the confidences ([`Calibration`]: ECE and MCE over 15 bins, NLL,
//!   overall and per shot group), the confusion matrix, and the pair similarities of the
//!   backbone features and projections by shot group ([`FeatureSpace`]).

mod accuracy;
mod calibration;
mod feature_space;

pub use accuracy::*;
pub use calibration::{
    CALIBRATION_BINS, Calibration, CalibrationFigures, ReliabilityBin, calibration_bin,
};
pub use feature_space::{
    FeatureSpace, GroupSimilarity, SIMILARITY_BINS, SIMILARITY_BLOCK, SimilarityByGroup,
};

use burn::tensor::{Int, Tensor, TensorData, Transaction, activation};

use crate::error::{Error, Result};
use calibration::CalibrationSums;
use feature_space::FeatureRows;

/// The largest number of classes whose confusion matrix an [`Evaluation`] keeps.
pub const MAX_CONFUSION_CLASSES: usize = 1000;

/// One evaluation batch as the network gives it.
#[derive(Debug, Clone)]
pub struct EvalBatch {
    /// Unshifted classifier logits, `[B, C]`.
    pub logits: Tensor<2>,
    /// The backbone's features, `[B, F]`, if the network gives them.
    pub features: Option<Tensor<2>>,
    /// The projections, `[B, D]`, for a network trained with a contrastive branch.
    pub projections: Option<Tensor<2>>,
}

/// What one batch's read gives: the top classes of each row (best first), its confidence
/// (largest softmax probability) and the log-probability of its label.
struct Predictions {
    top: Vec<i64>,
    confidence: Vec<f64>,
    label_log_prob: Vec<f64>,
}

impl Predictions {
    /// Computes the figures on the device and reads them in one transaction.
    fn read(logits: Tensor<2>, labels: &[i64], k: usize) -> Result<Self> {
        let rows = labels.len();
        let device = logits.device();
        let labels = Tensor::<1, Int>::from_data(TensorData::new(labels.to_vec(), [rows]), &device);
        let log_probs = activation::log_softmax(logits.clone(), 1);
        let label_log_prob = log_probs.clone().gather(1, labels.reshape([rows, 1]));
        let confidence = log_probs.max_dim(1).exp();
        let top = if k == 1 {
            logits.argmax(1)
        } else {
            logits.argtopk(k, 1)
        };
        let read_error = |e: &dyn std::fmt::Debug| Error::DeviceRead {
            name: "logits",
            reason: format!("{e:?}"),
        };
        let read = Transaction::default()
            .register(top)
            .register(confidence)
            .register(label_log_prob)
            .try_execute()
            .map_err(|e| read_error(&e))?;
        let floats = |data: &TensorData| {
            data.clone()
                .convert::<f64>()
                .try_into_vec::<f64>()
                .map_err(|e| read_error(&e))
        };
        Ok(Self {
            top: read[0]
                .clone()
                .convert::<i64>()
                .try_into_vec::<i64>()
                .map_err(|e| read_error(&e))?,
            confidence: floats(&read[1])?,
            label_log_prob: floats(&read[2])?,
        })
    }
}

/// Accumulates an evaluation batch by batch (see the [module docs](self)).
///
/// Each batch costs one read from the device (the top classes, the confidences and the
/// label's log-probability); the features stay on the device until [`Evaluation::report`]
/// computes their diagnostics: `N x (F + D)` values for `N` test images with `F`-dimensional
/// features and `D`-dimensional projections (about 400 MB in `f32` for ImageNet-LT's 50,000
/// test images with ResNet-50). A network that gives no features
/// ([`ResComNetwork::evaluate`](crate::train::ResComNetwork::evaluate)'s default) keeps none.
///
/// ```
/// use burn::tensor::{Device, Tensor};
/// use rescom::eval::{EvalBatch, Evaluation};
///
/// let device = Device::flex();
/// let mut evaluation = Evaluation::new(3);
/// let logits = Tensor::<2>::from_floats([[3.0, 1.0, 0.0], [0.0, 1.0, 3.0]], &device);
/// let features = Tensor::<2>::from_floats([[1.0, 0.0], [0.0, 2.0]], &device);
/// evaluation.update(EvalBatch { logits, features: Some(features), projections: None }, &[0, 1])?;
/// let report = evaluation.report(&[500, 50, 5])?;
/// assert_eq!(report.top1, 0.5);
/// let calibration = report.calibration.unwrap();
/// assert!(calibration.overall.ece > 0.0 && calibration.overall.nll > 0.0);
/// assert_eq!(report.confusion.unwrap()[1], vec![0, 0, 1]);
/// let space = report.feature_space.unwrap();
/// // One test image per class: no same-class pair; the two rows are orthogonal.
/// assert_eq!(space.backbone.many.unwrap().different_class, Some(0.0));
/// # Ok::<(), rescom::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct Evaluation {
    accuracy: Accuracy,
    calibration: CalibrationSums,
    confusion: Option<Vec<Vec<u64>>>,
    labels: Vec<i64>,
    features: FeatureRows,
    projections: FeatureRows,
}

impl Evaluation {
    /// An empty evaluation of `num_classes` classes.
    pub fn new(num_classes: usize) -> Self {
        Self {
            accuracy: Accuracy::new(num_classes),
            calibration: CalibrationSums::new(num_classes),
            confusion: (num_classes <= MAX_CONFUSION_CLASSES)
                .then(|| vec![vec![0; num_classes]; num_classes]),
            labels: Vec::new(),
            features: FeatureRows::default(),
            projections: FeatureRows::default(),
        }
    }

    /// Adds a batch whose labels are `labels`.
    ///
    /// Features and projections must be given for every batch or for none.
    ///
    /// # Shapes
    /// - `batch.logits`: `[B, C]`; `batch.features`, `batch.projections`: `[B, *]`
    /// - `labels`: `B` values in `0..C`
    ///
    /// # Errors
    /// [`Error::Shape`] for a batch of another shape, or features given for some batches
    /// only; [`Error::LabelOutOfRange`]; [`Error::DeviceRead`].
    pub fn update(&mut self, batch: EvalBatch, labels: &[i64]) -> Result<()> {
        let EvalBatch {
            logits,
            features,
            projections,
        } = batch;
        let classes = self.accuracy.num_classes();
        let [rows, c] = logits.dims();
        if c != classes || rows != labels.len() {
            return Err(Error::Shape {
                name: "logits",
                actual: vec![rows, c],
                expected: format!("[{}, {classes}]", labels.len()),
            });
        }
        crate::check::labels_in_range(labels, classes)?;
        self.check_feature_rows(rows, &features, &projections)?;
        if rows == 0 {
            return Ok(());
        }
        let k = Accuracy::top_k(classes);
        let Predictions {
            top,
            confidence,
            label_log_prob,
        } = Predictions::read(logits, labels, k)?;
        for (i, &label) in labels.iter().enumerate() {
            let row = &top[i * k..(i + 1) * k];
            self.accuracy.add(label, row);
            self.calibration.add(
                label as usize,
                confidence[i],
                row[0] == label,
                -label_log_prob[i],
            );
            if let Some(confusion) = &mut self.confusion {
                confusion[label as usize][row[0] as usize] += 1;
            }
        }
        self.labels.extend_from_slice(labels);
        if let Some(features) = features {
            self.features.push(features);
        }
        if let Some(projections) = projections {
            self.projections.push(projections);
        }
        Ok(())
    }

    /// Features and projections have one row per image, in every batch or in none.
    fn check_feature_rows(
        &self,
        rows: usize,
        features: &Option<Tensor<2>>,
        projections: &Option<Tensor<2>>,
    ) -> Result<()> {
        for (name, rows_of, kept) in [
            ("features", features, &self.features),
            ("projections", projections, &self.projections),
        ] {
            if let Some(t) = rows_of
                && t.dims()[0] != rows
            {
                return Err(Error::Shape {
                    name,
                    actual: t.dims().to_vec(),
                    expected: format!("[{rows}, *]"),
                });
            }
            if !self.labels.is_empty() && rows_of.is_some() == kept.is_empty() {
                return Err(Error::Shape {
                    name,
                    actual: rows_of.as_ref().map_or(vec![], |t| t.dims().to_vec()),
                    expected: "given for every batch or for none".into(),
                });
            }
        }
        Ok(())
    }

    /// Accuracy, calibration and confusion so far, without the feature-space diagnostics
    /// (which cost a pass over the kept features): a cheap report for progress displays.
    ///
    /// # Errors
    /// [`Error::Shape`] when `train_counts` has another number of classes.
    pub fn accuracy_report(&self, train_counts: &[usize]) -> Result<EvalReport> {
        let mut report = self.accuracy.report(train_counts)?;
        report.calibration = self.calibration.report(train_counts);
        report.confusion = self.confusion.clone();
        Ok(report)
    }

    /// The full report, with shot groups from the training histogram `train_counts`: the
    /// accuracy report and the feature-space diagnostics of the features and projections
    /// given.
    ///
    /// # Errors
    /// As [`Evaluation::accuracy_report`]; [`Error::DeviceRead`].
    pub fn report(&self, train_counts: &[usize]) -> Result<EvalReport> {
        let mut report = self.accuracy_report(train_counts)?;
        if !self.features.is_empty() {
            let projection = if self.projections.is_empty() {
                None
            } else {
                Some(self.projections.similarities(&self.labels, train_counts)?)
            };
            report.feature_space = Some(FeatureSpace {
                backbone: self.features.similarities(&self.labels, train_counts)?,
                projection,
            });
        }
        Ok(report)
    }
}
