//! Stride-1 convolutions on a zero-padded canvas, without unrolling the patches.
//!
//! A chunk of images is copied, channel by channel, onto one plane: each image row is
//! preceded by `q = max(pad_left, pad_right)` zero columns and each image followed by
//! `r = max(pad_top, pad_bottom)` zero rows (with `r` more before the first). Reading past the
//! end of a row lands in the next row's zero columns, and past the last row in the zero rows,
//! so for the output at canvas position `a`, kernel tap `(kh, kw)` reads position
//! `a + kh * dilation_h * row + kw * dilation_w` of every channel. Over a contiguous range of
//! positions, a tap is thus the matrix `[positions, channels]` with strides `(1, plane)`,
//! read in place, and the convolution is one matrix product per tap accumulating into a
//! `[out_channels, positions]` result. Positions at the ends of rows and between images are
//! computed and dropped (about `q / (w + q)` of the columns and `r / (h + r)` of the rows).

use std::mem::MaybeUninit;

use super::direct::{self, Isa, Packed};
use super::{Element, Geometry, Plan, matmul};

/// Canvas positions per chunk the images are grouped to (at least one image); small under
/// test, so that the kernel tests cover several chunks per task and a shorter last chunk.
const CHUNK_POSITIONS: usize = if cfg!(test) { 64 } else { 2048 };

/// Images per chunk for `g`.
pub(super) fn chunk_images(g: &Geometry) -> usize {
    CHUNK_POSITIONS.div_ceil(Canvas::new(g, 1).image_stride)
}

/// The layout of a canvas holding `images` images of `g`'s input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Canvas {
    images: usize,
    /// Zero columns before each image row.
    gap_cols: usize,
    /// Zero rows before the first image and after each.
    gap_rows: usize,
    /// `in_w + gap_cols`.
    row: usize,
    /// `(in_h + gap_rows) * row`.
    image_stride: usize,
    /// Position of the first output's top-left tap.
    first: usize,
    /// Output positions computed: from the first output to the last, rounded up to a multiple
    /// of 16 so the products need no edge handling.
    span: usize,
    /// Elements per channel, covering every position a tap reads.
    plane: usize,
}

impl Canvas {
    fn new(g: &Geometry, images: usize) -> Self {
        let [in_h, in_w] = g.in_size;
        let [out_h, out_w] = g.out_size;
        let [(top, bottom), (left, right)] = g.padding;
        let gap_cols = left.max(right);
        let gap_rows = top.max(bottom);
        let row = in_w + gap_cols;
        let image_stride = (in_h + gap_rows) * row;
        let first = (gap_rows - top) * row + (gap_cols - left);
        let span = ((images - 1) * image_stride + (out_h - 1) * row + out_w).next_multiple_of(16);
        let reach = (g.kernel[0] - 1) * g.dilation[0] * row + (g.kernel[1] - 1) * g.dilation[1];
        let filled = (gap_rows + images * (in_h + gap_rows)) * row;
        Self {
            images,
            gap_cols,
            gap_rows,
            row,
            image_stride,
            first,
            span,
            plane: filled.max(first + span + reach),
        }
    }

    /// `self` when it holds `images` images, else the layout for that many.
    fn for_images(&self, g: &Geometry, images: usize) -> Self {
        if images == self.images {
            *self
        } else {
            Self::new(g, images)
        }
    }

    /// Index of pixel `(image, h, w)` on the canvas less the position of output `(image, h, w)`.
    fn gradient_shift(&self) -> usize {
        self.gap_rows * self.row + self.gap_cols
    }

    /// Offset of kernel tap `t` (row-major over the kernel) from an output's position.
    fn tap(&self, g: &Geometry, t: usize) -> usize {
        let (kh, kw) = (t / g.kernel[1], t % g.kernel[1]);
        kh * g.dilation[0] * self.row + kw * g.dilation[1]
    }

    /// Writes every element of the first `channels * plane` of `canvas`: the images of `x`
    /// (`[images, channels, in_h, in_w]`) and zeros around them; returns them.
    fn fill<'a, T: Element>(
        &self,
        g: &Geometry,
        channels: usize,
        x: &[T],
        canvas: &'a mut [MaybeUninit<T>],
    ) -> &'a [T] {
        let [in_h, in_w] = g.in_size;
        let pixels = in_h * in_w;
        let gap = self.gap_rows * self.row;
        let zero = MaybeUninit::new(T::ZERO);
        let canvas = &mut canvas[..channels * self.plane];
        for (c, plane) in canvas.chunks_exact_mut(self.plane).enumerate() {
            plane[..gap].fill(zero);
            let (images, rest) = plane[gap..].split_at_mut(self.images * self.image_stride);
            for (image, dst) in images.chunks_exact_mut(self.image_stride).enumerate() {
                let src = &x[(image * channels + c) * pixels..][..pixels];
                let (body, tail) = dst.split_at_mut(in_h * self.row);
                for (dst, src) in body.chunks_exact_mut(self.row).zip(src.chunks_exact(in_w)) {
                    dst[..self.gap_cols].fill(zero);
                    dst[self.gap_cols..].write_copy_of_slice(src);
                }
                tail.fill(zero);
            }
            rest.fill(zero);
        }
        // SAFETY: the loop wrote every element: each plane is its `gap` leading rows, its
        // images (gap columns and rows of each, trailing gap rows) and the rest.
        unsafe { canvas.assume_init_ref() }
    }

    /// Writes every element of `dst` (`span` elements): the gradient of output channel
    /// `channel` of every image of `dy` (`[images, out_channels, out_h, out_w]`) at its
    /// output positions, zero elsewhere (everywhere without a channel).
    fn write_gradient<T: Element>(
        &self,
        g: &Geometry,
        dy: &[T],
        channel: Option<usize>,
        dst: &mut [MaybeUninit<T>],
    ) {
        let zero = MaybeUninit::new(T::ZERO);
        let dst = &mut dst[..self.span];
        let Some(channel) = channel else {
            dst.fill(zero);
            return;
        };
        let [out_h, out_w] = g.out_size;
        let mut written = 0;
        for image in 0..self.images {
            let src = &dy[image * g.image_out() + channel * out_h * out_w..][..out_h * out_w];
            for (oh, src) in src.chunks_exact(out_w).enumerate() {
                // Rows overlap when the padding exceeds the kernel's reach; the outputs they
                // share see only padding, so whichever gradient lands there adds nothing.
                let start = self.output_row(image, oh);
                if let Some(gap) = dst.get_mut(written..start) {
                    gap.fill(zero);
                }
                dst[start..start + out_w].write_copy_of_slice(src);
                written = written.max(start + out_w);
            }
        }
        dst[written..].fill(zero);
    }

    /// Position of output `(image, oh, 0)` relative to the first output.
    fn output_row(&self, image: usize, oh: usize) -> usize {
        image * self.image_stride + oh * self.row
    }
}

/// The weight as `[taps, out_channels, in_channels / groups]`: the `[channels, outputs]`
/// matrix of each tap and group is then read with unit row stride.
pub(super) fn tap_major<T: Element>(g: &Geometry, weight: &[T]) -> Vec<T> {
    let (taps, group_in) = (g.taps(), g.group_in());
    let mut out = vec![T::ZERO; g.weight_len()];
    for o in 0..g.out_channels {
        for i in 0..group_in {
            let src = &weight[(o * group_in + i) * taps..][..taps];
            for (t, &v) in src.iter().enumerate() {
                out[(t * g.out_channels + o) * group_in + i] = v;
            }
        }
    }
    out
}

/// The weight as the forward products read it.
pub(super) enum TapWeights<T> {
    /// From [`tap_major`], for one matrix product per tap.
    PerTap(Vec<T>),
    /// Packed for the direct kernels (`f32` only).
    Direct(Packed),
}

impl<T: Element> TapWeights<T> {
    /// `weight` for the direct kernels of `isa` when given and `T` is `f32`, else per tap.
    pub fn new(g: &Geometry, weight: &[T], isa: Option<Isa>) -> Self {
        match (isa, T::as_f32(&weight[..g.weight_len()])) {
            (Some(isa), Some(weight)) => {
                Self::Direct(Packed::new(isa, weight, g.groups, g.group_in(), g.taps()))
            }
            _ => Self::PerTap(tap_major(g, weight)),
        }
    }
}

/// Forward pass of one task: `x` its input images, `out` its output images (every element
/// written).
pub(super) fn forward<T: Element>(
    g: &Geometry,
    plan: &Plan,
    x: &[T],
    weights: &TapWeights<T>,
    bias: Option<&[T]>,
    out: &mut [MaybeUninit<T>],
) {
    let full = Canvas::new(g, plan.chunk_images);
    let mut canvas = Box::new_uninit_slice(g.in_channels * full.plane);
    let mut result = Box::new_uninit_slice(g.out_channels * full.span);
    let chunks = x
        .chunks(plan.chunk_images * g.image_in())
        .zip(out.chunks_mut(plan.chunk_images * g.image_out()));
    for (x, out) in chunks {
        let c = full.for_images(g, x.len() / g.image_in());
        let canvas = c.fill(g, g.in_channels, x, &mut canvas);
        forward_chunk(g, plan, &c, canvas, weights, bias, &mut result, out);
    }
}

/// The forward pass of one chunk of images on its filled `canvas`, through `result` (at
/// least `out_channels * span` elements) into `out` (the chunk's output images, every element
/// written).
#[allow(clippy::too_many_arguments)]
fn forward_chunk<T: Element>(
    g: &Geometry,
    plan: &Plan,
    c: &Canvas,
    canvas: &[T],
    weights: &TapWeights<T>,
    bias: Option<&[T]>,
    result: &mut [MaybeUninit<T>],
    out: &mut [MaybeUninit<T>],
) {
    let (group_in, group_out) = (g.group_in(), g.group_out());
    let [out_h, out_w] = g.out_size;
    let offsets: Vec<usize> = (0..g.taps()).map(|t| c.tap(g, t)).collect();
    let result = &mut result[..g.out_channels * c.span];
    for group in 0..g.groups {
        let dst = &mut result[group * group_out * c.span..][..group_out * c.span];
        let taps = match weights {
            TapWeights::PerTap(taps) => taps,
            TapWeights::Direct(packed) => {
                let src = &canvas[group * group_in * c.plane + c.first..];
                let (Some(src), Some(dst)) = (T::as_f32(src), T::as_f32_uninit(dst)) else {
                    unreachable!("direct weights are packed for f32 only");
                };
                packed.products(group, src, c.plane, &offsets, c.span, dst);
                continue;
            }
        };
        for t in 0..g.taps() {
            let lhs = &canvas[group * group_in * c.plane + c.first + offsets[t]..];
            let rhs = &taps[(t * g.out_channels + group * group_out) * group_in..];
            // SAFETY: dst (p, o) at o * span + p; lhs (p, i) at i * plane + p, in bounds by
            // the plane's size; rhs (i, o) at o * group_in + i. The first tap writes every
            // element of dst, which the others then read.
            unsafe {
                matmul(
                    [c.span, group_out, group_in],
                    dst.as_mut_ptr().cast::<T>(),
                    [c.span, 1],
                    t > 0,
                    lhs.as_ptr(),
                    [c.plane, 1],
                    rhs[..group_out * group_in].as_ptr(),
                    [group_in, 1],
                    plan.parallelism,
                );
            }
        }
    }
    // SAFETY: every group's products wrote its rows of the result.
    let result = unsafe { result.assume_init_ref() };
    for (image, out) in out.chunks_mut(g.image_out()).enumerate() {
        for (o, out) in out.chunks_mut(out_h * out_w).enumerate() {
            let b = bias.map_or(T::ZERO, |bias| bias[o]);
            let src = &result[o * c.span..];
            for (oh, out) in out.chunks_mut(out_w).enumerate() {
                let src = &src[c.output_row(image, oh)..][..out_w];
                for (d, &s) in out.iter_mut().zip(src) {
                    d.write(s + b);
                }
            }
        }
    }
}

/// Whether [`backward`] takes `g` with its input gradient's convolution `transposed`: one
/// canvas layout for both, output channels a whole number of the direct kernels' blocks.
pub(super) fn shares_canvas(g: &Geometry, transposed: &Geometry, isa: Isa) -> bool {
    let canvas = Canvas::new(g, 1);
    g.uses_canvas()
        && transposed.uses_canvas()
        && g.in_size == g.out_size
        && canvas == Canvas::new(transposed, 1)
        && canvas.gradient_shift() + canvas.span <= canvas.plane
        && g.group_out() == direct::gradient_rows(isa, g.group_out())
}

/// Both gradients of one task of `g`, which [`shares_canvas`] with `transposed` (weight
/// `flipped`): per chunk, `dy` goes on a canvas once, from which `transposed` computes `dx`
/// (every element written) and which the weight gradient reads as its output gradient (zero
/// at the dropped positions). Returns the weight-gradient sum, as [`weight_grad`] does.
#[allow(clippy::too_many_arguments)]
pub(super) fn backward(
    g: &Geometry,
    transposed: &Geometry,
    plan: &Plan,
    x: &[f32],
    dy: &[f32],
    flipped: &TapWeights<f32>,
    isa: Isa,
    dx: &mut [MaybeUninit<f32>],
) -> Vec<f32> {
    let (group_in, group_out) = (g.group_in(), g.group_out());
    let full = Canvas::new(g, plan.chunk_images);
    let mut x_canvas = Box::new_uninit_slice(g.in_channels * full.plane);
    let mut dy_canvas = Box::new_uninit_slice(g.out_channels * full.plane);
    let mut result = Box::new_uninit_slice(g.in_channels * full.span);
    let mut sums = direct::WeightSums::new(isa, g.groups, group_in, group_out, g.taps());
    let chunks = x
        .chunks(plan.chunk_images * g.image_in())
        .zip(dy.chunks(plan.chunk_images * g.image_out()))
        .zip(dx.chunks_mut(plan.chunk_images * g.image_in()));
    for ((x, dy), dx) in chunks {
        let c = full.for_images(g, x.len() / g.image_in());
        let dy_canvas = c.fill(transposed, g.out_channels, dy, &mut dy_canvas);
        forward_chunk(
            transposed,
            plan,
            &c,
            dy_canvas,
            flipped,
            None,
            &mut result,
            dx,
        );
        let x_canvas = c.fill(g, g.in_channels, x, &mut x_canvas);
        let offsets: Vec<usize> = (0..g.taps()).map(|t| c.tap(g, t)).collect();
        for group in 0..g.groups {
            let src = &x_canvas[group * group_in * c.plane + c.first..];
            let gradient = &dy_canvas[group * group_out * c.plane + c.gradient_shift()..];
            sums.add(group, src, c.plane, &offsets, c.span, gradient, c.plane);
        }
    }
    sums.finish()
}

/// Weight-gradient sum of one task, laid out `[taps, groups, in_channels / groups,
/// out_channels / groups]`.
///
/// With `isa` and `f32`, the direct kernels compute it ([`direct::WeightSums`]).
pub(super) fn weight_grad<T: Element>(
    g: &Geometry,
    plan: &Plan,
    x: &[T],
    dy: &[T],
    isa: Option<Isa>,
) -> Vec<T> {
    let (group_in, group_out) = (g.group_in(), g.group_out());
    let full = Canvas::new(g, plan.chunk_images);
    let mut canvas = Box::new_uninit_slice(g.in_channels * full.plane);
    let isa = isa.filter(|_| T::as_f32(x).is_some());
    // The output gradient on the canvas positions, zero at the dropped positions: for the
    // direct kernels `[groups, gradient_rows, span]`, else transposed, `[span, out_channels]`.
    let rows = isa.map_or(group_out, |isa| direct::gradient_rows(isa, group_out));
    let mut gradient = Box::new_uninit_slice(full.span * g.groups * rows);
    let mut sum = vec![T::ZERO; g.weight_len()];
    let mut direct_sums =
        isa.map(|isa| direct::WeightSums::new(isa, g.groups, group_in, group_out, g.taps()));
    let chunks = x
        .chunks(plan.chunk_images * g.image_in())
        .zip(dy.chunks(plan.chunk_images * g.image_out()));
    for (x, dy) in chunks {
        let c = full.for_images(g, x.len() / g.image_in());
        let canvas = c.fill(g, g.in_channels, x, &mut canvas);
        let gradient = &mut gradient[..c.span * g.groups * rows];
        match &mut direct_sums {
            Some(sums) => add_direct(g, &c, canvas, dy, gradient, rows, sums),
            None => add_products(g, plan, &c, canvas, dy, gradient, &mut sum),
        }
    }
    if let Some(sums) = direct_sums {
        let direct = sums.finish();
        let Some(dst) = T::as_f32_mut(&mut sum) else {
            unreachable!("the direct kernels run on f32 only");
        };
        dst.copy_from_slice(&direct);
    }
    sum
}

/// Adds one chunk to the direct kernels' `sums`: `dy` written row by row into `gradient`
/// (`[groups, rows, span]`, zero elsewhere), then each group's products.
fn add_direct<T: Element>(
    g: &Geometry,
    c: &Canvas,
    canvas: &[T],
    dy: &[T],
    gradient: &mut [MaybeUninit<T>],
    rows: usize,
    sums: &mut direct::WeightSums,
) {
    let (group_in, group_out) = (g.group_in(), g.group_out());
    for (r, dst) in gradient.chunks_exact_mut(c.span).enumerate() {
        let (group, o) = (r / rows, r % rows);
        let channel = (o < group_out).then_some(group * group_out + o);
        c.write_gradient(g, dy, channel, dst);
    }
    // SAFETY: the loop wrote every row.
    let gradient: &[T] = unsafe { gradient.assume_init_ref() };
    let offsets: Vec<usize> = (0..g.taps()).map(|t| c.tap(g, t)).collect();
    for group in 0..g.groups {
        let src = &canvas[group * group_in * c.plane + c.first..];
        let gradient = &gradient[group * rows * c.span..][..rows * c.span];
        let (Some(src), Some(gradient)) = (T::as_f32(src), T::as_f32(gradient)) else {
            unreachable!("the direct kernels run on f32 only");
        };
        sums.add(group, src, c.plane, &offsets, c.span, gradient, c.span);
    }
}

/// Adds one chunk to `sum` with one matrix product per tap and group: `dy` first scattered
/// into `gradient` transposed (`[span, out_channels]`, zero elsewhere).
fn add_products<T: Element>(
    g: &Geometry,
    plan: &Plan,
    c: &Canvas,
    canvas: &[T],
    dy: &[T],
    gradient: &mut [MaybeUninit<T>],
    sum: &mut [T],
) {
    let (group_in, group_out) = (g.group_in(), g.group_out());
    gradient.fill(MaybeUninit::new(T::ZERO));
    // SAFETY: written just above.
    let gradient = unsafe { gradient.assume_init_mut() };
    let [out_h, out_w] = g.out_size;
    for (image, dy) in dy.chunks(g.image_out()).enumerate() {
        for (o, dy) in dy.chunks(out_h * out_w).enumerate() {
            for (oh, dy) in dy.chunks(out_w).enumerate() {
                let start = c.output_row(image, oh);
                let dst = gradient[start * g.out_channels + o..]
                    .iter_mut()
                    .step_by(g.out_channels);
                for (d, &v) in dst.zip(dy) {
                    *d = v;
                }
            }
        }
    }
    for t in 0..g.taps() {
        for group in 0..g.groups {
            let dst =
                &mut sum[(t * g.groups + group) * group_in * group_out..][..group_in * group_out];
            let lhs = &gradient[group * group_out..];
            let rhs = &canvas[group * group_in * c.plane + c.first + c.tap(g, t)..];
            // SAFETY: dst (o, i) at i * group_out + o; lhs (o, p) at p * out_channels + o, in
            // bounds over span positions; rhs (p, i) at i * plane + p, in bounds by the plane's
            // size.
            unsafe {
                matmul(
                    [group_out, group_in, c.span],
                    dst.as_mut_ptr(),
                    [group_out, 1],
                    true,
                    lhs.as_ptr(),
                    [g.out_channels, 1],
                    rhs.as_ptr(),
                    [c.plane, 1],
                    plan.parallelism,
                );
            }
        }
    }
}

/// The weight layout of a sum from [`weight_grad`].
pub(super) fn weight_layout<T: Element>(g: &Geometry, sum: &[T]) -> Vec<T> {
    let (taps, group_in, group_out) = (g.taps(), g.group_in(), g.group_out());
    let mut weight = vec![T::ZERO; g.weight_len()];
    for t in 0..taps {
        for group in 0..g.groups {
            let sum = &sum[(t * g.groups + group) * group_in * group_out..];
            for i in 0..group_in {
                for o in 0..group_out {
                    weight[((group * group_out + o) * group_in + i) * taps + t] =
                        sum[i * group_out + o];
                }
            }
        }
    }
    weight
}
