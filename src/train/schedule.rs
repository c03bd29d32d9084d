//! Learning-rate schedules.
//!
//! Epochs are 0-based; the rate is constant within an epoch, as in the reference recipes.

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// A learning-rate schedule over epochs.
///
/// ```
/// use rescom::train::LrSchedule;
/// // The CIFAR recipe: warm-up over 10 epochs, x0.1 from epoch 320, x0.01 from epoch 360.
/// let schedule = LrSchedule::cifar_recipe(0.1, 400);
/// assert!((schedule.lr(0) - 0.01).abs() < 1e-12);
/// assert!((schedule.lr(9) - 0.1).abs() < 1e-12);
/// assert!((schedule.lr(320) - 0.01).abs() < 1e-12);
/// assert!((schedule.lr(399) - 0.001).abs() < 1e-12);
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum LrSchedule {
    /// The same rate every epoch. With `lr = 0.1` this reproduces the published CIFAR runs,
    /// whose schedule was computed but never applied to the optimiser.
    Constant {
        /// The rate.
        lr: f64,
    },
    /// Linear warm-up, then step decay: epoch `e < warmup` uses `lr * (e + 1) / warmup`;
    /// afterwards `lr * gamma^m` where `m` counts the milestones `<= e`.
    WarmupMultiStep {
        /// Peak rate.
        lr: f64,
        /// Warm-up epochs.
        warmup_epochs: usize,
        /// Epochs (0-based) from which the rate is multiplied by `gamma` once more.
        milestones: Vec<usize>,
        /// Decay factor per milestone.
        gamma: f64,
    },
    /// Linear warm-up, then half-cosine decay from `lr` to `lr * floor_factor` at the last
    /// epoch: `floor + (lr - floor) * (1 + cos(pi * (e - warmup) / (epochs - warmup))) / 2`.
    WarmupCosine {
        /// Peak rate.
        lr: f64,
        /// Warm-up epochs.
        warmup_epochs: usize,
        /// Total number of epochs.
        epochs: usize,
        /// Final rate as a fraction of `lr` (the ImageNet recipe uses `1e-5`).
        floor_factor: f64,
    },
}

impl LrSchedule {
    /// The CIFAR-LT recipe scaled to `epochs`: warm-up over `epochs / 40` epochs (10 of 400),
    /// x0.1 from 80 % and x0.01 from 90 % of the run (epochs 320 and 360 of 400).
    pub fn cifar_recipe(lr: f64, epochs: usize) -> Self {
        LrSchedule::WarmupMultiStep {
            lr,
            warmup_epochs: (epochs / 40).max(1).min(epochs),
            milestones: vec![epochs * 8 / 10, epochs * 9 / 10],
            gamma: 0.1,
        }
    }

    /// The ImageNet-LT recipe scaled to `epochs`: warm-up over `epochs / 40` epochs, then
    /// cosine to `lr * 1e-5`.
    pub fn imagenet_recipe(lr: f64, epochs: usize) -> Self {
        LrSchedule::WarmupCosine {
            lr,
            warmup_epochs: (epochs / 40).max(1).min(epochs),
            epochs,
            floor_factor: 1e-5,
        }
    }

    /// Checks the rates are positive and finite and the epochs consistent.
    pub fn validate(&self) -> Result<()> {
        let lr = match self {
            LrSchedule::Constant { lr } => *lr,
            LrSchedule::WarmupMultiStep { lr, gamma, .. } => {
                if !(gamma.is_finite() && *gamma > 0.0) {
                    return Err(Error::config("gamma", format!("must be > 0, got {gamma}")));
                }
                *lr
            }
            LrSchedule::WarmupCosine {
                lr,
                warmup_epochs,
                epochs,
                floor_factor,
            } => {
                if warmup_epochs > epochs {
                    return Err(Error::config(
                        "warmup_epochs",
                        format!("{warmup_epochs} exceeds the {epochs} epochs of the run"),
                    ));
                }
                if !(0.0..=1.0).contains(floor_factor) {
                    return Err(Error::config(
                        "floor_factor",
                        format!("must lie in [0, 1], got {floor_factor}"),
                    ));
                }
                *lr
            }
        };
        if lr.is_finite() && lr > 0.0 {
            Ok(())
        } else {
            Err(Error::config(
                "lr",
                format!("must be finite and > 0, got {lr}"),
            ))
        }
    }

    /// The rate of epoch `epoch` (0-based).
    pub fn lr(&self, epoch: usize) -> f64 {
        let warm = |lr: f64, warmup: usize| {
            (epoch < warmup).then(|| lr * (epoch + 1) as f64 / warmup as f64)
        };
        match self {
            LrSchedule::Constant { lr } => *lr,
            LrSchedule::WarmupMultiStep {
                lr,
                warmup_epochs,
                milestones,
                gamma,
            } => warm(*lr, *warmup_epochs).unwrap_or_else(|| {
                let passed = milestones.iter().filter(|&&m| m <= epoch).count();
                lr * gamma.powi(passed as i32)
            }),
            LrSchedule::WarmupCosine {
                lr,
                warmup_epochs,
                epochs,
                floor_factor,
            } => warm(*lr, *warmup_epochs).unwrap_or_else(|| {
                let floor = lr * floor_factor;
                let span = epochs.saturating_sub(*warmup_epochs).max(1) as f64;
                let progress = ((epoch - warmup_epochs) as f64 / span).min(1.0);
                floor + (lr - floor) * 0.5 * (1.0 + (std::f64::consts::PI * progress).cos())
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn multistep_warms_up_linearly_then_decays() {
        let s = LrSchedule::WarmupMultiStep {
            lr: 0.2,
            warmup_epochs: 4,
            milestones: vec![6, 8],
            gamma: 0.5,
        };
        let lrs: Vec<f64> = (0..10).map(|e| s.lr(e)).collect();
        let expected = [0.05, 0.1, 0.15, 0.2, 0.2, 0.2, 0.1, 0.1, 0.05, 0.05];
        for (a, b) in lrs.iter().zip(expected) {
            assert!((a - b).abs() < 1e-12, "{lrs:?}");
        }
    }

    #[test]
    fn cosine_reaches_its_floor_and_is_monotone_after_warmup() {
        let s = LrSchedule::imagenet_recipe(0.06, 400);
        assert!((s.lr(9) - 0.06).abs() < 1e-12);
        assert!((s.lr(10) - 0.06).abs() < 1e-12);
        let last = s.lr(400);
        assert!((last - 0.06e-5).abs() < 1e-15, "{last}");
        for e in 10..399 {
            assert!(s.lr(e + 1) <= s.lr(e));
        }
    }

    #[test]
    fn invalid_schedules_are_rejected() {
        assert!(LrSchedule::Constant { lr: 0.0 }.validate().is_err());
        assert!(LrSchedule::Constant { lr: f64::NAN }.validate().is_err());
        let s = LrSchedule::WarmupCosine {
            lr: 0.1,
            warmup_epochs: 5,
            epochs: 3,
            floor_factor: 0.0,
        };
        assert!(s.validate().is_err());
        assert!(LrSchedule::cifar_recipe(0.1, 400).validate().is_ok());
    }
}
