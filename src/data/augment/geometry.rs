//! Geometric transforms on 8-bit CHW images.

use crate::data::image::Image;
use crate::rng::Rng;

/// Random crop of `size x size` after zero-padding every side by `padding` pixels
/// (torchvision `RandomCrop(size, padding)`; the offset is uniform over all positions).
pub fn random_crop(image: &Image, size: usize, padding: usize, rng: &mut Rng) -> Image {
    let padded_h = image.height + 2 * padding;
    let padded_w = image.width + 2 * padding;
    let top = rng.index(padded_h.saturating_sub(size) + 1);
    let left = rng.index(padded_w.saturating_sub(size) + 1);
    let mut out = Image::filled(image.channels, size, size, 0);
    for c in 0..image.channels {
        for y in 0..size {
            let sy = (top + y) as isize - padding as isize;
            if sy < 0 || sy >= image.height as isize {
                continue;
            }
            for x in 0..size {
                let sx = (left + x) as isize - padding as isize;
                if sx >= 0 && sx < image.width as isize {
                    out.pixels[(c * size + y) * size + x] = image.get(c, sy as usize, sx as usize);
                }
            }
        }
    }
    out
}

/// Mirrors the image left-right.
pub fn hflip(image: &Image) -> Image {
    let mut out = image.clone();
    for c in 0..image.channels {
        for y in 0..image.height {
            let row = (c * image.height + y) * image.width;
            out.pixels[row..row + image.width].reverse();
        }
    }
    out
}

/// Mirrors with probability `p` (torchvision `RandomHorizontalFlip`).
pub fn random_hflip(image: Image, p: f64, rng: &mut Rng) -> Image {
    if rng.bernoulli(p) {
        hflip(&image)
    } else {
        image
    }
}

/// How pixels are sampled by [`affine`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resample {
    /// Nearest neighbour.
    Nearest,
    /// Bilinear interpolation.
    Bilinear,
}

/// PIL's `Image.transform(size, AFFINE, (a, b, c, d, e, f))`: output pixel `(x, y)` takes the
/// input at `(a x + b y + c, d x + e y + f)` (pixel centres at half-integers); pixels mapped
/// outside the input take `fill`.
pub fn affine(image: &Image, m: [f64; 6], resample: Resample, fill: u8) -> Image {
    let (h, w) = (image.height, image.width);
    let mut out = Image::filled(image.channels, h, w, fill);
    for y in 0..h {
        for x in 0..w {
            let (cx, cy) = (x as f64 + 0.5, y as f64 + 0.5);
            let sx = m[0] * cx + m[1] * cy + m[2];
            let sy = m[3] * cx + m[4] * cy + m[5];
            if sx < 0.0 || sy < 0.0 || sx >= w as f64 || sy >= h as f64 {
                continue;
            }
            for c in 0..image.channels {
                let v = match resample {
                    Resample::Nearest => image.get(c, sy as usize, sx as usize),
                    Resample::Bilinear => bilinear(image, c, sx - 0.5, sy - 0.5),
                };
                out.pixels[(c * h + y) * w + x] = v;
            }
        }
    }
    out
}

/// Bilinear sample of channel `c` at continuous pixel coordinates (edge-clamped).
fn bilinear(image: &Image, c: usize, x: f64, y: f64) -> u8 {
    let (h, w) = (image.height as isize, image.width as isize);
    let x0 = x.floor();
    let y0 = y.floor();
    let (fx, fy) = (x - x0, y - y0);
    let at = |yy: isize, xx: isize| {
        image.get(c, yy.clamp(0, h - 1) as usize, xx.clamp(0, w - 1) as usize) as f64
    };
    let (x0, y0) = (x0 as isize, y0 as isize);
    let top = at(y0, x0) * (1.0 - fx) + at(y0, x0 + 1) * fx;
    let bottom = at(y0 + 1, x0) * (1.0 - fx) + at(y0 + 1, x0 + 1) * fx;
    (top * (1.0 - fy) + bottom * fy).round().clamp(0.0, 255.0) as u8
}

/// Shear along x by `amount` (`x_in = x + amount * y`).
pub fn shear_x(image: &Image, amount: f64, fill: u8) -> Image {
    affine(
        image,
        [1.0, amount, 0.0, 0.0, 1.0, 0.0],
        Resample::Bilinear,
        fill,
    )
}

/// Shear along y by `amount` (`y_in = y + amount * x`).
pub fn shear_y(image: &Image, amount: f64, fill: u8) -> Image {
    affine(
        image,
        [1.0, 0.0, 0.0, amount, 1.0, 0.0],
        Resample::Bilinear,
        fill,
    )
}

/// Translation by `pixels` along x (`x_in = x + pixels`).
pub fn translate_x(image: &Image, pixels: f64, fill: u8) -> Image {
    affine(
        image,
        [1.0, 0.0, pixels, 0.0, 1.0, 0.0],
        Resample::Nearest,
        fill,
    )
}

/// Translation by `pixels` along y.
pub fn translate_y(image: &Image, pixels: f64, fill: u8) -> Image {
    affine(
        image,
        [1.0, 0.0, 0.0, 0.0, 1.0, pixels],
        Resample::Nearest,
        fill,
    )
}

/// Counter-clockwise rotation by `degrees` about the centre (PIL `rotate`), corners filled.
pub fn rotate(image: &Image, degrees: f64, fill: u8) -> Image {
    let (s, c) = degrees.to_radians().sin_cos();
    let (cx, cy) = (image.width as f64 / 2.0, image.height as f64 / 2.0);
    // Inverse map of a counter-clockwise rotation in image coordinates (y down).
    let m = [c, -s, cx - c * cx + s * cy, s, c, cy - s * cx - c * cy];
    affine(image, m, Resample::Nearest, fill)
}

/// Bilinear resize to `height x width` (half-pixel centres, as PIL and torchvision).
pub fn resize(image: &Image, height: usize, width: usize) -> Image {
    crop_resize(
        image,
        0.0,
        0.0,
        image.height as f64,
        image.width as f64,
        height,
        width,
    )
}

/// Resizes the region `top, left, h, w` of `image` to `out_h x out_w` bilinearly. Downscaling
/// averages over the source footprint (area filter), as PIL does, to avoid aliasing.
pub fn crop_resize(
    image: &Image,
    top: f64,
    left: f64,
    h: f64,
    w: f64,
    out_h: usize,
    out_w: usize,
) -> Image {
    let mut out = Image::filled(image.channels, out_h, out_w, 0);
    let (sy, sx) = (h / out_h as f64, w / out_w as f64);
    // Supersample when shrinking by more than 2x.
    let (ny, nx) = (
        (sy / 2.0).ceil().max(1.0) as usize,
        (sx / 2.0).ceil().max(1.0) as usize,
    );
    for c in 0..image.channels {
        for y in 0..out_h {
            for x in 0..out_w {
                let mut acc = 0.0;
                for j in 0..ny {
                    for i in 0..nx {
                        let py = top + (y as f64 + (j as f64 + 0.5) / ny as f64) * sy - 0.5;
                        let px = left + (x as f64 + (i as f64 + 0.5) / nx as f64) * sx - 0.5;
                        acc += bilinear(image, c, px, py) as f64;
                    }
                }
                out.pixels[(c * out_h + y) * out_w + x] = (acc / (nx * ny) as f64).round() as u8;
            }
        }
    }
    out
}

/// Centre crop of `size x size` (padded with zeros if the image is smaller).
pub fn center_crop(image: &Image, size: usize) -> Image {
    let top = (image.height as isize - size as isize) / 2;
    let left = (image.width as isize - size as isize) / 2;
    let mut out = Image::filled(image.channels, size, size, 0);
    for c in 0..image.channels {
        for y in 0..size {
            let sy = top + y as isize;
            for x in 0..size {
                let sx = left + x as isize;
                if sy >= 0 && sx >= 0 && (sy as usize) < image.height && (sx as usize) < image.width
                {
                    out.pixels[(c * size + y) * size + x] = image.get(c, sy as usize, sx as usize);
                }
            }
        }
    }
    out
}

/// Resizes so the shorter side is `shorter`, keeping the aspect ratio.
pub fn resize_shorter(image: &Image, shorter: usize) -> Image {
    let (h, w) = (image.height as f64, image.width as f64);
    let scale = shorter as f64 / h.min(w);
    resize(
        image,
        ((h * scale).round() as usize).max(1),
        ((w * scale).round() as usize).max(1),
    )
}

/// torchvision's `RandomResizedCrop(size, scale, ratio)`: up to 10 tries at a region of random
/// area fraction in `scale` and log-uniform aspect ratio in `ratio`, else a centre crop of the
/// clamped ratio; the region is resized to `size x size`.
pub fn random_resized_crop(
    image: &Image,
    size: usize,
    scale: (f64, f64),
    ratio: (f64, f64),
    rng: &mut Rng,
) -> Image {
    let (h, w) = (image.height as f64, image.width as f64);
    let area = h * w;
    for _ in 0..10 {
        let target = area * rng.uniform(scale.0, scale.1);
        let aspect = rng.uniform(ratio.0.ln(), ratio.1.ln()).exp();
        let cw = (target * aspect).sqrt().round();
        let ch = (target / aspect).sqrt().round();
        if cw > 0.0 && ch > 0.0 && cw <= w && ch <= h {
            let top = rng.index((h - ch) as usize + 1) as f64;
            let left = rng.index((w - cw) as usize + 1) as f64;
            return crop_resize(image, top, left, ch, cw, size, size);
        }
    }
    let in_ratio = w / h;
    let (cw, ch) = if in_ratio < ratio.0 {
        (w, (w / ratio.0).round())
    } else if in_ratio > ratio.1 {
        ((h * ratio.1).round(), h)
    } else {
        (w, h)
    };
    crop_resize(
        image,
        ((h - ch) / 2.0).floor(),
        ((w - cw) / 2.0).floor(),
        ch,
        cw,
        size,
        size,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ramp(c: usize, h: usize, w: usize) -> Image {
        Image::new(c, h, w, (0..c * h * w).map(|i| (i % 251) as u8).collect()).unwrap()
    }

    #[test]
    fn flip_twice_is_identity_and_crop_pads_with_zeros() {
        let img = ramp(3, 5, 7);
        assert_eq!(hflip(&hflip(&img)), img);
        assert_ne!(hflip(&img), img);
        let white = Image::filled(1, 4, 4, 255);
        let mut rng = Rng::new(1);
        let mut saw_padding = false;
        for _ in 0..50 {
            let out = random_crop(&white, 4, 2, &mut rng);
            assert_eq!((out.height, out.width), (4, 4));
            assert!(out.pixels.iter().all(|&v| v == 0 || v == 255));
            saw_padding |= out.pixels.contains(&0);
            // The image itself is never moved out entirely: at least one row/column survives.
            assert!(out.pixels.contains(&255));
        }
        assert!(saw_padding);
    }

    #[test]
    fn affine_identities() {
        let img = ramp(1, 6, 6);
        assert_eq!(translate_x(&img, 0.0, 128), img);
        assert_eq!(rotate(&img, 0.0, 128), img);
        assert_eq!(resize(&img, 6, 6), img);
        let shifted = translate_x(&img, 2.0, 128);
        assert_eq!(shifted.get(0, 3, 0), img.get(0, 3, 2));
        assert_eq!(shifted.get(0, 3, 5), 128);
        let r = rotate(&rotate(&img, 90.0, 0), -90.0, 0);
        assert_eq!(r, img);
        let big = random_resized_crop(
            &ramp(3, 40, 30),
            16,
            (0.08, 1.0),
            (0.75, 4.0 / 3.0),
            &mut Rng::new(3),
        );
        assert_eq!((big.channels, big.height, big.width), (3, 16, 16));
        assert_eq!(
            center_crop(&ramp(1, 8, 8), 4).get(0, 0, 0),
            ramp(1, 8, 8).get(0, 2, 2)
        );
        assert_eq!(resize_shorter(&ramp(3, 20, 40), 10).width, 20);
    }
}
