//! Calibration of the classifier's confidence: expected and maximum calibration error and
//! negative log-likelihood, overall and per shot group.
//!
//! The confidence of a test image is its largest softmax probability over the unshifted
//! logits, and it is correct when that class is the label. The confidences are put in
//! [`CALIBRATION_BINS`] equal-width bins, bin `b` holding the confidences in
//! `(b / 15, (b + 1) / 15]`. With `n_b` images in bin `b` out of `n`, mean confidence
//! `conf_b` and accuracy `acc_b` (Guo et al., 2017):
//!
//! ```text
//! ECE = sum_b (n_b / n) * |acc_b - conf_b|        MCE = max_{b : n_b > 0} |acc_b - conf_b|
//! NLL = (1/n) * sum_i -log softmax(z_i)_{y_i}
//! ```
//!
//! A shot group's figures are those of the test images whose label is in the group.

use serde::{Deserialize, Serialize};

use crate::stats::ShotGroup;

/// Number of equal-width confidence bins of the calibration errors.
pub const CALIBRATION_BINS: usize = 15;

/// The bin of a confidence in `[0, 1]`: `b` with `b / 15 < confidence <= (b + 1) / 15` (a
/// confidence of 0 goes to bin 0).
pub fn calibration_bin(confidence: f64) -> usize {
    let bin = (confidence * CALIBRATION_BINS as f64).ceil() as usize;
    bin.clamp(1, CALIBRATION_BINS) - 1
}

/// One bin of a reliability diagram.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct ReliabilityBin {
    /// Test images whose confidence falls in the bin.
    pub count: u64,
    /// Their mean confidence (0 when the bin is empty).
    pub confidence: f64,
    /// The fraction of them classified correctly (0 when the bin is empty).
    pub accuracy: f64,
}

/// Calibration figures of a set of test images.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct CalibrationFigures {
    /// Expected calibration error, a fraction in `[0, 1]`.
    pub ece: f64,
    /// Maximum calibration error over the non-empty bins, in `[0, 1]`.
    pub mce: f64,
    /// Mean negative log-likelihood of the label (nats).
    pub nll: f64,
}

/// Calibration of one evaluation: overall, per shot group, and the overall reliability bins.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Calibration {
    /// Over every test image.
    pub overall: CalibrationFigures,
    /// Over the test images of many-shot classes; `None` if the group has none.
    pub many: Option<CalibrationFigures>,
    /// Same for medium-shot classes.
    pub medium: Option<CalibrationFigures>,
    /// Same for few-shot classes.
    pub few: Option<CalibrationFigures>,
    /// The [`CALIBRATION_BINS`] bins over every test image (the reliability diagram).
    pub bins: Vec<ReliabilityBin>,
}

#[derive(Debug, Clone, Copy, Default)]
struct BinSums {
    count: u64,
    confidence: f64,
    correct: u64,
}

/// Accumulates confidences, correctness and log-likelihoods per class.
#[derive(Debug, Clone)]
pub(crate) struct CalibrationSums {
    /// `[class][bin]`.
    bins: Vec<[BinSums; CALIBRATION_BINS]>,
    nll: Vec<f64>,
    seen: Vec<u64>,
}

impl CalibrationSums {
    pub(crate) fn new(num_classes: usize) -> Self {
        Self {
            bins: vec![[BinSums::default(); CALIBRATION_BINS]; num_classes],
            nll: vec![0.0; num_classes],
            seen: vec![0; num_classes],
        }
    }

    /// Adds one test image of class `label` (in range).
    pub(crate) fn add(&mut self, label: usize, confidence: f64, correct: bool, nll: f64) {
        let bin = &mut self.bins[label][calibration_bin(confidence)];
        bin.count += 1;
        bin.confidence += confidence;
        bin.correct += u64::from(correct);
        self.nll[label] += nll;
        self.seen[label] += 1;
    }

    /// The figures over the classes `c` with `keep(c)`; `None` when they have no test image.
    fn figures(&self, keep: impl Fn(usize) -> bool) -> Option<(CalibrationFigures, Vec<BinSums>)> {
        let mut bins = vec![BinSums::default(); CALIBRATION_BINS];
        let (mut nll, mut n) = (0.0, 0u64);
        for c in (0..self.seen.len()).filter(|&c| keep(c)) {
            for (sum, add) in bins.iter_mut().zip(&self.bins[c]) {
                sum.count += add.count;
                sum.confidence += add.confidence;
                sum.correct += add.correct;
            }
            nll += self.nll[c];
            n += self.seen[c];
        }
        if n == 0 {
            return None;
        }
        let (mut ece, mut mce) = (0.0f64, 0.0f64);
        for bin in bins.iter().filter(|b| b.count > 0) {
            let gap = (bin.correct as f64 - bin.confidence).abs();
            ece += gap / n as f64;
            mce = mce.max(gap / bin.count as f64);
        }
        let figures = CalibrationFigures {
            ece,
            mce,
            nll: nll / n as f64,
        };
        Some((figures, bins))
    }

    /// The calibration, with shot groups from the training histogram `train_counts` (one
    /// count per class); `None` before the first image.
    pub(crate) fn report(&self, train_counts: &[usize]) -> Option<Calibration> {
        let (overall, bins) = self.figures(|_| true)?;
        let group = |g: ShotGroup| {
            self.figures(|c| ShotGroup::of(train_counts[c]) == g)
                .map(|(f, _)| f)
        };
        Some(Calibration {
            overall,
            many: group(ShotGroup::Many),
            medium: group(ShotGroup::Medium),
            few: group(ShotGroup::Few),
            bins: bins
                .iter()
                .map(|b| ReliabilityBin {
                    count: b.count,
                    confidence: if b.count > 0 {
                        b.confidence / b.count as f64
                    } else {
                        0.0
                    },
                    accuracy: if b.count > 0 {
                        b.correct as f64 / b.count as f64
                    } else {
                        0.0
                    },
                })
                .collect(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bins_are_closed_on_the_right() {
        assert_eq!(calibration_bin(0.0), 0);
        assert_eq!(calibration_bin(1.0 / 15.0), 0);
        assert_eq!(calibration_bin(1.0 / 15.0 + 1e-9), 1);
        assert_eq!(calibration_bin(0.5), 7);
        assert_eq!(calibration_bin(1.0), 14);
    }

    #[test]
    fn errors_by_hand() {
        let mut sums = CalibrationSums::new(2);
        // Class 0 (many-shot): confidences 0.9 (right) and 0.9 (wrong): bin 13, acc 0.5,
        // conf 0.9, gap 0.4. Class 1 (few-shot): 0.5 (right): bin 7, gap 0.5.
        sums.add(0, 0.9, true, 0.1);
        sums.add(0, 0.9, false, 2.0);
        sums.add(1, 0.5, true, 0.7);
        let c = sums.report(&[200, 5]).unwrap();
        assert!((c.overall.ece - (2.0 / 3.0 * 0.4 + 1.0 / 3.0 * 0.5)).abs() < 1e-12);
        assert!((c.overall.mce - 0.5).abs() < 1e-12);
        assert!((c.overall.nll - 2.8 / 3.0).abs() < 1e-12);
        let many = c.many.unwrap();
        assert!((many.ece - 0.4).abs() < 1e-12 && (many.mce - 0.4).abs() < 1e-12);
        assert!((many.nll - 1.05).abs() < 1e-12);
        assert_eq!(c.medium, None);
        assert!((c.few.unwrap().ece - 0.5).abs() < 1e-12);
        assert_eq!(c.bins[13].count, 2);
        assert!((c.bins[13].accuracy - 0.5).abs() < 1e-12);
        assert!((c.bins[13].confidence - 0.9).abs() < 1e-12);
        assert_eq!(c.bins.iter().map(|b| b.count).sum::<u64>(), 3);
        assert!(CalibrationSums::new(2).report(&[1, 1]).is_none());
    }
}
