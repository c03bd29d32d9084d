//! Photometric transforms on 8-bit images, following PIL's `ImageOps` and `ImageEnhance`
//! (the library the AutoAugment, RandAugment and torchvision `ColorJitter` reference code runs
//! on), with PIL's arithmetic:
//!
//! - the enhancers ([`color`], [`contrast`], [`brightness`], [`sharpness`]) are PIL's
//!   `Image.blend(degenerate, image, factor)`: `degenerate + factor * (image - degenerate)`
//!   in single precision, clipped to `[0, 255]` and truncated;
//! - grey levels are PIL's `convert("L")`: `(19595 R + 38470 G + 7471 B + 2^15) >> 16`
//!   (ITU-R 601-2 luma);
//! - lookup-table operations ([`posterize`], [`solarize`], [`invert`], [`autocontrast`],
//!   [`equalize`]) act on each channel separately, as PIL does on `RGB` images.
//!
//! On a one-channel image the saturation operation ([`color`]) is the identity (PIL's
//! `ImageEnhance.Color` of an `L` image); the others act on the single channel.

use crate::data::image::Image;
use crate::rng::Rng;

/// PIL's `ImagingBlend(degenerate, image, factor)` (`factor` rounded to `f32` as PIL does).
fn blend(degenerate: &Image, image: &Image, factor: f64) -> Image {
    let alpha = factor as f32;
    if alpha == 0.0 {
        return degenerate.clone();
    }
    if alpha == 1.0 {
        return image.clone();
    }
    let mut out = image.clone();
    for (o, (&d, &v)) in out
        .pixels
        .iter_mut()
        .zip(degenerate.pixels.iter().zip(&image.pixels))
    {
        let t = d as f32 + alpha * (v as i32 - d as i32) as f32;
        // `as u8` saturates at 0 and 255 and truncates in between, like PIL's casts.
        *o = t as u8;
    }
    out
}

/// The grey-level (luma) image with the same number of channels (torchvision's
/// `rgb_to_grayscale(img, num_output_channels=C)`, PIL `convert("L")` then back).
pub fn grayscale(image: &Image) -> Image {
    if image.channels < 3 {
        return image.clone();
    }
    let luma = image.luma();
    let mut out = image.clone();
    for c in 0..image.channels {
        out.plane_mut(c).copy_from_slice(&luma);
    }
    out
}

/// Saturation (PIL `ImageEnhance.Color(image).enhance(factor)`): 0 gives the grey image,
/// 1 the original.
pub fn color(image: &Image, factor: f64) -> Image {
    if image.channels < 3 {
        return image.clone();
    }
    blend(&grayscale(image), image, factor)
}

/// Contrast (PIL `ImageEnhance.Contrast`): blends with the constant
/// `int(mean luma + 0.5)`; 0 gives that grey, 1 the original.
pub fn contrast(image: &Image, factor: f64) -> Image {
    let luma = image.luma();
    let mean = luma.iter().map(|&v| v as u64).sum::<u64>() as f64 / luma.len().max(1) as f64;
    let degenerate = Image::filled(
        image.channels,
        image.height,
        image.width,
        (mean + 0.5) as u8,
    );
    blend(&degenerate, image, factor)
}

/// Brightness (PIL `ImageEnhance.Brightness`): blends with black.
pub fn brightness(image: &Image, factor: f64) -> Image {
    let black = Image::filled(image.channels, image.height, image.width, 0);
    blend(&black, image, factor)
}

/// PIL's `ImageFilter.SMOOTH`: the 3x3 kernel `[[1, 1, 1], [1, 5, 1], [1, 1, 1]] / 13`,
/// rounded; the border rows and columns are copied.
pub fn smooth(image: &Image) -> Image {
    let (ch, h, w) = image.shape();
    let mut out = image.clone();
    if h < 3 || w < 3 {
        return out;
    }
    for c in 0..ch {
        let src = image.plane(c);
        let dst = out.plane_mut(c);
        for y in 1..h - 1 {
            let (up, row, down) = (
                &src[(y - 1) * w..y * w],
                &src[y * w..(y + 1) * w],
                &src[(y + 1) * w..(y + 2) * w],
            );
            for x in 1..w - 1 {
                let ring = up[x - 1] as u32
                    + up[x] as u32
                    + up[x + 1] as u32
                    + row[x - 1] as u32
                    + row[x + 1] as u32
                    + down[x - 1] as u32
                    + down[x] as u32
                    + down[x + 1] as u32;
                // round((ring + 5 v) / 13): 13 is odd, so there are no ties.
                dst[y * w + x] = ((ring + 5 * row[x] as u32 + 6) / 13) as u8;
            }
        }
    }
    out
}

/// Sharpness (PIL `ImageEnhance.Sharpness`): blends with [`smooth`]; 0 gives the smoothed
/// image, 1 the original, 2 a sharpened one.
pub fn sharpness(image: &Image, factor: f64) -> Image {
    blend(&smooth(image), image, factor)
}

/// Keeps the top `bits` bits of each value (PIL `ImageOps.posterize`; `bits >= 8` is the
/// identity, 0 gives black).
pub fn posterize(image: &Image, bits: u32) -> Image {
    let mask = if bits >= 8 { 0xFF } else { !(0xFFu8 >> bits) };
    let mut out = image.clone();
    out.pixels.iter_mut().for_each(|v| *v &= mask);
    out
}

/// Inverts every value `v >= threshold` to `255 - v` (PIL `ImageOps.solarize`; the threshold
/// may be fractional, as AutoAugment's magnitudes are: `v < threshold` values are kept).
pub fn solarize(image: &Image, threshold: f64) -> Image {
    let mut out = image.clone();
    out.pixels
        .iter_mut()
        .filter(|v| f64::from(**v) >= threshold)
        .for_each(|v| *v = 255 - *v);
    out
}

/// Adds `add` to every value below `threshold`, saturating at 255, and keeps the others (the
/// lookup table of timm's `solarize_add`, applied by PIL's `Image.point` to each channel).
pub fn solarize_add(image: &Image, add: u8, threshold: u8) -> Image {
    let mut out = image.clone();
    out.pixels
        .iter_mut()
        .filter(|v| **v < threshold)
        .for_each(|v| *v = v.saturating_add(add));
    out
}

/// `255 - v` (PIL `ImageOps.invert`).
pub fn invert(image: &Image) -> Image {
    let mut out = image.clone();
    out.pixels.iter_mut().for_each(|v| *v = 255 - *v);
    out
}

/// Stretches each channel so its minimum becomes 0 and its maximum 255 (PIL
/// `ImageOps.autocontrast` without cutoff: `int(v * scale + offset)` with
/// `scale = 255 / (hi - lo)`, `offset = -lo * scale`); a constant channel is kept.
pub fn autocontrast(image: &Image) -> Image {
    let mut out = image.clone();
    for c in 0..image.channels {
        let plane = out.plane_mut(c);
        let (lo, hi) = plane
            .iter()
            .fold((255u8, 0u8), |(lo, hi), &v| (lo.min(v), hi.max(v)));
        if hi <= lo {
            continue;
        }
        let scale = 255.0 / f64::from(hi - lo);
        let offset = -f64::from(lo) * scale;
        let mut lut = [0u8; 256];
        for (i, l) in lut.iter_mut().enumerate() {
            // `int()` truncates towards zero; then clip.
            *l = ((i as f64 * scale + offset) as i64).clamp(0, 255) as u8;
        }
        plane.iter_mut().for_each(|v| *v = lut[*v as usize]);
    }
    out
}

/// Histogram equalisation of each channel (PIL `ImageOps.equalize`): with `step =
/// (N - count of the largest value) / 255` (integer division), value `i` maps to
/// `(step / 2 + #pixels below i) / step`; a channel with one value or `step == 0` is kept.
pub fn equalize(image: &Image) -> Image {
    let mut out = image.clone();
    for c in 0..image.channels {
        let plane = out.plane_mut(c);
        let mut hist = [0usize; 256];
        plane.iter().for_each(|&v| hist[v as usize] += 1);
        let last = hist.iter().rev().find(|&&h| h > 0).copied().unwrap_or(0);
        let step = (plane.len() - last) / 255;
        if step == 0 {
            continue;
        }
        let mut lut = [0u8; 256];
        let mut n = step / 2;
        for (l, &h) in lut.iter_mut().zip(&hist) {
            *l = (n / step).min(255) as u8;
            n += h;
        }
        plane.iter_mut().for_each(|v| *v = lut[*v as usize]);
    }
    out
}

/// torchvision's `ColorJitter(brightness, contrast, saturation)` (no hue): each factor drawn
/// uniformly from `[max(0, 1 - s), 1 + s]` and the three adjustments ([`brightness`],
/// [`contrast`], [`color`]) applied in a uniformly random order. A zero strength skips its
/// adjustment.
pub fn color_jitter(image: &Image, strength: (f64, f64, f64), rng: &mut Rng) -> Image {
    let strengths = [strength.0, strength.1, strength.2];
    let factors = strengths.map(|s| {
        if s > 0.0 {
            Some(rng.uniform((1.0 - s).max(0.0), 1.0 + s))
        } else {
            None
        }
    });
    let mut order = [0usize, 1, 2];
    rng.shuffle(&mut order);
    let mut out = image.clone();
    for op in order {
        if let Some(f) = factors[op] {
            out = match op {
                0 => brightness(&out, f),
                1 => contrast(&out, f),
                _ => color(&out, f),
            };
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ramp() -> Image {
        Image::new(3, 4, 4, (0..48).map(|i| (i * 5) as u8).collect()).unwrap()
    }

    #[test]
    fn pil_identities() {
        let img = ramp();
        for f in [color, contrast, brightness, sharpness] {
            assert_eq!(f(&img, 1.0), img);
        }
        assert!(brightness(&img, 0.0).pixels.iter().all(|&v| v == 0));
        // Extrapolation clips.
        let bright: Vec<u8> = img
            .pixels
            .iter()
            .map(|&v| (u32::from(v) * 10).min(255) as u8)
            .collect();
        assert_eq!(brightness(&img, 10.0).pixels, bright);
        assert_eq!(invert(&invert(&img)), img);
        assert_eq!(posterize(&img, 8), img);
        assert!(posterize(&img, 4).pixels.iter().all(|v| v % 16 == 0));
        assert!(posterize(&img, 0).pixels.iter().all(|&v| v == 0));
        assert_eq!(solarize(&img, 256.0), img);
        assert_eq!(solarize(&img, 0.0), invert(&img));
        // A fractional threshold keeps values below it: 199.1 keeps 199.
        let levels = Image::new(1, 1, 3, vec![199, 200, 10]).unwrap();
        assert_eq!(solarize(&levels, 199.1).pixels, vec![199, 55, 10]);
        let stretched = autocontrast(&img);
        for c in 0..3 {
            let p = stretched.plane(c);
            assert_eq!(
                (*p.iter().min().unwrap(), *p.iter().max().unwrap()),
                (0, 255)
            );
        }
        let eq = equalize(&img);
        assert_eq!(eq.pixels.len(), img.pixels.len());
        let gray = Image::filled(1, 3, 3, 77);
        assert_eq!(color(&gray, 0.0), gray);
        assert_eq!(equalize(&gray), gray);
        assert_eq!(autocontrast(&gray), gray);
        // Blending truncates: halfway between 0 and 255 is 127.
        let white = Image::filled(1, 1, 1, 255);
        assert_eq!(brightness(&white, 0.5).pixels, vec![127]);
        // Contrast 0 gives the rounded mean luma.
        let two = Image::new(1, 1, 2, vec![10, 21]).unwrap();
        assert_eq!(contrast(&two, 0.0).pixels, vec![16, 16]);
    }

    #[test]
    fn smoothing_and_jitter() {
        let mut img = Image::filled(1, 3, 3, 0);
        img.pixels[4] = 13;
        let s = smooth(&img);
        assert_eq!(s.get(0, 1, 1), 5);
        assert_eq!(s.get(0, 0, 0), 0);
        let a = color_jitter(&ramp(), (0.4, 0.4, 0.4), &mut Rng::new(2));
        let b = color_jitter(&ramp(), (0.4, 0.4, 0.4), &mut Rng::new(2));
        assert_eq!(a, b);
        assert_eq!(
            color_jitter(&ramp(), (0.0, 0.0, 0.0), &mut Rng::new(2)),
            ramp()
        );
    }
}
