//! The convolution the networks run: the crate's own kernels on the flex CPU backend, Burn's
//! convolution everywhere else.
//!
//! On flex (with or without autodiff), `f32` and `f64` convolutions go through a backend
//! extension with hand-written forward, input-gradient and weight-gradient kernels built on
//! matrix products that write the output in place: stride-1 layers read every kernel tap as a
//! shifted view of a zero-padded copy of a few images, other layers unroll the patches of one
//! image at a time into a buffer that stays in cache (see `kernel/`). Other backends and float types, and shapes that are not a
//! valid convolution (which Burn then reports), use [`burn::tensor::module::conv2d`]. Both
//! paths compute the same function; the layers keep Burn's [`Conv2d`] module, so parameter
//! names, shapes and records are Burn's.

#[cfg(feature = "flex")]
use crate::kernels::flex::conv as flex;

use burn::nn::PaddingConfig2d;
use burn::nn::conv::Conv2d;
use burn::tensor::Tensor;
use burn::tensor::ops::ConvOptions;

/// Two-dimensional convolution with the semantics of [`burn::tensor::module::conv2d`]
/// (cross-correlation, `(begin, end)` padding per side, dilation, groups), differentiable on
/// autodiff devices.
///
/// # Shapes
/// - `x`: `[B, C_in, H, W]`
/// - `weight`: `[C_out, C_in / groups, K_h, K_w]`
/// - `bias`: `[C_out]`
/// - output: `[B, C_out, H_out, W_out]`, `H_out = (H + pad_h - dilation_h * (K_h - 1) - 1) /
///   stride_h + 1` (likewise `W_out`), `pad_h` being the sum of both sides
///
/// # Panics
/// As Burn's convolution, on shapes that do not form a convolution.
///
/// ```
/// use burn::tensor::ops::ConvOptions;
/// use burn::tensor::{Device, Tensor};
/// use rescom::nn::conv2d;
///
/// let device = Device::flex();
/// let x = Tensor::<4>::ones([2, 3, 8, 8], &device);
/// let weight = Tensor::<4>::ones([4, 3, 3, 3], &device);
/// let y = conv2d(x, weight, None, ConvOptions::new([2, 2], [1, 1], [1, 1], 1));
/// assert_eq!(y.dims(), [2, 4, 4, 4]);
/// // An interior output sums 3 channels x 9 taps of ones.
/// assert_eq!(y.slice([0..1, 0..1, 1..2, 1..2]).into_scalar::<f32>(), 27.0);
/// ```
pub fn conv2d(
    x: Tensor<4>,
    weight: Tensor<4>,
    bias: Option<Tensor<1>>,
    options: ConvOptions<2>,
) -> Tensor<4> {
    #[cfg(feature = "flex")]
    if flex::handles(&x, &weight, bias.as_ref(), &options) {
        return flex::conv2d(x, weight, bias, options);
    }
    burn::tensor::module::conv2d(x, weight, bias, options)
}

/// Whether [`conv2d`] runs the crate's own kernels for these operands: `f32` or `f64` tensors
/// of one type on a flex device (with or without autodiff) whose shapes form a convolution.
/// Otherwise it runs Burn's convolution.
///
/// ```
/// use burn::tensor::ops::ConvOptions;
/// use burn::tensor::{Device, Tensor};
/// use rescom::nn::uses_crate_kernels;
///
/// let device = Device::flex();
/// let x = Tensor::<4>::zeros([1, 3, 8, 8], &device);
/// let weight = Tensor::<4>::zeros([4, 3, 3, 3], &device);
/// let options = ConvOptions::new([1, 1], [1, 1], [1, 1], 1);
/// assert_eq!(uses_crate_kernels(&x, &weight, None, &options), cfg!(feature = "flex"));
/// ```
pub fn uses_crate_kernels(
    x: &Tensor<4>,
    weight: &Tensor<4>,
    bias: Option<&Tensor<1>>,
    options: &ConvOptions<2>,
) -> bool {
    #[cfg(feature = "flex")]
    return flex::handles(x, weight, bias, options);
    #[cfg(not(feature = "flex"))]
    {
        let _ = (x, weight, bias, options);
        false
    }
}

/// Applies the layer `conv` to `x` through [`conv2d`]: the same result as
/// [`Conv2d::forward`], with the layer's own parameters, stride, padding, dilation and groups.
///
/// # Shapes
/// - `x`: `[B, C_in, H, W]`
/// - output: `[B, C_out, H_out, W_out]`
///
/// # Panics
/// As [`Conv2d::forward`], on an input whose channel count does not match the layer.
///
/// ```
/// use burn::nn::PaddingConfig2d;
/// use burn::nn::conv::Conv2dConfig;
/// use burn::tensor::{Device, Tensor};
/// use rescom::nn::apply;
///
/// let device = Device::flex();
/// let layer = Conv2dConfig::new([3, 8], [3, 3])
///     .with_padding(PaddingConfig2d::Explicit(1, 1, 1, 1))
///     .init(&device);
/// let x = Tensor::<4>::ones([2, 3, 5, 5], &device);
/// assert_eq!(apply(&layer, x).dims(), [2, 8, 5, 5]);
/// ```
pub fn apply(conv: &Conv2d, x: Tensor<4>) -> Tensor<4> {
    let [_, _, height, width] = x.dims();
    let padding = match conv.padding {
        PaddingConfig2d::Valid => [(0, 0); 2],
        PaddingConfig2d::Explicit(top, left, bottom, right) => [(top, bottom), (left, right)],
        PaddingConfig2d::Same => [
            same_padding(height, conv.kernel_size[0], conv.stride[0]),
            same_padding(width, conv.kernel_size[1], conv.stride[1]),
        ],
    };
    let options = ConvOptions::new_with_padding(conv.stride, padding, conv.dilation, conv.groups);
    conv2d(
        x,
        conv.weight.val(),
        conv.bias.as_ref().map(|bias| bias.val()),
        options,
    )
}

/// `(begin, end)` padding of [`PaddingConfig2d::Same`] along one axis, as Burn's layer
/// computes it: `ceil(size / stride)` outputs, the total padding split with the odd pixel at
/// the end (the kernel's extent taken without dilation).
fn same_padding(size: usize, kernel: usize, stride: usize) -> (usize, usize) {
    let outputs = size.div_ceil(stride);
    let total = match outputs {
        0 => 0,
        n => ((n - 1) * stride + kernel).saturating_sub(size),
    };
    (total / 2, total - total / 2)
}
