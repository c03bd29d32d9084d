//! Per-view augmentation pipelines.
//!
//! A [`Pipeline`] turns an 8-bit [`Image`] into a normalised `f32` CHW view, in the order of the
//! reference torchvision recipes: a sequence of [`Step`]s on the 8-bit image (the transforms
//! that run on PIL images there), conversion to `[0, 1]` (`ToTensor`: `v / 255`), optional
//! [`cutout`], then per-channel normalisation `(v - mean) / std` (`Normalize`). All randomness
//! comes from the caller's [`Rng`], so a view is a pure function of the image and the
//! generator's key; the loaders key it by `(seed, epoch, sample index, view)`.
//!
//! The families, each documented against the published definition it follows:
//! `geometry` (random crop with zero padding, horizontal flip, affine warps, PIL-exact
//! bilinear resizing, `RandomResizedCrop`, resize and centre crop), `color` (PIL's
//! enhancers and `ImageOps`, colour jitter, grayscale), `autoaugment` (the CIFAR-10 policy),
//! `timm_randaugment` (the ImageNet-LT / iNaturalist policy, timm's `rand-n2-m10-mstd0.5`),
//! `randaugment` (torchvision's RandAugment, on request) and [`cutout`].

pub(crate) mod autoaugment;
pub(crate) mod color;
mod conform;
pub(crate) mod geometry;
mod pipeline;
pub(crate) mod randaugment;
pub(crate) mod timm_randaugment;

pub use pipeline::*;

#[cfg(test)]
mod pil_parity;
#[cfg(test)]
mod timm_parity;

use crate::data::image::Image;
use crate::error::{Error, Result};
use crate::rng::Rng;

/// CIFAR per-channel mean of the recipe (RGB).
pub const CIFAR_MEAN: [f32; 3] = [0.4914, 0.4822, 0.4465];
/// CIFAR per-channel standard deviation of the recipe (RGB).
pub const CIFAR_STD: [f32; 3] = [0.2023, 0.1994, 0.2010];
/// Fashion-MNIST mean.
pub const FASHION_MNIST_MEAN: [f32; 1] = [0.2860];
/// Fashion-MNIST standard deviation.
pub const FASHION_MNIST_STD: [f32; 1] = [0.3530];
/// MNIST mean.
pub const MNIST_MEAN: [f32; 1] = [0.1307];
/// MNIST standard deviation.
pub const MNIST_STD: [f32; 1] = [0.3081];
/// ImageNet per-channel mean (RGB).
pub const IMAGENET_MEAN: [f32; 3] = [0.485, 0.456, 0.406];
/// ImageNet per-channel standard deviation (RGB).
pub const IMAGENET_STD: [f32; 3] = [0.229, 0.224, 0.225];

/// One transform on the 8-bit image. Serialised by name in snake case, with its parameters
/// (`{"random_crop": {"size": 28, "padding": 4}}`, `"auto_augment_cifar10"`,
/// `{"resize_shorter": 256}`).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Step {
    /// Random `size x size` crop after zero padding by `padding` pixels
    ///.
    RandomCrop {
        /// Output side.
        size: usize,
        /// Zero padding on every side.
        padding: usize,
    },
    /// Horizontal flip with probability `p`.
    HorizontalFlip {
        /// Probability.
        p: f64,
    },
    /// AutoAugment, CIFAR-10 policy (the 25 sub-policies of Cubuk et al.).
    AutoAugmentCifar10,
    /// timm's RandAugment ([`TimmRandAugment`](crate::data::TimmRandAugment); the recipes use
    /// `rand-n2-m10-mstd0.5`).
    TimmRandAugment(timm_randaugment::TimmRandAugment),
    /// torchvision's RandAugment with `n` operations at magnitude bin `m` of 31
    ///.
    RandAugment {
        /// Operations per image.
        n: usize,
        /// Magnitude bin, `0..=30`.
        m: usize,
    },
    /// torchvision `RandomResizedCrop`.
    RandomResizedCrop {
        /// Output side.
        size: usize,
        /// Range of the window's area fraction, within `(0, 1]`.
        scale: (f64, f64),
        /// Range of the window's aspect ratio (width / height), positive.
        ratio: (f64, f64),
    },
    /// Colour jitter (brightness, contrast, saturation strengths), applied with probability
    /// `p` (`color::color_jitter` inside torchvision's `RandomApply`).
    ColorJitter {
        /// Brightness, contrast and saturation strengths.
        strength: (f64, f64, f64),
        /// Probability.
        p: f64,
    },
    /// Grayscale with probability `p` (torchvision `RandomGrayscale`, `color::grayscale`).
    RandomGrayscale {
        /// Probability.
        p: f64,
    },
    /// Resize so the shorter side has this length.
    ResizeShorter(usize),
    /// Centre crop to a square of this side.
    CenterCrop(usize),
}

impl Step {
    /// Applies the step, drawing its randomness from `rng`.
    pub fn apply(&self, image: Image, rng: &mut Rng) -> Image {
        match *self {
            Step::RandomCrop { size, padding } => geometry::random_crop(&image, size, padding, rng),
            Step::HorizontalFlip { p } => geometry::random_hflip(image, p, rng),
            Step::AutoAugmentCifar10 => autoaugment::cifar10_autoaugment(image, rng),
            Step::TimmRandAugment(ref policy) => policy.apply(image, rng),
            Step::RandAugment { n, m } => randaugment::rand_augment(image, n, m, rng),
            Step::RandomResizedCrop { size, scale, ratio } => {
                geometry::random_resized_crop(&image, size, scale, ratio, rng)
            }
            Step::ColorJitter { strength, p } => {
                if rng.bernoulli(p) {
                    color::color_jitter(&image, strength, rng)
                } else {
                    image
                }
            }
            Step::RandomGrayscale { p } => {
                if rng.bernoulli(p) {
                    color::grayscale(&image)
                } else {
                    image
                }
            }
            Step::ResizeShorter(side) => geometry::resize_shorter(&image, side),
            Step::CenterCrop(side) => geometry::center_crop(&image, side),
        }
    }

    /// Checks the parameters: sides at least 1, probabilities in `[0, 1]`, strengths
    /// non-negative, crop scales in `(0, 1]` and ratios positive, each range ordered, and the
    /// RandAugment policy's own ranges.
    pub fn validate(&self) -> Result<()> {
        if let Step::TimmRandAugment(policy) = self {
            return policy.validate();
        }
        let probability = |p: f64| (0.0..=1.0).contains(&p);
        let ok = match *self {
            Step::RandomCrop { size, .. } => size > 0,
            Step::HorizontalFlip { p }
            | Step::RandomGrayscale { p }
            | Step::ColorJitter { p, .. } => probability(p),
            Step::AutoAugmentCifar10 | Step::RandAugment { .. } | Step::TimmRandAugment(_) => true,
            Step::RandomResizedCrop { size, scale, ratio } => {
                size > 0
                    && scale.0 > 0.0
                    && scale.0 <= scale.1
                    && scale.1 <= 1.0
                    && ratio.0 > 0.0
                    && ratio.0 <= ratio.1
                    && ratio.1.is_finite()
            }
            Step::ResizeShorter(side) | Step::CenterCrop(side) => side > 0,
        };
        let jitter = match *self {
            Step::ColorJitter {
                strength: (b, c, s),
                ..
            } => [b, c, s].iter().all(|v| v.is_finite() && *v >= 0.0),
            _ => true,
        };
        if ok && jitter {
            Ok(())
        } else {
            Err(Error::config(
                "augmentation step",
                format!("{self:?} is out of range"),
            ))
        }
    }
}

/// Cutout (DeVries and Taylor, "Improved Regularization of Convolutional Neural Networks with
/// Cutout", 2017), one hole: the square of side `length` centred at a uniformly random pixel
/// `(cy, cx)` (row first), rows `cy - length/2 .. cy + length/2` and likewise for columns,
/// clipped at the borders (so holes at an edge are smaller), is set to zero in every channel.
/// It runs on the `[0, 1]` view before normalisation, the order of the reference CIFAR code
/// (`ToTensor`, `Cutout`, `Normalize`).
///
/// # Shapes
/// `view` holds one `[channels, height, width]` CHW view.
pub fn cutout(
    view: &mut [f32],
    channels: usize,
    height: usize,
    width: usize,
    length: usize,
    rng: &mut Rng,
) {
    let cy = rng.index(height) as isize;
    let cx = rng.index(width) as isize;
    let half = (length / 2) as isize;
    let y0 = (cy - half).clamp(0, height as isize) as usize;
    let y1 = (cy + half).clamp(0, height as isize) as usize;
    let x0 = (cx - half).clamp(0, width as isize) as usize;
    let x1 = (cx + half).clamp(0, width as isize) as usize;
    for c in 0..channels {
        for y in y0..y1 {
            let row = (c * height + y) * width;
            if let Some(span) = view.get_mut(row + x0..row + x1) {
                span.fill(0.0);
            }
        }
    }
}

/// Which RandAugment the ImageNet-sized pipelines use (`"timm"` or `"torchvision"` in files).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RandAugmentPolicy {
    /// timm's `rand-n2-m10-mstd0.5` (`timm_randaugment`), the recipes' policy.
    #[default]
    Timm,
    /// torchvision's `RandAugment(num_ops=2, magnitude=10)` (`randaugment`).
    Torchvision,
}

#[cfg(test)]
mod tests;
