//! timm's RandAugment `rand-n2-m10-mstd0.5` (the ImageNet-LT / iNaturalist policy) against timm
//! itself, bit for bit.
//!
//! `tests/reference/timm_randaugment.py` runs timm's own `RandAugment` (built as the recipe
//! builds it, fill (124, 116, 104)) on real images from the CIFAR-10 fixture with scripted
//! random choices, and keeps the FNV-1a 64-bit hash of each output in
//! `tests/fixtures/timm_randaugment.json`: every one of the 15 operations at six magnitudes
//! (two of them outside `[0, 10]`, so clipped), with both signs and both filters, and 120
//! random two-layer cases. Here the same layers run through the crate's
//! [`LayerDraw::apply`]. Regenerate with `python3 tests/reference/timm_randaugment.py`.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use super::timm_randaugment::{LayerDraw, OPS, RECIPE_FILL, TimmOp, TimmRandAugment};
use super::{Pipeline, RandAugmentPolicy, Step};
use crate::Rng;
use crate::data::Image;
use serde::Deserialize;

#[derive(Deserialize)]
struct Fixture {
    fill: [u8; 3],
    cases: Vec<Case>,
}

#[derive(Deserialize)]
struct Case {
    image: String,
    layers: Vec<Layer>,
    hash: String,
}

#[derive(Deserialize)]
struct Layer {
    op: String,
    applied: bool,
    magnitude: f64,
    negate: bool,
    bicubic: bool,
}

fn path(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

fn fixture() -> Fixture {
    let text = std::fs::read_to_string(path("timm_randaugment.json")).unwrap();
    serde_json::from_str(&text).unwrap()
}

fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// The images of the reference program: CIFAR-10 test images 0 and 5, and a 57x83 image whose
/// interleaved bytes are the fixture's pixel bytes in file order.
fn image(name: &str) -> Image {
    let raw = std::fs::read(path("cifar10_test20.bin")).unwrap();
    let record = |i: usize| raw[i * 3073 + 1..(i + 1) * 3073].to_vec();
    match name {
        "c0" => Image::new(3, 32, 32, record(0)).unwrap(),
        "c5" => Image::new(3, 32, 32, record(5)).unwrap(),
        "big" => {
            let pixels: Vec<u8> = (0..20).flat_map(record).collect();
            Image::from_interleaved(3, 57, 83, &pixels[..57 * 83 * 3]).unwrap()
        }
        _ => panic!("unknown image {name}"),
    }
}

fn op(name: &str) -> TimmOp {
    let names = [
        "AutoContrast",
        "Equalize",
        "Invert",
        "Rotate",
        "Posterize",
        "Solarize",
        "SolarizeAdd",
        "Color",
        "Contrast",
        "Brightness",
        "Sharpness",
        "ShearX",
        "ShearY",
        "TranslateXRel",
        "TranslateYRel",
    ];
    let index = names.iter().position(|n| *n == name).unwrap();
    OPS[index]
}

fn draws(case: &Case) -> Vec<LayerDraw> {
    case.layers
        .iter()
        .map(|l| LayerDraw {
            op: op(&l.op),
            applied: l.applied,
            level: l.magnitude,
            negate: l.negate,
            bicubic: l.bicubic,
        })
        .collect()
}

#[test]
fn every_operation_and_composition_matches_timm_bit_for_bit() {
    let fixture = fixture();
    assert_eq!(fixture.fill, RECIPE_FILL);
    let mut covered = HashSet::new();
    let mut mismatches = Vec::new();
    for (k, case) in fixture.cases.iter().enumerate() {
        let layers = draws(case);
        let out = layers.iter().fold(image(&case.image), |img, layer| {
            layer.apply(img, RECIPE_FILL)
        });
        let got = format!("{:016x}", fnv1a(&out.pixels));
        if got != case.hash {
            mismatches.push(format!("case {k} on {}: {layers:?}", case.image));
        }
        covered.extend(layers.iter().filter(|l| l.applied).map(|l| l.op));
    }
    assert_eq!(covered.len(), 15, "every operation is exercised");
    assert!(
        mismatches.is_empty(),
        "{} of {} cases differ from timm:\n{}",
        mismatches.len(),
        fixture.cases.len(),
        mismatches.join("\n")
    );
}

#[test]
fn a_wrong_argument_or_fill_is_detected() {
    let fixture = fixture();
    let case = fixture
        .cases
        .iter()
        .find(|c| c.layers[0].op == "ShearX" && c.layers[0].magnitude == 9.31)
        .unwrap();
    let layer = draws(case)[0];
    let img = image(&case.image);
    let hash = |out: Image| format!("{:016x}", fnv1a(&out.pixels));
    assert_eq!(hash(layer.apply(img.clone(), RECIPE_FILL)), case.hash);
    assert_ne!(hash(layer.apply(img.clone(), [128, 128, 128])), case.hash);
    let other_filter = LayerDraw {
        bicubic: !layer.bicubic,
        ..layer
    };
    assert_ne!(
        hash(other_filter.apply(img.clone(), RECIPE_FILL)),
        case.hash
    );
    let other_level = LayerDraw {
        level: 9.2,
        ..layer
    };
    assert_ne!(hash(other_level.apply(img, RECIPE_FILL)), case.hash);
}

#[test]
fn the_imagenet_pipeline_uses_timms_policy_unless_asked() {
    let steps = Pipeline::imagenet_train(224).steps().to_vec();
    assert!(steps.contains(&Step::TimmRandAugment(TimmRandAugment::recipe())));
    assert!(!steps.iter().any(|s| matches!(s, Step::RandAugment { .. })));
    let torchvision = Pipeline::imagenet_train_with(224, RandAugmentPolicy::Torchvision);
    assert!(
        torchvision
            .steps()
            .contains(&Step::RandAugment { n: 2, m: 10 })
    );
    // The policy draws its layers from the view's generator: a pure function of the key.
    let img = image("big");
    let policy = TimmRandAugment::recipe();
    let a = policy.apply(img.clone(), &mut Rng::from_key(&[1, 2, 3]));
    let b = policy.apply(img.clone(), &mut Rng::from_key(&[1, 2, 3]));
    assert_eq!(a, b);
    let changed = (0..40)
        .filter(|&k| policy.apply(img.clone(), &mut Rng::new(k)) != img)
        .count();
    // Each image is left unchanged with probability 1/4 (neither layer applied) plus the rare
    // no-op draws (Solarize at level 10).
    assert!((20..40).contains(&changed), "{changed}");
}
