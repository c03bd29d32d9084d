//! Unit tests of the parent module.

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
    let fallback = random_resized_crop(&flat, 5, (2.0, 3.0), (0.75, 4.0 / 3.0), &mut Rng::new(1));
    assert!(fallback.pixels.iter().all(|&v| v == 123));
}
