//! CIFAR ResNets (He et al., 2016, section 4.2): ResNet-20/32/44/56/110.
//!
//! A 3x3 convolution to `w` channels, three stages of `n` basic blocks with `w`, `2w`, `4w`
//! channels (`w = 16`; stride 2 at the start of stages 2 and 3), global average pooling to a
//! `4w`-dimensional feature; depth `6n + 2`. Shortcuts are "option A": identity, or, where the
//! shape changes, every second pixel with the new channels zero-padded equally on both sides,
//! so shortcuts have no parameters. Convolutions carry no bias and are followed by batch
//! normalisation (PyTorch's running statistics, see [`BatchNorm`]); weights are Kaiming-normal
//! (fan-in, gain `sqrt(2)`), batch-norm scales 1 and shifts 0.

use burn::config::Config;
use burn::module::Module;
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::{Initializer, PaddingConfig2d, Relu};
use burn::tensor::{Device, Tensor, s};

use crate::error::{Error, Result};
use crate::nn::{BatchNorm, BatchNormConfig, apply};

/// Kaiming-normal with fan-in and gain `sqrt(2)` (PyTorch's `kaiming_normal_` default).
pub(crate) fn kaiming_fan_in() -> Initializer {
    Initializer::KaimingNormal {
        gain: std::f64::consts::SQRT_2,
        fan_out_only: false,
    }
}

pub(crate) fn conv3x3(input: usize, output: usize, stride: usize, device: &Device) -> Conv2d {
    Conv2dConfig::new([input, output], [3, 3])
        .with_stride([stride, stride])
        .with_padding(PaddingConfig2d::Explicit(1, 1, 1, 1))
        .with_bias(false)
        .with_initializer(kaiming_fan_in())
        .init(device)
}

/// Configuration of a [`CifarResNet`].
#[derive(Config, Debug, PartialEq)]
pub struct CifarResNetConfig {
    /// Total depth `6n + 2` (20, 32, 44, 56, 110, or any other such value).
    pub depth: usize,
    /// Input channels (1 for MNIST-like data, 3 for CIFAR).
    #[config(default = 3)]
    pub in_channels: usize,
    /// Channels of the first stage `w` (16 in the paper); the feature has `4w` dimensions.
    /// Must be even.
    #[config(default = 16)]
    pub width: usize,
}

impl CifarResNetConfig {
    /// Dimension of the pooled feature: `4 * width`.
    pub fn feature_dim(&self) -> usize {
        4 * self.width
    }

    /// The values the built network holds (convolution weights, batch-norm scales, shifts and
    /// running statistics: what [`Module::num_params`](burn::module::Module::num_params)
    /// counts), computed without building it; `None` when the count overflows `usize`.
    pub fn num_params(&self) -> Option<usize> {
        let n = self.depth.checked_sub(2)? / 6;
        let w = self.width;
        let conv = |input: usize, output: usize| input.checked_mul(output)?.checked_mul(9);
        let norm = |channels: usize| channels.checked_mul(4);
        let mut total = conv(self.in_channels, w)?.checked_add(norm(w)?)?;
        let mut channels = w;
        for planes in [w, w.checked_mul(2)?, w.checked_mul(4)?] {
            let first = conv(channels, planes)?
                .checked_add(conv(planes, planes)?)?
                .checked_add(norm(planes)?.checked_mul(2)?)?;
            let other = conv(planes, planes)?
                .checked_mul(2)?
                .checked_add(norm(planes)?.checked_mul(2)?)?;
            let blocks = other.checked_mul(n.checked_sub(1)?)?.checked_add(first)?;
            total = total.checked_add(blocks)?;
            channels = planes;
        }
        Some(total)
    }

    /// Builds the network.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] unless `depth = 6n + 2` with `n >= 1`, `width` is positive and
    /// even (so the option-A zero padding is symmetric), and `in_channels` is positive.
    pub fn init(&self, device: &Device) -> Result<CifarResNet> {
        if self.depth < 8 || !(self.depth - 2).is_multiple_of(6) {
            return Err(Error::config(
                "depth",
                format!(
                    "must be 6n + 2 with n >= 1 (20, 32, 44, 56, 110), got {}",
                    self.depth
                ),
            ));
        }
        if self.width == 0 || !self.width.is_multiple_of(2) {
            return Err(Error::config(
                "width",
                format!("must be positive and even, got {}", self.width),
            ));
        }
        if self.in_channels == 0 {
            return Err(Error::config("in_channels", "must be at least 1"));
        }
        let n = (self.depth - 2) / 6;
        let w = self.width;
        let mut blocks = Vec::with_capacity(3 * n);
        let mut channels = w;
        for (stage, planes) in [w, 2 * w, 4 * w].into_iter().enumerate() {
            for b in 0..n {
                let stride = if stage > 0 && b == 0 { 2 } else { 1 };
                blocks.push(BasicBlock::new(channels, planes, stride, device)?);
                channels = planes;
            }
        }
        Ok(CifarResNet {
            stem: conv3x3(self.in_channels, w, 1, device),
            stem_norm: BatchNormConfig::new(w).init(device)?,
            blocks,
            relu: Relu::new(),
            feature_dim: 4 * w,
        })
    }
}

/// Two 3x3 convolutions with an option-A shortcut.
#[derive(Module, Debug)]
pub struct BasicBlock {
    conv1: Conv2d,
    norm1: BatchNorm,
    conv2: Conv2d,
    norm2: BatchNorm,
    relu: Relu,
    stride: usize,
    /// Zero channels added on each side of the shortcut (0 when the shape is kept).
    pad_channels: usize,
}

impl BasicBlock {
    fn new(input: usize, planes: usize, stride: usize, device: &Device) -> Result<Self> {
        Ok(Self {
            conv1: conv3x3(input, planes, stride, device),
            norm1: BatchNormConfig::new(planes).init(device)?,
            conv2: conv3x3(planes, planes, 1, device),
            norm2: BatchNormConfig::new(planes).init(device)?,
            relu: Relu::new(),
            stride,
            pad_channels: (planes - input) / 2,
        })
    }

    /// `relu(bn2(conv2(relu(bn1(conv1(x))))) + shortcut(x))`.
    ///
    /// # Shapes
    /// - `x`: `[B, C_in, H, W]`
    /// - output: `[B, planes, ceil(H / stride), ceil(W / stride)]`
    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let out = self.norm1.forward_relu(apply(&self.conv1, x.clone()));
        let out = self.norm2.forward(apply(&self.conv2, out));
        self.relu.forward(out + self.shortcut(x))
    }

    /// Option A: `x[:, :, ::s, ::s]` with zero channels on both sides.
    fn shortcut(&self, x: Tensor<4>) -> Tensor<4> {
        let x = if self.stride > 1 {
            x.slice(s![.., .., ..;self.stride, ..;self.stride])
        } else {
            x
        };
        if self.pad_channels == 0 {
            return x;
        }
        let [b, _, h, w] = x.dims();
        let zeros = Tensor::<4>::zeros([b, self.pad_channels, h, w], (&x.device(), x.dtype()));
        Tensor::cat(vec![zeros.clone(), x, zeros], 1)
    }
}

/// A CIFAR ResNet up to its pooled feature.
///
/// ```
/// use burn::tensor::{Device, Tensor};
/// use rescom::model::CifarResNetConfig;
///
/// let device = Device::flex();
/// let net = CifarResNetConfig::new(20).with_in_channels(1).init(&device)?;
/// let features = net.forward(Tensor::<4>::zeros([2, 1, 28, 28], &device));
/// assert_eq!(features.dims(), [2, 64]);
/// # Ok::<(), rescom::Error>(())
/// ```
#[derive(Module, Debug)]
pub struct CifarResNet {
    stem: Conv2d,
    stem_norm: BatchNorm,
    blocks: Vec<BasicBlock>,
    relu: Relu,
    feature_dim: usize,
}

impl CifarResNet {
    /// Dimension of the pooled feature, `4w`.
    pub fn feature_dim(&self) -> usize {
        self.feature_dim
    }

    /// Channels of the input images.
    pub fn in_channels(&self) -> usize {
        self.stem.weight.lazy_shape().dims::<4>()[1]
    }

    /// Pooled features. Any spatial size works; each stride-2 stage maps `H` to `ceil(H / 2)`.
    ///
    /// # Shapes
    /// - `images`: `[B, in_channels, H, W]`
    /// - output: `[B, 4w]`
    pub fn forward(&self, images: Tensor<4>) -> Tensor<2> {
        let mut x = self.stem_norm.forward_relu(apply(&self.stem, images));
        for block in &self.blocks {
            x = block.forward(x);
        }
        let [b, c, _, _] = x.dims();
        x.mean_dim(3).mean_dim(2).reshape([b, c])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::tensor::Distribution;

    #[test]
    fn option_a_shortcut_subsamples_and_zero_pads_channels() {
        let device = Device::flex();
        let block = BasicBlock::new(16, 32, 2, &device).unwrap();
        let x = Tensor::<4>::random([2, 16, 8, 8], Distribution::Normal(0.0, 1.0), &device);
        let shortcut = block.shortcut(x.clone());
        assert_eq!(shortcut.dims(), [2, 32, 4, 4]);
        let zeros = |t: Tensor<4>| t.abs().max().into_scalar::<f32>() == 0.0;
        assert!(zeros(shortcut.clone().narrow(1, 0, 8)));
        assert!(zeros(shortcut.clone().narrow(1, 24, 8)));
        let middle = shortcut.narrow(1, 8, 16);
        let expected = x.slice(s![.., .., ..;2, ..;2]);
        assert!(zeros(middle - expected));
        // Identity shortcut when the shape is kept.
        let same = BasicBlock::new(16, 16, 1, &device).unwrap();
        let y = Tensor::<4>::ones([1, 16, 4, 4], &device);
        assert!(zeros(same.shortcut(y.clone()) - y));
    }
}
