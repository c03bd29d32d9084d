//! Throughput of the CIFAR training pipeline (crop + flip + AutoAugment + Cutout +
//! normalisation), in two-view samples, on 32x32x3 images.
//!
//! - `augment/two_views_single_thread`: one image, both views, on the calling thread;
//! - `augment/loader_batch_128`: a 128-image two-view batch through [`TwoViewLoader`] with
//!   2 worker threads (the training example's default).

#[path = "support/allocator.rs"]
mod allocator;

use std::sync::Arc;

use burn::tensor::Device;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use rescom::Rng;
use rescom::data::{Dataset, Image, InMemoryDataset, LoaderConfig, Pipeline, TwoViewLoader};

fn dataset(n: usize) -> InMemoryDataset {
    let mut rng = Rng::new(3);
    let pixels: Vec<u8> = (0..n * 3072).map(|_| rng.below(256) as u8).collect();
    let labels = (0..n).map(|i| i % 10).collect();
    InMemoryDataset::new(3, 32, 32, pixels, labels, 10).expect("valid dataset")
}

fn bench_augment(c: &mut Criterion) {
    allocator::keep_freed_memory();
    let pipeline = Pipeline::cifar_train();
    let data = dataset(1024);
    let image: Image = data.image(0).expect("image");
    let mut group = c.benchmark_group("augment");
    group.throughput(Throughput::Elements(1));
    let mut key = 0u64;
    group.bench_function("two_views_single_thread", |b| {
        b.iter(|| {
            key += 1;
            let v1 = pipeline.apply(&image, &mut Rng::from_key(&[0, 0, key, 0]));
            let v2 = pipeline.apply(&image, &mut Rng::from_key(&[0, 0, key, 1]));
            (v1.expect("view"), v2.expect("view"))
        })
    });

    let device = Device::flex();
    let loader = TwoViewLoader::new(
        Arc::new(data),
        Pipeline::cifar_train(),
        LoaderConfig::new(128, 0),
        &device,
    )
    .expect("loader");
    group.throughput(Throughput::Elements(128));
    let mut epoch = 0;
    group.bench_function("loader_batch_128", |b| {
        b.iter(|| {
            epoch += 1;
            loader
                .host_batches(epoch, 0)
                .expect("loader")
                .next()
                .expect("a batch")
                .expect("valid batch")
        })
    });
    group.finish();
}

criterion_group!(benches, bench_augment);
criterion_main!(benches);
