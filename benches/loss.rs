//! ResCom loss benches on the CPU (`flex`) backend.
//!
//! Groups and ids (read by `benches/compare.sh`):
//! - `loss/{cifar100,imagenet_lt}`: forward + backward + enqueue of `ResComLoss`;
//! - `enqueue/{cifar100,imagenet_lt}`: the vectorised enqueue of the view-1 keys alone;
//! - `mining/{cifar100,imagenet_lt}`: queue similarities + hard pair mining alone.
//!
//! Sizes: CIFAR-100 recipe (2N = 256, D = 32, C = 100, K = 10, k_pos = 1, k_neg = 400) and an
//! ImageNet-LT size (2N = 512, D = 128, C = 1000, K = 4, k_pos = 2, k_neg = 1000).

use burn::tensor::{Device, Int, Tensor, TensorData};

#[path = "support/allocator.rs"]
mod allocator;
#[path = "support/device.rs"]
mod device;
use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use rescom::{
    ClassBalancedQueueConfig, HardPairMinerConfig, ResComLossConfig, ResComModelOutput, Rng,
    l2_normalize,
};

/// One benchmark size.
struct Case {
    name: &'static str,
    rows: usize,
    dim: usize,
    classes: usize,
    per_class: usize,
    hard_positives: usize,
    hard_negatives: usize,
}

const CASES: [Case; 2] = [
    Case {
        name: "cifar100",
        rows: 256,
        dim: 32,
        classes: 100,
        per_class: 10,
        hard_positives: 1,
        hard_negatives: 400,
    },
    Case {
        name: "imagenet_lt",
        rows: 512,
        dim: 128,
        classes: 1000,
        per_class: 4,
        hard_positives: 2,
        hard_negatives: 1000,
    },
];

/// Exponential long-tailed histogram with imbalance 100 (at least one image per class).
fn class_counts(classes: usize, n_max: f64) -> Vec<usize> {
    (0..classes)
        .map(|c| {
            let exponent = -(c as f64) / (classes - 1) as f64;
            ((n_max * 100f64.powf(exponent)).floor() as usize).max(1)
        })
        .collect()
}

/// View-major labels drawn from the long-tailed histogram, and random inputs.
fn inputs(case: &Case, device: &Device) -> (Tensor<2>, Tensor<2>, Tensor<1, Int>) {
    let mut rng = Rng::new(1);
    let counts = class_counts(case.classes, 500.0);
    let total: usize = counts.iter().sum();
    let half = case.rows / 2;
    let view1: Vec<i64> = (0..half)
        .map(|_| {
            let mut r = rng.index(total);
            counts
                .iter()
                .position(|&n| {
                    if r < n {
                        true
                    } else {
                        r -= n;
                        false
                    }
                })
                .unwrap_or(0) as i64
        })
        .collect();
    let labels: Vec<i64> = view1.iter().chain(view1.iter()).copied().collect();
    let mut normal = |n: usize| (0..n).map(|_| rng.normal() as f32).collect::<Vec<f32>>();
    let features = Tensor::from_data(
        TensorData::new(normal(case.rows * case.dim), [case.rows, case.dim]),
        device,
    );
    let logits = Tensor::from_data(
        TensorData::new(normal(case.rows * case.classes), [case.rows, case.classes]),
        device,
    );
    let labels = Tensor::from_data(TensorData::new(labels, [case.rows]), device);
    (features, logits, labels)
}

fn config(case: &Case) -> ResComLossConfig {
    ResComLossConfig::new(class_counts(case.classes, 500.0))
        .with_dim(case.dim)
        .with_queue_per_class(case.per_class)
        .with_hard_positives(case.hard_positives)
        .with_hard_negatives(case.hard_negatives)
}

fn bench_loss(c: &mut Criterion) {
    allocator::keep_freed_memory();
    let device = device::bench_device().autodiff();
    let mut group = c.benchmark_group("loss");
    group.sample_size(30);
    for case in &CASES {
        let loss = config(case).init(&device).expect("valid config");
        let (features, logits, labels) = inputs(case, &device);
        group.bench_function(BenchmarkId::from_parameter(case.name), |b| {
            b.iter(|| {
                let features = features.clone().require_grad();
                let logits = logits.clone().require_grad();
                let output = ResComModelOutput {
                    logits: logits.clone(),
                    projections: features.clone(),
                };
                let out = loss.forward(output, labels.clone()).expect("valid inputs");
                let grads = out.total.backward();
                // Materialise both gradients, as an optimiser step would.
                let gf = features.grad(&grads).expect("gradient");
                let gl = logits.grad(&grads).expect("gradient");
                device.sync().expect("device");
                (gf, gl)
            })
        });
    }
    group.finish();
}

fn bench_enqueue(c: &mut Criterion) {
    allocator::keep_freed_memory();
    let device = device::bench_device();
    let mut group = c.benchmark_group("enqueue");
    for case in &CASES {
        let mut queue = ClassBalancedQueueConfig::new(case.classes, case.per_class, case.dim)
            .init(&device)
            .expect("valid config");
        let (features, _, labels) = inputs(case, &device);
        let half = case.rows / 2;
        let keys = l2_normalize(features.narrow(0, 0, half));
        let labels = labels.narrow(0, 0, half);
        group.bench_function(BenchmarkId::from_parameter(case.name), |b| {
            b.iter(|| {
                queue
                    .enqueue(keys.clone(), labels.clone())
                    .expect("valid inputs");
                device.sync().expect("device");
            })
        });
    }
    group.finish();
}

fn bench_mining(c: &mut Criterion) {
    allocator::keep_freed_memory();
    let device = device::bench_device();
    let mut group = c.benchmark_group("mining");
    for case in &CASES {
        let queue = ClassBalancedQueueConfig::new(case.classes, case.per_class, case.dim)
            .init(&device)
            .expect("valid config");
        let miner = HardPairMinerConfig::new()
            .with_hard_positives(case.hard_positives)
            .with_hard_negatives(case.hard_negatives)
            .init(case.classes, case.per_class)
            .expect("valid config");
        let (features, _, labels) = inputs(case, &device);
        let queries = l2_normalize(features);
        group.bench_function(BenchmarkId::from_parameter(case.name), |b| {
            b.iter(|| {
                let mined = miner
                    .mine(queue.similarities(queries.clone()), labels.clone())
                    .expect("valid inputs");
                device.sync().expect("device");
                mined
            })
        });
    }
    group.finish();
}

criterion_group!(benches, bench_loss, bench_enqueue, bench_mining);
criterion_main!(benches);
