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

mod resize;

pub use resize::*;

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

#[cfg(test)]
mod tests;
