//! The ResCom head on a backbone feature: a projection MLP for the contrastive branch and a
//! linear classifier.
//!
//! Projection: `Linear(F, hidden) -> BatchNorm -> ReLU -> Linear(hidden, D)`; classifier:
//! `Linear(F, C)`. The recipes use `64 -> 64 -> 32` on CIFAR ResNets and
//! `2048 -> 2048 -> 128` on ResNet-50. The three linear layers keep PyTorch's default
//! `nn.Linear` initialisation: weights and biases uniform in `+-1 / sqrt(fan_in)` (Kaiming-uniform
//! with `a = sqrt(5)`); the batch normalisation starts at scale 1 and shift 0. (Only the backbone
//! is Kaiming-normal initialised.)
//!
//! The batch normalisation acts on `[B, hidden]` directly, one mean and variance per feature
//! over the batch, with PyTorch's running statistics (`BatchNorm1d`; see
//! [`crate::nn::BatchNorm`]).

use burn::config::Config;
use burn::module::Module;
use burn::nn::{Initializer, Linear, LinearConfig, Relu};
use burn::tensor::{Device, Tensor};

use crate::error::{Error, Result};
use crate::loss::ResComLossInput;
use crate::nn::{BatchNorm, BatchNormConfig};

/// Configuration of a [`ResComHead`].
#[derive(Config, Debug)]
pub struct ResComHeadConfig {
    /// Backbone feature dimension `F`.
    pub feature_dim: usize,
    /// Number of classes `C`.
    pub num_classes: usize,
    /// Hidden width of the projection MLP.
    pub hidden_dim: usize,
    /// Projection dimension `D`.
    pub projection_dim: usize,
}

/// `Linear(input, output)` with PyTorch's default initialisation: weight and bias uniform in
/// `+-1 / sqrt(input)`.
fn linear(input: usize, output: usize, device: &Device) -> Linear {
    let bound = 1.0 / (input as f64).sqrt();
    LinearConfig::new(input, output)
        .with_initializer(Initializer::Uniform {
            min: -bound,
            max: bound,
        })
        .init(device)
}

impl ResComHeadConfig {
    /// The values the built head holds (weights, biases, the batch norm's scales, shifts and
    /// running statistics), computed without building it; `None` when the count overflows.
    pub fn num_params(&self) -> Option<usize> {
        let linear = |input: usize, output: usize| input.checked_add(1)?.checked_mul(output);
        linear(self.feature_dim, self.hidden_dim)?
            .checked_add(self.hidden_dim.checked_mul(4)?)?
            .checked_add(linear(self.hidden_dim, self.projection_dim)?)?
            .checked_add(linear(self.feature_dim, self.num_classes)?)
    }

    /// Builds the head.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] if a dimension is zero.
    pub fn init(&self, device: &Device) -> Result<ResComHead> {
        for (field, v) in [
            ("feature_dim", self.feature_dim),
            ("num_classes", self.num_classes),
            ("hidden_dim", self.hidden_dim),
            ("projection_dim", self.projection_dim),
        ] {
            if v == 0 {
                return Err(Error::config(field, "must be at least 1"));
            }
        }
        Ok(ResComHead {
            hidden: linear(self.feature_dim, self.hidden_dim, device),
            norm: BatchNormConfig::new(self.hidden_dim).init(device)?,
            relu: Relu::new(),
            projection: linear(self.hidden_dim, self.projection_dim, device),
            classifier: linear(self.feature_dim, self.num_classes, device),
        })
    }
}

/// Projection MLP and linear classifier.
///
/// ```
/// use burn::tensor::{Device, Tensor};
/// use rescom::model::ResComHeadConfig;
///
/// let device = Device::flex();
/// let head = ResComHeadConfig::new(64, 10, 64, 32).init(&device)?;
/// let out = head.forward(Tensor::<2>::ones([4, 64], &device));
/// assert_eq!((out.logits.dims(), out.projections.dims()), ([4, 10], [4, 32]));
/// # Ok::<(), rescom::Error>(())
/// ```
#[derive(Module, Debug)]
pub struct ResComHead {
    hidden: Linear,
    norm: BatchNorm,
    relu: Relu,
    projection: Linear,
    classifier: Linear,
}

impl ResComHead {
    /// Backbone feature dimension `F` the head expects.
    pub fn feature_dim(&self) -> usize {
        self.classifier.weight.lazy_shape().dims::<2>()[0]
    }

    /// Number of classes `C`.
    pub fn num_classes(&self) -> usize {
        self.classifier.weight.lazy_shape().dims::<2>()[1]
    }

    /// Projection dimension `D`.
    pub fn projection_dim(&self) -> usize {
        self.projection.weight.lazy_shape().dims::<2>()[1]
    }

    /// Logits and (unnormalised) projections. On an autodiff device the batch normalisation
    /// uses batch statistics (needs `B >= 2` to be meaningful) and updates its running ones.
    ///
    /// # Shapes
    /// - `features`: `[B, F]`
    /// - output: logits `[B, C]`, projections `[B, D]`
    pub fn forward(&self, features: Tensor<2>) -> ResComLossInput {
        let hidden = self
            .norm
            .forward_relu(self.hidden.forward(features.clone()));
        ResComLossInput {
            logits: self.classifier.forward(features),
            projections: self.projection.forward(hidden),
        }
    }

    /// Logits only.
    ///
    /// # Shapes
    /// - `features`: `[B, F]`
    /// - output: `[B, C]`
    pub fn logits(&self, features: Tensor<2>) -> Tensor<2> {
        self.classifier.forward(features)
    }
}
