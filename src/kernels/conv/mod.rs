//! Two-dimensional convolution on plain `NCHW` slices: forward, input gradient and weight
//! gradient, as matrix products that write their results in place.
//!
//! Three ways to present the patches of the input to the matrix product, by shape:
//!
//! - stride 1 with at least [`CANVAS_MIN_CHANNELS`] input channels per group
//!   ([`canvas`]): a chunk of images is copied once onto a zero-padded canvas on which
//!   every kernel tap is a shifted view, so each tap is one product with `K = channels`
//!   accumulating into the output; nothing is unrolled. In `f32` on AVX-512 CPUs the
//!   forward and weight-gradient products are direct convolutions in vector registers
//!   instead ([`direct`]);
//! - `1x1`, stride 1, no padding ([`unrolled`]): the image itself is the patch matrix;
//! - everything else ([`unrolled`]): the patches of one image are unrolled into a column
//!   matrix `col[K, P]` (`K = channels * kernel_h * kernel_w`, `P` output pixels) that stays
//!   in cache.
//!
//! The input gradient of a stride-1 convolution is the forward convolution of the output
//! gradient with the flipped, transposed weight; for other strides it is `w^T x dy` added back
//! pixel by pixel. The weight gradient is the sum over images of `dy x patches^T`, summed in
//! a fixed order (chunks of images fixed by the shapes, then in sequence), so it does not
//! depend on the number of threads. Images run in parallel on rayon's pool; outputs are
//! allocated without being zeroed, each element being written exactly once.

mod canvas;
mod direct;
mod joint;
mod unrolled;

pub(crate) use joint::backward;

use std::mem::MaybeUninit;

use burn::tensor::ops::ConvOptions;
use gemm::Parallelism;
use rayon::prelude::*;

use super::Element;

/// Fewest input channels per group for which the canvas path beats unrolling.
pub(crate) const CANVAS_MIN_CHANNELS: usize = 8;

/// Sizes of one convolution: input `[batch, in_channels, in_h, in_w]`, weight
/// `[out_channels, in_channels / groups, kernel_h, kernel_w]`, output
/// `[batch, out_channels, out_h, out_w]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Geometry {
    pub batch: usize,
    pub in_channels: usize,
    pub in_size: [usize; 2],
    pub out_channels: usize,
    pub kernel: [usize; 2],
    pub stride: [usize; 2],
    /// `(begin, end)` padding of height and width.
    pub padding: [(usize, usize); 2],
    pub dilation: [usize; 2],
    pub groups: usize,
    pub out_size: [usize; 2],
}

impl Geometry {
    /// The geometry of `conv2d(x, weight, options)`, or `None` when the shapes do not form a
    /// valid, non-empty convolution (the caller then leaves the case to Burn, which reports it).
    pub fn new(x: [usize; 4], weight: [usize; 4], options: &ConvOptions<2>) -> Option<Self> {
        let [batch, in_channels, in_h, in_w] = x;
        let [out_channels, group_in, kernel_h, kernel_w] = weight;
        let groups = options.groups;
        let positive = [
            batch,
            in_channels,
            in_h,
            in_w,
            out_channels,
            group_in,
            kernel_h,
        ]
        .into_iter()
        .chain([kernel_w, groups])
        .chain(options.stride)
        .chain(options.dilation)
        .all(|v| v > 0);
        if !positive
            || group_in.checked_mul(groups) != Some(in_channels)
            || !out_channels.is_multiple_of(groups)
        {
            return None;
        }
        let out = |size: usize, k: usize, axis: usize| {
            let (begin, end) = options.padding[axis];
            let span = options.dilation[axis].checked_mul(k - 1)?.checked_add(1)?;
            let padded = size.checked_add(begin)?.checked_add(end)?;
            (padded >= span).then(|| (padded - span) / options.stride[axis] + 1)
        };
        let [out_h, out_w] = [out(in_h, kernel_h, 0)?, out(in_w, kernel_w, 1)?];
        // Every buffer the kernels index (with a canvas's padding) must be addressable.
        let limit = isize::MAX as usize / 64;
        let [(top, bottom), (left, right)] = options.padding;
        let fits = [
            [
                batch,
                in_channels,
                in_h + top + bottom + 1,
                in_w + left + right + 1,
            ],
            [batch, out_channels, out_h, out_w],
            [out_channels, group_in, kernel_h, kernel_w],
            [group_in, kernel_h, kernel_w, out_h * out_w],
        ]
        .iter()
        .all(|dims| {
            dims.iter()
                .try_fold(1usize, |acc, &d| acc.checked_mul(d))
                .is_some_and(|n| n <= limit)
        });
        fits.then_some(Self {
            batch,
            in_channels,
            in_size: [in_h, in_w],
            out_channels,
            kernel: [kernel_h, kernel_w],
            stride: options.stride,
            padding: options.padding,
            dilation: options.dilation,
            groups,
            out_size: [out_h, out_w],
        })
    }

    fn group_in(&self) -> usize {
        self.in_channels / self.groups
    }

    fn group_out(&self) -> usize {
        self.out_channels / self.groups
    }

    fn in_pixels(&self) -> usize {
        self.in_size[0] * self.in_size[1]
    }

    fn out_pixels(&self) -> usize {
        self.out_size[0] * self.out_size[1]
    }

    fn taps(&self) -> usize {
        self.kernel[0] * self.kernel[1]
    }

    /// Rows of the patch matrix of one group: `in_channels / groups * kernel_h * kernel_w`.
    fn patch_len(&self) -> usize {
        self.group_in() * self.taps()
    }

    /// Elements of one input image.
    fn image_in(&self) -> usize {
        self.in_channels * self.in_pixels()
    }

    /// Elements of one output image.
    fn image_out(&self) -> usize {
        self.out_channels * self.out_pixels()
    }

    pub fn input_len(&self) -> usize {
        self.batch * self.image_in()
    }

    pub fn output_len(&self) -> usize {
        self.batch * self.image_out()
    }

    pub fn weight_len(&self) -> usize {
        self.out_channels * self.patch_len()
    }

    /// `1x1`, stride 1, no padding: the image is its own patch matrix.
    fn is_pointwise(&self) -> bool {
        self.kernel == [1, 1] && self.stride == [1, 1] && self.padding == [(0, 0); 2]
    }

    /// Whether the canvas path takes this convolution.
    fn uses_canvas(&self) -> bool {
        self.stride == [1, 1] && !self.is_pointwise() && self.group_in() >= CANVAS_MIN_CHANNELS
    }

    /// The convolution whose output is the input gradient, when the stride is 1: `dy` with the
    /// flipped, transposed weight, padded by `dilation * (kernel - 1) - padding` on each side.
    fn transposed(&self) -> Option<Self> {
        if self.stride != [1, 1] {
            return None;
        }
        let mut padding = [(0, 0); 2];
        for (axis, pad) in padding.iter_mut().enumerate() {
            let reach = self.dilation[axis] * (self.kernel[axis] - 1);
            let (begin, end) = self.padding[axis];
            *pad = (reach.checked_sub(begin)?, reach.checked_sub(end)?);
        }
        let geometry = Self {
            batch: self.batch,
            in_channels: self.out_channels,
            in_size: self.out_size,
            out_channels: self.in_channels,
            kernel: self.kernel,
            stride: [1, 1],
            padding,
            dilation: self.dilation,
            groups: self.groups,
            out_size: self.in_size,
        };
        debug_assert_eq!(
            Self::new(
                [
                    self.batch,
                    self.out_channels,
                    self.out_size[0],
                    self.out_size[1]
                ],
                [
                    self.in_channels,
                    self.group_out(),
                    self.kernel[0],
                    self.kernel[1]
                ],
                &ConvOptions::new_with_padding([1, 1], padding, self.dilation, self.groups),
            ),
            Some(geometry)
        );
        Some(geometry)
    }
}

/// How a batch is shared out: `tasks` run in parallel, each over `task_images` consecutive
/// images (the last one over the rest), in chunks of `chunk_images`. Only the shapes decide
/// the split, never the thread count, so sums over images are always added in the same order.
#[derive(Debug, Clone, Copy)]
struct Plan {
    chunk_images: usize,
    task_images: usize,
    /// Parallelism inside each matrix product: only when there are fewer tasks than threads.
    parallelism: Parallelism,
}

impl Plan {
    /// At most `max_tasks` tasks over chunks of `chunk_images` images.
    fn new(g: &Geometry, chunk_images: usize, max_tasks: usize) -> Self {
        let chunk_images = chunk_images.clamp(1, g.batch);
        let chunks = g.batch.div_ceil(chunk_images);
        let task_images = chunks.div_ceil(max_tasks.clamp(1, chunks)) * chunk_images;
        let tasks = g.batch.div_ceil(task_images);
        let parallelism = if tasks < rayon::current_num_threads() {
            Parallelism::Rayon(0)
        } else {
            Parallelism::None
        };
        Self {
            chunk_images,
            task_images,
            parallelism,
        }
    }
}

/// Tasks per batch for outputs written in place.
const MAX_TASKS: usize = 32;

/// Elements of partial weight-gradient sums alive at once (one per task).
const PARTIAL_SUM_BUDGET: usize = 1 << 23;

/// `dst[m, n] (+)= lhs[m, k] x rhs[k, n]`; each matrix is given by its pointer and its
/// `[column stride, row stride]` in elements.
///
/// # Safety
/// Every pointer must address the whole matrix its sizes and strides describe; `dst` may be
/// uninitialised when `accumulate` is false, and is then fully written.
#[allow(clippy::too_many_arguments)]
unsafe fn matmul<T: Element>(
    [m, n, k]: [usize; 3],
    dst: *mut T,
    [dst_cs, dst_rs]: [usize; 2],
    accumulate: bool,
    lhs: *const T,
    [lhs_cs, lhs_rs]: [usize; 2],
    rhs: *const T,
    [rhs_cs, rhs_rs]: [usize; 2],
    parallelism: Parallelism,
) {
    // SAFETY: forwarded from the caller; gemm reads `dst` only when `accumulate` is true.
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            dst,
            dst_cs as isize,
            dst_rs as isize,
            accumulate,
            lhs,
            lhs_cs as isize,
            lhs_rs as isize,
            rhs,
            rhs_cs as isize,
            rhs_rs as isize,
            T::ONE,
            T::ONE,
            false,
            false,
            false,
            parallelism,
        );
    }
}

/// A vector of `len` elements, each written exactly once by `fill`, which receives the
/// still-uninitialised storage and must write all of it.
fn filled<T: Element>(len: usize, fill: impl FnOnce(&mut [MaybeUninit<T>])) -> Vec<T> {
    let mut out = Vec::with_capacity(len);
    fill(&mut out.spare_capacity_mut()[..len]);
    // SAFETY: `fill` wrote every one of the first `len` elements (its contract); `T` is a
    // plain float.
    unsafe { out.set_len(len) };
    out
}

/// Runs `task` over the tasks of `plan` in parallel: each receives its input images and its
/// (uninitialised) output images, which it must write completely.
fn per_task<T: Element>(
    plan: &Plan,
    input: &[T],
    image_in: usize,
    output: &mut [MaybeUninit<T>],
    image_out: usize,
    task: impl Fn(&[T], &mut [MaybeUninit<T>]) + Sync,
) {
    output
        .par_chunks_mut(plan.task_images * image_out)
        .zip(input.par_chunks(plan.task_images * image_in))
        .for_each(|(output, input)| task(input, output));
}

/// Forward pass: `x` `[batch, in_channels, in_h, in_w]`, `weight`
/// `[out_channels, in_channels / groups, kernel_h, kernel_w]`, optional `bias`
/// `[out_channels]`; returns `[batch, out_channels, out_h, out_w]`.
///
/// # Panics
/// If a slice is shorter than `g` says.
pub(crate) fn forward<T: Element>(
    g: &Geometry,
    x: &[T],
    weight: &[T],
    bias: Option<&[T]>,
) -> Vec<T> {
    forward_on(g, x, weight, bias, direct::Isa::detect())
}

/// [`forward`], with the direct kernels of `isa` where the canvas path runs in `f32`.
fn forward_on<T: Element>(
    g: &Geometry,
    x: &[T],
    weight: &[T],
    bias: Option<&[T]>,
    isa: Option<direct::Isa>,
) -> Vec<T> {
    assert!(x.len() >= g.input_len() && weight.len() >= g.weight_len());
    if let Some(bias) = bias {
        assert!(bias.len() >= g.out_channels);
    }
    let x = &x[..g.input_len()];
    filled(g.output_len(), |out| {
        if g.uses_canvas() {
            let plan = Plan::new(g, canvas::chunk_images(g), MAX_TASKS);
            let weights = canvas::TapWeights::new(g, weight, isa);
            per_task(&plan, x, g.image_in(), out, g.image_out(), |x, out| {
                canvas::forward(g, &plan, x, &weights, bias, out)
            });
        } else {
            let plan = Plan::new(g, 1, MAX_TASKS);
            per_task(&plan, x, g.image_in(), out, g.image_out(), |x, out| {
                unrolled::forward(g, &plan, x, weight, bias, out)
            });
        }
    })
}

/// Gradient with respect to the weight: `sum over images of dy x patches^T`, shaped like the
/// weight. `x` is the forward input, `dy` the gradient of the output.
///
/// # Panics
/// If a slice is shorter than `g` says.
pub(crate) fn weight_grad<T: Element>(g: &Geometry, x: &[T], dy: &[T]) -> Vec<T> {
    weight_grad_on(g, x, dy, direct::Isa::detect())
}

/// [`weight_grad`], with the direct kernels of `isa` where the canvas path runs in `f32`.
fn weight_grad_on<T: Element>(g: &Geometry, x: &[T], dy: &[T], isa: Option<direct::Isa>) -> Vec<T> {
    assert!(x.len() >= g.input_len() && dy.len() >= g.output_len());
    let canvas = g.uses_canvas();
    let plan = weight_grad_plan(g);
    // Partial sums in the layout each path accumulates in, one per task, in order.
    let partial: Vec<Vec<T>> = x[..g.input_len()]
        .par_chunks(plan.task_images * g.image_in())
        .zip(dy[..g.output_len()].par_chunks(plan.task_images * g.image_out()))
        .map(|(x, dy)| {
            if canvas {
                canvas::weight_grad(g, &plan, x, dy, isa)
            } else {
                unrolled::weight_grad(g, &plan, x, dy)
            }
        })
        .collect();
    let total = sum_in_order(partial, g.weight_len());
    if canvas {
        canvas::weight_layout(g, &total)
    } else {
        unrolled::weight_layout(g, &total)
    }
}

/// How a weight gradient is shared out: at most one partial sum per task alive within
/// [`PARTIAL_SUM_BUDGET`], in the chunks of the path that takes `g`.
fn weight_grad_plan(g: &Geometry) -> Plan {
    let max_tasks = (PARTIAL_SUM_BUDGET / g.weight_len()).clamp(1, MAX_TASKS);
    let chunk_images = if g.uses_canvas() {
        canvas::chunk_images(g)
    } else {
        1
    };
    Plan::new(g, chunk_images, max_tasks)
}

/// The tasks' partial sums (each `len` long) added in task order.
fn sum_in_order<T: Element>(partial: Vec<Vec<T>>, len: usize) -> Vec<T> {
    let mut partial = partial.into_iter();
    let mut total = partial.next().unwrap_or_else(|| vec![T::ZERO; len]);
    for sum in partial {
        for (t, s) in total.iter_mut().zip(sum) {
            *t += s;
        }
    }
    total
}

/// Gradient with respect to the input, shaped like `x`; `dy` is the gradient of the output.
///
/// # Panics
/// If a slice is shorter than `g` says.
pub(crate) fn input_grad<T: Element>(g: &Geometry, weight: &[T], dy: &[T]) -> Vec<T> {
    assert!(weight.len() >= g.weight_len() && dy.len() >= g.output_len());
    let dy = &dy[..g.output_len()];
    if g.is_pointwise() {
        let plan = Plan::new(g, 1, MAX_TASKS);
        return filled(g.input_len(), |dx| {
            per_task(&plan, dy, g.image_out(), dx, g.image_in(), |dy, dx| {
                unrolled::input_grad_pointwise(g, &plan, weight, dy, dx)
            })
        });
    }
    if let Some(transposed) = g.transposed() {
        return forward(&transposed, dy, &flip_transpose(g, weight), None);
    }
    let plan = Plan::new(g, 1, MAX_TASKS);
    let mut dx = vec![T::ZERO; g.input_len()];
    dx.par_chunks_mut(plan.task_images * g.image_in())
        .zip(dy.par_chunks(plan.task_images * g.image_out()))
        .for_each(|(dx, dy)| unrolled::input_grad_scatter(g, &plan, weight, dy, dx));
    dx
}

/// The weight of [`Geometry::transposed`]: `[in_channels, out_channels / groups, kh, kw]`,
/// element `(g * group_in + i, o, a, b) = weight(g * group_out + o, i, kh - 1 - a, kw - 1 - b)`.
fn flip_transpose<T: Element>(g: &Geometry, weight: &[T]) -> Vec<T> {
    let taps = g.taps();
    let (group_in, group_out) = (g.group_in(), g.group_out());
    let mut flipped = vec![T::ZERO; g.weight_len()];
    for group in 0..g.groups {
        for o in 0..group_out {
            for i in 0..group_in {
                let src = &weight[((group * group_out + o) * group_in + i) * taps..][..taps];
                let dst = &mut flipped[((group * group_in + i) * group_out + o) * taps..][..taps];
                for (d, s) in dst.iter_mut().zip(src.iter().rev()) {
                    *d = *s;
                }
            }
        }
    }
    flipped
}

/// Gradient with respect to the bias: the sum of `dy` (`[images, channels, pixels]`) over
/// images and pixels, per channel.
pub(crate) fn bias_grad<T: Element>(channels: usize, pixels: usize, dy: &[T]) -> Vec<T> {
    let mut sums = vec![T::ZERO; channels];
    for image in dy.chunks_exact(channels * pixels) {
        for (sum, channel) in sums.iter_mut().zip(image.chunks(pixels)) {
            *sum += channel.iter().fold(T::ZERO, |a, &b| a + b);
        }
    }
    sums
}

#[cfg(test)]
mod tests;
