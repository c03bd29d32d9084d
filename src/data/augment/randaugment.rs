//! RandAugment (Cubuk et al., "RandAugment: Practical automated data augmentation with a
//! reduced search space", 2020), in torchvision's form: `n` operations drawn uniformly (with
//! replacement) from 14, all at magnitude `m` of 31 levels (0-30). Magnitude tables at level
//! `m`: shear `0.3 m/30`, translation `150/331 * side * m/30`, rotation `30 m/30` degrees,
//! enhance factor `1 +- 0.9 m/30`, posterize `8 - round(m / 7.5)` bits, solarize threshold
//! `255 (1 - m/30)`; signed operations take a random sign.

use crate::data::augment::autoaugment::Op;
use crate::data::augment::color;
use crate::data::image::Image;
use crate::rng::Rng;

/// Number of magnitude levels.
pub const LEVELS: usize = 31;

const OPS: [Option<Op>; 14] = [
    None, // identity
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

/// Applies RandAugment(`n`, `m`), `m` in `0..=30`.
pub fn rand_augment(image: Image, n: usize, m: usize, rng: &mut Rng) -> Image {
    let m = m.min(LEVELS - 1);
    let mut out = image;
    for _ in 0..n {
        out = match OPS[rng.index(OPS.len())] {
            None => out,
            Some(Op::Posterize) => color::posterize(
                &out,
                8 - (m as f64 / ((LEVELS - 1) as f64 / 4.0)).round() as u32,
            ),
            Some(Op::Solarize) => color::solarize(
                &out,
                (255.0 * (1.0 - m as f64 / (LEVELS - 1) as f64)) as u32,
            ),
            Some(op) => op.apply(&out, m, LEVELS, rng),
        };
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
        assert_eq!((a.channels, a.height, a.width), (3, 16, 16));
        assert_eq!(rand_augment(img.clone(), 0, 10, &mut Rng::new(4)), img);
    }
}
