//! A per-view augmentation pipeline and the pipelines of the recipes.

use super::timm_randaugment::TimmRandAugment;
use super::{
    CIFAR_MEAN, CIFAR_STD, FASHION_MNIST_MEAN, FASHION_MNIST_STD, IMAGENET_MEAN, IMAGENET_STD,
    RandAugmentPolicy, Step, cutout,
};
use crate::data::image::Image;
use crate::error::{Error, Result};
use crate::rng::Rng;

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
///
/// A pipeline is serialisable (a run's `run.json` holds its evaluation pipeline): its steps,
/// Cutout side, mean, standard deviation and output shape. Reading one back checks it as
/// [`Pipeline::new`] does.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(try_from = "PipelineFields")]
pub struct Pipeline {
    steps: Vec<Step>,
    cutout: Option<usize>,
    mean: Vec<f32>,
    std: Vec<f32>,
    output: (usize, usize, usize),
}

/// The fields of a serialised [`Pipeline`], checked by [`Pipeline::new`] when it is read.
#[derive(serde::Deserialize)]
struct PipelineFields {
    steps: Vec<Step>,
    cutout: Option<usize>,
    mean: Vec<f32>,
    std: Vec<f32>,
    output: (usize, usize, usize),
}

impl TryFrom<PipelineFields> for Pipeline {
    type Error = Error;

    fn try_from(f: PipelineFields) -> Result<Self> {
        Pipeline::new(f.steps, f.cutout, &f.mean, &f.std, f.output)
    }
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
            RandAugmentPolicy::Timm => Step::TimmRandAugment(TimmRandAugment::recipe()),
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
