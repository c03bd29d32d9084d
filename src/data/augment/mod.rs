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
pub(crate) mod geometry;
pub(crate) mod randaugment;
pub(crate) mod timm_randaugment;

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

/// One transform on the 8-bit image.
#[derive(Debug, Clone, PartialEq)]
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

/// Which RandAugment the ImageNet-sized pipelines use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum RandAugmentPolicy {
    /// timm's `rand-n2-m10-mstd0.5` (`timm_randaugment`), the recipes' policy.
    #[default]
    Timm,
    /// torchvision's `RandAugment(num_ops=2, magnitude=10)` (`randaugment`).
    Torchvision,
}

/// A per-view augmentation pipeline: 8-bit steps, `v / 255`, optional Cutout, normalisation.
///
/// ```
/// use rescom::Rng;
/// use rescom::data::{Image, Pipeline};
///
/// let pipeline = Pipeline::cifar_train();
/// let image = Image::filled(3, 32, 32, 200);
/// // The view of sample 7, view 0, epoch 0 under seed 0: a pure function of that key.
/// let view = pipeline.apply(&image, &mut Rng::from_key(&[0, 0, 7, 0]))?;
/// assert_eq!(view.len(), 3 * 32 * 32);
/// assert_eq!(pipeline.output_shape(), (3, 32, 32));
/// assert_eq!(view, pipeline.apply(&image, &mut Rng::from_key(&[0, 0, 7, 0]))?);
/// # Ok::<(), rescom::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct Pipeline {
    steps: Vec<Step>,
    cutout: Option<usize>,
    mean: Vec<f32>,
    std: Vec<f32>,
    output: (usize, usize, usize),
}

impl Pipeline {
    /// A pipeline of `steps`, then Cutout of side `cutout` (if any), then normalisation with
    /// `mean` and `std` (one entry per channel, `std > 0`). `output` is the `(C, H, W)` every
    /// view must have; [`Pipeline::apply`] checks it. Errors on invalid steps or statistics.
    pub fn new(
        steps: Vec<Step>,
        cutout: Option<usize>,
        mean: &[f32],
        std: &[f32],
        output: (usize, usize, usize),
    ) -> Result<Self> {
        if output.0 == 0 || output.1 == 0 || output.2 == 0 {
            return Err(Error::config(
                "output",
                format!("{output:?} has a zero dimension"),
            ));
        }
        if mean.len() != output.0
            || std.len() != output.0
            || mean.iter().any(|m| !m.is_finite())
            || std.iter().any(|&s| !(s.is_finite() && s > 0.0))
        {
            return Err(Error::config(
                "mean/std",
                format!("need {} finite entries each, std positive", output.0),
            ));
        }
        steps.iter().try_for_each(Step::validate)?;
        Ok(Self {
            steps,
            cutout,
            mean: mean.to_vec(),
            std: std.to_vec(),
            output,
        })
    }

    fn fixed(
        steps: Vec<Step>,
        cutout: Option<usize>,
        mean: &[f32],
        std: &[f32],
        output: (usize, usize, usize),
    ) -> Self {
        Self {
            steps,
            cutout,
            mean: mean.to_vec(),
            std: std.to_vec(),
            output,
        }
    }

    /// The CIFAR training recipe for `side x side` images of `mean.len()` channels: random
    /// crop `side` with zero padding `padding`, horizontal flip (p = 0.5), AutoAugment (CIFAR-10
    /// policy), Cutout of side `cutout` (if any), normalisation.
    pub fn autoaugment_train(
        side: usize,
        padding: usize,
        cutout: Option<usize>,
        mean: &[f32],
        std: &[f32],
    ) -> Result<Self> {
        Self::new(
            vec![
                Step::RandomCrop {
                    size: side,
                    padding,
                },
                Step::HorizontalFlip { p: 0.5 },
                Step::AutoAugmentCifar10,
            ],
            cutout,
            mean,
            std,
            (mean.len(), side, side),
        )
    }

    /// Evaluation of images already of shape `output`: normalisation only.
    pub fn normalize_only(
        output: (usize, usize, usize),
        mean: &[f32],
        std: &[f32],
    ) -> Result<Self> {
        Self::new(Vec::new(), None, mean, std, output)
    }

    /// The CIFAR training recipe (3x32x32): crop 32 with padding 4, flip, AutoAugment
    /// (CIFAR-10 policy), Cutout 16, normalisation with [`CIFAR_MEAN`] / [`CIFAR_STD`].
    pub fn cifar_train() -> Self {
        Self::fixed(
            vec![
                Step::RandomCrop {
                    size: 32,
                    padding: 4,
                },
                Step::HorizontalFlip { p: 0.5 },
                Step::AutoAugmentCifar10,
            ],
            Some(16),
            &CIFAR_MEAN,
            &CIFAR_STD,
            (3, 32, 32),
        )
    }

    /// CIFAR evaluation (one centre view): normalisation only.
    pub fn cifar_eval() -> Self {
        Self::fixed(Vec::new(), None, &CIFAR_MEAN, &CIFAR_STD, (3, 32, 32))
    }

    /// The CIFAR recipe transposed to 1x28x28 Fashion-MNIST: crop 28 with padding 4, flip,
    /// AutoAugment (CIFAR-10 policy; its colour operations act on the single channel and
    /// Color is the identity), Cutout 14 (half the side, as 16 is for 32), normalisation with
    /// [`FASHION_MNIST_MEAN`] / [`FASHION_MNIST_STD`].
    pub fn fashion_mnist_train() -> Self {
        Self::fixed(
            vec![
                Step::RandomCrop {
                    size: 28,
                    padding: 4,
                },
                Step::HorizontalFlip { p: 0.5 },
                Step::AutoAugmentCifar10,
            ],
            Some(14),
            &FASHION_MNIST_MEAN,
            &FASHION_MNIST_STD,
            (1, 28, 28),
        )
    }

    /// Fashion-MNIST evaluation: normalisation only.
    pub fn fashion_mnist_eval() -> Self {
        Self::fixed(
            Vec::new(),
            None,
            &FASHION_MNIST_MEAN,
            &FASHION_MNIST_STD,
            (1, 28, 28),
        )
    }

    /// The ImageNet-LT recipe at side `size` (224 in the paper), also the iNaturalist one:
    /// RandomResizedCrop (scale 0.08-1, ratio 3/4-4/3), flip, colour jitter 0.4 (brightness,
    /// contrast, saturation), grayscale with p = 0.2, timm's RandAugment `rand-n2-m10-mstd0.5`
    /// with fill (124, 116, 104), normalisation with [`IMAGENET_MEAN`] / [`IMAGENET_STD`].
    /// Takes RGB images of any size.
    pub fn imagenet_train(size: usize) -> Self {
        Self::imagenet_train_with(size, RandAugmentPolicy::Timm)
    }

    /// [`Pipeline::imagenet_train`] with the RandAugment policy of choice.
    pub fn imagenet_train_with(size: usize, policy: RandAugmentPolicy) -> Self {
        let rand_augment = match policy {
            RandAugmentPolicy::Timm => {
                Step::TimmRandAugment(timm_randaugment::TimmRandAugment::recipe())
            }
            RandAugmentPolicy::Torchvision => Step::RandAugment { n: 2, m: 10 },
        };
        Self::fixed(
            vec![
                Step::RandomResizedCrop {
                    size,
                    scale: (0.08, 1.0),
                    ratio: (3.0 / 4.0, 4.0 / 3.0),
                },
                Step::HorizontalFlip { p: 0.5 },
                Step::ColorJitter {
                    strength: (0.4, 0.4, 0.4),
                    p: 1.0,
                },
                Step::RandomGrayscale { p: 0.2 },
                rand_augment,
            ],
            None,
            &IMAGENET_MEAN,
            &IMAGENET_STD,
            (3, size, size),
        )
    }

    /// ImageNet evaluation: resize the shorter side to `size * 256 / 224` (256 for 224),
    /// centre crop `size`, normalisation.
    pub fn imagenet_eval(size: usize) -> Self {
        Self::fixed(
            vec![
                Step::ResizeShorter(size * 256 / 224),
                Step::CenterCrop(size),
            ],
            None,
            &IMAGENET_MEAN,
            &IMAGENET_STD,
            (3, size, size),
        )
    }

    /// The 8-bit steps, in order.
    pub fn steps(&self) -> &[Step] {
        &self.steps
    }

    /// Cutout side, if any.
    pub fn cutout(&self) -> Option<usize> {
        self.cutout
    }

    /// Per-channel normalisation mean and standard deviation.
    pub fn normalization(&self) -> (&[f32], &[f32]) {
        (&self.mean, &self.std)
    }

    /// `(C, H, W)` of every view.
    pub fn output_shape(&self) -> (usize, usize, usize) {
        self.output
    }

    /// Values per view, `C * H * W`.
    pub fn output_len(&self) -> usize {
        self.output.0 * self.output.1 * self.output.2
    }

    /// The augmented 8-bit image, before conversion, Cutout and normalisation. Errors when
    /// the input image is inconsistent ([`Image::validate`]).
    pub fn augment(&self, image: &Image, rng: &mut Rng) -> Result<Image> {
        image.validate()?;
        let mut img = image.clone();
        for step in &self.steps {
            img = step.apply(img, rng);
        }
        Ok(img)
    }

    /// The augmented, normalised view.
    ///
    /// # Shapes
    /// Returns `C * H * W` values, CHW, for [`Pipeline::output_shape`] `(C, H, W)`.
    pub fn apply(&self, image: &Image, rng: &mut Rng) -> Result<Vec<f32>> {
        let mut out = vec![0.0; self.output_len()];
        self.apply_into(image, rng, &mut out)?;
        Ok(out)
    }

    /// [`Pipeline::apply`] into a caller's buffer of [`Pipeline::output_len`] values. Errors
    /// when the input image is inconsistent ([`Image::validate`]), the augmented image does
    /// not have the declared output shape (e.g. a dataset of another image size) or the
    /// buffer has the wrong length.
    pub fn apply_into(&self, image: &Image, rng: &mut Rng, out: &mut [f32]) -> Result<()> {
        let (c, h, w) = self.output;
        if c * h * w == 0 {
            return Err(Error::config(
                "output",
                format!("{:?} has a zero dimension", self.output),
            ));
        }
        if out.len() != c * h * w {
            return Err(Error::Shape {
                name: "view buffer",
                actual: vec![out.len()],
                expected: format!("{} values ({c}x{h}x{w})", c * h * w),
            });
        }
        let img = self.augment(image, rng)?;
        if img.shape() != self.output {
            return Err(Error::InvalidDataset(format!(
                "the pipeline yields {}x{}x{} views from a {}x{}x{} image but is declared to \
                 yield {c}x{h}x{w}; check the image size of the dataset",
                img.channels, img.height, img.width, image.channels, image.height, image.width
            )));
        }
        for (o, &v) in out.iter_mut().zip(&img.pixels) {
            *o = f32::from(v) / 255.0;
        }
        if let Some(length) = self.cutout {
            cutout(out, c, h, w, length, rng);
        }
        let area = h * w;
        for (ch, plane) in out.chunks_exact_mut(area).enumerate() {
            let (m, s) = (self.mean[ch], self.std[ch]);
            plane.iter_mut().for_each(|v| *v = (*v - m) / s);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cutout_clips_at_the_border() {
        let mut rng = Rng::new(5);
        let mut sizes = std::collections::HashSet::new();
        for _ in 0..300 {
            let mut view = vec![1.0f32; 2 * 8 * 8];
            cutout(&mut view, 2, 8, 8, 4, &mut rng);
            let zeros = view.iter().filter(|&&v| v == 0.0).count();
            // Both channels lose the same square of at most 4x4 and at least 2x2 pixels.
            assert_eq!(zeros % 2, 0);
            assert!((2 * 4..=2 * 16).contains(&zeros), "{zeros}");
            assert_eq!(view[..64].iter().filter(|&&v| v == 0.0).count(), zeros / 2);
            sizes.insert(zeros / 2);
        }
        assert!(sizes.contains(&16) && sizes.contains(&4), "{sizes:?}");
    }

    #[test]
    fn pipelines_validate_their_parameters() {
        assert!(Pipeline::new(Vec::new(), None, &[0.5], &[0.0], (1, 2, 2)).is_err());
        assert!(Pipeline::new(Vec::new(), None, &[0.5], &[0.5], (1, 0, 2)).is_err());
        assert!(Pipeline::new(Vec::new(), None, &[0.5, 0.5], &[0.5], (1, 2, 2)).is_err());
        let bad = Step::RandomResizedCrop {
            size: 4,
            scale: (0.5, 0.1),
            ratio: (0.75, 1.33),
        };
        assert!(Pipeline::new(vec![bad], None, &[0.5], &[0.5], (1, 4, 4)).is_err());
        assert!(Step::HorizontalFlip { p: 1.5 }.validate().is_err());
        for p in [
            Pipeline::cifar_train(),
            Pipeline::cifar_eval(),
            Pipeline::fashion_mnist_train(),
            Pipeline::fashion_mnist_eval(),
            Pipeline::imagenet_train(224),
            Pipeline::imagenet_train_with(224, RandAugmentPolicy::Torchvision),
            Pipeline::imagenet_eval(224),
        ] {
            let (mean, std) = p.normalization();
            let rebuilt =
                Pipeline::new(p.steps().to_vec(), p.cutout(), mean, std, p.output_shape()).unwrap();
            assert_eq!(rebuilt, p);
        }
        let small =
            Pipeline::autoaugment_train(28, 4, Some(14), &FASHION_MNIST_MEAN, &FASHION_MNIST_STD)
                .unwrap();
        assert_eq!(small, Pipeline::fashion_mnist_train());
        let mut buffer = vec![0.0; 5];
        let err = Pipeline::cifar_eval()
            .apply_into(&Image::filled(3, 32, 32, 0), &mut Rng::new(0), &mut buffer)
            .unwrap_err();
        assert!(matches!(err, Error::Shape { .. }), "{err}");
    }
}
