//! ResCom loss benches on the device named by `RESCOM_BENCH_DEVICE` (default `flex`).
//!
//! Groups and ids (read by `benches/compare.sh`):
//! - `loss/{cifar100,imagenet_lt}`: forward + backward + enqueue of `ResComLoss`, through
//!   the path a training step takes on the device (`forward_trusted` on GPUs, `forward` on
//!   the CPU backends; the bench prints which);
//! - `enqueue/{cifar100,imagenet_lt}`: the vectorised enqueue of the view-1 keys alone;
//! - `mining/{cifar100,imagenet_lt}`: queue similarities + hard pair mining alone.
//!
//! The sizes and the timed work are in `support/loss_cases.rs` (shared with
//! `examples/gpu_check.rs`).

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use rescom::l2_normalize;

use loss_cases::CASES;
use rescom_support::{allocator, device, loss_cases};

rescom_support::use_mimalloc!();

fn bench_loss(c: &mut Criterion) {
    allocator::keep_freed_memory();
    let device = device::bench_device().autodiff();
    // As a training step with the default checks: trusted on GPUs, checked on the CPU.
    let trusted = device::is_gpu(&device::bench_device_name());
    eprintln!("loss: the {} path", loss_cases::path(trusted));
    let mut group = c.benchmark_group("loss");
    group.sample_size(30);
    for case in &CASES {
        let loss = loss_cases::loss(case, &device);
        let inputs = loss_cases::inputs(case, &device);
        group.bench_function(BenchmarkId::from_parameter(case.name), |b| {
            b.iter(|| loss_cases::loss_step(&loss, &inputs, trusted, &device))
        });
    }
    group.finish();
}

fn bench_enqueue(c: &mut Criterion) {
    allocator::keep_freed_memory();
    let device = device::bench_device();
    let mut group = c.benchmark_group("enqueue");
    for case in &CASES {
        let mut queue = loss_cases::queue(case, &device);
        let inputs = loss_cases::inputs(case, &device);
        let (keys, labels) = loss_cases::enqueue_inputs(inputs.features, inputs.labels, case);
        group.bench_function(BenchmarkId::from_parameter(case.name), |b| {
            b.iter(|| loss_cases::enqueue_step(&mut queue, &keys, &labels, &device))
        });
    }
    group.finish();
}

fn bench_mining(c: &mut Criterion) {
    allocator::keep_freed_memory();
    let device = device::bench_device();
    let mut group = c.benchmark_group("mining");
    for case in &CASES {
        let queue = loss_cases::queue(case, &device);
        let miner = loss_cases::miner(case);
        let inputs = loss_cases::inputs(case, &device);
        let queries = l2_normalize(inputs.features);
        group.bench_function(BenchmarkId::from_parameter(case.name), |b| {
            b.iter(|| loss_cases::mining_step(&miner, &queue, &queries, &inputs.labels, &device))
        });
    }
    group.finish();
}

criterion_group!(benches, bench_loss, bench_enqueue, bench_mining);
criterion_main!(benches);
