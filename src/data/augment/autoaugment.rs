//! AutoAugment's CIFAR-10 policy (Cubuk, Zoph, Mané, Vasudevan and Le, "AutoAugment: Learning
//! Augmentation Policies from Data", CVPR 2019, appendix table of the CIFAR-10 policy), in the
//! form of the widely used PIL implementation (DeVoltaire's `autoaugment.py`) that the PaCo and
//! ResCom training code copies.
//!
//! Each image draws one of the 25 sub-policies uniformly; a sub-policy applies its two
//! operations in order, each with its own probability and magnitude level `0..=9`. The
//! magnitude tables over the 10 levels are `numpy.linspace` ranges:
//!
//! | operation | magnitude at level `l` | how it is applied |
//! | --- | --- | --- |
//! | ShearX / ShearY | `0.3 l / 9` | PIL affine `(1, ±m, 0, 0, 1, 0)` / `(1, 0, 0, ±m, 1, 0)`, bicubic, fill 128 |
//! | TranslateX / TranslateY | `(150 / 331) l / 9` of the width / height | PIL affine, nearest, fill 128 |
//! | Rotate | `30 l / 9` degrees | PIL `rotate`, counter-clockwise only (that code draws no sign), nearest, fill 128 |
//! | Color, Contrast, Sharpness, Brightness | `0.9 l / 9` | PIL `ImageEnhance` with factor `1 ± m` |
//! | Posterize | `round(8 - 4 l / 9)` bits | PIL `ImageOps.posterize` |
//! | Solarize | threshold `256 - 256 l / 9` | PIL `ImageOps.solarize` (values `>=` threshold inverted) |
//! | AutoContrast, Equalize, Invert | none | PIL `ImageOps` |
//!
//! `±` is a sign drawn with probability 1/2 each time the operation runs. The published
//! TensorFlow code and torchvision's `AutoAugment` also draw a random sign for Rotate; the
//! PIL implementation above does not, and this module follows it. The colour operations act
//! on one-channel images too (Color is then the identity, see [`color`]).

use crate::data::augment::geometry::Resample;
use crate::data::augment::{color, geometry};
use crate::data::image::Image;
use crate::rng::Rng;

/// An image operation of AutoAugment and RandAugment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    /// Shear along x.
    ShearX,
    /// Shear along y.
    ShearY,
    /// Translation along x.
    TranslateX,
    /// Translation along y.
    TranslateY,
    /// Rotation.
    Rotate,
    /// Saturation (PIL `ImageEnhance.Color`).
    Color,
    /// Keep the top bits of each value.
    Posterize,
    /// Invert the values above a threshold.
    Solarize,
    /// Contrast.
    Contrast,
    /// Sharpness.
    Sharpness,
    /// Brightness.
    Brightness,
    /// Stretch each channel to the full range.
    AutoContrast,
    /// Histogram equalisation.
    Equalize,
    /// `255 - v`.
    Invert,
}

/// Fill value of AutoAugment's geometric operations.
pub const FILL: u8 = 128;

/// Number of magnitude levels.
pub const LEVELS: usize = 10;

/// `numpy.linspace(lo, hi, levels)[level]` (`level * step + lo`, the last level exact).
pub(crate) fn linspace(lo: f64, hi: f64, level: usize, levels: usize) -> f64 {
    let levels = levels.max(2);
    let level = level.min(levels - 1);
    if level == levels - 1 {
        return hi;
    }
    level as f64 * ((hi - lo) / (levels - 1) as f64) + lo
}

fn sign(rng: &mut Rng) -> f64 {
    if rng.bernoulli(0.5) { -1.0 } else { 1.0 }
}

impl Op {
    /// Applies the operation at magnitude `level` (`0..=9`, larger values clamp to 9) with
    /// AutoAugment's tables and conventions (module docs); signed operations draw their sign
    /// from `rng`.
    pub fn apply(self, image: &Image, level: usize, rng: &mut Rng) -> Image {
        let m = |lo: f64, hi: f64| linspace(lo, hi, level, LEVELS);
        let enhance = |rng: &mut Rng| 1.0 + m(0.0, 0.9) * sign(rng);
        match self {
            Op::ShearX => {
                geometry::shear_x(image, m(0.0, 0.3) * sign(rng), Resample::Bicubic, FILL)
            }
            Op::ShearY => {
                geometry::shear_y(image, m(0.0, 0.3) * sign(rng), Resample::Bicubic, FILL)
            }
            Op::TranslateX => geometry::translate_x(
                image,
                m(0.0, 150.0 / 331.0) * image.width as f64 * sign(rng),
                FILL,
            ),
            Op::TranslateY => geometry::translate_y(
                image,
                m(0.0, 150.0 / 331.0) * image.height as f64 * sign(rng),
                FILL,
            ),
            Op::Rotate => geometry::rotate(image, m(0.0, 30.0), FILL),
            Op::Color => color::color(image, enhance(rng)),
            Op::Contrast => color::contrast(image, enhance(rng)),
            Op::Sharpness => color::sharpness(image, enhance(rng)),
            Op::Brightness => color::brightness(image, enhance(rng)),
            Op::Posterize => color::posterize(image, m(8.0, 4.0).round() as u32),
            Op::Solarize => color::solarize(image, m(256.0, 0.0)),
            Op::AutoContrast => color::autocontrast(image),
            Op::Equalize => color::equalize(image),
            Op::Invert => color::invert(image),
        }
    }
}

/// One sub-policy: `(probability, operation, magnitude level)`, twice.
pub type SubPolicy = [(f64, Op, usize); 2];

/// The 25 sub-policies of the CIFAR-10 policy, in the paper's order.
pub const CIFAR10_POLICY: [SubPolicy; 25] = {
    use Op::*;
    [
        [(0.1, Invert, 7), (0.2, Contrast, 6)],
        [(0.7, Rotate, 2), (0.3, TranslateX, 9)],
        [(0.8, Sharpness, 1), (0.9, Sharpness, 3)],
        [(0.5, ShearY, 8), (0.7, TranslateY, 9)],
        [(0.5, AutoContrast, 8), (0.9, Equalize, 2)],
        [(0.2, ShearY, 7), (0.3, Posterize, 7)],
        [(0.4, Color, 3), (0.6, Brightness, 7)],
        [(0.3, Sharpness, 9), (0.7, Brightness, 9)],
        [(0.6, Equalize, 5), (0.5, Equalize, 1)],
        [(0.6, Contrast, 7), (0.6, Sharpness, 5)],
        [(0.7, Color, 7), (0.5, TranslateX, 8)],
        [(0.3, Equalize, 7), (0.4, AutoContrast, 8)],
        [(0.4, TranslateY, 3), (0.2, Sharpness, 6)],
        [(0.9, Brightness, 6), (0.2, Color, 8)],
        [(0.5, Solarize, 2), (0.0, Invert, 3)],
        [(0.2, Equalize, 0), (0.6, AutoContrast, 0)],
        [(0.2, Equalize, 8), (0.6, Equalize, 4)],
        [(0.9, Color, 9), (0.6, Equalize, 6)],
        [(0.8, AutoContrast, 4), (0.2, Solarize, 8)],
        [(0.1, Brightness, 3), (0.7, Color, 0)],
        [(0.4, Solarize, 5), (0.9, AutoContrast, 3)],
        [(0.9, TranslateY, 9), (0.7, TranslateY, 9)],
        [(0.9, AutoContrast, 2), (0.8, Solarize, 3)],
        [(0.8, Equalize, 8), (0.1, Invert, 3)],
        [(0.7, TranslateY, 9), (0.9, AutoContrast, 1)],
    ]
};

/// Applies one sub-policy: each operation runs when a uniform draw falls below its
/// probability.
pub fn apply_sub_policy(image: Image, policy: &SubPolicy, rng: &mut Rng) -> Image {
    let mut out = image;
    for &(p, op, level) in policy {
        if rng.bernoulli(p) {
            out = op.apply(&out, level, rng);
        }
    }
    out
}

/// AutoAugment with the CIFAR-10 policy: a uniformly chosen sub-policy.
pub fn cifar10_autoaugment(image: Image, rng: &mut Rng) -> Image {
    let policy = &CIFAR10_POLICY[rng.index(CIFAR10_POLICY.len())];
    apply_sub_policy(image, policy, rng)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_sub_policy_runs_on_gray_and_colour_images() {
        for channels in [1, 3] {
            let img = Image::new(
                channels,
                12,
                10,
                (0..channels * 120).map(|i| (i * 7 % 256) as u8).collect(),
            )
            .unwrap();
            for (k, policy) in CIFAR10_POLICY.iter().enumerate() {
                // Force both operations with probability one at their levels.
                let forced = [
                    (1.0, policy[0].1, policy[0].2),
                    (1.0, policy[1].1, policy[1].2),
                ];
                let out = apply_sub_policy(img.clone(), &forced, &mut Rng::from_key(&[k as u64]));
                assert_eq!(out.shape(), (channels, 12, 10));
            }
        }
    }

    #[test]
    fn deterministic_for_a_key_and_every_policy_is_drawn() {
        let img = Image::new(3, 8, 8, (0..192).map(|i| i as u8).collect()).unwrap();
        let a = cifar10_autoaugment(img.clone(), &mut Rng::from_key(&[1, 2, 3]));
        let b = cifar10_autoaugment(img.clone(), &mut Rng::from_key(&[1, 2, 3]));
        assert_eq!(a, b);
        let mut seen = [false; 25];
        for k in 0..2000 {
            seen[Rng::from_key(&[k]).index(25)] = true;
        }
        assert!(seen.iter().all(|&s| s));
    }

    #[test]
    fn magnitude_tables() {
        assert_eq!(linspace(0.0, 0.3, 9, 10), 0.3);
        assert!((linspace(0.0, 30.0, 2, 10) - 20.0 / 3.0).abs() < 1e-12);
        let bits: Vec<u32> = (0..10)
            .map(|l| linspace(8.0, 4.0, l, 10).round() as u32)
            .collect();
        assert_eq!(bits, vec![8, 8, 7, 7, 6, 6, 5, 5, 4, 4]);
        assert_eq!(linspace(256.0, 0.0, 0, 10), 256.0);
        assert!((linspace(256.0, 0.0, 2, 10) - 199.111).abs() < 1e-3);
        // Level 0 of a signed enhancer is the identity; Solarize at level 0 too.
        let img = Image::new(1, 2, 2, vec![0, 90, 180, 255]).unwrap();
        for op in [
            Op::Color,
            Op::Contrast,
            Op::Sharpness,
            Op::Brightness,
            Op::Solarize,
        ] {
            assert_eq!(op.apply(&img, 0, &mut Rng::new(1)), img, "{op:?}");
        }
        assert_eq!(
            Op::Posterize.apply(&img, 9, &mut Rng::new(1)).pixels,
            vec![0, 80, 176, 240]
        );
    }
}
