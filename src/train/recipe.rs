//! The settings of the bundled runs: the published recipes and the CPU defaults, in one place.
//!
//! The loss hyper-parameters that every recipe shares are the defaults of
//! [`ResComLossConfig`]; a recipe holds what differs between datasets.

use serde::{Deserialize, Serialize};

use crate::loss::ResComLossConfig;
use crate::train::schedule::LrSchedule;

/// iNaturalist 2018 channel means, as the published recipe normalises it.
pub const INATURALIST_MEAN: [f32; 3] = [0.466, 0.471, 0.380];
/// iNaturalist 2018 channel standard deviations.
pub const INATURALIST_STD: [f32; 3] = [0.195, 0.194, 0.192];

/// The shape of a learning-rate schedule; [`Recipe::schedule`] scales it to a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ScheduleKind {
    /// Linear warm-up, x0.1 at 80 % and x0.01 at 90 % of the epochs (CIFAR recipe).
    Multistep,
    /// Linear warm-up, then cosine to 1e-5 of the rate (ImageNet-LT recipe).
    Cosine,
    /// A constant rate (what the released CIFAR code actually ran).
    Constant,
}

/// The settings of a bundled run.
///
/// ```
/// use rescom::train::Recipe;
///
/// let imagenet = Recipe::imagenet_lt();
/// assert_eq!((imagenet.epochs, imagenet.batch_size, imagenet.lr), (400, 256, 0.06));
/// assert_eq!(imagenet.effective_num_beta, 0.99);
/// assert!(imagenet.drop_last);
/// assert!(!Recipe::cpu_default().drop_last);
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Recipe {
    /// Backbone name (see `rescom::model::Architecture`).
    pub architecture: String,
    /// Epochs.
    pub epochs: usize,
    /// Images per step (each gives two views).
    pub batch_size: usize,
    /// Peak learning rate.
    pub lr: f64,
    /// Schedule shape.
    pub schedule: ScheduleKind,
    /// Projection dimension `D`.
    pub projection_dim: usize,
    /// Effective-number beta of the contrastive class weights.
    pub effective_num_beta: f64,
    /// Drop each epoch's incomplete last batch (the published recipes do).
    pub drop_last: bool,
    /// Channel means and standard deviations replacing the pipeline's, if any.
    pub normalization: Option<([f32; 3], [f32; 3])>,
}

impl Recipe {
    fn loss() -> ResComLossConfig {
        ResComLossConfig::new(Vec::new())
    }

    /// CIFAR-10/100-LT as published: ResNet-32, 400 epochs, batch 128, lr 0.1, warm-up and
    /// steps, incomplete batches dropped.
    pub fn cifar() -> Self {
        Self {
            architecture: "resnet32".into(),
            epochs: 400,
            batch_size: 128,
            lr: 0.1,
            schedule: ScheduleKind::Multistep,
            projection_dim: Self::loss().projection_dim,
            effective_num_beta: Self::loss().contrastive.effective_num_beta,
            drop_last: true,
            normalization: None,
        }
    }

    /// ImageNet-LT as published: ResNet-50, 400 epochs, batch 256, lr 0.06, cosine, a 128-d
    /// projection, beta 0.99, incomplete batches dropped.
    pub fn imagenet_lt() -> Self {
        Self {
            architecture: "resnet50".into(),
            epochs: 400,
            batch_size: 256,
            lr: 0.06,
            schedule: ScheduleKind::Cosine,
            projection_dim: 128,
            effective_num_beta: 0.99,
            drop_last: true,
            normalization: None,
        }
    }

    /// iNaturalist 2018: the ImageNet-LT recipe with iNaturalist's own normalisation.
    pub fn inaturalist() -> Self {
        Self {
            normalization: Some((INATURALIST_MEAN, INATURALIST_STD)),
            ..Self::imagenet_lt()
        }
    }

    /// The default CPU run on (Fashion-)MNIST-LT or CIFAR-LT: ResNet-20, 20 epochs, batch 64,
    /// lr 0.1, warm-up and steps; the incomplete last batch is kept.
    pub fn cpu_default() -> Self {
        Self {
            architecture: "resnet20".into(),
            epochs: 20,
            batch_size: 64,
            drop_last: false,
            ..Self::cifar()
        }
    }

    /// The default run on list datasets without `--recipe`: the ImageNet-LT recipe over 90
    /// epochs, with the loss defaults' beta and the last batch kept.
    pub fn list_default() -> Self {
        Self {
            epochs: 90,
            effective_num_beta: Self::loss().contrastive.effective_num_beta,
            drop_last: false,
            ..Self::imagenet_lt()
        }
    }

    /// A tiny configuration for checking the whole path: ResNet-8, 2 epochs, batch 32.
    pub fn smoke() -> Self {
        Self {
            architecture: "resnet8".into(),
            epochs: 2,
            batch_size: 32,
            lr: 0.05,
            ..Self::cpu_default()
        }
    }

    /// The schedule of a run of `epochs` epochs at peak rate `lr`, of this recipe's shape
    /// (or of `kind`).
    pub fn schedule(kind: ScheduleKind, lr: f64, epochs: usize) -> LrSchedule {
        match kind {
            ScheduleKind::Multistep => LrSchedule::cifar_recipe(lr, epochs),
            ScheduleKind::Cosine => LrSchedule::imagenet_recipe(lr, epochs),
            ScheduleKind::Constant => LrSchedule::Constant { lr },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn published_recipes_drop_the_last_batch_and_keep_their_values() {
        for recipe in [
            Recipe::cifar(),
            Recipe::imagenet_lt(),
            Recipe::inaturalist(),
        ] {
            assert!(recipe.drop_last, "{recipe:?}");
            assert_eq!(recipe.epochs, 400);
        }
        assert_eq!(Recipe::cifar().effective_num_beta, 0.999999);
        assert_eq!(Recipe::imagenet_lt().effective_num_beta, 0.99);
        assert_eq!(Recipe::inaturalist().effective_num_beta, 0.99);
        assert_eq!(
            Recipe::inaturalist().normalization,
            Some(([0.466, 0.471, 0.380], [0.195, 0.194, 0.192]))
        );
        assert_eq!(Recipe::imagenet_lt().normalization, None);
        assert!(!Recipe::cpu_default().drop_last && !Recipe::smoke().drop_last);
        assert_eq!(
            Recipe::schedule(ScheduleKind::Cosine, 0.06, 400),
            LrSchedule::imagenet_recipe(0.06, 400)
        );
    }
}
