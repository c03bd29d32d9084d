//! Throughput of the full CIFAR training pipeline (random crop 32 with padding 4, flip,
//! AutoAugment CIFAR-10 policy, Cutout 16, normalisation) in two-view samples per second,
//! on 3x32x32 images (the 20 real CIFAR-10 fixture images, repeated; random images when the
//! fixture is absent).
//!
//! - `augment/two_views_single_thread`: both views of one image on the calling thread;
//!   criterion's `elem/s` is two-view samples per second per core.
//! - `augment/loader_epoch_1024_workers_{1,2}`: a whole epoch of 1,024 images in 128-image
//!   two-view batches (256 rows each) through [`TwoViewLoader`] with 1 and 2 worker threads
//!   (the training example's default is 2); `elem/s` is two-view samples per second delivered
//!   to the consumer.

use std::sync::Arc;

use burn::tensor::Device;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use rescom::Rng;
use rescom::data::{Dataset, Image, InMemoryDataset, LoaderConfig, Pipeline, TwoViewLoader};
use rescom_support::allocator;

rescom_support::use_mimalloc!();

fn dataset(n: usize) -> InMemoryDataset {
    let fixture = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/cifar10_test20.bin"
    );
    let records: Vec<u8> = std::fs::read(fixture)
        .map(|raw| {
            raw.chunks_exact(3073)
                .flat_map(|r| r[1..].to_vec())
                .collect()
        })
        .unwrap_or_else(|_| {
            let mut rng = Rng::new(3);
            (0..20 * 3072).map(|_| rng.below(256) as u8).collect()
        });
    let pixels: Vec<u8> = records.iter().copied().cycle().take(n * 3072).collect();
    let labels = (0..n).map(|i| i % 10).collect();
    InMemoryDataset::new(3, 32, 32, pixels, labels, 10).expect("valid dataset")
}

fn bench_augment(c: &mut Criterion) {
    allocator::keep_freed_memory();
    let pipeline = Pipeline::cifar_train();
    let data = Arc::new(dataset(1024));
    let images: Vec<Image> = (0..20).map(|i| data.image(i).expect("image")).collect();
    let mut group = c.benchmark_group("augment");
    group.throughput(Throughput::Elements(1));
    let mut key = 0u64;
    group.bench_function("two_views_single_thread", |b| {
        b.iter(|| {
            key += 1;
            let image = &images[key as usize % images.len()];
            let v1 = pipeline.apply(image, &mut Rng::from_key(&[0, 0, key, 0]));
            let v2 = pipeline.apply(image, &mut Rng::from_key(&[0, 0, key, 1]));
            (v1.expect("view"), v2.expect("view"))
        })
    });

    let device = Device::flex();
    group.throughput(Throughput::Elements(data.len() as u64));
    group.sample_size(20);
    for workers in [1, 2] {
        let mut config = LoaderConfig::new(128, 0);
        config.workers = workers;
        let loader = TwoViewLoader::new(data.clone(), Pipeline::cifar_train(), config, &device)
            .expect("loader");
        let mut epoch = 0;
        group.bench_function(format!("loader_epoch_1024_workers_{workers}"), |b| {
            b.iter(|| {
                epoch += 1;
                loader
                    .host_batches(epoch, 0)
                    .expect("loader")
                    .map(|batch| batch.expect("valid batch").pixels.len())
                    .sum::<usize>()
            })
        });
    }
    group.finish();
}

criterion_group!(benches, bench_augment);
criterion_main!(benches);
