//! A backbone chosen at run time by its configuration.

use std::str::FromStr;

use burn::config::Config;
use burn::module::Module;
use burn::tensor::{Device, Tensor};

use super::{Architecture, CifarResNet, CifarResNetConfig, ResNet, ResNetConfig};
use crate::error::{Error, Result};

/// Configuration of a [`Backbone`]: one of the crate's networks with its options. Parsed from
/// an architecture name (see [`Architecture`]) with the network's default options.
///
/// ```
/// use burn::tensor::{Device, Tensor};
/// use rescom::model::{BackboneConfig, CifarResNetConfig};
///
/// let device = Device::flex();
/// let config = "resnet20".parse::<BackboneConfig>()?.with_in_channels(1);
/// assert_eq!(config, BackboneConfig::Cifar(CifarResNetConfig::new(20).with_in_channels(1)));
/// let backbone = config.init(&device)?;
/// assert_eq!(backbone.feature_dim(), config.feature_dim());
/// let features = backbone.forward(Tensor::<4>::zeros([2, 1, 28, 28], &device));
/// assert_eq!(features.dims(), [2, 64]);
/// # Ok::<(), rescom::Error>(())
/// ```
#[derive(Config, Debug, PartialEq)]
pub enum BackboneConfig {
    /// A CIFAR ResNet (ResNet-20/32/44/56/110, any depth `6n + 2`).
    Cifar(CifarResNetConfig),
    /// ResNet-50 or ResNeXt-50 32x4d.
    ImageNet(ResNetConfig),
}

impl From<Architecture> for BackboneConfig {
    /// The network with its default options (3 input channels, the paper's widths).
    fn from(architecture: Architecture) -> Self {
        match architecture {
            Architecture::CifarResNet(depth) => Self::Cifar(CifarResNetConfig::new(depth)),
            Architecture::ResNet50 => Self::ImageNet(ResNetConfig::resnet50()),
            Architecture::ResNeXt50 => Self::ImageNet(ResNetConfig::resnext50_32x4d()),
        }
    }
}

impl FromStr for BackboneConfig {
    type Err = Error;

    /// The network named `s` (see [`Architecture`]) with its default options.
    fn from_str(s: &str) -> Result<Self> {
        Ok(s.parse::<Architecture>()?.into())
    }
}

impl BackboneConfig {
    /// The same network for images with `in_channels` channels.
    pub fn with_in_channels(self, in_channels: usize) -> Self {
        match self {
            Self::Cifar(c) => Self::Cifar(c.with_in_channels(in_channels)),
            Self::ImageNet(c) => Self::ImageNet(c.with_in_channels(in_channels)),
        }
    }

    /// Channels of the input images.
    pub fn in_channels(&self) -> usize {
        match self {
            Self::Cifar(c) => c.in_channels,
            Self::ImageNet(c) => c.in_channels,
        }
    }

    /// Dimension of the pooled feature the backbone will produce.
    pub fn feature_dim(&self) -> usize {
        match self {
            Self::Cifar(c) => c.feature_dim(),
            Self::ImageNet(c) => c.feature_dim(),
        }
    }

    /// The values the built backbone holds, computed without building it; `None` when the
    /// count overflows `usize`.
    pub fn num_params(&self) -> Option<usize> {
        match self {
            Self::Cifar(c) => c.num_params(),
            Self::ImageNet(c) => c.num_params(),
        }
    }

    /// Builds the backbone.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] for an invalid option of the network (a CIFAR depth that is not
    /// `6n + 2`, an odd or zero width, zero input channels).
    pub fn init(&self, device: &Device) -> Result<Backbone> {
        Ok(match self {
            Self::Cifar(c) => Backbone::Cifar(c.init(device)?),
            Self::ImageNet(c) => Backbone::ImageNet(c.init(device)?),
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
