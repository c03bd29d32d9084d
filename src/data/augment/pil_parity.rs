//! The 8-bit operations against PIL (Pillow 13), the library the reference AutoAugment,
//! RandAugment and torchvision code runs on.
//!
//! Each case applies one operation to an image built from the CIFAR-10 fixture and compares
//! the FNV-1a 64-bit hash of the CHW result with the hash of PIL's result for the same call.
//! The golden hashes were produced by this Python program (NumPy and Pillow 13):
//!
//! ```python
//! # Golden values for src/data/augment/pil_parity.rs: PIL's output of each operation on fixture images,
//! # summarised by the FNV-1a 64-bit hash of its CHW bytes.
//! import numpy as np
//! from PIL import Image, ImageOps, ImageEnhance
//! raw = open('cifar10_test20.bin', 'rb').read()
//! def record(i):
//!     return np.frombuffer(raw[i * 3073 + 1:(i + 1) * 3073], np.uint8)
//! def cifar(i):
//!     return record(i).reshape(3, 32, 32).transpose(1, 2, 0).copy()
//! pixels = np.concatenate([record(i) for i in range(20)])
//! inputs = {
//!     'c0': cifar(0),
//!     'c5': cifar(5),
//!     'gray': record(7)[:1024].reshape(32, 32).copy(),
//!     # 57x83 RGB image whose interleaved bytes are the fixture's pixel bytes in file order.
//!     'big': pixels[:57 * 83 * 3].reshape(57, 83, 3).copy(),
//! }
//! def fnv(b):
//!     h = 0xcbf29ce484222325
//!     for x in b:
//!         h = ((h ^ x) * 0x100000001b3) & 0xFFFFFFFFFFFFFFFF
//!     return h
//! def chw(a):
//!     a = np.asarray(a)
//!     if a.ndim == 2:
//!         a = a[:, :, None]
//!     return a.transpose(2, 0, 1).tobytes()
//! out = []
//! def add(name, inp, fn):
//!     out.append(f'    ("{name}", "{inp}", 0x{fnv(chw(fn(Image.fromarray(inputs[inp])))):016x}),')
//! for inp in ['c0', 'c5', 'gray']:
//!     fc = 128 if inp == 'gray' else (128, 128, 128)
//!     for m in [0.1, -0.3]:
//!         add(f'shear_x bicubic {m}', inp, lambda im: im.transform(im.size, Image.AFFINE, (1, m, 0, 0, 1, 0), Image.BICUBIC, fillcolor=fc))
//!         add(f'shear_y bicubic {m}', inp, lambda im: im.transform(im.size, Image.AFFINE, (1, 0, 0, m, 1, 0), Image.BICUBIC, fillcolor=fc))
//!         add(f'shear_x nearest {m}', inp, lambda im: im.transform(im.size, Image.AFFINE, (1, m, 0, 0, 1, 0), Image.NEAREST, fillcolor=0))
//!         add(f'shear_y bilinear {m}', inp, lambda im: im.transform(im.size, Image.AFFINE, (1, 0, 0, m, 1, 0), Image.BILINEAR, fillcolor=fc))
//!     for t in [14.5, -9.7]:
//!         add(f'translate_x {t}', inp, lambda im: im.transform(im.size, Image.AFFINE, (1, 0, t, 0, 1, 0), fillcolor=fc))
//!         add(f'translate_y {t}', inp, lambda im: im.transform(im.size, Image.AFFINE, (1, 0, 0, 0, 1, t), fillcolor=fc))
//!     for a in [6.5, 30.0, -17.0, 90.0, 180.0]:
//!         add(f'rotate {a}', inp, lambda im: im.rotate(a, fillcolor=fc))
//!     for f in [0.1, 0.7, 1.3, 1.9]:
//!         add(f'color {f}', inp, lambda im: ImageEnhance.Color(im).enhance(f))
//!         add(f'contrast {f}', inp, lambda im: ImageEnhance.Contrast(im).enhance(f))
//!         add(f'sharpness {f}', inp, lambda im: ImageEnhance.Sharpness(im).enhance(f))
//!         add(f'brightness {f}', inp, lambda im: ImageEnhance.Brightness(im).enhance(f))
//!     for b in [4, 6]:
//!         add(f'posterize {b}', inp, lambda im: ImageOps.posterize(im, b))
//!     for t in [199.1, 28.4, 170.0]:
//!         add(f'solarize {t}', inp, lambda im: ImageOps.solarize(im, t))
//!     add('autocontrast', inp, ImageOps.autocontrast)
//!     add('equalize', inp, ImageOps.equalize)
//!     add('invert', inp, ImageOps.invert)
//! for w, h in [(17, 23), (40, 57), (8, 5)]:
//!     add(f'resize {w} {h}', 'big', lambda im: im.resize((w, h), Image.BILINEAR))
//! add('grayscale', 'c5', lambda im: im.convert('L').convert('RGB'))
//! print('\n'.join(out))
//! print(len(out))
//! ```
//!
//! Resizing follows Pillow's classic 22-bit fixed-point resampler; the three downscaling
//! cases are the ones where Pillow's newer 16-bit SIMD path agrees with it.

use std::path::Path;

use super::color;
use super::geometry::{self, Resample};
use crate::data::Image;

const CASES: &[(&str, &str, u64)] = &[
    ("shear_x bicubic 0.1", "c0", 0x3ca1170c8525c1c1),
    ("shear_y bicubic 0.1", "c0", 0x2d1982cb3a186ca7),
    ("shear_x nearest 0.1", "c0", 0x7240fbba0cfb683a),
    ("shear_y bilinear 0.1", "c0", 0x39050c8a5c2f3a04),
    ("shear_x bicubic -0.3", "c0", 0x7fd5af226a241aba),
    ("shear_y bicubic -0.3", "c0", 0x3a508b8dfbcf4e8e),
    ("shear_x nearest -0.3", "c0", 0xf5cdb0889ae73360),
    ("shear_y bilinear -0.3", "c0", 0x542c9788187bf83d),
    ("translate_x 14.5", "c0", 0x69422b768fa6b322),
    ("translate_y 14.5", "c0", 0xb85271bd452354ee),
    ("translate_x -9.7", "c0", 0xdce23732a2a1f11d),
    ("translate_y -9.7", "c0", 0x89731aac9beb8f7a),
    ("rotate 6.5", "c0", 0x2b4df34c4ef662f8),
    ("rotate 30.0", "c0", 0x019284986795cf28),
    ("rotate -17.0", "c0", 0x3282c2f1e155f77e),
    ("rotate 90.0", "c0", 0xec5bf1787bf15027),
    ("rotate 180.0", "c0", 0xc8d1008c19cadd81),
    ("color 0.1", "c0", 0x9aab204c6dc18b73),
    ("contrast 0.1", "c0", 0x478412dffc9d2176),
    ("sharpness 0.1", "c0", 0x24e1f5536d0da0af),
    ("brightness 0.1", "c0", 0x7d4ef5dc0d0e7ad0),
    ("color 0.7", "c0", 0xedf5231dff7f054e),
    ("contrast 0.7", "c0", 0xe7b91e90239f4a39),
    ("sharpness 0.7", "c0", 0xd368df9529038ee5),
    ("brightness 0.7", "c0", 0xfa55572c43a7ab15),
    ("color 1.3", "c0", 0x897d7b40be277239),
    ("contrast 1.3", "c0", 0x3db3dac5a5843fe0),
    ("sharpness 1.3", "c0", 0xedc7ea01efbcd390),
    ("brightness 1.3", "c0", 0xb053ab1033ebd3d5),
    ("color 1.9", "c0", 0x947924d7c485e3b6),
    ("contrast 1.9", "c0", 0xc5205a31f0158ad5),
    ("sharpness 1.9", "c0", 0x1f4b044d26f02042),
    ("brightness 1.9", "c0", 0x245071a78441b259),
    ("posterize 4", "c0", 0x604c4224fbf06da5),
    ("posterize 6", "c0", 0x1274092380026c49),
    ("solarize 199.1", "c0", 0x505cf422253d8c05),
    ("solarize 28.4", "c0", 0xa82bb1dc640c6fea),
    ("solarize 170.0", "c0", 0x6a62f52b7359f0c3),
    ("autocontrast", "c0", 0xcfcdc4d422f78b3f),
    ("equalize", "c0", 0x128e2d391811c232),
    ("invert", "c0", 0xc581d0b2a9f32225),
    ("shear_x bicubic 0.1", "c5", 0x39e50a70a1430f06),
    ("shear_y bicubic 0.1", "c5", 0xcedc7a5c1adba45d),
    ("shear_x nearest 0.1", "c5", 0xe7e3b40b4f99ecbf),
    ("shear_y bilinear 0.1", "c5", 0xef79814ee0d0d69f),
    ("shear_x bicubic -0.3", "c5", 0xeadf59e41b087118),
    ("shear_y bicubic -0.3", "c5", 0xe7d061af1ee8b40d),
    ("shear_x nearest -0.3", "c5", 0xb0ae05d63bcee605),
    ("shear_y bilinear -0.3", "c5", 0xe55343e20abe1e7f),
    ("translate_x 14.5", "c5", 0x0216574ea5976110),
    ("translate_y 14.5", "c5", 0x985b5b2227e3d1e3),
    ("translate_x -9.7", "c5", 0x74bb967420bf830d),
    ("translate_y -9.7", "c5", 0xce416813a3542c09),
    ("rotate 6.5", "c5", 0xe2f6ba76ea93d9db),
    ("rotate 30.0", "c5", 0xab8a4a4451ac06de),
    ("rotate -17.0", "c5", 0x343acdd9e63d6c26),
    ("rotate 90.0", "c5", 0xf3ca79d1ccfe0cf2),
    ("rotate 180.0", "c5", 0xf3e7931e4999f4ac),
    ("color 0.1", "c5", 0x036692c43e598d79),
    ("contrast 0.1", "c5", 0x39f82e449a959481),
    ("sharpness 0.1", "c5", 0xe5f0f134007f5f30),
    ("brightness 0.1", "c5", 0x56e3148d89321589),
    ("color 0.7", "c5", 0xa85299ad165973b4),
    ("contrast 0.7", "c5", 0x9728a00be4c483ac),
    ("sharpness 0.7", "c5", 0x8d7dae4dce05c452),
    ("brightness 0.7", "c5", 0xae504e4e4cb28668),
    ("color 1.3", "c5", 0xf53f337e627bcb6d),
    ("contrast 1.3", "c5", 0xb2012fc2b1bded33),
    ("sharpness 1.3", "c5", 0xbf046e217806103a),
    ("brightness 1.3", "c5", 0x63fb79b2ee4dca85),
    ("color 1.9", "c5", 0xcb663d2ad69b1691),
    ("contrast 1.9", "c5", 0xf1f7e491dc3246f6),
    ("sharpness 1.9", "c5", 0xeafbd72bf0f246f5),
    ("brightness 1.9", "c5", 0x8c64aa672e512ec4),
    ("posterize 4", "c5", 0xa834e1076e1cf475),
    ("posterize 6", "c5", 0xbaf0d0c4c8eff541),
    ("solarize 199.1", "c5", 0x883fd0604d6536fb),
    ("solarize 28.4", "c5", 0xba33a785eba50a44),
    ("solarize 170.0", "c5", 0x5f410196e516314e),
    ("autocontrast", "c5", 0x16a48ddaf582e9bb),
    ("equalize", "c5", 0x5b0281f9921b09c3),
    ("invert", "c5", 0x0941a7652cb3c542),
    ("shear_x bicubic 0.1", "gray", 0x1dc2ae12d2f5a717),
    ("shear_y bicubic 0.1", "gray", 0x1f7650d9e7c698e1),
    ("shear_x nearest 0.1", "gray", 0x124f2c035ea73cca),
    ("shear_y bilinear 0.1", "gray", 0x71a826ea70132e41),
    ("shear_x bicubic -0.3", "gray", 0xad8300bfcb2e011c),
    ("shear_y bicubic -0.3", "gray", 0x3f49e6d7dc11031c),
    ("shear_x nearest -0.3", "gray", 0x17b870a5c2f331c6),
    ("shear_y bilinear -0.3", "gray", 0x1f270663d8ec01ba),
    ("translate_x 14.5", "gray", 0x8f0dfca1a7869991),
    ("translate_y 14.5", "gray", 0xe6a604aa79ecfd6c),
    ("translate_x -9.7", "gray", 0x9671257d0c156abe),
    ("translate_y -9.7", "gray", 0x0442bdf6e8823cdc),
    ("rotate 6.5", "gray", 0x0a0f3668af7cc71b),
    ("rotate 30.0", "gray", 0x51f023ebf362fba9),
    ("rotate -17.0", "gray", 0xe73b5653dcb47cb1),
    ("rotate 90.0", "gray", 0x0074dffffc0228a8),
    ("rotate 180.0", "gray", 0x729422abd9e995fe),
    ("color 0.1", "gray", 0xe2b0eea70e04cbb0),
    ("contrast 0.1", "gray", 0xdc053f2a0dd199c0),
    ("sharpness 0.1", "gray", 0x3b1b327f6888ca32),
    ("brightness 0.1", "gray", 0x50d3827796dcc244),
    ("color 0.7", "gray", 0xe2b0eea70e04cbb0),
    ("contrast 0.7", "gray", 0xb1f50c01c2600344),
    ("sharpness 0.7", "gray", 0xeb51576b51ca870f),
    ("brightness 0.7", "gray", 0x4edb3588a71127d6),
    ("color 1.3", "gray", 0xe2b0eea70e04cbb0),
    ("contrast 1.3", "gray", 0xe75cc74e6af4f138),
    ("sharpness 1.3", "gray", 0x6ce63a94b9f00461),
    ("brightness 1.3", "gray", 0x83ecd9c35b447b52),
    ("color 1.9", "gray", 0xe2b0eea70e04cbb0),
    ("contrast 1.9", "gray", 0xc51066da40175e71),
    ("sharpness 1.9", "gray", 0x547f76b2f1f1e7c5),
    ("brightness 1.9", "gray", 0x32c1de17e1133b84),
    ("posterize 4", "gray", 0x174928db6cea2ab5),
    ("posterize 6", "gray", 0x156b92a9c2166e55),
    ("solarize 199.1", "gray", 0xce4cee394c9e50af),
    ("solarize 28.4", "gray", 0x6642ce3a3f0f2b0e),
    ("solarize 170.0", "gray", 0x995f255adcea9ca9),
    ("autocontrast", "gray", 0x802b7da6b99753d9),
    ("equalize", "gray", 0xe28e790aac958375),
    ("invert", "gray", 0x84bac2c0f425bba4),
    ("resize 17 23", "big", 0x09b4fe60b42f1649),
    ("resize 40 57", "big", 0xea838cb189546875),
    ("resize 8 5", "big", 0xa95f5dcd431e0a29),
    ("grayscale", "c5", 0x26b3b21f1705d688),
];

fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

fn inputs() -> [(&'static str, Image); 4] {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/cifar10_test20.bin");
    let raw = std::fs::read(path).unwrap();
    let record = |i: usize| &raw[i * 3073 + 1..(i + 1) * 3073];
    let cifar = |i: usize| Image::new(3, 32, 32, record(i).to_vec()).unwrap();
    let pixels: Vec<u8> = (0..20).flat_map(|i| record(i).to_vec()).collect();
    let big = Image::from_interleaved(3, 57, 83, &pixels[..57 * 83 * 3]).unwrap();
    [
        ("c0", cifar(0)),
        ("c5", cifar(5)),
        (
            "gray",
            Image::new(1, 32, 32, record(7)[..1024].to_vec()).unwrap(),
        ),
        ("big", big),
    ]
}

fn apply(name: &str, image: &Image) -> Image {
    let parts: Vec<&str> = name.split(' ').collect();
    let arg = |i: usize| parts[i].parse::<f64>().unwrap();
    let fill = |v: u8| v;
    match (parts[0], parts.get(1).copied()) {
        ("shear_x", Some("bicubic")) => {
            geometry::shear_x(image, arg(2), Resample::Bicubic, fill(128))
        }
        ("shear_y", Some("bicubic")) => {
            geometry::shear_y(image, arg(2), Resample::Bicubic, fill(128))
        }
        ("shear_x", Some("nearest")) => {
            geometry::shear_x(image, arg(2), Resample::Nearest, fill(0))
        }
        ("shear_y", Some("bilinear")) => {
            geometry::shear_y(image, arg(2), Resample::Bilinear, fill(128))
        }
        ("translate_x", _) => geometry::translate_x(image, arg(1), 128),
        ("translate_y", _) => geometry::translate_y(image, arg(1), 128),
        ("rotate", _) => geometry::rotate(image, arg(1), 128),
        ("color", _) => color::color(image, arg(1)),
        ("contrast", _) => color::contrast(image, arg(1)),
        ("sharpness", _) => color::sharpness(image, arg(1)),
        ("brightness", _) => color::brightness(image, arg(1)),
        ("posterize", _) => color::posterize(image, arg(1) as u32),
        ("solarize", _) => color::solarize(image, arg(1)),
        ("autocontrast", _) => color::autocontrast(image),
        ("equalize", _) => color::equalize(image),
        ("invert", _) => color::invert(image),
        ("grayscale", _) => color::grayscale(image),
        ("resize", _) => geometry::resize(image, arg(2) as usize, arg(1) as usize),
        _ => panic!("unknown case {name}"),
    }
}

#[test]
fn operations_match_pil_bit_for_bit() {
    let inputs = inputs();
    let mut mismatches = Vec::new();
    for &(name, input, expected) in CASES {
        let image = &inputs.iter().find(|(n, _)| *n == input).unwrap().1;
        let out = apply(name, image);
        let got = fnv1a(&out.pixels);
        if got != expected {
            mismatches.push(format!(
                "{name} on {input}: hash {got:016x}, PIL {expected:016x}"
            ));
        }
    }
    assert!(
        mismatches.is_empty(),
        "{} of {} cases differ from PIL:\n{}",
        mismatches.len(),
        CASES.len(),
        mismatches.join("\n")
    );
}

#[test]
fn a_wrong_operation_is_detected() {
    // The hashes discriminate: a one-pixel change, or a neighbouring parameter, changes them.
    let inputs = inputs();
    let c0 = &inputs[0].1;
    let (_, _, expected) = CASES
        .iter()
        .find(|c| c.0 == "contrast 0.7" && c.1 == "c0")
        .unwrap();
    let mut out = color::contrast(c0, 0.7);
    assert_eq!(fnv1a(&out.pixels), *expected);
    out.pixels[100] ^= 1;
    assert_ne!(fnv1a(&out.pixels), *expected);
    assert_ne!(fnv1a(&color::contrast(c0, 0.71).pixels), *expected);
}
