//! AutoAugment's CIFAR-10 policy (Cubuk et al., "AutoAugment: Learning Augmentation Policies
//! from Data", CVPR 2019, appendix table), as used by the CIFAR-LT recipes.
//!
//! Each image draws one of the 25 sub-policies uniformly; a sub-policy applies two operations,
//! each with its own probability and magnitude level (0-9). Magnitudes follow the reference
//! implementation's tables over 10 levels: shear `0..0.3`, translation `0..150/331` of the
//! image side, rotation `0..30` degrees, colour/contrast/sharpness/brightness factor
//! `1 +- 0..0.9`, posterize `8..4` bits, solarize threshold `256..0`. Shear, translation,
//! rotation and the enhance factors take a random sign; geometric operations fill with 128.

use crate::data::augment::{color, geometry};
use crate::data::image::Image;
use crate::rng::Rng;

/// An AutoAugment operation.
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
    /// Saturation.
    Color,
    /// Posterize.
    Posterize,
    /// Solarize.
    Solarize,
    /// Contrast.
    Contrast,
    /// Sharpness.
    Sharpness,
    /// Brightness.
    Brightness,
    /// Autocontrast.
    AutoContrast,
    /// Histogram equalisation.
    Equalize,
    /// Invert.
    Invert,
}

/// Fill value of the geometric operations.
pub const FILL: u8 = 128;

fn linspace(lo: f64, hi: f64, level: usize, levels: usize) -> f64 {
    lo + (hi - lo) * level as f64 / (levels - 1) as f64
}

impl Op {
    /// Applies the operation at `level` of `levels` magnitude levels (AutoAugment: 10).
    pub fn apply(self, image: &Image, level: usize, levels: usize, rng: &mut Rng) -> Image {
        let sign = |rng: &mut Rng| if rng.bernoulli(0.5) { -1.0 } else { 1.0 };
        let m = |lo: f64, hi: f64| linspace(lo, hi, level, levels);
        match self {
            Op::ShearX => geometry::shear_x(image, m(0.0, 0.3) * sign(rng), FILL),
            Op::ShearY => geometry::shear_y(image, m(0.0, 0.3) * sign(rng), FILL),
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
            Op::Rotate => geometry::rotate(image, m(0.0, 30.0) * sign(rng), FILL),
            Op::Color => color::color(image, 1.0 + m(0.0, 0.9) * sign(rng)),
            Op::Contrast => color::contrast(image, 1.0 + m(0.0, 0.9) * sign(rng)),
            Op::Sharpness => color::sharpness(image, 1.0 + m(0.0, 0.9) * sign(rng)),
            Op::Brightness => color::brightness(image, 1.0 + m(0.0, 0.9) * sign(rng)),
            Op::Posterize => color::posterize(image, m(8.0, 4.0).round() as u32),
            Op::Solarize => color::solarize(image, m(256.0, 0.0).round() as u32),
            Op::AutoContrast => color::autocontrast(image),
            Op::Equalize => color::equalize(image),
            Op::Invert => color::invert(image),
        }
    }
}

/// One sub-policy: `(probability, op, level)` twice.
pub type SubPolicy = [(f64, Op, usize); 2];

/// The 25 sub-policies of the CIFAR-10 policy.
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

/// Applies one sub-policy.
pub fn apply_sub_policy(image: Image, policy: &SubPolicy, rng: &mut Rng) -> Image {
    let mut out = image;
    for &(p, op, level) in policy {
        if rng.bernoulli(p) {
            out = op.apply(&out, level, 10, rng);
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
                assert_eq!((out.channels, out.height, out.width), (channels, 12, 10));
            }
        }
    }

    #[test]
    fn deterministic_for_a_key() {
        let img = Image::new(3, 8, 8, (0..192).map(|i| i as u8).collect()).unwrap();
        let a = cifar10_autoaugment(img.clone(), &mut Rng::from_key(&[1, 2, 3]));
        let b = cifar10_autoaugment(img, &mut Rng::from_key(&[1, 2, 3]));
        assert_eq!(a, b);
    }

    #[test]
    fn magnitude_tables() {
        assert!((linspace(0.0, 0.3, 9, 10) - 0.3).abs() < 1e-12);
        assert_eq!(linspace(8.0, 4.0, 7, 10).round() as u32, 5);
        assert_eq!(linspace(256.0, 0.0, 0, 10).round() as u32, 256);
    }
}
