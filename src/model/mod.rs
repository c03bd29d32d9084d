//! Backbones and the full ResCom network.
//!
//! [`ResComModel`] is a backbone ([`CifarResNet`] or [`ResNet`]) followed by a
//! [`ResComHead`]; it implements [`crate::train::Network`], so the trainer can optimise it.

pub mod cifar_resnet;
pub mod resnet;

pub use cifar_resnet::{CifarResNet, CifarResNetConfig};
pub use resnet::{ResNet, ResNetConfig};

use std::str::FromStr;

use burn::config::Config;
use burn::module::Module;
use burn::tensor::{Device, Tensor};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::head::{ResComHead, ResComHeadConfig};
use crate::train::Network;

/// A backbone architecture by name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Architecture {
    /// CIFAR ResNet of depth `6n + 2` (8, 14, 20, 32, 44, 56, 110, ...).
    CifarResNet(usize),
    /// ResNet-50.
    ResNet50,
    /// ResNeXt-50 32x4d.
    ResNeXt50,
}

impl FromStr for Architecture {
    type Err = Error;

    /// Parses `resnet20`, `resnet32`, ..., `resnet50`, `resnext50`.
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "resnet50" => Ok(Architecture::ResNet50),
            "resnext50" | "resnext50_32x4d" => Ok(Architecture::ResNeXt50),
            _ => s
                .strip_prefix("resnet")
                .and_then(|d| d.parse::<usize>().ok())
                .filter(|&d| d >= 8 && (d - 2) % 6 == 0)
                .map(Architecture::CifarResNet)
                .ok_or_else(|| {
                    Error::config(
                        "architecture",
                        format!(
                            "unknown architecture `{s}`; use resnet8|14|20|32|44|56|110 (CIFAR), \
                             resnet50 or resnext50"
                        ),
                    )
                }),
        }
    }
}

/// A backbone chosen at run time.
#[derive(Module, Debug)]
pub enum Backbone {
    /// A CIFAR ResNet.
    Cifar(CifarResNet),
    /// ResNet-50 / ResNeXt-50.
    ImageNet(ResNet),
}

impl Backbone {
    /// Builds `architecture` for images with `in_channels` channels.
    pub fn new(architecture: Architecture, in_channels: usize, device: &Device) -> Result<Self> {
        Ok(match architecture {
            Architecture::CifarResNet(depth) => Backbone::Cifar(
                CifarResNetConfig::new(depth)
                    .with_in_channels(in_channels)
                    .init(device)?,
            ),
            Architecture::ResNet50 => Backbone::ImageNet(
                ResNetConfig::resnet50()
                    .with_in_channels(in_channels)
                    .init(device)?,
            ),
            Architecture::ResNeXt50 => Backbone::ImageNet(
                ResNetConfig::resnext50_32x4d()
                    .with_in_channels(in_channels)
                    .init(device)?,
            ),
        })
    }

    /// Dimension of the pooled feature.
    pub fn feature_dim(&self) -> usize {
        match self {
            Backbone::Cifar(net) => net.feature_dim(),
            Backbone::ImageNet(net) => net.feature_dim(),
        }
    }

    /// # Shapes
    /// - `images`: `[B, C, H, W]`
    /// - output: `[B, feature_dim]`
    pub fn forward(&self, images: Tensor<4>) -> Tensor<2> {
        match self {
            Backbone::Cifar(net) => net.forward(images),
            Backbone::ImageNet(net) => net.forward(images),
        }
    }
}

/// Configuration of a [`ResComModel`].
#[derive(Config, Debug)]
pub struct ResComModelConfig {
    /// Backbone architecture name (see [`Architecture`]).
    pub architecture: String,
    /// Number of classes.
    pub num_classes: usize,
    /// Input channels.
    #[config(default = 3)]
    pub in_channels: usize,
    /// Projection dimension `D` (32 in the CIFAR recipe, 128 on ImageNet).
    #[config(default = 32)]
    pub projection_dim: usize,
    /// Hidden width of the projection MLP; `None` uses the feature dimension.
    #[config(default = "None")]
    pub hidden_dim: Option<usize>,
}

impl ResComModelConfig {
    /// Builds the network.
    pub fn init(&self, device: &Device) -> Result<ResComModel> {
        let architecture: Architecture = self.architecture.parse()?;
        let backbone = Backbone::new(architecture, self.in_channels, device)?;
        let feature_dim = backbone.feature_dim();
        let head = ResComHeadConfig::new(
            feature_dim,
            self.num_classes,
            self.hidden_dim.unwrap_or(feature_dim),
            self.projection_dim,
        )
        .init(device)?;
        Ok(ResComModel { backbone, head })
    }
}

/// A backbone with the ResCom head.
///
/// ```
/// use burn::tensor::{Device, Tensor};
/// use rescom::model::ResComModelConfig;
///
/// let device = Device::flex();
/// let model = ResComModelConfig::new("resnet8".into(), 10)
///     .with_in_channels(1)
///     .init(&device)?;
/// let out = model.forward(Tensor::<4>::zeros([2, 1, 28, 28], &device));
/// assert_eq!(out.logits.dims(), [2, 10]);
/// assert_eq!(out.projections.dims(), [2, 32]);
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
    /// Classifier logits, `[B, C]`.
    pub logits: Tensor<2>,
    /// Unnormalised projections, `[B, D]`.
    pub projections: Tensor<2>,
    /// Pooled backbone features, `[B, F]`.
    pub features: Tensor<2>,
}

impl ResComModel {
    /// # Shapes
    /// - `images`: `[B, C, H, W]`
    pub fn forward(&self, images: Tensor<4>) -> ModelOutput {
        let features = self.backbone.forward(images);
        let (logits, projections) = self.head.forward(features.clone());
        ModelOutput {
            logits,
            projections,
            features,
        }
    }

    /// Logits for evaluation.
    ///
    /// # Shapes
    /// - `images`: `[B, C, H, W]`
    /// - output: `[B, C]`
    pub fn logits(&self, images: Tensor<4>) -> Tensor<2> {
        self.head.logits(self.backbone.forward(images))
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
