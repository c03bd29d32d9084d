//! Evaluation on a balanced test set : top-1, top-5, many/medium/few-shot
//! top-1 and per-class accuracy ([method](crate::method#long-tailed-splits-and-shot-groups)).

use burn::tensor::{Int, Tensor};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// Many-shot classes have more than this many training images.
pub const MANY_SHOT_ABOVE: usize = 100;
/// Few-shot classes have fewer than this many training images.
pub const FEW_SHOT_BELOW: usize = 20;

/// The standard groups of classes by training count.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ShotGroup {
    /// `n_c > 100`.
    Many,
    /// `20 <= n_c <= 100`.
    Medium,
    /// `n_c < 20`.
    Few,
}

impl ShotGroup {
    /// The group of a class with `count` training images.
    pub fn of(count: usize) -> Self {
        if count > MANY_SHOT_ABOVE {
            ShotGroup::Many
        } else if count >= FEW_SHOT_BELOW {
            ShotGroup::Medium
        } else {
            ShotGroup::Few
        }
    }
}

/// Accuracy figures of one evaluation, all fractions in `[0, 1]`.
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
}

/// Accumulates predictions batch by batch.
///
/// ```
/// use burn::tensor::{Device, Tensor};
/// use rescom::train::Accuracy;
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
        let k = if classes > 5 { 5 } else { 1 };
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
            let c = label as usize;
            self.seen[c] += 1;
            if row[0] == label {
                self.correct_top1[c] += 1;
            }
            if classes <= 5 || row.contains(&label) {
                self.correct_top5[c] += 1;
            }
        }
        Ok(())
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
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::tensor::Device;

    #[test]
    fn shot_groups_follow_the_standard_thresholds() {
        assert_eq!(ShotGroup::of(101), ShotGroup::Many);
        assert_eq!(ShotGroup::of(100), ShotGroup::Medium);
        assert_eq!(ShotGroup::of(20), ShotGroup::Medium);
        assert_eq!(ShotGroup::of(19), ShotGroup::Few);
        assert_eq!(ShotGroup::of(0), ShotGroup::Few);
    }

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
