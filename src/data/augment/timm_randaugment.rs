//! RandAugment in the form of timm's `rand_augment_transform("rand-n2-m10-mstd0.5", ...)`, the
//! policy of the ImageNet-LT and iNaturalist recipes.
//!
//! Each of the `n` layers draws one of 15 operations uniformly (with replacement). The layer
//! is applied with probability `p = 0.5`; when it is, its magnitude is drawn from
//! `N(m, std^2)` (`m = 10`, `std = 0.5`) and clipped to `[0, 10]`, and the operation's argument
//! follows from that level as in the table (`l` is the clipped level):
//!
//! | operation | argument | how it is applied (PIL) |
//! | --- | --- | --- |
//! | AutoContrast, Equalize, Invert | - | `ImageOps` |
//! | Rotate | `(l / 10) * 30` degrees, random sign | `rotate`, bilinear or bicubic, fill |
//! | Posterize | `int((l / 10) * 4)` bits kept | `ImageOps.posterize` (0 bits: black) |
//! | Solarize | threshold `min(256, int((l / 10) * 256))` | `ImageOps.solarize` (256: unchanged) |
//! | SolarizeAdd | `min(128, int((l / 10) * 110))` added below 128, saturating | lookup table |
//! | Color, Contrast, Brightness, Sharpness | factor `(l / 10) * 1.8 + 0.1` | `ImageEnhance` |
//! | ShearX / ShearY | `(l / 10) * 0.3`, random sign | affine `(1, s, 0, 0, 1, 0)` / `(1, 0, 0, s, 1, 0)`, bilinear or bicubic, fill |
//! | TranslateXRel / TranslateYRel | `(l / 10) * 0.45` of the width / height in pixels (fractional), random sign | affine `(1, 0, t, 0, 1, 0)` / `(1, 0, 0, 0, 1, t)`, bilinear or bicubic, fill |
//!
//! The sign is negative with probability 1/2; the resampling filter of each geometric operation
//! is bilinear or bicubic with probability 1/2; uncovered pixels take the fill colour,
//! `(124, 116, 104)` (the ImageNet mean in 8 bits) in the recipes. Every operation is checked
//! against timm's own function, bit for bit, on real images (`src/data/augment/timm_parity.rs` (unit tests)).
//!
//! The fill colour is per channel for RGB images; an image with another number of channels
//! fills every channel with the colour's grey level (PIL's `convert("L")` of it, 117 for the
//! recipe's colour).

use crate::data::augment::color;
use crate::data::augment::geometry::{self, Resample};
use crate::data::image::Image;
use crate::error::{Error, Result};
use crate::rng::Rng;

/// The largest magnitude level; drawn levels are clipped to `[0, MAX_LEVEL]`.
pub const MAX_LEVEL: f64 = 10.0;

/// The recipes' fill colour: `round(255 * (0.485, 0.456, 0.406))`.
pub const RECIPE_FILL: [u8; 3] = [124, 116, 104];

/// An operation of the policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TimmOp {
    /// Stretch each channel to the full range.
    AutoContrast,
    /// Histogram equalisation.
    Equalize,
    /// `255 - v`.
    Invert,
    /// Rotation about the centre.
    Rotate,
    /// Keep the top bits of each value.
    Posterize,
    /// Invert values at or above a threshold.
    Solarize,
    /// Add a constant to values below 128.
    SolarizeAdd,
    /// Saturation.
    Color,
    /// Contrast.
    Contrast,
    /// Brightness.
    Brightness,
    /// Sharpness.
    Sharpness,
    /// Shear along x.
    ShearX,
    /// Shear along y.
    ShearY,
    /// Translation along x by a fraction of the width.
    TranslateXRel,
    /// Translation along y by a fraction of the height.
    TranslateYRel,
}

/// The 15 operations, in timm's order (`_RAND_TRANSFORMS`).
pub const OPS: [TimmOp; 15] = [
    TimmOp::AutoContrast,
    TimmOp::Equalize,
    TimmOp::Invert,
    TimmOp::Rotate,
    TimmOp::Posterize,
    TimmOp::Solarize,
    TimmOp::SolarizeAdd,
    TimmOp::Color,
    TimmOp::Contrast,
    TimmOp::Brightness,
    TimmOp::Sharpness,
    TimmOp::ShearX,
    TimmOp::ShearY,
    TimmOp::TranslateXRel,
    TimmOp::TranslateYRel,
];

/// The argument an operation receives at a (clipped) level.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Argument {
    /// No argument (AutoContrast, Equalize, Invert).
    None,
    /// A real value: degrees, an enhancement factor, a shear, or a translation in pixels.
    Real(f64),
    /// A whole number: bits kept, a solarize threshold (up to 256) or the value added.
    Whole(u32),
}

impl TimmOp {
    /// Whether the argument takes a random sign.
    pub fn is_signed(self) -> bool {
        matches!(
            self,
            TimmOp::Rotate
                | TimmOp::ShearX
                | TimmOp::ShearY
                | TimmOp::TranslateXRel
                | TimmOp::TranslateYRel
        )
    }

    /// Whether the operation resamples the image (and so draws a filter and uses the fill).
    pub fn is_geometric(self) -> bool {
        self.is_signed()
    }

    /// The argument at `level` (clipped to `[0, MAX_LEVEL]`) for an image of
    /// `height x width`, negated when `negate` and the operation is signed: timm's
    /// `LEVEL_TO_ARG` functions, with their floating-point expressions and truncations.
    pub fn argument(self, level: f64, negate: bool, height: usize, width: usize) -> Argument {
        let l = level.clamp(0.0, MAX_LEVEL) / MAX_LEVEL;
        let signed = |v: f64| if negate { -v } else { v };
        match self {
            TimmOp::AutoContrast | TimmOp::Equalize | TimmOp::Invert => Argument::None,
            TimmOp::Rotate => Argument::Real(signed(l * 30.0)),
            TimmOp::Posterize => Argument::Whole((l * 4.0) as u32),
            TimmOp::Solarize => Argument::Whole(((l * 256.0) as u32).min(256)),
            TimmOp::SolarizeAdd => Argument::Whole(((l * 110.0) as u32).min(128)),
            TimmOp::Color | TimmOp::Contrast | TimmOp::Brightness | TimmOp::Sharpness => {
                Argument::Real(l * 1.8 + 0.1)
            }
            TimmOp::ShearX | TimmOp::ShearY => Argument::Real(signed(l * 0.3)),
            TimmOp::TranslateXRel => Argument::Real(signed(l * 0.45) * width as f64),
            TimmOp::TranslateYRel => Argument::Real(signed(l * 0.45) * height as f64),
        }
    }

    /// Applies the operation with `argument` (see [`TimmOp::argument`]); geometric operations
    /// sample with `resample` and fill uncovered pixels with `fill` (see the module docs).
    pub fn apply(
        self,
        image: &Image,
        argument: Argument,
        resample: Resample,
        fill: [u8; 3],
    ) -> Image {
        let real = match argument {
            Argument::Real(v) => v,
            Argument::Whole(v) => f64::from(v),
            Argument::None => 0.0,
        };
        let whole = match argument {
            Argument::Whole(v) => v,
            Argument::Real(v) => v as u32,
            Argument::None => 0,
        };
        let fill = fill_for(image, fill);
        match self {
            TimmOp::AutoContrast => color::autocontrast(image),
            TimmOp::Equalize => color::equalize(image),
            TimmOp::Invert => color::invert(image),
            TimmOp::Rotate => geometry::rotate_with(image, real, resample, &fill),
            TimmOp::Posterize => color::posterize(image, whole),
            TimmOp::Solarize => color::solarize(image, real),
            TimmOp::SolarizeAdd => color::solarize_add(image, whole.min(255) as u8, 128),
            TimmOp::Color => color::color(image, real),
            TimmOp::Contrast => color::contrast(image, real),
            TimmOp::Brightness => color::brightness(image, real),
            TimmOp::Sharpness => color::sharpness(image, real),
            TimmOp::ShearX => {
                geometry::affine_with(image, [1.0, real, 0.0, 0.0, 1.0, 0.0], resample, &fill)
            }
            TimmOp::ShearY => {
                geometry::affine_with(image, [1.0, 0.0, 0.0, real, 1.0, 0.0], resample, &fill)
            }
            TimmOp::TranslateXRel => {
                geometry::affine_with(image, [1.0, 0.0, real, 0.0, 1.0, 0.0], resample, &fill)
            }
            TimmOp::TranslateYRel => {
                geometry::affine_with(image, [1.0, 0.0, 0.0, 0.0, 1.0, real], resample, &fill)
            }
        }
    }
}

/// The fill of `image`'s channels: the colour for RGB, its grey level otherwise.
fn fill_for(image: &Image, fill: [u8; 3]) -> Vec<u8> {
    if image.channels == 3 {
        fill.to_vec()
    } else {
        let [r, g, b] = fill.map(u32::from);
        let grey = ((19595 * r + 38470 * g + 7471 * b + (1 << 15)) >> 16) as u8;
        vec![grey; image.channels]
    }
}

/// The random choices of one layer.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LayerDraw {
    /// The operation.
    pub op: TimmOp,
    /// Whether the layer is applied (probability `p`).
    pub applied: bool,
    /// The magnitude drawn, before clipping to `[0, MAX_LEVEL]`.
    pub level: f64,
    /// Whether a signed argument is negated.
    pub negate: bool,
    /// Bicubic (`true`) or bilinear (`false`) resampling for geometric operations.
    pub bicubic: bool,
}

impl LayerDraw {
    /// Applies the layer as drawn (the identity when not applied).
    pub fn apply(&self, image: Image, fill: [u8; 3]) -> Image {
        if !self.applied {
            return image;
        }
        let argument = self
            .op
            .argument(self.level, self.negate, image.height, image.width);
        let resample = if self.bicubic {
            Resample::Bicubic
        } else {
            Resample::Bilinear
        };
        self.op.apply(&image, argument, resample, fill)
    }
}

/// timm's RandAugment policy (`rand-n{layers}-m{magnitude}-mstd{magnitude_std}`, each layer
/// applied with probability `probability`).
///
/// ```
/// use rescom::Rng;
/// use rescom::data::Image;
/// use rescom::data::TimmRandAugment;
///
/// let policy = TimmRandAugment::recipe(); // rand-n2-m10-mstd0.5, p = 0.5
/// let image = Image::new(3, 8, 8, (0..192).map(|v| v as u8).collect())?;
/// let out = policy.apply(image.clone(), &mut Rng::new(3));
/// assert_eq!(out.shape(), image.shape());
/// // The view is a pure function of the generator.
/// assert_eq!(out, policy.apply(image, &mut Rng::new(3)));
/// # Ok::<(), rescom::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct TimmRandAugment {
    /// Operations drawn per image (`n`).
    pub layers: usize,
    /// Mean magnitude level (`m`), in `[0, MAX_LEVEL]`.
    pub magnitude: f64,
    /// Standard deviation of the magnitude (`mstd`); 0 keeps it fixed.
    pub magnitude_std: f64,
    /// Probability that a drawn layer is applied.
    pub probability: f64,
    /// Fill colour of geometric operations (RGB).
    pub fill: [u8; 3],
}

impl TimmRandAugment {
    /// The recipes' policy: `rand-n2-m10-mstd0.5`, probability 0.5, fill `(124, 116, 104)`.
    pub fn recipe() -> Self {
        Self {
            layers: 2,
            magnitude: 10.0,
            magnitude_std: 0.5,
            probability: 0.5,
            fill: RECIPE_FILL,
        }
    }

    /// Checks the parameters: magnitude in `[0, MAX_LEVEL]`, standard deviation finite and
    /// non-negative, probability in `[0, 1]`.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] otherwise.
    pub fn validate(&self) -> Result<()> {
        if !(0.0..=MAX_LEVEL).contains(&self.magnitude) {
            return Err(Error::config(
                "magnitude",
                format!("must lie in [0, {MAX_LEVEL}], got {}", self.magnitude),
            ));
        }
        if !(self.magnitude_std.is_finite() && self.magnitude_std >= 0.0) {
            return Err(Error::config(
                "magnitude_std",
                format!("must be finite and >= 0, got {}", self.magnitude_std),
            ));
        }
        if !(0.0..=1.0).contains(&self.probability) {
            return Err(Error::config(
                "probability",
                format!("must lie in [0, 1], got {}", self.probability),
            ));
        }
        Ok(())
    }

    /// Draws the layers of one image: operation uniform over the 15 operations, applied with
    /// probability `probability`, level `magnitude + magnitude_std * N(0, 1)`, sign and filter
    /// each with probability 1/2. Every layer consumes the same number of draws.
    pub fn sample(&self, rng: &mut Rng) -> Vec<LayerDraw> {
        (0..self.layers)
            .map(|_| {
                let op = OPS[rng.index(OPS.len())];
                let applied = rng.next_f64() < self.probability;
                let noise = rng.normal();
                let level = if self.magnitude_std > 0.0 {
                    self.magnitude + self.magnitude_std * noise
                } else {
                    self.magnitude
                };
                LayerDraw {
                    op,
                    applied,
                    level,
                    negate: rng.bernoulli(0.5),
                    bicubic: rng.bernoulli(0.5),
                }
            })
            .collect()
    }

    /// Augments `image` with layers drawn from `rng`.
    pub fn apply(&self, image: Image, rng: &mut Rng) -> Image {
        self.sample(rng)
            .iter()
            .fold(image, |image, layer| layer.apply(image, self.fill))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn image() -> Image {
        Image::new(3, 12, 10, (0..360).map(|i| (i * 7 % 256) as u8).collect()).unwrap()
    }

    #[test]
    fn arguments_follow_the_level_table() {
        let arg = |op: TimmOp, level: f64, negate: bool| op.argument(level, negate, 20, 40);
        assert_eq!(arg(TimmOp::Rotate, 10.0, false), Argument::Real(30.0));
        assert_eq!(arg(TimmOp::Rotate, 10.0, true), Argument::Real(-30.0));
        assert_eq!(arg(TimmOp::Rotate, 12.0, false), Argument::Real(30.0));
        assert_eq!(arg(TimmOp::Posterize, 10.0, false), Argument::Whole(4));
        assert_eq!(arg(TimmOp::Posterize, 7.4, false), Argument::Whole(2));
        assert_eq!(arg(TimmOp::Solarize, 10.0, false), Argument::Whole(256));
        assert_eq!(arg(TimmOp::Solarize, 9.5, false), Argument::Whole(243));
        assert_eq!(arg(TimmOp::SolarizeAdd, 10.0, false), Argument::Whole(110));
        // 1.8 + 0.1 is 1.9000000000000001 in f64, as in Python.
        assert_eq!(arg(TimmOp::Color, 10.0, true), Argument::Real(1.8 + 0.1));
        assert_eq!(arg(TimmOp::Color, 0.0, true), Argument::Real(0.1));
        assert_eq!(arg(TimmOp::ShearY, -1.0, false), Argument::Real(0.0));
        assert_eq!(
            arg(TimmOp::TranslateXRel, 10.0, true),
            Argument::Real(-0.45 * 40.0)
        );
        assert_eq!(
            arg(TimmOp::TranslateYRel, 10.0, false),
            Argument::Real(0.45 * 20.0)
        );
        assert_eq!(arg(TimmOp::Invert, 3.0, true), Argument::None);
    }

    #[test]
    fn sampling_has_the_policy_distribution() {
        let policy = TimmRandAugment::recipe();
        let mut rng = Rng::new(11);
        let draws: Vec<LayerDraw> = (0..20_000).flat_map(|_| policy.sample(&mut rng)).collect();
        let n = draws.len() as f64;
        let share =
            |f: &dyn Fn(&LayerDraw) -> bool| draws.iter().filter(|d| f(d)).count() as f64 / n;
        // Each share within 5 standard errors.
        let tol = |p: f64| 5.0 * (p * (1.0 - p) / n).sqrt();
        for op in OPS {
            let p = share(&|d| d.op == op);
            assert!((p - 1.0 / 15.0).abs() < tol(1.0 / 15.0), "{op:?}: {p}");
        }
        for (what, p) in [
            ("applied", share(&|d| d.applied)),
            ("negate", share(&|d| d.negate)),
            ("bicubic", share(&|d| d.bicubic)),
        ] {
            assert!((p - 0.5).abs() < tol(0.5), "{what}: {p}");
        }
        let mean = draws.iter().map(|d| d.level).sum::<f64>() / n;
        let var = draws.iter().map(|d| (d.level - mean).powi(2)).sum::<f64>() / n;
        assert!((mean - 10.0).abs() < 5.0 * 0.5 / n.sqrt(), "{mean}");
        assert!((var.sqrt() - 0.5).abs() < 0.01, "{var}");
        // About half the clipped levels are at the maximum.
        let at_max = share(&|d| d.level >= MAX_LEVEL);
        assert!((at_max - 0.5).abs() < tol(0.5), "{at_max}");
    }

    #[test]
    fn layers_not_applied_keep_the_image_and_geometry_uses_the_fill() {
        let img = image();
        let mut draw = LayerDraw {
            op: TimmOp::Invert,
            applied: false,
            level: 10.0,
            negate: false,
            bicubic: false,
        };
        assert_eq!(draw.apply(img.clone(), RECIPE_FILL), img);
        draw.applied = true;
        assert_eq!(draw.apply(img.clone(), RECIPE_FILL), color::invert(&img));
        // A full translation to the left uncovers the right 45 % in the fill colour.
        draw.op = TimmOp::TranslateXRel;
        let out = draw.apply(img.clone(), RECIPE_FILL);
        for (c, &fill) in RECIPE_FILL.iter().enumerate() {
            assert_eq!(out.get(c, 5, 9), fill);
        }
        let grey = Image::filled(1, 4, 4, 9);
        let out = draw.apply(grey, RECIPE_FILL);
        assert_eq!(out.get(0, 0, 3), 117);
    }

    #[test]
    fn invalid_policies_are_errors() {
        assert!(TimmRandAugment::recipe().validate().is_ok());
        for bad in [
            TimmRandAugment {
                magnitude: 11.0,
                ..TimmRandAugment::recipe()
            },
            TimmRandAugment {
                magnitude_std: f64::INFINITY,
                ..TimmRandAugment::recipe()
            },
            TimmRandAugment {
                probability: -0.1,
                ..TimmRandAugment::recipe()
            },
        ] {
            assert!(bad.validate().is_err(), "{bad:?}");
        }
    }
}
