//! Accuracy on a balanced test set: top-1, top-5, many/medium/few-shot top-1 and per-class
//! accuracy ([method](crate::method#long-tailed-splits-and-shot-groups)).

use burn::tensor::{Int, Tensor};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::eval::{Calibration, FeatureSpace};
use crate::stats::ShotGroup;

/// The figures of one evaluation: accuracy (fractions in `[0, 1]`), and, from a full
/// [`Evaluation`](crate::eval::Evaluation), calibration, feature-space diagnostics and the
/// confusion matrix.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EvalReport {
    /// Top-1 accuracy over all test images.
    pub top1: f64,
    /// Top-5 accuracy (top-`C` when there are fewer than 5 classes).
    pub top5: f64,
    /// Mean top-1 over the test images of many-shot classes; `None` if the group is empty.
    pub many: Option<f64>,
    /// Same for medium-shot classes.
    pub medium: Option<f64>,
    /// Same for few-shot classes.
    pub few: Option<f64>,
    /// Top-1 accuracy of each class (`None` for a class with no test image).
    pub per_class: Vec<Option<f64>>,
    /// Number of test images evaluated.
    pub images: usize,
    /// Calibration of the confidences; `None` from a plain [`Accuracy`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub calibration: Option<Calibration>,
    /// Feature-space diagnostics; `None` from a plain [`Accuracy`] or a network that gives no
    /// features.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub feature_space: Option<FeatureSpace>,
    /// Confusion counts, `confusion[label][prediction]`, for at most
    /// [`MAX_CONFUSION_CLASSES`](crate::eval::MAX_CONFUSION_CLASSES) classes; `None` from a
    /// plain [`Accuracy`]. A run keeps it for its last evaluation only (`summary.json`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub confusion: Option<Vec<Vec<u64>>>,
}

/// Accumulates predictions batch by batch.
///
/// ```
/// use burn::tensor::{Device, Tensor};
/// use rescom::eval::Accuracy;
///
/// let device = Device::flex();
/// let mut accuracy = Accuracy::new(3);
/// let logits = Tensor::<2>::from_floats([[3.0, 1.0, 0.0], [0.0, 1.0, 3.0]], &device);
/// accuracy.update(logits, &[0, 1])?;
/// let report = accuracy.report(&[500, 50, 5])?;
/// assert_eq!(report.top1, 0.5);
/// assert_eq!(report.many, Some(1.0));
/// assert_eq!(report.medium, Some(0.0));
/// assert_eq!(report.few, None);
/// # Ok::<(), rescom::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct Accuracy {
    correct_top1: Vec<usize>,
    correct_top5: Vec<usize>,
    seen: Vec<usize>,
}

impl Accuracy {
    /// An empty accumulator for `num_classes` classes.
    pub fn new(num_classes: usize) -> Self {
        Self {
            correct_top1: vec![0; num_classes],
            correct_top5: vec![0; num_classes],
            seen: vec![0; num_classes],
        }
    }

    /// Adds a batch: the top-5 classes of each row are computed on the device and read back
    /// once.
    ///
    /// # Shapes
    /// - `logits`: `[B, C]`
    /// - `labels`: `B` values in `0..C`
    pub fn update(&mut self, logits: Tensor<2>, labels: &[i64]) -> Result<()> {
        let classes = self.seen.len();
        let [rows, c] = logits.dims();
        if c != classes || rows != labels.len() {
            return Err(Error::Shape {
                name: "logits",
                actual: vec![rows, c],
                expected: format!("[{}, {classes}]", labels.len()),
            });
        }
        crate::check::labels_in_range(labels, classes)?;
        if rows == 0 {
            return Ok(());
        }
        // Burn's `argtopk` needs k < C; with at most 5 classes every label is in the top 5.
        let k = Self::top_k(classes);
        let top: Tensor<2, Int> = if k == 1 {
            logits.argmax(1)
        } else {
            logits.argtopk(k, 1)
        };
        let top = top
            .try_into_vec_as::<i64>()
            .map_err(|e| Error::DeviceRead {
                name: "logits",
                reason: format!("{e:?}"),
            })?;
        for (row, &label) in top.chunks(k).zip(labels) {
            self.add(label, row);
        }
        Ok(())
    }

    /// The number of classes.
    pub fn num_classes(&self) -> usize {
        self.seen.len()
    }

    /// How many top classes [`Accuracy::add`] takes for `classes` classes: 5, or 1 with at
    /// most 5 classes (every label is then in the top 5).
    pub(crate) fn top_k(classes: usize) -> usize {
        if classes > 5 { 5 } else { 1 }
    }

    /// Adds one image of class `label` (in range) whose best classes are `top`, best first.
    pub(crate) fn add(&mut self, label: i64, top: &[i64]) {
        let c = label as usize;
        self.seen[c] += 1;
        if top[0] == label {
            self.correct_top1[c] += 1;
        }
        if self.seen.len() <= 5 || top.contains(&label) {
            self.correct_top5[c] += 1;
        }
    }

    /// The figures, with shot groups defined by the training histogram `train_counts`.
    pub fn report(&self, train_counts: &[usize]) -> Result<EvalReport> {
        if train_counts.len() != self.seen.len() {
            return Err(Error::Shape {
                name: "train_counts",
                actual: vec![train_counts.len()],
                expected: format!("[{}]", self.seen.len()),
            });
        }
        let images: usize = self.seen.iter().sum();
        let fraction = |num: usize, den: usize| (den > 0).then(|| num as f64 / den as f64);
        let group = |g: ShotGroup| {
            let (mut num, mut den) = (0, 0);
            for (c, &count) in train_counts.iter().enumerate() {
                if ShotGroup::of(count) == g {
                    num += self.correct_top1[c];
                    den += self.seen[c];
                }
            }
            fraction(num, den)
        };
        Ok(EvalReport {
            top1: fraction(self.correct_top1.iter().sum(), images).unwrap_or(0.0),
            top5: fraction(self.correct_top5.iter().sum(), images).unwrap_or(0.0),
            many: group(ShotGroup::Many),
            medium: group(ShotGroup::Medium),
            few: group(ShotGroup::Few),
            per_class: (0..self.seen.len())
                .map(|c| fraction(self.correct_top1[c], self.seen[c]))
                .collect(),
            images,
            calibration: None,
            feature_space: None,
            confusion: None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::tensor::Device;

    #[test]
    fn top5_and_per_class() {
        let device = Device::flex();
        let mut acc = Accuracy::new(6);
        // Row 0: label 5 ranked 2nd (top-5 hit, top-1 miss); row 1: label 0 ranked last.
        let logits = Tensor::<2>::from_floats(
            [
                [6.0, 1.0, 2.0, 3.0, 4.0, 5.5],
                [0.0, 1.0, 2.0, 3.0, 4.0, 5.0],
            ],
            &device,
        );
        acc.update(logits, &[5, 0]).unwrap();
        let r = acc.report(&[200, 200, 50, 50, 5, 5]).unwrap();
        assert_eq!((r.top1, r.top5), (0.0, 0.5));
        assert_eq!(r.per_class[5], Some(0.0));
        assert_eq!(r.per_class[1], None);
        assert_eq!(r.images, 2);
        assert!(
            acc.update(Tensor::<2>::zeros([1, 6], &device), &[6])
                .is_err()
        );
        assert!(acc.report(&[1, 2]).is_err());
    }
}
