//! Learning-rate schedules over epochs, and their burn-optim [`LrScheduler`].
//!
//! Epochs are 0-based in the API; the rate is constant within an epoch, as in the reference
//! recipes, whose epochs count from 1: epoch `e` here is their epoch `e + 1`.

use burn::optim::LearningRate;
use burn::optim::lr_scheduler::{LrScheduler, LrSchedulerRecord};
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
    /// epoch. Counting epochs from 1 as the recipes do (`t = e + 1`), epoch `t >= warmup`
    /// uses `floor + (lr - floor) * (1 + cos(pi * (t - warmup) / (epochs - warmup))) / 2`: the
    /// peak rate at `t = warmup`, the floor at the last epoch `t = epochs`.
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
                // The recipes' 1-based epoch `e + 1`, past the warm-up.
                let progress = ((epoch + 1 - warmup_epochs) as f64 / span).min(1.0);
                floor + (lr - floor) * 0.5 * (1.0 + (std::f64::consts::PI * progress).cos())
            }),
        }
    }
}

/// An [`LrSchedule`] as a burn-optim [`LrScheduler`]: the Learner asks for a rate before
/// every optimiser step, and the rate of step `s` is the schedule's rate of epoch
/// `s / steps_per_epoch`. The number of steps taken is the scheduler's record, so a resumed
/// run continues the schedule where it stopped.
///
/// ```
/// use burn::optim::lr_scheduler::LrScheduler;
/// use rescom::train::{EpochLrScheduler, LrSchedule};
///
/// let schedule = LrSchedule::cifar_recipe(0.1, 40); // one warm-up epoch, x0.1 from epoch 32
/// let mut scheduler = EpochLrScheduler::new(schedule, 3)?;
/// let rates: Vec<f64> = (0..6).map(|_| scheduler.step()).collect();
/// assert_eq!(rates, vec![0.1; 6]);
/// let mut resumed = EpochLrScheduler::new(LrSchedule::cifar_recipe(0.1, 40), 3)?;
/// resumed.load_record(scheduler.to_record());
/// assert_eq!(resumed.steps_taken(), 6);
/// # Ok::<(), rescom::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct EpochLrScheduler {
    schedule: LrSchedule,
    steps_per_epoch: usize,
    steps_taken: u64,
}

const STEPS_TAKEN: &str = "steps_taken";

impl EpochLrScheduler {
    /// A scheduler at the start of the run.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] for an invalid schedule or zero steps per epoch.
    pub fn new(schedule: LrSchedule, steps_per_epoch: usize) -> Result<Self> {
        schedule.validate()?;
        if steps_per_epoch == 0 {
            return Err(Error::config("steps_per_epoch", "must be at least 1"));
        }
        Ok(Self {
            schedule,
            steps_per_epoch,
            steps_taken: 0,
        })
    }

    /// Optimiser steps taken so far.
    pub fn steps_taken(&self) -> u64 {
        self.steps_taken
    }

    /// The epoch (0-based) of the next step.
    pub fn epoch(&self) -> usize {
        (self.steps_taken / self.steps_per_epoch as u64) as usize
    }

    /// The schedule.
    pub fn schedule(&self) -> &LrSchedule {
        &self.schedule
    }

    /// Reads the number of steps from a record written by [`LrScheduler::to_record`].
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] if the record holds no step count.
    pub fn steps_in(record: &LrSchedulerRecord) -> Result<u64> {
        // The Learner nests a scheduler's record under its parameter group, `0`.
        record
            .scalar::<u64>(STEPS_TAKEN)
            .or_else(|| record.record("0").scalar::<u64>(STEPS_TAKEN))
            .ok_or_else(|| Error::config("scheduler", "the record holds no step count"))
    }
}

impl LrScheduler for EpochLrScheduler {
    fn step(&mut self) -> LearningRate {
        let lr = self.schedule.lr(self.epoch());
        self.steps_taken += 1;
        lr
    }

    fn to_record(&self) -> LrSchedulerRecord {
        LrSchedulerRecord::new().with_scalar(STEPS_TAKEN, self.steps_taken)
    }

    fn load_record(&mut self, record: LrSchedulerRecord) {
        // A record without a count (never written by this scheduler) leaves it at the start;
        // resuming validates records beforehand with `steps_in`.
        if let Ok(steps) = Self::steps_in(&record) {
            self.steps_taken = steps;
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

    /// The recipes' rate of their 1-based epoch `t` (warm-up `lr * t / w` for `t < w`).
    fn recipe_cosine(lr: f64, w: usize, epochs: usize, t: usize) -> f64 {
        if t < w {
            return lr / w as f64 * t as f64;
        }
        let floor = lr * 1e-5;
        let progress = (t - w) as f64 / (epochs - w) as f64;
        floor + (lr - floor) * (1.0 + (std::f64::consts::PI * progress).cos()) / 2.0
    }

    /// The recipes' intended CIFAR rate of their epoch `t`: warm-up, x0.1 after 320, x0.01
    /// after 360.
    fn recipe_multistep(lr: f64, w: usize, t: usize) -> f64 {
        if t < w {
            lr / w as f64 * t as f64
        } else if t > 360 {
            lr * 0.01
        } else if t > 320 {
            lr * 0.1
        } else {
            lr
        }
    }

    #[test]
    fn cosine_follows_the_recipe_on_every_epoch_that_runs() {
        let s = LrSchedule::imagenet_recipe(0.06, 400);
        for e in 0..400 {
            let (ours, theirs) = (s.lr(e), recipe_cosine(0.06, 10, 400, e + 1));
            assert!(
                (ours - theirs).abs() < 1e-15,
                "epoch {e}: {ours} vs {theirs}"
            );
        }
        // Peak on the warm-up's last epoch and the first after it, floor on the last epoch.
        assert!((s.lr(9) - 0.06).abs() < 1e-15);
        assert!((s.lr(10) - 0.06).abs() < 1e-6 && s.lr(10) < 0.06);
        assert!((s.lr(399) - 0.06e-5).abs() < 1e-18, "{}", s.lr(399));
        for e in 10..399 {
            assert!(s.lr(e + 1) <= s.lr(e));
        }
    }

    #[test]
    fn multistep_follows_the_recipe_on_every_epoch_that_runs() {
        let s = LrSchedule::cifar_recipe(0.1, 400);
        for e in 0..400 {
            let (ours, theirs) = (s.lr(e), recipe_multistep(0.1, 10, e + 1));
            assert!(
                (ours - theirs).abs() < 1e-15,
                "epoch {e}: {ours} vs {theirs}"
            );
        }
    }

    #[test]
    fn the_scheduler_gives_each_step_its_epoch_rate_and_resumes() {
        let schedule = LrSchedule::imagenet_recipe(0.1, 8); // 1 warm-up epoch
        let mut scheduler = EpochLrScheduler::new(schedule.clone(), 3).unwrap();
        let rates: Vec<f64> = (0..24).map(|_| scheduler.step()).collect();
        for (s, rate) in rates.iter().enumerate() {
            assert_eq!(*rate, schedule.lr(s / 3), "step {s}");
        }
        let mut first = EpochLrScheduler::new(schedule.clone(), 3).unwrap();
        (0..7).for_each(|_| {
            first.step();
        });
        let mut resumed = EpochLrScheduler::new(schedule, 3).unwrap();
        resumed.load_record(first.to_record());
        let rest: Vec<f64> = (7..24).map(|_| resumed.step()).collect();
        assert_eq!(rest, rates[7..]);
        assert!(EpochLrScheduler::new(LrSchedule::Constant { lr: 0.1 }, 0).is_err());
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
