//! Backbones and the full ResCom network.
//!
//! - [`CifarResNet`]: ResNet-20/32/44/56/110 for 32x32 (or 28x28) images, 64-d feature;
//! - [`ResNet`]: ResNet-50 and ResNeXt-50 (32x4d) for ImageNet-sized images, 2048-d feature;
//! - [`BatchNorm`]: batch normalisation with PyTorch's running statistics, used by all of them
//!   and by the head;
//! - [`Backbone`]: either of them, chosen at run time by name ([`Architecture`],
//!   [`BackboneConfig`]);
//! - [`ResComModel`]: a backbone followed by a [`ResComHead`] (projection MLP and linear
//!   classifier); it implements [`crate::train::Network`], so the trainer can optimise it.
//!
//! Forward passes follow Burn's convention and panic on an input whose channel count does not
//! match the network; [`ResComModel::check_input`] reports such a shape as an [`Error`] instead.

pub mod batch_norm;
pub mod cifar_resnet;
pub mod resnet;

pub use batch_norm::{BatchNorm, BatchNormConfig};
pub use cifar_resnet::{BasicBlock, CifarResNet, CifarResNetConfig};
pub use resnet::{Bottleneck, ResNet, ResNetConfig};

use std::fmt;
use std::str::FromStr;

use burn::config::Config;
use burn::module::Module;
use burn::tensor::{Device, Tensor};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::head::{ResComHead, ResComHeadConfig};
use crate::train::Network;

/// A backbone architecture by name.
///
/// Names: `resnet20`, `resnet32`, `resnet44`, `resnet56`, `resnet110` (any `resnet{6n+2}` is a
/// CIFAR ResNet, except `resnet50`), `resnet50`, `resnext50` (or `resnext50_32x4d`). A CIFAR
/// ResNet of depth 50 is spelled `cifar_resnet50`; `cifar_resnet{depth}` works for every depth.
/// It is written to configuration files as its name.
///
/// ```
/// use rescom::model::Architecture;
///
/// let arch: Architecture = "resnet32".parse()?;
/// assert_eq!(arch, Architecture::CifarResNet(32));
/// assert_eq!(arch.feature_dim(), 64);
/// assert_eq!(Architecture::ResNeXt50.to_string(), "resnext50");
/// assert!("resnet33".parse::<Architecture>().is_err());
/// # Ok::<(), rescom::Error>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub enum Architecture {
    /// CIFAR ResNet of depth `6n + 2` (20, 32, 44, 56, 110, ...).
    CifarResNet(usize),
    /// ResNet-50 (torchvision layout).
    ResNet50,
    /// ResNeXt-50 32x4d (torchvision layout).
    ResNeXt50,
}

impl Architecture {
    /// Dimension of the pooled feature at the default width: 64 for CIFAR ResNets, 2048 for
    /// ResNet-50 and ResNeXt-50.
    pub fn feature_dim(&self) -> usize {
        match self {
            Architecture::CifarResNet(_) => 64,
            Architecture::ResNet50 | Architecture::ResNeXt50 => 2048,
        }
    }

    /// Whether this is one of the ImageNet-sized networks (ResNet-50, ResNeXt-50).
    pub fn is_imagenet(&self) -> bool {
        !matches!(self, Architecture::CifarResNet(_))
    }
}

impl fmt::Display for Architecture {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Architecture::CifarResNet(50) => f.write_str("cifar_resnet50"),
            Architecture::CifarResNet(depth) => write!(f, "resnet{depth}"),
            Architecture::ResNet50 => f.write_str("resnet50"),
            Architecture::ResNeXt50 => f.write_str("resnext50"),
        }
    }
}

impl FromStr for Architecture {
    type Err = Error;

    /// Parses `resnet20`, `resnet32`, ..., `resnet110`, `cifar_resnet{depth}`, `resnet50`,
    /// `resnext50`.
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "resnet50" => Ok(Architecture::ResNet50),
            "resnext50" | "resnext50_32x4d" => Ok(Architecture::ResNeXt50),
            _ => s
                .strip_prefix("cifar_resnet")
                .or_else(|| s.strip_prefix("resnet"))
                .filter(|d| !d.is_empty() && d.bytes().all(|b| b.is_ascii_digit()))
                .and_then(|d| d.parse::<usize>().ok())
                .filter(|&d| d >= 8 && (d - 2).is_multiple_of(6))
                .map(Architecture::CifarResNet)
                .ok_or_else(|| {
                    Error::config(
                        "architecture",
                        format!(
                            "unknown architecture `{s}`; use resnet20|32|44|56|110 (CIFAR, any \
                             depth 6n + 2), resnet50 or resnext50"
                        ),
                    )
                }),
        }
    }
}

impl TryFrom<String> for Architecture {
    type Error = Error;

    fn try_from(s: String) -> Result<Self> {
        s.parse()
    }
}

impl From<Architecture> for String {
    fn from(a: Architecture) -> Self {
        a.to_string()
    }
}

/// Configuration of a [`Backbone`]: which architecture, and the few options that apply to it.
///
/// ```
/// use burn::tensor::{Device, Tensor};
/// use rescom::model::BackboneConfig;
///
/// let device = Device::flex();
/// let config = BackboneConfig::new("resnet20".parse()?).with_in_channels(1);
/// let backbone = config.init(&device)?;
/// assert_eq!(backbone.feature_dim(), config.feature_dim());
/// let features = backbone.forward(Tensor::<4>::zeros([2, 1, 28, 28], &device));
/// assert_eq!(features.dims(), [2, 64]);
/// # Ok::<(), rescom::Error>(())
/// ```
#[derive(Config, Debug)]
pub struct BackboneConfig {
    /// The network.
    pub architecture: Architecture,
    /// Input channels (1 for MNIST-like data, 3 for RGB).
    #[config(default = 3)]
    pub in_channels: usize,
    /// CIFAR ResNets only: channels of the first stage (16 in the paper; the feature has
    /// `4 * cifar_width` dimensions). Smaller even values give fast demo networks.
    #[config(default = 16)]
    pub cifar_width: usize,
    /// ResNet-50 / ResNeXt-50 only: start every residual branch at zero (last batch-norm scale
    /// of each block set to 0).
    #[config(default = false)]
    pub zero_init_residual: bool,
}

impl BackboneConfig {
    /// Dimension of the pooled feature the backbone will produce.
    pub fn feature_dim(&self) -> usize {
        match self.architecture {
            Architecture::CifarResNet(_) => 4 * self.cifar_width,
            Architecture::ResNet50 | Architecture::ResNeXt50 => 2048,
        }
    }

    /// Builds the backbone.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] for a CIFAR depth that is not `6n + 2`, an odd or zero
    /// `cifar_width`, or zero input channels.
    pub fn init(&self, device: &Device) -> Result<Backbone> {
        Ok(match self.architecture {
            Architecture::CifarResNet(depth) => Backbone::Cifar(
                CifarResNetConfig::new(depth)
                    .with_in_channels(self.in_channels)
                    .with_width(self.cifar_width)
                    .init(device)?,
            ),
            Architecture::ResNet50 => Backbone::ImageNet(
                ResNetConfig::resnet50()
                    .with_in_channels(self.in_channels)
                    .with_zero_init_residual(self.zero_init_residual)
                    .init(device)?,
            ),
            Architecture::ResNeXt50 => Backbone::ImageNet(
                ResNetConfig::resnext50_32x4d()
                    .with_in_channels(self.in_channels)
                    .with_zero_init_residual(self.zero_init_residual)
                    .init(device)?,
            ),
        })
    }
}

/// A backbone chosen at run time: images to a pooled feature vector.
#[derive(Module, Debug)]
pub enum Backbone {
    /// A CIFAR ResNet (64-d feature at the default width).
    Cifar(CifarResNet),
    /// ResNet-50 / ResNeXt-50 (2048-d feature).
    ImageNet(ResNet),
}

impl Backbone {
    /// Builds `architecture` with its default options for images with `in_channels` channels;
    /// see [`BackboneConfig`] for the options.
    ///
    /// # Errors
    /// As [`BackboneConfig::init`].
    pub fn new(architecture: Architecture, in_channels: usize, device: &Device) -> Result<Self> {
        BackboneConfig::new(architecture)
            .with_in_channels(in_channels)
            .init(device)
    }

    /// Dimension of the pooled feature.
    pub fn feature_dim(&self) -> usize {
        match self {
            Backbone::Cifar(net) => net.feature_dim(),
            Backbone::ImageNet(net) => net.feature_dim(),
        }
    }

    /// Channels the backbone expects in its input images.
    pub fn in_channels(&self) -> usize {
        match self {
            Backbone::Cifar(net) => net.in_channels(),
            Backbone::ImageNet(net) => net.in_channels(),
        }
    }

    /// Checks that images of shape `dims` (`[B, C, H, W]`) fit the backbone: a non-empty batch,
    /// `C == in_channels`, positive height and width.
    ///
    /// # Errors
    /// [`Error::Shape`] otherwise.
    pub fn check_input(&self, dims: [usize; 4]) -> Result<()> {
        let channels = self.in_channels();
        let [b, c, h, w] = dims;
        if b == 0 || c != channels || h == 0 || w == 0 {
            return Err(Error::Shape {
                name: "images",
                actual: dims.to_vec(),
                expected: format!("[B >= 1, {channels}, H >= 1, W >= 1]"),
            });
        }
        Ok(())
    }

    /// Pooled features of a batch of images.
    ///
    /// # Shapes
    /// - `images`: `[B, in_channels, H, W]`
    /// - output: `[B, feature_dim]`
    ///
    /// # Panics
    /// If the channel count differs from [`Backbone::in_channels`] (see
    /// [`Backbone::check_input`]).
    pub fn forward(&self, images: Tensor<4>) -> Tensor<2> {
        match self {
            Backbone::Cifar(net) => net.forward(images),
            Backbone::ImageNet(net) => net.forward(images),
        }
    }
}

/// Configuration of a [`ResComModel`].
///
/// The head follows the recipes: `hidden_dim` defaults to the feature dimension
/// (`64 -> 64 -> 32` on CIFAR ResNets, `2048 -> 2048 -> 128` on ResNet-50 with
/// `projection_dim = 128`).
#[derive(Config, Debug)]
pub struct ResComModelConfig {
    /// Backbone architecture name (see [`Architecture`]), e.g. `resnet32` or `resnet50`.
    pub architecture: String,
    /// Number of classes `C`.
    pub num_classes: usize,
    /// Input channels.
    #[config(default = 3)]
    pub in_channels: usize,
    /// Projection dimension `D` (32 in the CIFAR recipe, 128 on ImageNet); must equal the
    /// loss's `dim`.
    #[config(default = 32)]
    pub projection_dim: usize,
    /// Hidden width of the projection MLP; `None` uses the feature dimension.
    #[config(default = "None")]
    pub hidden_dim: Option<usize>,
    /// CIFAR ResNets only: first-stage width (see [`BackboneConfig::cifar_width`]).
    #[config(default = 16)]
    pub cifar_width: usize,
    /// ResNet-50 / ResNeXt-50 only: zero-initialise the last batch-norm scale of each block.
    #[config(default = false)]
    pub zero_init_residual: bool,
}

impl ResComModelConfig {
    /// The backbone part of the configuration.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] for an unknown architecture name.
    pub fn backbone(&self) -> Result<BackboneConfig> {
        Ok(BackboneConfig::new(self.architecture.parse()?)
            .with_in_channels(self.in_channels)
            .with_cifar_width(self.cifar_width)
            .with_zero_init_residual(self.zero_init_residual))
    }

    /// Builds the network.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] for an unknown architecture, an invalid backbone option
    /// ([`BackboneConfig::init`]) or a zero class count or head dimension.
    pub fn init(&self, device: &Device) -> Result<ResComModel> {
        let backbone = self.backbone()?;
        let feature_dim = backbone.feature_dim();
        let head = ResComHeadConfig::new(
            feature_dim,
            self.num_classes,
            self.hidden_dim.unwrap_or(feature_dim),
            self.projection_dim,
        )
        .init(device)?;
        Ok(ResComModel {
            backbone: backbone.init(device)?,
            head,
        })
    }
}

/// A backbone with the ResCom head: images to classifier logits, projections and features.
///
/// On an autodiff device batch normalisation uses batch statistics and updates its running
/// statistics; [`Module::valid`] (or a plain device) switches it to the running statistics.
///
/// ```
/// use burn::tensor::{Device, Tensor};
/// use rescom::model::ResComModelConfig;
///
/// let device = Device::flex();
/// let model = ResComModelConfig::new("resnet20".into(), 10)
///     .with_in_channels(1)
///     .init(&device)?;
/// let images = Tensor::<4>::zeros([2, 1, 28, 28], &device);
/// model.check_input(images.dims())?;
/// let out = model.forward(images);
/// assert_eq!(out.logits.dims(), [2, 10]);
/// assert_eq!(out.projections.dims(), [2, 32]);
/// assert_eq!(out.features.dims(), [2, 64]);
/// # Ok::<(), rescom::Error>(())
/// ```
#[derive(Module, Debug)]
pub struct ResComModel {
    /// Feature extractor.
    pub backbone: Backbone,
    /// Projection MLP and classifier.
    pub head: ResComHead,
}

/// Outputs of [`ResComModel::forward`].
#[derive(Debug, Clone)]
pub struct ModelOutput {
    /// Classifier logits (unshifted), `[B, C]`.
    pub logits: Tensor<2>,
    /// Unnormalised projections, `[B, D]`.
    pub projections: Tensor<2>,
    /// Pooled backbone features, `[B, F]`.
    pub features: Tensor<2>,
}

impl ResComModel {
    /// Training forward pass: features, then logits and projections from the head.
    ///
    /// # Shapes
    /// - `images`: `[B, in_channels, H, W]`
    /// - output: logits `[B, C]`, projections `[B, D]`, features `[B, F]`
    ///
    /// # Panics
    /// On a wrong channel count (see [`ResComModel::check_input`]).
    pub fn forward(&self, images: Tensor<4>) -> ModelOutput {
        let features = self.backbone.forward(images);
        let (logits, projections) = self.head.forward(features.clone());
        ModelOutput {
            logits,
            projections,
            features,
        }
    }

    /// Logits only (evaluation and cross-entropy); the projection MLP is not run.
    ///
    /// # Shapes
    /// - `images`: `[B, in_channels, H, W]`
    /// - output: `[B, C]`
    ///
    /// # Panics
    /// On a wrong channel count (see [`ResComModel::check_input`]).
    pub fn logits(&self, images: Tensor<4>) -> Tensor<2> {
        self.head.logits(self.backbone.forward(images))
    }

    /// Checks that images of shape `dims` (`[B, C, H, W]`) fit the network.
    ///
    /// # Errors
    /// [`Error::Shape`] for an empty batch, a channel count other than the backbone's, or a
    /// zero height or width.
    pub fn check_input(&self, dims: [usize; 4]) -> Result<()> {
        self.backbone.check_input(dims)
    }

    /// Folds pending batch-norm running-statistic updates into the stored statistics.
    ///
    /// Burn's running statistics lag by one update: after a training forward pass the newest
    /// values sit in a per-thread buffer, and a record taken then ([`Module::into_record`],
    /// [`Module::save_file`]) stores the previous ones. Call this before saving; a clone shares
    /// the statistics, so it is synchronised too. ([`Module::valid`] synchronises as well.)
    pub fn sync_running_stats(&self) {
        // `valid` merges every pending update into the shared state; its result is not needed.
        let _ = self.valid();
    }
}

impl Network for ResComModel {
    fn forward_train(&self, images: Tensor<4>) -> (Tensor<2>, Tensor<2>) {
        let out = self.forward(images);
        (out.logits, out.projections)
    }

    fn forward_logits(&self, images: Tensor<4>) -> Tensor<2> {
        self.logits(images)
    }
}
