//! One full training step of a CIFAR ResNet-32 on the CPU (`flex`) backend: 128 images of
//! 3x32x32, two views each (256 rows), forward, loss, backward and an SGD step.
//!
//! - `train_step/resnet32_rescom`: backbone + ResCom head + `ResComLoss` (CIFAR-100 recipe:
//!   D = 32, K = 10, k_pos = 1, k_neg = 400), queue update included;
//! - `train_step/resnet32_ce`: the same backbone and classifier with plain cross-entropy
//!   (no projection head), on the same 256 rows.
//!
//! Their ratio is ResCom's overhead over a cross-entropy step.

use burn::optim::GradientsParams;
use burn::tensor::{Device, Distribution, Int, Tensor, TensorData};
use criterion::{Criterion, criterion_group, criterion_main};
use rescom::model::ResComModelConfig;
use rescom::{BalancedSoftmaxLossConfig, ResComLossConfig, Rng};

#[path = "support/allocator.rs"]
mod allocator;
#[path = "support/optim.rs"]
mod optim;
use optim::sgd;
#[path = "support/device.rs"]
mod device;

const IMAGES: usize = 128;
const CLASSES: usize = 100;

fn counts() -> Vec<usize> {
    (0..CLASSES)
        .map(|c| (500.0 * 100f64.powf(-(c as f64) / 99.0)).floor() as usize)
        .collect()
}

fn batch(device: &Device) -> (Tensor<4>, Tensor<1, Int>) {
    let mut rng = Rng::new(5);
    let view1: Vec<i64> = (0..IMAGES).map(|_| rng.index(CLASSES) as i64).collect();
    let labels: Vec<i64> = view1.iter().chain(&view1).copied().collect();
    let images = Tensor::random(
        [2 * IMAGES, 3, 32, 32],
        Distribution::Normal(0.0, 1.0),
        device,
    );
    let labels = Tensor::from_data(TensorData::new(labels, [2 * IMAGES]), device);
    (images, labels)
}

fn bench_train_step(c: &mut Criterion) {
    allocator::keep_freed_memory();
    let device = device::bench_device().autodiff();
    device.seed(0);
    let (images, labels) = batch(&device);
    let mut group = c.benchmark_group("train_step");
    group.sample_size(10);

    let mut model = ResComModelConfig::new("resnet32".into(), CLASSES)
        .init(&device)
        .expect("valid model");
    let mut optimizer = sgd();
    // Uniform counts make the prior shift a constant: plain cross-entropy.
    let plain = BalancedSoftmaxLossConfig::new(vec![1; CLASSES])
        .init(&device)
        .expect("uniform counts give plain cross-entropy");
    group.bench_function("resnet32_ce", |b| {
        b.iter(|| {
            let logits = model.logits(images.clone());
            let loss = plain.forward(logits, labels.clone()).expect("valid inputs");
            let grads = GradientsParams::from_grads(loss.backward(), &model);
            model = optimizer.step(0.1, model.clone(), grads);
            device.sync().expect("device");
        })
    });

    let loss_fn = ResComLossConfig::new(counts())
        .init(&device)
        .expect("recipe");
    let mut optimizer = sgd();
    group.bench_function("resnet32_rescom", |b| {
        b.iter(|| {
            let output = model.forward(images.clone());
            let out = loss_fn
                .forward(output, labels.clone())
                .expect("valid inputs");
            let grads = GradientsParams::from_grads(out.total.backward(), &model);
            model = optimizer.step(0.1, model.clone(), grads);
            device.sync().expect("device");
        })
    });
    group.finish();
}

criterion_group!(benches, bench_train_step);
criterion_main!(benches);
