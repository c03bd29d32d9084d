//! RandAugment (Cubuk, Zoph, Shlens and Le, "RandAugment: Practical automated data
//! augmentation with a reduced search space", CVPR Workshops 2020) in torchvision's form
//! (`transforms.RandAugment(num_ops=n, magnitude=m, num_magnitude_bins=31)`).
//!
//! Each of the `n` rounds draws one of 14 operations uniformly (with replacement) and applies
//! it at magnitude bin `m` of 31 (`0..=30`); signed operations draw a sign with probability
//! 1/2. The magnitude of bin `m` ([`magnitude`]):
//!
//! | operation | magnitude | how it is applied (torchvision on PIL images) |
//! | --- | --- | --- |
//! | Identity | - | - |
//! | ShearX / ShearY | `0.3 m / 30`, signed | PIL affine `(1, s, 0, 0, 1, 0)` / `(1, 0, 0, s, 1, 0)`, nearest, fill 0 |
//! | TranslateX / TranslateY | `(150 / 331) side m / 30`, signed, truncated to whole pixels | nearest, fill 0 |
//! | Rotate | `30 m / 30` degrees, signed | PIL `rotate`, nearest, fill 0 |
//! | Brightness, Color, Contrast, Sharpness | `0.9 m / 30`, signed | PIL `ImageEnhance` with factor `1 + s` |
//! | Posterize | `8 - round(m / 7.5)` bits | PIL `ImageOps.posterize` |
//! | Solarize | threshold `255 (1 - m / 30)` | PIL `ImageOps.solarize` |
//! | AutoContrast, Equalize | - | PIL `ImageOps` |
//!
//! The ImageNet-LT and iNaturalist recipes use timm's `rand-n2-m10-mstd0.5` instead (a
//! different operation set, magnitudes over 10 levels with Gaussian noise, each operation
//! applied with probability 1/2): [`crate::data::augment::timm_randaugment`]. This module
//! implements the published algorithm as torchvision does; the pipelines use it only when
//! asked ([`crate::data::RandAugmentPolicy::Torchvision`]).

use crate::data::augment::autoaugment::{Op, linspace};
use crate::data::augment::color;
use crate::data::augment::geometry::{self, Resample};
use crate::data::image::Image;
use crate::rng::Rng;

/// Number of magnitude bins (`m` lies in `0..BINS`).
pub const BINS: usize = 31;

/// The operations drawn from; `None` is the identity.
pub const OPS: [Option<Op>; 14] = [
    None,
    Some(Op::ShearX),
    Some(Op::ShearY),
    Some(Op::TranslateX),
    Some(Op::TranslateY),
    Some(Op::Rotate),
    Some(Op::Brightness),
    Some(Op::Color),
    Some(Op::Contrast),
    Some(Op::Sharpness),
    Some(Op::Posterize),
    Some(Op::Solarize),
    Some(Op::AutoContrast),
    Some(Op::Equalize),
];

/// The unsigned magnitude of `op` at bin `m` (clamped to `0..=30`) for an image of
/// `height x width` (table in the module docs), and whether the operation is signed.
pub fn magnitude(op: Op, m: usize, height: usize, width: usize) -> (f64, bool) {
    let bin = |lo: f64, hi: f64| linspace(lo, hi, m, BINS);
    match op {
        Op::ShearX | Op::ShearY => (bin(0.0, 0.3), true),
        Op::TranslateX => (bin(0.0, 150.0 / 331.0 * width as f64), true),
        Op::TranslateY => (bin(0.0, 150.0 / 331.0 * height as f64), true),
        Op::Rotate => (bin(0.0, 30.0), true),
        Op::Brightness | Op::Color | Op::Contrast | Op::Sharpness => (bin(0.0, 0.9), true),
        Op::Posterize => {
            let m = m.min(BINS - 1) as f64;
            (8.0 - (m / ((BINS - 1) as f64 / 4.0)).round(), false)
        }
        Op::Solarize => (bin(255.0, 0.0), false),
        Op::AutoContrast | Op::Equalize | Op::Invert => (0.0, false),
    }
}

/// Applies `op` with the signed magnitude `v` as torchvision's RandAugment does.
fn apply(op: Op, image: &Image, v: f64) -> Image {
    match op {
        Op::ShearX => geometry::shear_x(image, v, Resample::Nearest, 0),
        Op::ShearY => geometry::shear_y(image, v, Resample::Nearest, 0),
        // torchvision translates by `int(v)` pixels: the content moves by `v`.
        Op::TranslateX => geometry::translate_x(image, -v.trunc(), 0),
        Op::TranslateY => geometry::translate_y(image, -v.trunc(), 0),
        Op::Rotate => geometry::rotate(image, v, 0),
        Op::Brightness => color::brightness(image, 1.0 + v),
        Op::Color => color::color(image, 1.0 + v),
        Op::Contrast => color::contrast(image, 1.0 + v),
        Op::Sharpness => color::sharpness(image, 1.0 + v),
        Op::Posterize => color::posterize(image, v as u32),
        Op::Solarize => color::solarize(image, v),
        Op::AutoContrast => color::autocontrast(image),
        Op::Equalize => color::equalize(image),
        Op::Invert => color::invert(image),
    }
}

/// Applies RandAugment(`n`, `m`) with `m` in `0..=30` (larger values clamp to 30).
pub fn rand_augment(image: Image, n: usize, m: usize, rng: &mut Rng) -> Image {
    let mut out = image;
    for _ in 0..n {
        let Some(op) = OPS[rng.index(OPS.len())] else {
            continue;
        };
        let (mut v, signed) = magnitude(op, m, out.height, out.width);
        if signed && rng.bernoulli(0.5) {
            v = -v;
        }
        out = apply(op, &out, v);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_shape_and_is_deterministic() {
        let img = Image::new(3, 16, 16, (0..768).map(|i| (i % 256) as u8).collect()).unwrap();
        let a = rand_augment(img.clone(), 2, 10, &mut Rng::new(4));
        let b = rand_augment(img.clone(), 2, 10, &mut Rng::new(4));
        assert_eq!(a, b);
        assert_eq!(a.shape(), (3, 16, 16));
        assert_eq!(rand_augment(img.clone(), 0, 10, &mut Rng::new(4)), img);
        // At bin 0 only AutoContrast, Equalize and Solarize (threshold 255) change an image.
        let changed = [
            color::autocontrast(&img),
            color::equalize(&img),
            color::solarize(&img, 255.0),
        ];
        for k in 0..50 {
            let out = rand_augment(img.clone(), 1, 0, &mut Rng::new(k));
            assert!(out == img || changed.contains(&out));
        }
    }

    #[test]
    fn torchvision_magnitudes() {
        assert_eq!(magnitude(Op::Posterize, 10, 1, 1), (7.0, false));
        assert_eq!(magnitude(Op::Posterize, 30, 1, 1), (4.0, false));
        assert!((magnitude(Op::Solarize, 10, 1, 1).0 - 170.0).abs() < 1e-9);
        assert!((magnitude(Op::Rotate, 10, 1, 1).0 - 10.0).abs() < 1e-9);
        let (t, signed) = magnitude(Op::TranslateX, 10, 100, 224);
        assert!(signed && (t - 150.0 / 331.0 * 224.0 / 3.0).abs() < 1e-9);
        assert_eq!(magnitude(Op::ShearX, 30, 1, 1), (0.3, true));
    }
}
