//! A backbone chosen at run time by its configuration.

use burn::config::Config;
use burn::module::Module;
use burn::tensor::{Device, Tensor};

use super::{Architecture, CifarResNet, CifarResNetConfig, ResNet, ResNetConfig};
use crate::error::{Error, Result};

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
