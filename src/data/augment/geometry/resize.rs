//! Resizing and cropping to a size: PIL's bilinear `Image.resize` and the torchvision
//! transforms built on it (`Resize`, `CenterCrop`, `RandomResizedCrop`).

use super::crop;
use crate::data::image::Image;
use crate::rng::Rng;

/// PIL's resampling coefficients for one axis (`precompute_coeffs` with the triangle
/// filter, then `normalize_coeffs_8bpc`): for each output index the first input index and
/// the fixed-point weights.
fn bilinear_coefficients(in_size: usize, out_size: usize) -> Vec<(usize, Vec<i64>)> {
    const PRECISION: f64 = (1u64 << 22) as f64;
    let scale = in_size as f64 / out_size as f64;
    let filterscale = scale.max(1.0);
    let support = filterscale;
    (0..out_size)
        .map(|xx| {
            let center = (xx as f64 + 0.5) * scale;
            let ss = 1.0 / filterscale;
            let xmin = ((center - support + 0.5) as i64).max(0);
            let xmax = ((center + support + 0.5) as i64).min(in_size as i64) - xmin;
            let mut weights: Vec<f64> = (0..xmax.max(0))
                .map(|x| {
                    let t = ((x + xmin) as f64 - center + 0.5) * ss;
                    (1.0 - t.abs()).max(0.0)
                })
                .collect();
            let total: f64 = weights.iter().sum();
            if total != 0.0 {
                weights.iter_mut().for_each(|k| *k /= total);
            }
            let fixed = weights
                .iter()
                .map(|&k| {
                    if k < 0.0 {
                        (-0.5 + k * PRECISION) as i64
                    } else {
                        (0.5 + k * PRECISION) as i64
                    }
                })
                .collect();
            (xmin as usize, fixed)
        })
        .collect()
}

/// PIL's `clip8`: the 22-bit fixed-point sum to a byte.
fn clip8(sum: i64) -> u8 {
    (sum >> 22).clamp(0, 255) as u8
}

/// PIL's `Image.resize((width, height), BILINEAR)`: separable, antialiased when shrinking
/// (conventions in the module docs). Returns a copy when the size does not change.
pub fn resize(image: &Image, height: usize, width: usize) -> Image {
    let (ch, h, w) = image.shape();
    if (h, w) == (height, width) {
        return image.clone();
    }
    let horizontal = bilinear_coefficients(w, width);
    let vertical = bilinear_coefficients(h, height);
    let half = 1i64 << 21;
    let mut out = Image::filled(ch, height, width, 0);
    let mut temp = vec![0u8; h * width];
    for c in 0..ch {
        let plane = image.plane(c);
        // Horizontal pass (skipped, as in PIL, when the width is unchanged).
        let rows: &[u8] = if w == width {
            plane
        } else {
            for y in 0..h {
                let src = &plane[y * w..(y + 1) * w];
                for (xx, (xmin, k)) in horizontal.iter().enumerate() {
                    let sum: i64 = k
                        .iter()
                        .zip(&src[*xmin..])
                        .map(|(&k, &v)| k * v as i64)
                        .sum();
                    temp[y * width + xx] = clip8(half + sum);
                }
            }
            &temp
        };
        let out_plane = out.plane_mut(c);
        if h == height {
            out_plane.copy_from_slice(&rows[..h * width]);
            continue;
        }
        for (yy, (ymin, k)) in vertical.iter().enumerate() {
            for xx in 0..width {
                let sum: i64 = k
                    .iter()
                    .enumerate()
                    .map(|(j, &k)| k * rows[(ymin + j) * width + xx] as i64)
                    .sum();
                out_plane[yy * width + xx] = clip8(half + sum);
            }
        }
    }
    out
}

/// torchvision's `CenterCrop(size)` on a PIL image: offsets `round((H - size) / 2)` and
/// `round((W - size) / 2)` with Python's round-half-to-even; an axis shorter than `size` is
/// zero-padded, `floor` of the excess on the top/left.
pub fn center_crop(image: &Image, size: usize) -> Image {
    let offset = |have: usize| -> isize {
        if size > have {
            -(((size - have) / 2) as isize)
        } else {
            ((have - size) as f64 / 2.0).round_ties_even() as isize
        }
    };
    crop(image, offset(image.height), offset(image.width), size, size)
}

/// torchvision's `Resize(shorter)` on a PIL image: the shorter side becomes `shorter`, the
/// longer `int(shorter * long / short)` (truncated), bilinear ([`resize`]).
pub fn resize_shorter(image: &Image, shorter: usize) -> Image {
    let (h, w) = (image.height, image.width);
    let long = |l: usize, s: usize| ((shorter as f64 * l as f64 / s as f64) as usize).max(1);
    let (new_h, new_w) = if w <= h {
        (long(h, w), shorter)
    } else {
        (shorter, long(w, h))
    };
    resize(image, new_h, new_w)
}

/// torchvision's `RandomResizedCrop(size, scale, ratio)`: up to 10 tries at a window of area
/// fraction uniform in `scale` and aspect ratio (width / height) log-uniform in `ratio`,
/// `w = round(sqrt(area * ratio))`, `h = round(sqrt(area / ratio))`, placed uniformly (top,
/// then left) when it fits; else the centre crop of the whole image clamped to `ratio`. The
/// window is cropped, then resized to `size x size` with [`resize`].
pub fn random_resized_crop(
    image: &Image,
    size: usize,
    scale: (f64, f64),
    ratio: (f64, f64),
    rng: &mut Rng,
) -> Image {
    let (h, w) = (image.height as f64, image.width as f64);
    let area = h * w;
    let (log_lo, log_hi) = (ratio.0.ln(), ratio.1.ln());
    for _ in 0..10 {
        let target = area * rng.uniform(scale.0, scale.1);
        let aspect = rng.uniform(log_lo, log_hi).exp();
        let cw = (target * aspect).sqrt().round();
        let ch = (target / aspect).sqrt().round();
        if cw > 0.0 && ch > 0.0 && cw <= w && ch <= h {
            let (cw, ch) = (cw as usize, ch as usize);
            let top = rng.index(image.height - ch + 1);
            let left = rng.index(image.width - cw + 1);
            let window = crop(image, top as isize, left as isize, ch, cw);
            return resize(&window, size, size);
        }
    }
    let (lo, hi) = (ratio.0.min(ratio.1), ratio.0.max(ratio.1));
    let in_ratio = w / h;
    let (cw, ch) = if in_ratio < lo {
        (image.width, ((w / lo).round() as usize).max(1))
    } else if in_ratio > hi {
        (((h * hi).round() as usize).max(1), image.height)
    } else {
        (image.width, image.height)
    };
    let top = (image.height as isize - ch as isize) / 2;
    let left = (image.width as isize - cw as isize) / 2;
    resize(&crop(image, top, left, ch, cw), size, size)
}
