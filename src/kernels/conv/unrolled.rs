//! Convolutions whose patches are unrolled image by image into a column matrix
//! `col[K, P]` (`K = in_channels / groups * kernel_h * kernel_w` rows in the weight's own
//! `(channel, kh, kw)` order, `P` output pixels): strided convolutions and those with few
//! channels. A `1x1` convolution with stride 1 and no padding uses the image itself.
//!
//! Weight gradients accumulate transposed, `[groups, K, out_channels / groups]`, so the matrix
//! product reads the column matrix in place instead of repacking it.

use std::mem::MaybeUninit;

use super::{Element, Geometry, Plan, matmul};

/// Half-open range of output positions `o < out` whose input position
/// `o * stride + offset` lies in `[0, size)`.
fn valid_range(out: usize, stride: usize, offset: isize, size: usize) -> (usize, usize) {
    let stride = stride as isize;
    let lo = if offset < 0 {
        ((-offset) + stride - 1) / stride
    } else {
        0
    };
    let last = size as isize - 1 - offset;
    let hi = if last < 0 { 0 } else { last / stride + 1 };
    let hi = (hi as usize).min(out);
    let lo = (lo as usize).min(hi);
    (lo, hi)
}

/// Unrolls the patches of one group of one image: `x` is `[in_channels / groups, in_h, in_w]`,
/// `col` is `[patch_len, out_pixels]`; every element of `col` is written.
fn im2col<T: Element>(g: &Geometry, x: &[T], col: &mut [T]) {
    let [in_h, in_w] = g.in_size;
    let out_w = g.out_size[1];
    let [stride_h, stride_w] = g.stride;
    let [dil_h, dil_w] = g.dilation;
    let (pad_top, pad_left) = (g.padding[0].0 as isize, g.padding[1].0 as isize);
    let mut rows = col.chunks_exact_mut(g.out_pixels());
    for plane in x.chunks_exact(in_h * in_w).take(g.group_in()) {
        for kh in 0..g.kernel[0] {
            for kw in 0..g.kernel[1] {
                let Some(row) = rows.next() else { return };
                let offset_w = (kw * dil_w) as isize - pad_left;
                let (lo, hi) = valid_range(out_w, stride_w, offset_w, in_w);
                for (oh, out) in row.chunks_exact_mut(out_w).enumerate() {
                    let ih = (oh * stride_h + kh * dil_h) as isize - pad_top;
                    if ih < 0 || ih >= in_h as isize || lo == hi {
                        out.fill(T::ZERO);
                        continue;
                    }
                    let src = &plane[ih as usize * in_w..][..in_w];
                    out[..lo].fill(T::ZERO);
                    out[hi..].fill(T::ZERO);
                    let start = (lo as isize * stride_w as isize + offset_w) as usize;
                    if stride_w == 1 {
                        for (o, v) in out[lo..hi].iter_mut().zip(&src[start..]) {
                            *o = *v;
                        }
                    } else {
                        let src = &src[start..];
                        for (o, v) in out[lo..hi].iter_mut().zip(src.iter().step_by(stride_w)) {
                            *o = *v;
                        }
                    }
                }
            }
        }
    }
}

/// The adjoint of [`im2col`]: adds every column entry back to the input pixel it came from.
fn col2im_add<T: Element>(g: &Geometry, col: &[T], dx: &mut [T]) {
    let [in_h, in_w] = g.in_size;
    let [out_h, out_w] = g.out_size;
    let [stride_h, stride_w] = g.stride;
    let [dil_h, dil_w] = g.dilation;
    let (pad_top, pad_left) = (g.padding[0].0 as isize, g.padding[1].0 as isize);
    let mut rows = col.chunks_exact(g.out_pixels());
    for plane in dx.chunks_exact_mut(in_h * in_w).take(g.group_in()) {
        for kh in 0..g.kernel[0] {
            for kw in 0..g.kernel[1] {
                let Some(row) = rows.next() else { return };
                let offset_w = (kw * dil_w) as isize - pad_left;
                let (lo, hi) = valid_range(out_w, stride_w, offset_w, in_w);
                if lo == hi {
                    continue;
                }
                for (oh, src) in row.chunks_exact(out_w).enumerate().take(out_h) {
                    let ih = (oh * stride_h + kh * dil_h) as isize - pad_top;
                    if ih < 0 || ih >= in_h as isize {
                        continue;
                    }
                    let dst = &mut plane[ih as usize * in_w..][..in_w];
                    let start = (lo as isize * stride_w as isize + offset_w) as usize;
                    for (v, d) in src[lo..hi]
                        .iter()
                        .zip(dst[start..].iter_mut().step_by(stride_w))
                    {
                        *d += *v;
                    }
                }
            }
        }
    }
}

/// A column buffer, unless the convolution is pointwise.
fn col_buffer<T: Element>(g: &Geometry) -> Vec<T> {
    if g.is_pointwise() {
        Vec::new()
    } else {
        vec![T::ZERO; g.patch_len() * g.out_pixels()]
    }
}

/// The patch matrix of one group of one image: the image itself when pointwise, else `col`
/// filled by [`im2col`].
fn patches<'a, T: Element>(g: &Geometry, x: &'a [T], group: usize, col: &'a mut [T]) -> &'a [T] {
    let x = &x[group * g.group_in() * g.in_pixels()..];
    if g.is_pointwise() {
        &x[..g.patch_len() * g.out_pixels()]
    } else {
        im2col(g, x, col);
        col
    }
}

/// Forward pass of one task: `x` its input images, `out` its output images (every element
/// written).
pub(super) fn forward<T: Element>(
    g: &Geometry,
    plan: &Plan,
    x: &[T],
    weight: &[T],
    bias: Option<&[T]>,
    out: &mut [MaybeUninit<T>],
) {
    let (group_out, patch, pixels) = (g.group_out(), g.patch_len(), g.out_pixels());
    let mut col = col_buffer(g);
    for (out, x) in out.chunks_mut(g.image_out()).zip(x.chunks(g.image_in())) {
        for group in 0..g.groups {
            let col = patches(g, x, group, &mut col);
            let dst = &mut out[group * group_out * pixels..][..group_out * pixels];
            let w = &weight[group * group_out * patch..][..group_out * patch];
            // SAFETY: dst is [group_out, pixels], w [group_out, patch] and col
            // [patch, pixels], all row-major and in bounds; dst is fully written.
            unsafe {
                matmul(
                    [group_out, pixels, patch],
                    dst.as_mut_ptr().cast::<T>(),
                    [1, pixels],
                    false,
                    w.as_ptr(),
                    [1, patch],
                    col.as_ptr(),
                    [1, pixels],
                    plan.parallelism,
                );
            }
        }
        if let Some(bias) = bias {
            for (channel, &b) in out.chunks_mut(pixels).zip(bias) {
                for v in channel {
                    // SAFETY: the products above initialised every element.
                    let value = unsafe { v.assume_init_read() };
                    v.write(value + b);
                }
            }
        }
    }
}

/// Weight-gradient sum of one task, laid out `[groups, patch_len, out_channels / groups]`.
pub(super) fn weight_grad<T: Element>(g: &Geometry, plan: &Plan, x: &[T], dy: &[T]) -> Vec<T> {
    let (group_out, patch, pixels) = (g.group_out(), g.patch_len(), g.out_pixels());
    let mut sum = vec![T::ZERO; g.weight_len()];
    let mut col = col_buffer(g);
    for (x, dy) in x.chunks(g.image_in()).zip(dy.chunks(g.image_out())) {
        for group in 0..g.groups {
            let col = patches(g, x, group, &mut col);
            let dy = &dy[group * group_out * pixels..][..group_out * pixels];
            let dst = &mut sum[group * patch * group_out..][..patch * group_out];
            // SAFETY: dst (o, k) at k * group_out + o; dy (o, p) at o * pixels + p; col^T
            // (p, k) at k * pixels + p; all in bounds.
            unsafe {
                matmul(
                    [group_out, patch, pixels],
                    dst.as_mut_ptr(),
                    [group_out, 1],
                    true,
                    dy.as_ptr(),
                    [1, pixels],
                    col.as_ptr(),
                    [pixels, 1],
                    plan.parallelism,
                );
            }
        }
    }
    sum
}

/// The weight layout of a sum from [`weight_grad`].
pub(super) fn weight_layout<T: Element>(g: &Geometry, sum: &[T]) -> Vec<T> {
    let (group_out, patch) = (g.group_out(), g.patch_len());
    let mut weight = vec![T::ZERO; g.weight_len()];
    for group in 0..g.groups {
        let sum = &sum[group * patch * group_out..][..patch * group_out];
        for o in 0..group_out {
            let dst = &mut weight[(group * group_out + o) * patch..][..patch];
            for (k, d) in dst.iter_mut().enumerate() {
                *d = sum[k * group_out + o];
            }
        }
    }
    weight
}

/// `1x1` input gradient of one task: `dx[in, P] = w^T x dy[out, P]` per group, written
/// straight out (every element).
pub(super) fn input_grad_pointwise<T: Element>(
    g: &Geometry,
    plan: &Plan,
    weight: &[T],
    dy: &[T],
    dx: &mut [MaybeUninit<T>],
) {
    let (group_in, group_out, pixels) = (g.group_in(), g.group_out(), g.out_pixels());
    for (dx, dy) in dx.chunks_mut(g.image_in()).zip(dy.chunks(g.image_out())) {
        for group in 0..g.groups {
            let dst = &mut dx[group * group_in * pixels..][..group_in * pixels];
            let w = &weight[group * group_out * group_in..][..group_out * group_in];
            let dy = &dy[group * group_out * pixels..][..group_out * pixels];
            // SAFETY: dst is [group_in, pixels] row-major; w^T [group_in, group_out] read
            // through w's [group_out, group_in] layout; dy [group_out, pixels] row-major.
            // dst is fully written.
            unsafe {
                matmul(
                    [group_in, pixels, group_out],
                    dst.as_mut_ptr().cast::<T>(),
                    [1, pixels],
                    false,
                    w.as_ptr(),
                    [group_in, 1],
                    dy.as_ptr(),
                    [1, pixels],
                    plan.parallelism,
                );
            }
        }
    }
}

/// General input gradient of one task: `dcol = w^T x dy` per image and group, added back into
/// the zeroed `dx` by [`col2im_add`].
pub(super) fn input_grad_scatter<T: Element>(
    g: &Geometry,
    plan: &Plan,
    weight: &[T],
    dy: &[T],
    dx: &mut [T],
) {
    let (group_in, group_out, patch, pixels) =
        (g.group_in(), g.group_out(), g.patch_len(), g.out_pixels());
    let mut col = vec![T::ZERO; patch * pixels];
    for (dx, dy) in dx.chunks_mut(g.image_in()).zip(dy.chunks(g.image_out())) {
        for group in 0..g.groups {
            let w = &weight[group * group_out * patch..][..group_out * patch];
            let dy = &dy[group * group_out * pixels..][..group_out * pixels];
            // SAFETY: col is [patch, pixels] row-major and fully written; w^T
            // [patch, group_out] read through w's [group_out, patch] layout; dy
            // [group_out, pixels] row-major.
            unsafe {
                matmul(
                    [patch, pixels, group_out],
                    col.as_mut_ptr(),
                    [1, pixels],
                    false,
                    w.as_ptr(),
                    [patch, 1],
                    dy.as_ptr(),
                    [1, pixels],
                    plan.parallelism,
                );
            }
            col2im_add(g, &col, &mut dx[group * group_in * g.in_pixels()..]);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn valid_range_keeps_inputs_inside_the_image() {
        for (out, stride, offset, size) in
            [(5, 1, -1, 5), (4, 2, -3, 7), (3, 3, 2, 4), (6, 1, 7, 5)]
        {
            let (lo, hi) = valid_range(out, stride, offset, size);
            for o in 0..out {
                let inside = (0..size as isize).contains(&(o as isize * stride as isize + offset));
                assert_eq!(
                    inside,
                    (lo..hi).contains(&o),
                    "{out} {stride} {offset} {size} {o}"
                );
            }
        }
    }
}
