//! Photometric transforms on 8-bit images, following PIL's `ImageOps` and `ImageEnhance`
//! (the library the AutoAugment and RandAugment reference implementations use). On a
//! one-channel image the colour-saturation operations are the identity.

use crate::data::image::Image;
use crate::rng::Rng;

fn clamp(v: f64) -> u8 {
    v.round().clamp(0.0, 255.0) as u8
}

/// `degenerate * (1 - factor) + image * factor`, clipped (PIL `ImageEnhance._Enhance`).
fn blend(image: &Image, degenerate: &Image, factor: f64) -> Image {
    let mut out = image.clone();
    for (o, (&a, &d)) in out
        .pixels
        .iter_mut()
        .zip(image.pixels.iter().zip(&degenerate.pixels))
    {
        *o = clamp(d as f64 + (a as f64 - d as f64) * factor);
    }
    out
}

/// The grayscale (luma) image with the same number of channels.
pub fn grayscale(image: &Image) -> Image {
    let luma = image.luma();
    let mut out = image.clone();
    for c in 0..image.channels {
        out.plane_mut(c).copy_from_slice(&luma);
    }
    out
}

/// Saturation (PIL `ImageEnhance.Color`): 0 gives grayscale, 1 the original.
pub fn color(image: &Image, factor: f64) -> Image {
    if image.channels < 3 {
        return image.clone();
    }
    blend(image, &grayscale(image), factor)
}

/// Contrast (PIL `ImageEnhance.Contrast`): blends with the mean luma.
pub fn contrast(image: &Image, factor: f64) -> Image {
    let luma = image.luma();
    let mean =
        (luma.iter().map(|&v| v as f64).sum::<f64>() / luma.len().max(1) as f64 + 0.5).floor();
    let degenerate = Image::filled(image.channels, image.height, image.width, mean as u8);
    blend(image, &degenerate, factor)
}

/// Brightness (PIL `ImageEnhance.Brightness`): blends with black.
pub fn brightness(image: &Image, factor: f64) -> Image {
    let black = Image::filled(image.channels, image.height, image.width, 0);
    blend(image, &black, factor)
}

/// Sharpness (PIL `ImageEnhance.Sharpness`): blends with the image smoothed by the kernel
/// `[[1, 1, 1], [1, 5, 1], [1, 1, 1]] / 13`, border pixels kept.
pub fn sharpness(image: &Image, factor: f64) -> Image {
    let (h, w) = (image.height, image.width);
    let mut smooth = image.clone();
    if h >= 3 && w >= 3 {
        for c in 0..image.channels {
            for y in 1..h - 1 {
                for x in 1..w - 1 {
                    let mut acc = 4 * image.get(c, y, x) as u32;
                    for dy in 0..3 {
                        for dx in 0..3 {
                            acc += image.get(c, y + dy - 1, x + dx - 1) as u32;
                        }
                    }
                    smooth.pixels[(c * h + y) * w + x] = ((acc + 6) / 13) as u8;
                }
            }
        }
    }
    blend(image, &smooth, factor)
}

/// Keeps the top `bits` bits of each value.
pub fn posterize(image: &Image, bits: u32) -> Image {
    let mask = if bits >= 8 {
        0xFF
    } else {
        !(0xFFu8 >> bits.min(8))
    };
    let mut out = image.clone();
    out.pixels.iter_mut().for_each(|v| *v &= mask);
    out
}

/// Inverts every value `>= threshold`.
pub fn solarize(image: &Image, threshold: u32) -> Image {
    let mut out = image.clone();
    out.pixels
        .iter_mut()
        .filter(|v| **v as u32 >= threshold)
        .for_each(|v| *v = 255 - *v);
    out
}

/// `255 - v`.
pub fn invert(image: &Image) -> Image {
    let mut out = image.clone();
    out.pixels.iter_mut().for_each(|v| *v = 255 - *v);
    out
}

/// Stretches each channel to the full range (PIL `ImageOps.autocontrast`, no cutoff).
pub fn autocontrast(image: &Image) -> Image {
    let mut out = image.clone();
    for c in 0..image.channels {
        let plane = out.plane_mut(c);
        let (lo, hi) = plane
            .iter()
            .fold((255u8, 0u8), |(lo, hi), &v| (lo.min(v), hi.max(v)));
        if hi > lo {
            let scale = 255.0 / (hi - lo) as f64;
            plane
                .iter_mut()
                .for_each(|v| *v = clamp((*v - lo) as f64 * scale));
        }
    }
    out
}

/// Histogram equalisation per channel (PIL `ImageOps.equalize`).
pub fn equalize(image: &Image) -> Image {
    let mut out = image.clone();
    for c in 0..image.channels {
        let plane = out.plane_mut(c);
        let mut hist = [0usize; 256];
        plane.iter().for_each(|&v| hist[v as usize] += 1);
        let last = hist.iter().rposition(|&h| h > 0).map_or(0, |i| hist[i]);
        let step = (plane.len() - last) / 255;
        if step == 0 {
            continue;
        }
        let mut lut = [0u8; 256];
        let mut n = step / 2;
        for (i, &h) in hist.iter().enumerate() {
            lut[i] = (n / step).min(255) as u8;
            n += h;
        }
        plane.iter_mut().for_each(|v| *v = lut[*v as usize]);
    }
    out
}

/// torchvision `ColorJitter(brightness, contrast, saturation)`: each factor drawn uniformly
/// from `[1 - s, 1 + s]`, the three applied in a random order.
pub fn color_jitter(image: &Image, strength: (f64, f64, f64), rng: &mut Rng) -> Image {
    let mut order = [0usize, 1, 2];
    rng.shuffle(&mut order);
    let mut out = image.clone();
    for op in order {
        let s = [strength.0, strength.1, strength.2][op];
        if s <= 0.0 {
            continue;
        }
        let f = rng.uniform((1.0 - s).max(0.0), 1.0 + s);
        out = match op {
            0 => brightness(&out, f),
            1 => contrast(&out, f),
            _ => color(&out, f),
        };
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
        assert_eq!(invert(&invert(&img)), img);
        assert_eq!(posterize(&img, 8), img);
        assert!(posterize(&img, 4).pixels.iter().all(|v| v % 16 == 0));
        assert_eq!(solarize(&img, 256), img);
        assert_eq!(solarize(&img, 0), invert(&img));
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
    }
}
