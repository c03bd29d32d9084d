//! The full network of a ResCom run: a backbone and the ResCom head.

use burn::config::Config;
use burn::module::Module;
use burn::tensor::{Device, Tensor};

use super::{Backbone, BackboneConfig, ResComHead, ResComHeadConfig};
use crate::error::Result;
use crate::loss::ResComLossInput;

/// Configuration of a [`ResComModel`].
///
/// The head follows the recipes: `hidden_dim` defaults to the feature dimension
/// (`64 -> 64 -> 32` on CIFAR ResNets, `2048 -> 2048 -> 128` on ResNet-50 with
/// `projection_dim = 128`).
#[derive(Config, Debug, PartialEq)]
pub struct ResComModelConfig {
    /// The backbone, e.g. `"resnet32".parse()?` (see [`BackboneConfig`]).
    pub backbone: BackboneConfig,
    /// Number of classes `C`.
    pub num_classes: usize,
    /// Projection dimension `D` (32 in the CIFAR recipe, 128 on ImageNet); must equal the
    /// loss's [`projection_dim`](crate::ResComLossConfig::projection_dim).
    #[config(default = 32)]
    pub projection_dim: usize,
    /// Hidden width of the projection MLP; `None` uses the feature dimension.
    #[config(default = "None")]
    pub hidden_dim: Option<usize>,
}

impl ResComModelConfig {
    /// The values the built network holds (what [`Module::num_params`] counts: weights,
    /// biases and batch norm's running statistics), computed without building it; `None` when
    /// the count overflows `usize`. A damaged configuration asking for an impossible network
    /// is refused with it before anything is allocated.
    ///
    /// ```
    /// use burn::module::Module;
    /// use burn::tensor::Device;
    /// use rescom::model::{BackboneConfig, ResComModelConfig};
    ///
    /// let config = ResComModelConfig::new("resnet32".parse::<BackboneConfig>()?, 100);
    /// let count = config.num_params();
    /// assert_eq!(count, Some(config.init(&Device::flex())?.num_params()));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn num_params(&self) -> Option<usize> {
        self.backbone
            .num_params()?
            .checked_add(self.head().num_params()?)
    }

    /// Builds the network.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`](crate::Error::InvalidConfig) for an invalid backbone option
    /// ([`BackboneConfig::init`]) or a zero class count or head dimension.
    pub fn init(&self, device: &Device) -> Result<ResComModel> {
        let head = self.head().init(device)?;
        Ok(ResComModel {
            backbone: self.backbone.init(device)?,
            head,
        })
    }

    /// The head's configuration: the backbone's feature dimension to the classes and the
    /// projection.
    fn head(&self) -> ResComHeadConfig {
        let feature_dim = self.backbone.feature_dim();
        ResComHeadConfig::new(
            feature_dim,
            self.num_classes,
            self.hidden_dim.unwrap_or(feature_dim),
            self.projection_dim,
        )
    }
}

/// A backbone with the ResCom head: images to classifier logits and projections.
///
/// On an autodiff device batch normalisation uses batch statistics and updates its running
/// statistics; [`Module::valid`] (or a plain device) switches it to the running statistics.
///
/// ```
/// use burn::tensor::{Device, Tensor};
/// use rescom::model::{BackboneConfig, ResComModelConfig};
///
/// let device = Device::flex();
/// let backbone = "resnet20".parse::<BackboneConfig>()?.with_in_channels(1);
/// let model = ResComModelConfig::new(backbone, 10).init(&device)?;
/// let images = Tensor::<4>::zeros([2, 1, 28, 28], &device);
/// model.check_input(images.dims())?;
/// let out = model.forward(images.clone());
/// assert_eq!(out.logits.dims(), [2, 10]);
/// assert_eq!(out.projections.dims(), [2, 32]);
/// assert_eq!(model.backbone.forward(images).dims(), [2, 64]);
/// # Ok::<(), rescom::Error>(())
/// ```
#[derive(Module, Debug)]
pub struct ResComModel {
    /// Feature extractor.
    pub backbone: Backbone,
    /// Projection MLP and classifier.
    pub head: ResComHead,
}

impl ResComModel {
    /// Training forward pass: backbone features, then logits and projections from the head.
    ///
    /// # Shapes
    /// - `images`: `[B, in_channels, H, W]`
    /// - output: logits `[B, C]`, projections `[B, D]`
    ///
    /// # Panics
    /// On a wrong channel count (see [`ResComModel::check_input`]).
    pub fn forward(&self, images: Tensor<4>) -> ResComLossInput {
        self.head.forward(self.backbone.forward(images))
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
    /// [`Error::Shape`](crate::Error::Shape) for an empty batch, a channel count other than the backbone's, or a
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
