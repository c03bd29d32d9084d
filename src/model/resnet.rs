//! ResNet-50 (He et al., 2016) and ResNeXt-50 32x4d (Xie et al., 2017) for ImageNet-sized
//! images, in the torchvision layout.
//!
//! A 7x7/2 convolution to 64 channels, 3x3/2 max pooling, four stages of bottleneck blocks
//! (3, 4, 6, 3 blocks; 64, 128, 256, 512 planes, expansion 4; stride on the 3x3 convolution;
//! projection shortcut where the shape changes), global average pooling to a 2048-d feature.
//! ResNeXt uses grouped 3x3 convolutions (32 groups of width 4 per 64 planes). Convolutions are
//! Kaiming-normal with fan-out (`std = sqrt(2 / (out_channels * k * k))`, as torchvision);
//! batch normalisation keeps PyTorch's running statistics (see [`BatchNorm`]), scales 1 and
//! shifts 0.

use burn::config::Config;
use burn::module::Module;
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::pool::{MaxPool2d, MaxPool2dConfig};
use burn::nn::{Initializer, PaddingConfig2d, Relu};
use burn::tensor::{Device, Tensor};

use crate::error::{Error, Result};
use crate::nn::{BatchNorm, BatchNormConfig, apply};

/// Convolution with torchvision's initialisation (Kaiming-normal, fan-out, ReLU gain).
fn conv(
    input: usize,
    output: usize,
    kernel: usize,
    stride: usize,
    groups: usize,
    device: &Device,
) -> Conv2d {
    let pad = kernel / 2;
    Conv2dConfig::new([input, output], [kernel, kernel])
        .with_stride([stride, stride])
        .with_padding(PaddingConfig2d::Explicit(pad, pad, pad, pad))
        .with_groups(groups)
        .with_bias(false)
        .with_initializer(Initializer::Normal {
            mean: 0.0,
            std: (2.0 / (output * kernel * kernel) as f64).sqrt(),
        })
        .init(device)
}

/// Configuration of a [`ResNet`].
#[derive(Config, Debug, PartialEq)]
pub struct ResNetConfig {
    /// Bottleneck blocks per stage (`[3, 4, 6, 3]` for the 50-layer networks).
    #[config(default = "[3, 4, 6, 3]")]
    pub layers: [usize; 4],
    /// Groups of the 3x3 convolutions (1 for ResNet, 32 for ResNeXt-50 32x4d).
    #[config(default = 1)]
    pub groups: usize,
    /// Width per group (64 for ResNet, 4 for ResNeXt-50 32x4d).
    #[config(default = 64)]
    pub width_per_group: usize,
    /// Input channels.
    #[config(default = 3)]
    pub in_channels: usize,
    /// Initialise the last batch-norm scale of each block to zero (each block starts as the
    /// identity).
    #[config(default = false)]
    pub zero_init_residual: bool,
}

impl ResNetConfig {
    /// Dimension of the pooled feature: 2048 (`512` planes of the last stage times the
    /// expansion 4).
    pub fn feature_dim(&self) -> usize {
        2048
    }

    /// ResNet-50.
    pub fn resnet50() -> Self {
        Self::new()
    }

    /// ResNeXt-50 (32x4d).
    pub fn resnext50_32x4d() -> Self {
        Self::new().with_groups(32).with_width_per_group(4)
    }

    /// The values the built network holds (convolution weights, batch-norm scales, shifts and
    /// running statistics: what [`Module::num_params`] counts), computed without building it;
    /// `None` when the count overflows `usize`.
    pub fn num_params(&self) -> Option<usize> {
        let conv = |input: usize, output: usize, kernel: usize| {
            input.checked_mul(output)?.checked_mul(kernel * kernel)
        };
        let norm = |channels: usize| channels.checked_mul(4);
        let mut total = conv(self.in_channels, 64, 7)?.checked_add(norm(64)?)?;
        let mut channels = 64;
        let planes: [usize; 4] = [64, 128, 256, 512];
        for (stage, (&count, planes)) in self.layers.iter().zip(planes).enumerate() {
            let width = planes.checked_mul(self.width_per_group)? / 64;
            let width = width.checked_mul(self.groups)?;
            let output = planes * 4;
            for b in 0..count {
                let stride = if stage > 0 && b == 0 { 2 } else { 1 };
                let downsample = if stride != 1 || channels != output {
                    conv(channels, output, 1)?.checked_add(norm(output)?)?
                } else {
                    0
                };
                let block = conv(channels, width, 1)?
                    .checked_add(conv(width, width.checked_div(self.groups)?, 3)?)?
                    .checked_add(conv(width, output, 1)?)?
                    .checked_add(norm(width)?.checked_mul(2)?)?
                    .checked_add(norm(output)?)?
                    .checked_add(downsample)?;
                total = total.checked_add(block)?;
                channels = output;
                if b == 1 {
                    // Every later block of the stage is the same as the second.
                    let rest = block.checked_mul(count - 2)?;
                    total = total.checked_add(rest)?;
                    break;
                }
            }
        }
        Some(total)
    }

    /// Builds the network.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] if `groups`, `width_per_group` or `in_channels` is zero.
    pub fn init(&self, device: &Device) -> Result<ResNet> {
        if self.groups == 0 || self.width_per_group == 0 || self.in_channels == 0 {
            return Err(Error::config(
                "groups/width_per_group/in_channels",
                "must all be at least 1",
            ));
        }
        let mut blocks = Vec::new();
        let mut channels = 64;
        for (stage, (&count, planes)) in self.layers.iter().zip([64, 128, 256, 512]).enumerate() {
            for b in 0..count {
                let stride = if stage > 0 && b == 0 { 2 } else { 1 };
                blocks.push(Bottleneck::new(channels, planes, stride, self, device)?);
                channels = planes * 4;
            }
        }
        Ok(ResNet {
            stem: conv(self.in_channels, 64, 7, 2, 1, device),
            stem_norm: BatchNormConfig::new(64).init(device)?,
            pool: MaxPool2dConfig::new([3, 3])
                .with_strides([2, 2])
                .with_padding(PaddingConfig2d::Explicit(1, 1, 1, 1))
                .init(),
            blocks,
            relu: Relu::new(),
            feature_dim: channels,
        })
    }
}

/// 1x1 reduce, 3x3 (grouped, strided), 1x1 expand, with a projection shortcut where needed.
#[derive(Module, Debug)]
pub struct Bottleneck {
    conv1: Conv2d,
    norm1: BatchNorm,
    conv2: Conv2d,
    norm2: BatchNorm,
    conv3: Conv2d,
    norm3: BatchNorm,
    downsample: Option<(Conv2d, BatchNorm)>,
    relu: Relu,
}

impl Bottleneck {
    fn new(
        input: usize,
        planes: usize,
        stride: usize,
        config: &ResNetConfig,
        device: &Device,
    ) -> Result<Self> {
        let width = planes * config.width_per_group / 64 * config.groups;
        let output = planes * 4;
        let mut norm3 = BatchNormConfig::new(output).init(device)?;
        if config.zero_init_residual {
            norm3.gamma = norm3.gamma.map(|g| g.zeros_like());
        }
        let downsample = if stride != 1 || input != output {
            Some((
                conv(input, output, 1, stride, 1, device),
                BatchNormConfig::new(output).init(device)?,
            ))
        } else {
            None
        };
        Ok(Self {
            conv1: conv(input, width, 1, 1, 1, device),
            norm1: BatchNormConfig::new(width).init(device)?,
            conv2: conv(width, width, 3, stride, config.groups, device),
            norm2: BatchNormConfig::new(width).init(device)?,
            conv3: conv(width, output, 1, 1, 1, device),
            norm3,
            downsample,
            relu: Relu::new(),
        })
    }

    /// `relu(bn3(conv3(relu(bn2(conv2(relu(bn1(conv1(x))))))) + shortcut(x))`, the shortcut
    /// being the identity or `bn(conv1x1(x))`.
    ///
    /// # Shapes
    /// - `x`: `[B, C_in, H, W]`
    /// - output: `[B, 4 * planes, ceil(H / stride), ceil(W / stride)]`
    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let out = self.norm1.forward_relu(apply(&self.conv1, x.clone()));
        let out = self.norm2.forward_relu(apply(&self.conv2, out));
        let out = self.norm3.forward(apply(&self.conv3, out));
        let identity = match &self.downsample {
            Some((projection, norm)) => norm.forward(apply(projection, x)),
            None => x,
        };
        self.relu.forward(out + identity)
    }
}

/// ResNet-50 / ResNeXt-50 up to the pooled 2048-d feature.
///
/// ```no_run
/// use burn::tensor::{Device, Tensor};
/// use rescom::model::ResNetConfig;
///
/// let device = Device::flex();
/// let net = ResNetConfig::resnext50_32x4d().init(&device)?;
/// let features = net.forward(Tensor::<4>::zeros([1, 3, 224, 224], &device));
/// assert_eq!(features.dims(), [1, 2048]);
/// # Ok::<(), rescom::Error>(())
/// ```
#[derive(Module, Debug)]
pub struct ResNet {
    stem: Conv2d,
    stem_norm: BatchNorm,
    pool: MaxPool2d,
    blocks: Vec<Bottleneck>,
    relu: Relu,
    feature_dim: usize,
}

impl ResNet {
    /// Dimension of the pooled feature (2048).
    pub fn feature_dim(&self) -> usize {
        self.feature_dim
    }

    /// Channels of the input images.
    pub fn in_channels(&self) -> usize {
        self.stem.weight.lazy_shape().dims::<4>()[1]
    }

    /// Pooled features. Any spatial size works (the network downsamples by 32: a 224x224 image
    /// ends in a 7x7 map, a 64x64 one in 2x2).
    ///
    /// # Shapes
    /// - `images`: `[B, in_channels, H, W]`
    /// - output: `[B, 2048]`
    pub fn forward(&self, images: Tensor<4>) -> Tensor<2> {
        let x = self.stem_norm.forward_relu(apply(&self.stem, images));
        let mut x = self.pool.forward(x);
        for block in &self.blocks {
            x = block.forward(x);
        }
        let [b, c, _, _] = x.dims();
        x.mean_dim(3).mean_dim(2).reshape([b, c])
    }
}
