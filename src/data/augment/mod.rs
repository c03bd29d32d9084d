//! Per-view augmentation pipelines.
//!
//! A [`Pipeline`] turns an 8-bit image into a normalised `f32` CHW view: a sequence of
//! [`Step`]s on the 8-bit image (as PIL-based reference code does), conversion to `[0, 1]`,
//! optional Cutout, then per-channel normalisation. All randomness comes from the caller's
//! [`Rng`], so a view is a pure function of the image and the generator's key.

pub mod autoaugment;
pub mod color;
pub mod geometry;
pub mod randaugment;

use crate::data::image::Image;
use crate::error::{Error, Result};
use crate::rng::Rng;

/// CIFAR per-channel mean of the recipe.
pub const CIFAR_MEAN: [f32; 3] = [0.4914, 0.4822, 0.4465];
/// CIFAR per-channel standard deviation of the recipe.
pub const CIFAR_STD: [f32; 3] = [0.2023, 0.1994, 0.2010];
/// Fashion-MNIST mean.
pub const FASHION_MNIST_MEAN: [f32; 1] = [0.2860];
/// Fashion-MNIST standard deviation.
pub const FASHION_MNIST_STD: [f32; 1] = [0.3530];
/// ImageNet per-channel mean.
pub const IMAGENET_MEAN: [f32; 3] = [0.485, 0.456, 0.406];
/// ImageNet per-channel standard deviation.
pub const IMAGENET_STD: [f32; 3] = [0.229, 0.224, 0.225];

/// One transform on the 8-bit image.
#[derive(Debug, Clone, PartialEq)]
pub enum Step {
    /// Random `size x size` crop after zero padding by `padding` pixels.
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
    /// AutoAugment, CIFAR-10 policy.
    AutoAugmentCifar10,
    /// RandAugment with `n` operations at magnitude `m` (of 30).
    RandAugment {
        /// Operations per image.
        n: usize,
        /// Magnitude level.
        m: usize,
    },
    /// torchvision `RandomResizedCrop`.
    RandomResizedCrop {
        /// Output side.
        size: usize,
        /// Area fraction range.
        scale: (f64, f64),
        /// Aspect-ratio range.
        ratio: (f64, f64),
    },
    /// Colour jitter (brightness, contrast, saturation), applied with probability `p`.
    ColorJitter {
        /// Brightness, contrast and saturation strengths.
        strength: (f64, f64, f64),
        /// Probability.
        p: f64,
    },
    /// Grayscale with probability `p`.
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
    fn apply(&self, image: Image, rng: &mut Rng) -> Image {
        match *self {
            Step::RandomCrop { size, padding } => geometry::random_crop(&image, size, padding, rng),
            Step::HorizontalFlip { p } => geometry::random_hflip(image, p, rng),
            Step::AutoAugmentCifar10 => autoaugment::cifar10_autoaugment(image, rng),
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
}

/// Cutout (DeVries and Taylor, 2017): one `length x length` square, centred at a uniformly
/// random pixel and clipped at the borders, set to zero on the `[0, 1]` image before
/// normalisation (the order of the reference CIFAR code: `ToTensor`, `Cutout`, `Normalize`).
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
            view[row + x0..row + x1].fill(0.0);
        }
    }
}

/// A per-view augmentation pipeline.
///
/// ```
/// use rescom::Rng;
/// use rescom::data::{Image, Pipeline};
///
/// let pipeline = Pipeline::cifar_train();
/// let image = Image::filled(3, 32, 32, 200);
/// let view = pipeline.apply(&image, &mut Rng::from_key(&[0, 0, 7, 0]))?;
/// assert_eq!(view.len(), 3 * 32 * 32);
/// assert_eq!(pipeline.output_shape(), (3, 32, 32));
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
    /// `mean` and `std` (one entry per channel). `output` is the `(C, H, W)` every view must
    /// have; [`Pipeline::apply`] checks it.
    pub fn new(
        steps: Vec<Step>,
        cutout: Option<usize>,
        mean: &[f32],
        std: &[f32],
        output: (usize, usize, usize),
    ) -> Result<Self> {
        if mean.len() != output.0 || std.len() != output.0 || std.iter().any(|&s| s <= 0.0) {
            return Err(Error::config(
                "mean/std",
                format!("need {} positive entries each", output.0),
            ));
        }
        Ok(Self {
            steps,
            cutout,
            mean: mean.to_vec(),
            std: std.to_vec(),
            output,
        })
    }

    /// The CIFAR training recipe: crop 32 with padding 4, flip, AutoAugment (CIFAR-10
    /// policy), Cutout 16, normalisation.
    pub fn cifar_train() -> Self {
        Self {
            steps: vec![
                Step::RandomCrop {
                    size: 32,
                    padding: 4,
                },
                Step::HorizontalFlip { p: 0.5 },
                Step::AutoAugmentCifar10,
            ],
            cutout: Some(16),
            mean: CIFAR_MEAN.to_vec(),
            std: CIFAR_STD.to_vec(),
            output: (3, 32, 32),
        }
    }

    /// CIFAR evaluation: normalisation only.
    pub fn cifar_eval() -> Self {
        Self {
            steps: Vec::new(),
            cutout: None,
            mean: CIFAR_MEAN.to_vec(),
            std: CIFAR_STD.to_vec(),
            output: (3, 32, 32),
        }
    }

    /// The CIFAR recipe transposed to 1x28x28 Fashion-MNIST/MNIST: crop 28 with padding 4,
    /// flip, AutoAugment (CIFAR-10 policy, colour operations act on the single channel),
    /// Cutout 14 (half the side, as 16 is for 32), normalisation.
    pub fn fashion_mnist_train() -> Self {
        Self {
            steps: vec![
                Step::RandomCrop {
                    size: 28,
                    padding: 4,
                },
                Step::HorizontalFlip { p: 0.5 },
                Step::AutoAugmentCifar10,
            ],
            cutout: Some(14),
            mean: FASHION_MNIST_MEAN.to_vec(),
            std: FASHION_MNIST_STD.to_vec(),
            output: (1, 28, 28),
        }
    }

    /// Fashion-MNIST evaluation: normalisation only.
    pub fn fashion_mnist_eval() -> Self {
        Self {
            steps: Vec::new(),
            cutout: None,
            mean: FASHION_MNIST_MEAN.to_vec(),
            std: FASHION_MNIST_STD.to_vec(),
            output: (1, 28, 28),
        }
    }

    /// The ImageNet-LT recipe at side `size` (224): RandomResizedCrop (0.08-1), flip,
    /// colour jitter 0.4, grayscale 0.2, RandAugment (2, 10), normalisation.
    pub fn imagenet_train(size: usize) -> Self {
        Self {
            steps: vec![
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
                Step::RandAugment { n: 2, m: 10 },
            ],
            cutout: None,
            mean: IMAGENET_MEAN.to_vec(),
            std: IMAGENET_STD.to_vec(),
            output: (3, size, size),
        }
    }

    /// ImageNet evaluation: resize the shorter side to `size * 256 / 224`, centre crop `size`.
    pub fn imagenet_eval(size: usize) -> Self {
        Self {
            steps: vec![
                Step::ResizeShorter(size * 256 / 224),
                Step::CenterCrop(size),
            ],
            cutout: None,
            mean: IMAGENET_MEAN.to_vec(),
            std: IMAGENET_STD.to_vec(),
            output: (3, size, size),
        }
    }

    /// `(C, H, W)` of every view.
    pub fn output_shape(&self) -> (usize, usize, usize) {
        self.output
    }

    /// Values per view, `C * H * W`.
    pub fn output_len(&self) -> usize {
        self.output.0 * self.output.1 * self.output.2
    }

    /// The augmented, normalised view (CHW `f32`).
    pub fn apply(&self, image: &Image, rng: &mut Rng) -> Result<Vec<f32>> {
        let mut out = vec![0.0; self.output_len()];
        self.apply_into(image, rng, &mut out)?;
        Ok(out)
    }

    /// [`Pipeline::apply`] into a caller's buffer of [`Pipeline::output_len`] values.
    pub fn apply_into(&self, image: &Image, rng: &mut Rng, out: &mut [f32]) -> Result<()> {
        let mut img = image.clone();
        for step in &self.steps {
            img = step.apply(img, rng);
        }
        let (c, h, w) = self.output;
        if (img.channels, img.height, img.width) != self.output || out.len() != c * h * w {
            return Err(Error::InvalidDataset(format!(
                "the pipeline yields {}x{}x{} views but is declared to yield {c}x{h}x{w}; \
                 check the image size of the dataset",
                img.channels, img.height, img.width
            )));
        }
        for (o, &v) in out.iter_mut().zip(&img.pixels) {
            *o = v as f32 / 255.0;
        }
        if let Some(length) = self.cutout {
            cutout(out, c, h, w, length, rng);
        }
        let area = h * w;
        for ch in 0..c {
            let (m, s) = (self.mean[ch], self.std[ch]);
            out[ch * area..(ch + 1) * area]
                .iter_mut()
                .for_each(|v| *v = (*v - m) / s);
        }
        Ok(())
    }
}
