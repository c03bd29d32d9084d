//! Time of one training step of the network alone: CIFAR ResNet-32 with the ResCom head
//! (64 -> 64 -> BN -> ReLU -> 32, 100 classes) on 256 rows of 3x32x32 (128 images, two views),
//! forward, cross-entropy on the logits plus a small penalty on the projections (so the
//! projection MLP takes part), backward and an SGD step (momentum 0.9, weight decay 5e-4).
//!
//! ```text
//! cargo bench --bench model_step                      # flex, 5 steps after one warm-up
//! cargo bench --bench model_step -- --steps 10
//! cargo bench --bench model_step -- --ndarray 1       # also ndarray (~80 s a step)
//! cargo bench --bench model_step -- --ops             # single layers of the network
//! cargo bench --bench model_step -- --overhead 10     # ResCom vs cross-entropy, paired
//! cargo bench --bench model_step -- --memory 3        # peak memory of ResCom steps
//! ```
//!
//! `--overhead N` alternates a cross-entropy step and a full ResCom step (head, `ResComLoss`
//! with the CIFAR-100 recipe, queue update) N times, so drift of the machine's speed hits
//! both alike, and reports the median of the per-pair ratios.
//!
//! `--memory N` runs N full ResCom steps alone in this process and prints, as one JSON line,
//! its resident memory before the first step and its peak (`VmRSS` and `VmHWM` of
//! `/proc/self/status`, Linux), the figure `benches/compare.sh --memory` compares with
//! PyTorch's.
//!
//! Each step is split into forward, backward and optimiser time; `--ops` times the layers the
//! network is made of at the shapes of its three stages.

use std::time::{Duration, Instant};

use burn::nn::conv::Conv2dConfig;
use burn::nn::{BatchNormConfig, PaddingConfig2d};
use burn::optim::GradientsParams;
use burn::tensor::ops::ConvOptions;
use burn::tensor::{Device, Distribution, Int, Tensor, TensorData, s};
use rescom::model::{BackboneConfig, CifarResNetConfig, ResComModel, ResComModelConfig};
use rescom::nn::{apply, conv2d};
use rescom::{BalancedSoftmaxLossConfig, ResComLossConfig, Rng};

use optim::sgd;
use rescom_support::{allocator, optim};

rescom_support::use_mimalloc!();

const ROWS: usize = 256;
const CLASSES: usize = 100;

#[derive(Default, Clone, Copy)]
struct Split {
    forward: Duration,
    backward: Duration,
    optimiser: Duration,
    /// CPU time of all the process's threads during the step, where the OS reports it.
    cpu: Option<Duration>,
}

/// CPU time used so far by all threads of this process (Linux `schedstat`, nanoseconds), or
/// `None` elsewhere. Unlike wall-clock time it does not grow when other processes share the
/// cores; with `RAYON_NUM_THREADS=1` it is the work of a step.
fn cpu_time() -> Option<Duration> {
    let mut total = 0u64;
    for entry in std::fs::read_dir("/proc/self/task").ok()? {
        let stat = std::fs::read_to_string(entry.ok()?.path().join("schedstat")).ok()?;
        total += stat.split_whitespace().next()?.parse::<u64>().ok()?;
    }
    Some(Duration::from_nanos(total))
}

impl Split {
    fn total(&self) -> Duration {
        self.forward + self.backward + self.optimiser
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// Runs `warmup + steps` training steps and prints the time of each measured one.
fn train_steps(name: &str, device: &Device, warmup: usize, steps: usize) {
    device.seed(0);
    let mut rng = Rng::new(5);
    let labels: Vec<i64> = (0..ROWS).map(|_| rng.index(CLASSES) as i64).collect();
    let labels = Tensor::<1, Int>::from_data(TensorData::new(labels, [ROWS]), device);
    let images = Tensor::<4>::random([ROWS, 3, 32, 32], Distribution::Normal(0.0, 1.0), device);
    let mut model: ResComModel =
        match ResComModelConfig::new(BackboneConfig::Cifar(CifarResNetConfig::new(32)), CLASSES)
            .init(device)
        {
            Ok(model) => model,
            Err(e) => panic!("the ResNet-32 configuration is valid: {e}"),
        };
    let loss_fn = match BalancedSoftmaxLossConfig::new(vec![1; CLASSES]).init(device) {
        Ok(loss) => loss,
        Err(e) => panic!("uniform counts are valid: {e}"),
    };
    let mut optimiser = sgd();
    let mut splits = Vec::new();
    for step in 0..warmup + steps {
        let cpu_start = cpu_time();
        let start = Instant::now();
        let out = model.forward(images.clone());
        let ce = match loss_fn.forward(out.logits, labels.clone()) {
            Ok(loss) => loss,
            Err(e) => panic!("valid inputs: {e}"),
        };
        let loss = ce + out.projections.powi_scalar(2).mean().mul_scalar(1e-3);
        sync(device);
        let forward = start.elapsed();
        let start = Instant::now();
        let grads = GradientsParams::from_grads(loss.backward(), &model);
        sync(device);
        let backward = start.elapsed();
        let start = Instant::now();
        model = optimiser.step(0.1, model, grads);
        sync(device);
        let optimiser_time = start.elapsed();
        let cpu = cpu_time()
            .zip(cpu_start)
            .map(|(end, start)| end.saturating_sub(start));
        let split = Split {
            forward,
            backward,
            optimiser: optimiser_time,
            cpu,
        };
        println!(
            "{name} step {step}{}: {:8.1} ms (forward {:7.1}, backward {:7.1}, optimiser {:6.1}; \
             CPU {})",
            if step < warmup { " (warm-up)" } else { "" },
            ms(split.total()),
            ms(forward),
            ms(backward),
            ms(optimiser_time),
            cpu.map_or("n/a".into(), |c| format!("{:.1} ms", ms(c)))
        );
        if step >= warmup {
            splits.push(split);
        }
    }
    if !splits.is_empty() {
        let n = splits.len() as u32;
        let mut sorted: Vec<Duration> = splits.iter().map(Split::total).collect();
        sorted.sort();
        let mean = |f: fn(&Split) -> Duration| ms(splits.iter().map(f).sum::<Duration>() / n);
        let mut cpu: Vec<Duration> = splits.iter().filter_map(|s| s.cpu).collect();
        cpu.sort();
        println!(
            "{name}: {} steps, mean {:.1} ms, median {:.1} ms (forward {:.1}, backward {:.1}, \
             optimiser {:.1}); {:.0} images/s; CPU time median {}",
            n,
            mean(Split::total),
            ms(sorted[sorted.len() / 2]),
            mean(|s| s.forward),
            mean(|s| s.backward),
            mean(|s| s.optimiser),
            ROWS as f64 / (mean(Split::total) / 1e3),
            cpu.get(cpu.len() / 2)
                .map_or("n/a".into(), |c| format!("{:.1} ms", ms(*c)))
        );
    }
}

fn sync(device: &Device) {
    if let Err(e) = device.sync() {
        panic!("device sync failed: {e:?}");
    }
}

/// Median of `reps` runs of `f` (after one warm-up run).
fn time(reps: usize, mut f: impl FnMut()) -> f64 {
    f();
    let mut times: Vec<f64> = (0..reps)
        .map(|_| {
            let start = Instant::now();
            f();
            start.elapsed().as_secs_f64() * 1e3
        })
        .collect();
    times.sort_by(f64::total_cmp);
    times[reps / 2]
}

/// The layers of a ResNet-32 step one by one, at the shapes of the three stages (forward, and
/// forward + backward on an autodiff device).
fn ops(device: &Device) {
    let reps = 5;
    println!("layer timings at {ROWS} rows, median of {reps} (ms): forward | forward+backward");
    for (channels, size) in [(16, 32), (32, 16), (64, 8)] {
        let conv = Conv2dConfig::new([channels, channels], [3, 3])
            .with_padding(PaddingConfig2d::Explicit(1, 1, 1, 1))
            .with_bias(false)
            .init(device);
        let norm = BatchNormConfig::new(channels).init(device);
        let x = Tensor::<4>::random(
            [ROWS, channels, size, size],
            Distribution::Normal(0.0, 1.0),
            device,
        )
        .require_grad();
        let fwd = |f: &dyn Fn(Tensor<4>) -> Tensor<4>| {
            time(reps, || {
                let _ = f(x.clone()).into_data();
            })
        };
        let both = |f: &dyn Fn(Tensor<4>) -> Tensor<4>| {
            time(reps, || {
                let grads = f(x.clone()).sum().backward();
                let _ = x.grad(&grads).map(Tensor::into_data);
            })
        };
        let conv_f = |t: Tensor<4>| apply(&conv, t);
        let burn_conv_f = |t: Tensor<4>| conv.forward(t);
        let norm_f = |t: Tensor<4>| norm.forward(t);
        let relu_f = |t: Tensor<4>| burn::tensor::activation::relu(t);
        let add_f = |t: Tensor<4>| t.clone() + t;
        let shortcut_f = |t: Tensor<4>| {
            let t = t.slice(s![.., .., ..;2, ..;2]);
            let [b, c, h, w] = t.dims();
            let zeros = Tensor::<4>::zeros([b, c / 2, h, w], (&t.device(), t.dtype()));
            Tensor::cat(vec![zeros.clone(), t, zeros], 1)
        };
        // An input stored channels-last (`[B, H, W, C]` memory viewed as NCHW).
        let x_channels_last = Tensor::<4>::random(
            [ROWS, size, size, channels],
            Distribution::Normal(0.0, 1.0),
            device,
        )
        .permute([0, 3, 1, 2]);
        let conv_channels_last = time(reps, || {
            let _ = apply(&conv, x_channels_last.clone()).into_data();
        });
        println!("stage {channels} channels, {size}x{size}:");
        for (label, f) in [
            ("conv3x3", &conv_f as &dyn Fn(Tensor<4>) -> Tensor<4>),
            ("conv3x3 (Burn's)", &burn_conv_f),
            ("batch norm (train)", &norm_f),
            ("relu", &relu_f),
            ("residual add", &add_f),
            ("option-A shortcut", &shortcut_f),
        ] {
            println!("  {label:<20} {:8.2} | {:8.2}", fwd(f), both(f));
        }
        println!(
            "  {:<20} {conv_channels_last:8.2} |",
            "conv3x3 (NHWC input)"
        );
        // The convolution's kernels apart: forward; forward + input gradient (weight
        // untracked); forward + weight gradient (input untracked).
        type Conv = fn(Tensor<4>, Tensor<4>, Option<Tensor<1>>, ConvOptions<2>) -> Tensor<4>;
        let options = ConvOptions::new([1, 1], [1, 1], [1, 1], 1);
        let weight = conv.weight.val().detach();
        let x_const = x.clone().detach();
        for (label, f) in [
            ("crate", conv2d as Conv),
            ("Burn's", |x, w, b, o| {
                burn::tensor::module::conv2d(x, w, b, o)
            }),
        ] {
            let forward = time(reps, || {
                let _ = f(x_const.clone(), weight.clone(), None, options.clone()).into_data();
            });
            let input = time(reps, || {
                let y = f(x.clone(), weight.clone(), None, options.clone());
                let grads = y.sum().backward();
                let _ = x.grad(&grads).map(Tensor::into_data);
            });
            let weights = time(reps, || {
                let w = weight.clone().require_grad();
                let y = f(x_const.clone(), w.clone(), None, options.clone());
                let grads = y.sum().backward();
                let _ = w.grad(&grads).map(Tensor::into_data);
            });
            println!(
                "  conv3x3 kernels ({label}): forward {forward:.2}, forward + input gradient \
                 {input:.2}, forward + weight gradient {weights:.2}"
            );
        }
    }
}

/// Seeds `device` and draws the step's batch: labels `[ROWS]` (two views of `ROWS / 2`
/// images, view-major) and images `[ROWS, 3, 32, 32]`.
fn seeded_batch(device: &Device) -> (Tensor<1, Int>, Tensor<4>) {
    device.seed(0);
    let mut rng = Rng::new(5);
    let half: Vec<i64> = (0..ROWS / 2).map(|_| rng.index(CLASSES) as i64).collect();
    let labels: Vec<i64> = half.iter().chain(&half).copied().collect();
    let labels = Tensor::<1, Int>::from_data(TensorData::new(labels, [ROWS]), device);
    let images = Tensor::<4>::random([ROWS, 3, 32, 32], Distribution::Normal(0.0, 1.0), device);
    (labels, images)
}

/// Alternates cross-entropy and ResCom training steps and prints the paired overhead.
fn overhead(device: &Device, pairs: usize) {
    let (labels, images) = seeded_batch(device);
    let init =
        || match ResComModelConfig::new(BackboneConfig::Cifar(CifarResNetConfig::new(32)), CLASSES)
            .init(device)
        {
            Ok(model) => model,
            Err(e) => panic!("the ResNet-32 configuration is valid: {e}"),
        };
    let (mut ce_model, mut rescom_model) = (init(), init());
    let (mut ce_optimiser, mut rescom_optimiser) = (sgd(), sgd());
    let plain = match BalancedSoftmaxLossConfig::new(vec![1; CLASSES]).init(device) {
        Ok(loss) => loss,
        Err(e) => panic!("uniform counts are valid: {e}"),
    };
    let rescom = match ResComLossConfig::new(cifar100_counts()).init(device) {
        Ok(loss) => loss,
        Err(e) => panic!("the CIFAR-100 recipe is valid: {e}"),
    };
    let (mut ce_ms, mut rescom_ms, mut ratios) = (Vec::new(), Vec::new(), Vec::new());
    for pair in 0..=pairs {
        let start = Instant::now();
        let logits = ce_model.logits(images.clone());
        let loss = match plain.forward(logits, labels.clone()) {
            Ok(loss) => loss,
            Err(e) => panic!("valid inputs: {e}"),
        };
        let grads = GradientsParams::from_grads(loss.backward(), &ce_model);
        ce_model = ce_optimiser.step(0.1, ce_model, grads);
        sync(device);
        let ce = ms(start.elapsed());

        let start = Instant::now();
        let output = rescom_model.forward(images.clone());
        let out = match rescom.forward(output, labels.clone()) {
            Ok(out) => out,
            Err(e) => panic!("valid inputs: {e}"),
        };
        let grads = GradientsParams::from_grads(out.total.backward(), &rescom_model);
        rescom_model = rescom_optimiser.step(0.1, rescom_model, grads);
        sync(device);
        let full = ms(start.elapsed());
        println!(
            "pair {pair}{}: cross-entropy {ce:8.1} ms, rescom {full:8.1} ms, ratio {:.4}",
            if pair == 0 { " (warm-up)" } else { "" },
            full / ce
        );
        if pair > 0 {
            ce_ms.push(ce);
            rescom_ms.push(full);
            ratios.push(full / ce);
        }
    }
    if ratios.is_empty() {
        return;
    }
    let median = |mut v: Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    println!(
        "{pairs} pairs: cross-entropy median {:.1} ms, rescom median {:.1} ms, \
         overhead (median of paired ratios) {:+.2}%",
        median(ce_ms),
        median(rescom_ms),
        (median(ratios) - 1.0) * 100.0
    );
}

/// `VmRSS` and `VmHWM` (peak) of this process in KiB, from `/proc/self/status` (Linux).
fn resident_kib() -> Option<(u64, u64)> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let field = |name: &str| {
        status
            .lines()
            .find_map(|line| line.strip_prefix(name))?
            .split_whitespace()
            .next()?
            .parse::<u64>()
            .ok()
    };
    Some((field("VmRSS:")?, field("VmHWM:")?))
}

/// Runs `steps` full ResCom steps (network, `ResComLoss` with the CIFAR-100 recipe and its
/// enqueue, backward, SGD) and prints the resident memory before them and the peak.
fn memory(device: &Device, steps: usize) {
    let (labels, images) = seeded_batch(device);
    let mut model =
        match ResComModelConfig::new(BackboneConfig::Cifar(CifarResNetConfig::new(32)), CLASSES)
            .init(device)
        {
            Ok(model) => model,
            Err(e) => panic!("the ResNet-32 configuration is valid: {e}"),
        };
    let rescom = match ResComLossConfig::new(cifar100_counts()).init(device) {
        Ok(loss) => loss,
        Err(e) => panic!("the CIFAR-100 recipe is valid: {e}"),
    };
    let mut optimiser = sgd();
    sync(device);
    let before = resident_kib();
    for _ in 0..steps {
        let out = match rescom.forward(model.forward(images.clone()), labels.clone()) {
            Ok(out) => out,
            Err(e) => panic!("valid inputs: {e}"),
        };
        let grads = GradientsParams::from_grads(out.total.backward(), &model);
        model = optimiser.step(0.1, model, grads);
        sync(device);
    }
    match (before, resident_kib()) {
        (Some((rss, _)), Some((_, peak))) => println!(
            "{{\"case\": \"resnet32_step_rescom\", \"steps\": {steps}, \
             \"rss_before_kib\": {rss}, \"peak_kib\": {peak}}}"
        ),
        _ => eprintln!("resident memory is read from /proc/self/status (Linux only)"),
    }
}

/// Training images per class of CIFAR-100-LT (imbalance 100, 500 images in the head class).
fn cifar100_counts() -> Vec<usize> {
    (0..CLASSES)
        .map(|c| (500.0 * 100f64.powf(-(c as f64) / 99.0)).floor() as usize)
        .collect()
}

fn main() {
    allocator::keep_freed_memory();
    let args: Vec<String> = std::env::args().collect();
    let value = |flag: &str| {
        args.iter()
            .position(|a| a == flag)
            .and_then(|i| args.get(i + 1))
            .and_then(|v| v.parse::<usize>().ok())
    };
    if let Some(pairs) = value("--overhead") {
        overhead(&Device::flex().autodiff(), pairs);
        return;
    }
    if let Some(steps) = value("--memory") {
        memory(&Device::flex().autodiff(), steps);
        return;
    }
    if args.iter().any(|a| a == "--ops") {
        ops(&Device::flex().autodiff());
        return;
    }
    train_steps(
        "flex",
        &Device::flex().autodiff(),
        1,
        value("--steps").unwrap_or(5),
    );
    if let Some(steps) = value("--ndarray") {
        #[allow(deprecated)]
        let device = Device::ndarray().autodiff();
        train_steps("ndarray", &device, 0, steps);
    }
}
