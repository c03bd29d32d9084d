//! One full training step of a CIFAR ResNet-32 on the device named by `RESCOM_BENCH_DEVICE`
//! (default `flex`): 128 images of 3x32x32, two views each (256 rows), forward, loss,
//! backward and an SGD step.
//!
//! - `train_step/resnet32_rescom`: backbone + ResCom head + `ResComLoss` (CIFAR-100 recipe:
//!   D = 32, K = 10, k_pos = 1, k_neg = 400), queue update included;
//! - `train_step/resnet32_ce`: the same backbone and classifier with plain cross-entropy
//!   (no projection head), on the same 256 rows.
//!
//! Their ratio is ResCom's overhead over a cross-entropy step. The steps are run as the
//! Learner runs them (`TrainStep::step`, then `optimize`), with the checks the training loop
//! makes on the device: the trusted path on GPUs, the checked path on the CPU backends (the
//! bench prints which). They are in `support/train_steps.rs` (shared with
//! `examples/gpu_check.rs`).

use criterion::{Criterion, criterion_group, criterion_main};
use rescom::train::StepChecks;

use optim::sgd;
use rescom_support::{allocator, device, optim, train_steps};

rescom_support::use_mimalloc!();

fn bench_train_step(c: &mut Criterion) {
    allocator::keep_freed_memory();
    let device = device::bench_device().autodiff();
    device.seed(0);
    let checks = StepChecks::Auto;
    eprintln!(
        "train_step: the {} path",
        train_steps::path(checks, &device)
    );
    let batch = train_steps::batch(&device);
    let mut group = c.benchmark_group("train_step");
    group.sample_size(10);

    let mut model =
        train_steps::cross_entropy_model(train_steps::network(&device), checks, &device);
    let mut optimizer = sgd();
    group.bench_function("resnet32_ce", |b| {
        b.iter(|| model = train_steps::step(model.clone(), &mut optimizer, &batch, &device))
    });

    let mut model = train_steps::rescom_model(model.network, checks, &device);
    let mut optimizer = sgd();
    group.bench_function("resnet32_rescom", |b| {
        b.iter(|| model = train_steps::step(model.clone(), &mut optimizer, &batch, &device))
    });
    group.finish();
}

criterion_group!(benches, bench_train_step);
criterion_main!(benches);
