//! Geometric transforms on 8-bit CHW images.
//!
//! The reference CIFAR and ImageNet recipes run torchvision transforms on PIL images, so each
//! function here reproduces the PIL (Pillow) or torchvision routine it is named after,
//! including its coordinate convention and its rounding:
//!
//! - [`affine`] is PIL's `Image.transform(size, AFFINE, (a, b, c, d, e, f), resample,
//!   fillcolor)`: output pixel `(x, y)` samples the input at `(a x' + b y' + c, d x' + e y' + f)`
//!   where `(x', y') = (x + 0.5, y + 0.5)` is the pixel centre. Nearest-neighbour sampling
//!   takes the pixel containing that point (PIL's 16.16 fixed-point engine for general
//!   matrices, its float engine for pure scale/translation); bilinear and bicubic sampling
//!   follow PIL's transform filters (bicubic with `a = -1`, edge-clamped, results truncated,
//!   not rounded). Points outside the input take the fill value.
//! - [`resize`] is PIL's `Image.resize(size, BILINEAR)`: a separable triangle filter whose
//!   support grows with the downscaling factor (antialiasing), with PIL's 22-bit fixed-point
//!   coefficients and rounding. torchvision's `Resize`, `RandomResizedCrop` and
//!   `CenterCrop` on PIL images all go through it.

use crate::data::image::Image;
use crate::rng::Rng;

/// Random `size x size` crop after zero-padding every side by `padding` pixels: torchvision's
/// `RandomCrop(size, padding)`. The top offset, then the left offset, are uniform over every
/// position of the window in the padded image.
pub fn random_crop(image: &Image, size: usize, padding: usize, rng: &mut Rng) -> Image {
    let padded_h = image.height + 2 * padding;
    let padded_w = image.width + 2 * padding;
    let top = rng.index(padded_h.saturating_sub(size) + 1);
    let left = rng.index(padded_w.saturating_sub(size) + 1);
    crop(
        image,
        top as isize - padding as isize,
        left as isize - padding as isize,
        size,
        size,
    )
}

/// The `height x width` window of `image` whose top-left corner is at `(top, left)`, which
/// may lie outside the image; pixels outside it are zero (PIL's `Image.crop`).
pub fn crop(image: &Image, top: isize, left: isize, height: usize, width: usize) -> Image {
    let mut out = Image::filled(image.channels, height, width, 0);
    // Columns of the window that fall inside the image.
    let x0 = (-left).clamp(0, width as isize) as usize;
    let x1 = (image.width as isize - left).clamp(0, width as isize) as usize;
    if x0 >= x1 {
        return out;
    }
    for c in 0..image.channels {
        for y in 0..height {
            let sy = top + y as isize;
            if sy < 0 || sy >= image.height as isize {
                continue;
            }
            let src = (c * image.height + sy as usize) * image.width;
            let sx0 = (left + x0 as isize) as usize;
            let dst = (c * height + y) * width;
            out.pixels[dst + x0..dst + x1]
                .copy_from_slice(&image.pixels[src + sx0..src + sx0 + (x1 - x0)]);
        }
    }
    out
}

/// Mirrors the image left-right (PIL `FLIP_LEFT_RIGHT`); applying it twice is the identity.
pub fn hflip(image: &Image) -> Image {
    let mut out = image.clone();
    out.pixels
        .chunks_exact_mut(image.width)
        .for_each(<[u8]>::reverse);
    out
}

/// Mirrors with probability `p` (torchvision `RandomHorizontalFlip(p)`).
pub fn random_hflip(image: Image, p: f64, rng: &mut Rng) -> Image {
    if rng.bernoulli(p) {
        hflip(&image)
    } else {
        image
    }
}

/// How [`affine`] samples the input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resample {
    /// Nearest neighbour (PIL `NEAREST`, the default of `Image.transform` and `rotate`).
    Nearest,
    /// Bilinear interpolation (PIL `BILINEAR` transform filter).
    Bilinear,
    /// Bicubic interpolation (PIL `BICUBIC` transform filter, `a = -1`).
    Bicubic,
}

/// PIL's `COORD`: the pixel index containing coordinate `v`, or -1 left of the image.
fn coord(v: f64) -> i64 {
    if v < 0.0 { -1 } else { v as i64 }
}

/// PIL's `FLOOR`.
fn floor_i(v: f64) -> i64 {
    v.floor() as i64
}

/// PIL's `Image.transform(size, AFFINE, m, resample, fillcolor=fill)` at the image's own size
/// (conventions in the module docs).
pub fn affine(image: &Image, m: [f64; 6], resample: Resample, fill: u8) -> Image {
    affine_with(image, m, resample, &[fill])
}

/// [`affine`] with a fill colour: channel `c` of the uncovered pixels takes `fill[c]`, or
/// `fill[0]` when `fill` has fewer entries (one value fills every channel).
pub fn affine_with(image: &Image, m: [f64; 6], resample: Resample, fill: &[u8]) -> Image {
    match resample {
        Resample::Nearest => affine_nearest(image, m, fill),
        Resample::Bilinear | Resample::Bicubic => affine_filtered(image, m, resample, fill),
    }
}

/// An image of the shape of `image` filled with `fill` (per channel, see [`affine_with`]).
fn filled_like(image: &Image, fill: &[u8]) -> Image {
    let (ch, h, w) = image.shape();
    let mut out = Image::filled(ch, h, w, 0);
    for c in 0..ch {
        let value = fill.get(c).or(fill.first()).copied().unwrap_or(0);
        out.plane_mut(c).fill(value);
    }
    out
}

fn affine_nearest(image: &Image, m: [f64; 6], fill: &[u8]) -> Image {
    let (ch, h, w) = image.shape();
    let mut out = filled_like(image, fill);
    let (hi, wi) = (h as i64, w as i64);
    let mut copy = |y: usize, x: usize, sy: i64, sx: i64| {
        for c in 0..ch {
            out.pixels[(c * h + y) * w + x] = image.get(c, sy as usize, sx as usize);
        }
    };
    if m[1] == 0.0 && m[3] == 0.0 {
        // ImagingScaleAffine: tabulated columns, accumulated coordinates.
        let mut xo = m[2] + m[0] * 0.5;
        let columns: Vec<i64> = (0..w)
            .map(|_| {
                let x = coord(xo);
                xo += m[0];
                x
            })
            .collect();
        let mut yo = m[5] + m[4] * 0.5;
        for y in 0..h {
            let sy = coord(yo);
            if (0..hi).contains(&sy) {
                for (x, &sx) in columns.iter().enumerate() {
                    if (0..wi).contains(&sx) {
                        copy(y, x, sy, sx);
                    }
                }
            }
            yo += m[4];
        }
        return out;
    }
    let fits = |x: f64, y: f64| {
        (x * m[0] + y * m[1] + m[2]).abs() < 32768.0 && (x * m[3] + y * m[4] + m[5]).abs() < 32768.0
    };
    let (wf, hf) = (w as f64, h as f64);
    if fits(0.0, 0.0) && fits(wf, hf) && fits(0.0, hf) && fits(wf, 0.0) {
        // affine_fixed: 16.16 fixed point, accumulated.
        let fix = |v: f64| floor_i(v * 65536.0 + 0.5);
        let (a0, a1, a3, a4) = (fix(m[0]), fix(m[1]), fix(m[3]), fix(m[4]));
        let mut a2 = fix(m[2] + m[0] * 0.5 + m[1] * 0.5);
        let mut a5 = fix(m[5] + m[3] * 0.5 + m[4] * 0.5);
        for y in 0..h {
            let (mut xx, mut yy) = (a2, a5);
            for x in 0..w {
                let sx = xx >> 16;
                if (0..wi).contains(&sx) {
                    let sy = yy >> 16;
                    if (0..hi).contains(&sy) {
                        copy(y, x, sy, sx);
                    }
                }
                xx += a0;
                yy += a3;
            }
            a2 += a1;
            a5 += a4;
        }
        return out;
    }
    // Floating-point engine for matrices beyond the fixed-point range.
    let mut xo = m[2] + m[1] * 0.5 + m[0] * 0.5;
    let mut yo = m[5] + m[4] * 0.5 + m[3] * 0.5;
    for y in 0..h {
        let (mut xx, mut yy) = (xo, yo);
        for x in 0..w {
            let (sx, sy) = (coord(xx), coord(yy));
            if (0..wi).contains(&sx) && (0..hi).contains(&sy) {
                copy(y, x, sy, sx);
            }
            xx += m[0];
            yy += m[3];
        }
        xo += m[1];
        yo += m[4];
    }
    out
}

/// PIL's `BICUBIC` kernel step (`a = -1`) through four samples at offset `d`.
fn cubic(v1: f64, v2: f64, v3: f64, v4: f64, d: f64) -> f64 {
    let p1 = v2;
    let p2 = -v1 + v3;
    let p3 = 2.0 * (v1 - v2) + v3 - v4;
    let p4 = -v1 + v2 - v3 + v4;
    p1 + d * (p2 + d * (p3 + d * p4))
}

fn affine_filtered(image: &Image, m: [f64; 6], resample: Resample, fill: &[u8]) -> Image {
    let (ch, h, w) = image.shape();
    let mut out = filled_like(image, fill);
    let (hi, wi) = (h as i64, w as i64);
    let xclip = |x: i64| x.clamp(0, wi - 1) as usize;
    let yclip = |y: i64| y.clamp(0, hi - 1) as usize;
    for y in 0..h {
        for x in 0..w {
            let (xc, yc) = (x as f64 + 0.5, y as f64 + 0.5);
            let xin = m[0] * xc + m[1] * yc + m[2];
            let yin = m[3] * xc + m[4] * yc + m[5];
            if xin < 0.0 || xin >= w as f64 || yin < 0.0 || yin >= h as f64 {
                continue;
            }
            let (xin, yin) = (xin - 0.5, yin - 0.5);
            let (x0, y0) = (floor_i(xin), floor_i(yin));
            let (dx, dy) = (xin - x0 as f64, yin - y0 as f64);
            for c in 0..ch {
                let plane = image.plane(c);
                let px = |row: usize, col: i64| plane[row * w + xclip(col)] as f64;
                let v = match resample {
                    Resample::Bilinear => {
                        let row = |r: usize| {
                            let (a, b) = (px(r, x0), px(r, x0 + 1));
                            a + (b - a) * dx
                        };
                        let v1 = row(yclip(y0));
                        let v2 = if (0..hi).contains(&(y0 + 1)) {
                            row((y0 + 1) as usize)
                        } else {
                            v1
                        };
                        v1 + (v2 - v1) * dy
                    }
                    _ => {
                        let (xs, ys) = (x0 - 1, y0 - 1);
                        let row = |r: usize| {
                            cubic(px(r, xs), px(r, xs + 1), px(r, xs + 2), px(r, xs + 3), dx)
                        };
                        let v1 = row(yclip(ys));
                        let next = |k: i64, prev: f64| {
                            if (0..hi).contains(&(ys + k)) {
                                row((ys + k) as usize)
                            } else {
                                prev
                            }
                        };
                        let v2 = next(1, v1);
                        let v3 = next(2, v2);
                        let v4 = next(3, v3);
                        cubic(v1, v2, v3, v4, dy)
                    }
                };
                // PIL truncates (after clipping, for bicubic).
                out.pixels[(c * h + y) * w + x] = v.clamp(0.0, 255.0) as u8;
            }
        }
    }
    out
}

/// Shear along x: `x_in = x + amount * y` (PIL matrix `(1, amount, 0, 0, 1, 0)`, the form of
/// AutoAugment's and torchvision's `ShearX`).
pub fn shear_x(image: &Image, amount: f64, resample: Resample, fill: u8) -> Image {
    affine(image, [1.0, amount, 0.0, 0.0, 1.0, 0.0], resample, fill)
}

/// Shear along y: `y_in = amount * x + y` (PIL matrix `(1, 0, 0, amount, 1, 0)`).
pub fn shear_y(image: &Image, amount: f64, resample: Resample, fill: u8) -> Image {
    affine(image, [1.0, 0.0, 0.0, amount, 1.0, 0.0], resample, fill)
}

/// Translation sampling `x_in = x + pixels` (PIL matrix `(1, 0, pixels, 0, 1, 0)`,
/// nearest neighbour): the content moves left by `pixels`.
pub fn translate_x(image: &Image, pixels: f64, fill: u8) -> Image {
    affine(
        image,
        [1.0, 0.0, pixels, 0.0, 1.0, 0.0],
        Resample::Nearest,
        fill,
    )
}

/// Translation sampling `y_in = y + pixels`: the content moves up by `pixels`.
pub fn translate_y(image: &Image, pixels: f64, fill: u8) -> Image {
    affine(
        image,
        [1.0, 0.0, 0.0, 0.0, 1.0, pixels],
        Resample::Nearest,
        fill,
    )
}

/// Python's `round(v, 15)`, as PIL applies to the rotation matrix.
fn round15(v: f64) -> f64 {
    (v * 1e15).round() / 1e15
}

/// Rotation by 180 degrees.
fn rotate_180(image: &Image) -> Image {
    let mut out = image.clone();
    let area = image.area();
    out.pixels.chunks_exact_mut(area).for_each(<[u8]>::reverse);
    out
}

/// Rotation of a square image by a quarter turn, counter-clockwise when `ccw`.
fn rotate_quarter(image: &Image, ccw: bool) -> Image {
    let (ch, n, _) = image.shape();
    let mut out = image.clone();
    for c in 0..ch {
        for y in 0..n {
            for x in 0..n {
                let (sy, sx) = if ccw { (x, n - 1 - y) } else { (n - 1 - x, y) };
                out.pixels[(c * n + y) * n + x] = image.get(c, sy, sx);
            }
        }
    }
    out
}

/// PIL's `Image.rotate(degrees, NEAREST, expand=False, fillcolor=fill)`: counter-clockwise
/// about the image centre `(w / 2, h / 2)`, the corners filled. Multiples of 90 degrees are
/// exact transpositions, as in PIL (a quarter turn only for square images).
pub fn rotate(image: &Image, degrees: f64, fill: u8) -> Image {
    rotate_with(image, degrees, Resample::Nearest, &[fill])
}

/// PIL's `Image.rotate(degrees, resample, expand=False, fillcolor=fill)`: [`rotate`] with any
/// resampling and a fill colour (per channel, see [`affine_with`]). Multiples of 90 degrees
/// are exact transpositions whatever the resampling, as in PIL.
pub fn rotate_with(image: &Image, degrees: f64, resample: Resample, fill: &[u8]) -> Image {
    let angle = degrees.rem_euclid(360.0);
    if angle == 0.0 {
        return image.clone();
    }
    if angle == 180.0 {
        return rotate_180(image);
    }
    if (angle == 90.0 || angle == 270.0) && image.width == image.height {
        return rotate_quarter(image, angle == 90.0);
    }
    let theta = -angle.to_radians();
    let (a, b) = (round15(theta.cos()), round15(theta.sin()));
    let (d, e) = (round15(-theta.sin()), round15(theta.cos()));
    let (cx, cy) = (image.width as f64 / 2.0, image.height as f64 / 2.0);
    let c = a * -cx + b * -cy + cx;
    let f = d * -cx + e * -cy + cy;
    affine_with(image, [a, b, c, d, e, f], resample, fill)
}

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

#[cfg(test)]
mod tests {
    use super::*;

    fn ramp(c: usize, h: usize, w: usize) -> Image {
        Image::new(
            c,
            h,
            w,
            (0..c * h * w).map(|i| (i * 7 % 251) as u8).collect(),
        )
        .unwrap()
    }

    #[test]
    fn flip_twice_is_identity_and_crop_pads_with_zeros() {
        let img = ramp(3, 5, 7);
        assert_eq!(hflip(&hflip(&img)), img);
        assert_ne!(hflip(&img), img);
        assert_eq!(hflip(&img).get(1, 2, 0), img.get(1, 2, 6));
        let white = Image::filled(1, 4, 4, 255);
        let mut rng = Rng::new(1);
        let mut offsets = std::collections::HashSet::new();
        for _ in 0..400 {
            let out = random_crop(&white, 4, 2, &mut rng);
            assert_eq!(out.shape(), (1, 4, 4));
            assert!(out.pixels.iter().all(|&v| v == 0 || v == 255));
            // The zero rows/columns reveal the offset; all 25 positions occur.
            let rows = (0..4).filter(|&y| out.get(0, y, 1) == 0).count();
            let cols = (0..4).filter(|&x| out.get(0, 1, x) == 0).count();
            offsets.insert((rows, cols, out.get(0, 0, 0), out.get(0, 3, 3)));
            assert!(out.pixels.contains(&255));
        }
        assert!(offsets.len() >= 9, "{offsets:?}");
        let inside = crop(&img, 1, 2, 3, 4);
        assert_eq!(inside.get(2, 0, 0), img.get(2, 1, 2));
        let outside = crop(&img, -1, -1, 2, 2);
        assert_eq!(outside.get(0, 0, 0), 0);
        assert_eq!(outside.get(0, 1, 1), img.get(0, 0, 0));
        assert!(crop(&img, 10, 10, 2, 2).pixels.iter().all(|&v| v == 0));
    }

    #[test]
    fn affine_identities_and_pil_conventions() {
        let img = ramp(1, 6, 6);
        for resample in [Resample::Nearest, Resample::Bilinear, Resample::Bicubic] {
            assert_eq!(shear_x(&img, 0.0, resample, 128), img, "{resample:?}");
        }
        assert_eq!(translate_x(&img, 0.0, 128), img);
        assert_eq!(rotate(&img, 0.0, 128), img);
        assert_eq!(rotate(&img, 360.0, 128), img);
        assert_eq!(resize(&img, 6, 6), img);
        let shifted = translate_x(&img, 2.0, 128);
        assert_eq!(shifted.get(0, 3, 0), img.get(0, 3, 2));
        assert_eq!(shifted.get(0, 3, 5), 128);
        let down = translate_y(&img, -2.0, 9);
        assert_eq!(down.get(0, 2, 4), img.get(0, 0, 4));
        assert_eq!(down.get(0, 1, 4), 9);
        // Quarter turns are exact and counter-clockwise.
        let r = rotate(&img, 90.0, 0);
        assert_eq!(r.get(0, 0, 0), img.get(0, 0, 5));
        assert_eq!(rotate(&r, -90.0, 0), img);
        assert_eq!(rotate(&rotate(&img, 180.0, 0), 180.0, 0), img);
        // A general rotation keeps the centre pixel region and fills the corners.
        let r = rotate(&Image::filled(1, 9, 9, 50), 45.0, 7);
        assert_eq!((r.get(0, 0, 0), r.get(0, 4, 4)), (7, 50));
        // Shearing a constant image keeps the constant where the source is inside.
        let sheared = shear_y(&Image::filled(3, 8, 8, 200), 0.3, Resample::Bicubic, 128);
        assert_eq!(sheared.get(1, 2, 0), 200);
        assert_eq!(sheared.get(1, 7, 7), 128);
    }

    #[test]
    fn resizing_follows_torchvision() {
        // Downscaling a constant image keeps the constant (normalised weights).
        let flat = Image::filled(3, 37, 53, 123);
        assert!(resize(&flat, 8, 11).pixels.iter().all(|&v| v == 123));
        // Halving a two-column pattern: the triangle filter spans three input columns at
        // weights 3/7, 3/7, 1/7 (the values PIL gives).
        let stripes = Image::new(1, 2, 4, vec![0, 200, 0, 200, 0, 200, 0, 200]).unwrap();
        assert_eq!(resize(&stripes, 2, 2).pixels, vec![86, 114, 86, 114]);
        // Resize(shorter) truncates the long side; CenterCrop rounds half to even.
        let wide = ramp(3, 20, 45);
        assert_eq!(resize_shorter(&wide, 10).shape(), (3, 10, 22));
        let tall = ramp(3, 45, 20);
        assert_eq!(resize_shorter(&tall, 10).shape(), (3, 22, 10));
        let odd = ramp(1, 7, 7);
        // (7 - 4) / 2 = 1.5 rounds to 2.
        assert_eq!(center_crop(&odd, 4).get(0, 0, 0), odd.get(0, 2, 2));
        // Padding 5 - 2 = 3: one row/column before, two after.
        let small = center_crop(&ramp(1, 2, 2), 5);
        assert_eq!(small.get(0, 1, 1), ramp(1, 2, 2).get(0, 0, 0));
        assert_eq!(small.get(0, 2, 2), ramp(1, 2, 2).get(0, 1, 1));
        assert_eq!((small.get(0, 0, 0), small.get(0, 3, 3)), (0, 0));
        let big = random_resized_crop(
            &ramp(3, 40, 30),
            16,
            (0.08, 1.0),
            (0.75, 4.0 / 3.0),
            &mut Rng::new(3),
        );
        assert_eq!(big.shape(), (3, 16, 16));
        // An impossible ratio range falls back to the centre crop.
        let fallback =
            random_resized_crop(&flat, 5, (2.0, 3.0), (0.75, 4.0 / 3.0), &mut Rng::new(1));
        assert!(fallback.pixels.iter().all(|&v| v == 123));
    }
}
