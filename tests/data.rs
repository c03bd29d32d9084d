//! The data side on real bytes: CIFAR fixtures, Fashion-MNIST, list files, long-tailed
//! subsets, augmentation invariants and loader determinism.
//!
//! Tests that need fetched data (`scripts/fetch-data.sh`, `data/` or `$RESCOM_DATA_DIR`) print a
//! notice and pass when it is absent, unless `RESCOM_REQUIRE_DATA=1` (as in CI).

mod common;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use burn::tensor::Device;
use rescom::Rng;
use rescom::data::{
    Cifar, Dataset, EvalLoader, Image, ImbalanceProfile, ListDataset, LoaderConfig, OnUnreadable,
    Pipeline, Split, Subset, TwoViewLoader, class_counts, load_cifar_file, load_cifar10,
    load_fashion_mnist, long_tail_counts, subsample,
};
use rescom::train::{EvalData, TrainData};

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../shared/data/fixtures")
        .join(name)
}

fn data_dir() -> Option<PathBuf> {
    let dir = std::env::var_os("RESCOM_DATA_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("data"));
    if dir.join("fashion-mnist").is_dir() {
        return Some(dir);
    }
    assert!(
        std::env::var("RESCOM_REQUIRE_DATA").as_deref() != Ok("1"),
        "RESCOM_REQUIRE_DATA=1 but {} has no fashion-mnist/; run scripts/fetch-data.sh",
        dir.display()
    );
    eprintln!(
        "note: {} has no fashion-mnist/ (run scripts/fetch-data.sh); skipping",
        dir.display()
    );
    None
}

#[test]
fn cifar_fixtures_have_the_official_labels_and_pixels() {
    let ten = load_cifar_file(&fixture("cifar10_test20.bin"), Cifar::Ten).unwrap();
    assert_eq!(
        ten.labels(),
        vec![3, 8, 8, 0, 6, 6, 1, 6, 3, 1, 0, 9, 5, 7, 9, 8, 5, 7, 8, 6]
    );
    let hundred = load_cifar_file(&fixture("cifar100_test20.bin"), Cifar::Hundred).unwrap();
    assert_eq!(&hundred.labels()[..5], &[49, 33, 72, 51, 71]);
    // Record layout: the pixels follow the label byte(s), red plane first.
    let raw = std::fs::read(fixture("cifar10_test20.bin")).unwrap();
    let img = ten.image(1).unwrap();
    assert_eq!((img.channels, img.height, img.width), (3, 32, 32));
    assert_eq!(img.pixels[..], raw[3073 + 1..2 * 3073]);
    let raw100 = std::fs::read(fixture("cifar100_test20.bin")).unwrap();
    assert_eq!(hundred.image(0).unwrap().pixels[..], raw100[2..3074]);
}

#[test]
fn cifar_errors_name_the_files_and_the_archive() {
    let dir = tempfile::tempdir().unwrap();
    let err = load_cifar10(dir.path(), Split::Test)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("test_batch.bin") && err.contains("cifar-10-binary.tar.gz"),
        "{err}"
    );
    // A truncated file is corrupt, not a panic.
    let folder = dir.path().join("cifar-10-batches-bin");
    std::fs::create_dir(&folder).unwrap();
    let raw = std::fs::read(fixture("cifar10_test20.bin")).unwrap();
    std::fs::write(folder.join("test_batch.bin"), &raw[..raw.len() - 5]).unwrap();
    let err = load_cifar10(dir.path(), Split::Test).unwrap_err();
    assert!(matches!(err, rescom::Error::CorruptData { .. }), "{err}");
    // A whole file of the wrong size (20 records instead of 10,000) is rejected too.
    std::fs::write(folder.join("test_batch.bin"), &raw).unwrap();
    let err = load_cifar10(dir.path(), Split::Test)
        .unwrap_err()
        .to_string();
    assert!(err.contains("20 records, expected 10000"), "{err}");
    // md5 verification.
    let err = rescom::data::load_cifar(
        &folder,
        Cifar::Ten,
        Split::Test,
        &[("test_batch.bin", "00000000000000000000000000000000")],
    )
    .unwrap_err();
    assert!(matches!(err, rescom::Error::Checksum { .. }), "{err}");
}

#[test]
fn fashion_mnist_is_complete_and_long_tails_exactly() {
    let Some(dir) = data_dir() else { return };
    let train = load_fashion_mnist(&dir.join("fashion-mnist"), Split::Train).unwrap();
    let test = load_fashion_mnist(&dir.join("fashion-mnist"), Split::Test).unwrap();
    assert_eq!((train.len(), test.len()), (60_000, 10_000));
    assert_eq!(train.class_counts(), vec![6000; 10]);
    assert_eq!(test.class_counts(), vec![1000; 10]);
    let counts = long_tail_counts(600, 10, ImbalanceProfile::Exponential, 100.0).unwrap();
    assert_eq!(counts, vec![600, 359, 215, 129, 77, 46, 27, 16, 10, 6]);
    let kept = subsample(&train.labels(), 10, &counts, 0).unwrap();
    let lt = Subset::new(Arc::new(train), kept).unwrap();
    assert_eq!(lt.class_counts(), counts);
    assert_eq!(class_counts(&lt.labels(), 10), counts);
}

#[test]
fn list_datasets_decode_and_report_unreadable_files() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("images");
    std::fs::create_dir_all(root.join("a")).unwrap();
    let red = image::RgbImage::from_pixel(5, 4, image::Rgb([255, 0, 0]));
    red.save(root.join("a/red.png")).unwrap();
    let blue = image::RgbImage::from_pixel(6, 3, image::Rgb([0, 0, 255]));
    blue.save(root.join("a/blue.jpg")).unwrap();
    std::fs::write(root.join("a/broken.jpg"), b"not a jpeg").unwrap();
    let list = dir.path().join("train.txt");
    std::fs::write(&list, "a/red.png 0\n\na/blue.jpg 2\na/broken.jpg 1\n").unwrap();

    let err = ListDataset::open(&list, &root, 3, OnUnreadable::Fail).unwrap_err();
    assert!(err.to_string().contains("broken.jpg"), "{err}");
    let ds = ListDataset::open(&list, &root, 3, OnUnreadable::Skip).unwrap();
    assert_eq!(ds.len(), 2);
    assert_eq!(ds.skipped().len(), 1);
    assert_eq!(ds.labels(), vec![0, 2]);
    let img = ds.image(0).unwrap();
    assert_eq!((img.channels, img.height, img.width), (3, 4, 5));
    assert!(img.plane(0).iter().all(|&v| v == 255) && img.plane(1).iter().all(|&v| v == 0));
    let jpg = ds.image(1).unwrap();
    assert!(jpg.plane(2).iter().all(|&v| v > 200));

    std::fs::write(&list, "a/red.png 3\n").unwrap();
    let err = ListDataset::open(&list, &root, 3, OnUnreadable::Skip).unwrap_err();
    assert!(err.to_string().contains("line 1"), "{err}");
    std::fs::write(&list, "a/red.png\n").unwrap();
    assert!(ListDataset::open(&list, &root, 3, OnUnreadable::Skip).is_err());
    let err = ListDataset::open(
        &dir.path().join("missing.txt"),
        &root,
        3,
        OnUnreadable::Skip,
    )
    .unwrap_err();
    assert!(matches!(err, rescom::Error::DatasetMissing { .. }), "{err}");
}

#[test]
fn pipelines_keep_shapes_and_value_ranges() {
    let img = load_cifar_file(&fixture("cifar10_test20.bin"), Cifar::Ten)
        .unwrap()
        .image(0)
        .unwrap();
    let train = Pipeline::cifar_train();
    let lo = (0.0 - 0.4914) / 0.2010 - 0.5;
    let hi = (1.0 - 0.4465) / 0.1994 + 0.5;
    for k in 0..64 {
        let view = train
            .apply(&img, &mut Rng::from_key(&[1, 0, k, 0]))
            .unwrap();
        assert_eq!(view.len(), 3 * 32 * 32);
        assert!(
            view.iter()
                .all(|v| v.is_finite() && (lo..hi).contains(&(*v as f64)))
        );
    }
    // Same key, same view; another key, another view.
    let a = train
        .apply(&img, &mut Rng::from_key(&[1, 0, 5, 0]))
        .unwrap();
    assert_eq!(
        a,
        train
            .apply(&img, &mut Rng::from_key(&[1, 0, 5, 0]))
            .unwrap()
    );
    assert_ne!(
        a,
        train
            .apply(&img, &mut Rng::from_key(&[1, 0, 5, 1]))
            .unwrap()
    );
    // The evaluation view is the normalised image.
    let eval = Pipeline::cifar_eval()
        .apply(&img, &mut Rng::new(0))
        .unwrap();
    let expected = (img.pixels[0] as f32 / 255.0 - 0.4914) / 0.2023;
    assert!((eval[0] - expected).abs() < 1e-6);
    // Large-image pipelines.
    let big = Image::new(3, 40, 50, (0..6000).map(|i| (i % 256) as u8).collect()).unwrap();
    let v = Pipeline::imagenet_train(24)
        .apply(&big, &mut Rng::new(1))
        .unwrap();
    assert_eq!(v.len(), 3 * 24 * 24);
    let v = Pipeline::imagenet_eval(24)
        .apply(&big, &mut Rng::new(1))
        .unwrap();
    assert_eq!(v.len(), 3 * 24 * 24);
    // A mismatching image size is an error, not a panic.
    let err = Pipeline::cifar_eval()
        .apply(&big, &mut Rng::new(0))
        .unwrap_err();
    assert!(err.to_string().contains("40x50"), "{err}");
}

fn collect(loader: &mut TwoViewLoader, epoch: usize) -> Vec<(Vec<f64>, Vec<i64>)> {
    loader
        .epoch(epoch)
        .unwrap()
        .map(|b| {
            let b = b.unwrap();
            (common::to_vec(b.images), b.host_labels)
        })
        .collect()
}

#[test]
fn loaders_are_deterministic_across_thread_counts_and_stack_views() {
    let ds: Arc<dyn Dataset> =
        Arc::new(load_cifar_file(&fixture("cifar10_test20.bin"), Cifar::Ten).unwrap());
    let device = Device::flex();
    let loader = |workers| {
        let mut config = LoaderConfig::new(6, 9);
        config.workers = workers;
        TwoViewLoader::new(ds.clone(), Pipeline::cifar_train(), config, &device).unwrap()
    };
    let (mut one, mut three) = (loader(1), loader(3));
    assert_eq!(one.steps_per_epoch(), 4);
    let a = collect(&mut one, 2);
    let b = collect(&mut three, 2);
    assert_eq!(a, b);
    assert_ne!(
        a,
        collect(&mut one, 3),
        "another epoch, another order and augmentation"
    );
    assert_eq!(a.len(), 4);
    let (pixels, labels) = &a[0];
    assert_eq!(labels.len(), 12);
    assert_eq!(labels[..6], labels[6..], "view-major: labels repeat");
    assert_eq!(pixels.len(), 12 * 3 * 32 * 32);
    // Each image appears once per epoch.
    let mut seen: Vec<i64> = a
        .iter()
        .flat_map(|(_, l)| l[..l.len() / 2].to_vec())
        .collect();
    seen.sort();
    let mut all: Vec<i64> = ds.labels().iter().map(|&l| l as i64).collect();
    all.sort();
    assert_eq!(seen, all);

    let mut eval = EvalLoader::new(
        ds.clone(),
        Pipeline::cifar_eval(),
        LoaderConfig::new(8, 0),
        &device,
    )
    .unwrap();
    let sizes: Vec<usize> = eval
        .batches()
        .unwrap()
        .map(|b| b.unwrap().host_labels.len())
        .collect();
    assert_eq!(sizes, vec![8, 8, 4]);
}
