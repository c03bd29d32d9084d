//! The whole ResCom training step against a PyTorch reference of the published step.
//!
//! `tests/reference/train_step.py` runs, in PyTorch, three steps of a small configuration of the
//! published recipe: a CIFAR ResNet-8 with option-A shortcuts, the projection MLP and the
//! classifier, 16 images x 2 views of 16x16 pixels in one forward pass (batch normalisation in
//! training mode), 10 classes, the Siamese Balanced Softmax plus the class-balanced
//! contrastive loss mining from a queue of K = 4 keys per class, the view-1 keys enqueued after
//! the loss, and SGD with momentum 0.9 (no dampening) and weight decay 5e-4 under PyTorch's
//! rule (`d = g + wd p; buf = m buf + d; p -= lr buf`). Weights, images and the initial queue
//! come from one counter-based stream that this test rebuilds exactly (see
//! [`common::Fill`]); `tests/fixtures/train_step.json` keeps, after every step, the three loss
//! values, the queue pointers and a summary (sum, sum of absolute values, L2 norm, a fixed
//! sample of elements) of every parameter, batch-norm running statistic, momentum buffer and of
//! the queue. Regenerate it with `python3 tests/reference/train_step.py`.
//!
//! Here the same steps run the way the crate's users run them: [`ResComModel::forward`],
//! [`ResComLoss::forward`] (which enqueues), `backward`, and Burn's SGD configured as the
//! trainer configures it. On flex in float64 everything must agree with the float64 reference
//! to 1e-9 (relative; absolute 1e-12); in float32, with both the float32 and the float64
//! reference, to the crate's float32 tolerance (relative 1e-4, absolute 1e-5). A second test shows that the comparison catches a wrong weight decay, a dampened or
//! Nesterov momentum and a queue that is not updated.
//!
//! `tests/reference/authors_step.py` runs the same steps through the authors' own released
//! modules (their model wrapper with its queue and mining, their loss, their optimiser call),
//! imported from a checkout of their repository; `tests/fixtures/authors_step.json` has the same
//! format and goes through the same comparison. Their float64 run keeps their class weights in
//! float32, so the float64 comparison with it is looser (see [`F64_AUTHORS`]); a fourth test
//! shows that it still catches a wrong contrast weight, a wrong temperature and a queue updated
//! before the loss reads it.
//!
//! Both comparisons build the optimiser with [`TrainConfig::optimizer`] and the loss with
//! [`TrainConfig::rescom_loss`], as training runs do.

mod common;

use std::collections::HashMap;
use std::path::Path;

use burn::module::{Module, ModuleVisitor, Param};
use burn::optim::momentum::MomentumConfig;
use burn::optim::{GradientsParams, ModuleOptimizer};
use burn::tensor::{Bytes, DType, Device, Int, Tensor, TensorData};
use rescom::ResComLoss;
use rescom::model::{BackboneConfig, CifarResNetConfig, ResComModel, ResComModelConfig};
use rescom::train::{LrSchedule, Method, TrainConfig};
use rescom::{ClassBalancedContrastiveLossConfig, HardPairMinerConfig, ResComLossConfig};
use serde::Deserialize;

use common::{fill_as, ints, to_ints, to_vec, uniform};

// ----- fixture --------------------------------------------------------------------------------

#[derive(Deserialize)]
struct Fixture {
    config: Config,
    f64: Vec<Step>,
    f32: Vec<Step>,
}

#[derive(Deserialize)]
struct Config {
    depth: usize,
    width: usize,
    images: usize,
    size: usize,
    classes: usize,
    dim: usize,
    class_counts: Vec<usize>,
    queue_per_class: usize,
    hard_positives: usize,
    hard_negatives: usize,
    temperature: f64,
    contrast_weight: f64,
    effective_num_beta: f64,
    momentum: f64,
    weight_decay: f64,
}

#[derive(Deserialize)]
struct Step {
    lr: f64,
    labels: Vec<i64>,
    total: f64,
    classification: f64,
    contrastive: f64,
    tensors: Vec<Summary>,
    momentum: Vec<Summary>,
    queue: Summary,
    queue_pointers: Vec<i64>,
}

/// A tensor summarised, in Burn's layout (linear weights `[in, out]`).
#[derive(Deserialize)]
struct Summary {
    name: String,
    shape: Vec<usize>,
    sum: f64,
    abs_sum: f64,
    norm: f64,
    index: Vec<usize>,
    values: Vec<f64>,
}

/// The crate's reading of the method, written for it in plain PyTorch.
const CRATE_REFERENCE: (&str, &str) = ("train_step.json", "tests/reference/train_step.py");
/// The authors' released modules (needs a checkout of their repository to regenerate).
const AUTHORS_REFERENCE: (&str, &str) = (
    "authors_step.json",
    "tests/reference/authors_step.py PATH-TO-ResCom-CHECKOUT",
);

/// `tests/fixtures/{file}`, written by `generator`.
fn fixture((file, generator): (&str, &str)) -> Fixture {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(file);
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{}: {e}; run python3 {generator}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{file} is malformed: {e}"))
}

// ----- tolerances -----------------------------------------------------------------------------

#[derive(Clone, Copy)]
struct Precision {
    dtype: DType,
    rel: f64,
    abs: f64,
}

const F64: Precision = Precision {
    dtype: DType::F64,
    rel: 1e-9,
    abs: 1e-12,
};

const F32: Precision = Precision {
    dtype: DType::F32,
    rel: 1e-4,
    abs: 1e-5,
};

/// Float64 against the authors' float64 run. Their loss builds its class weights with
/// `torch.FloatTensor`, float32 whatever the default dtype, so their float64 run carries
/// weights rounded by up to 6e-8 (relative). A gradient element is a sum of per-row terms of
/// order 0.5 that each carry that rounding: the generator measures momentum buffers moved by up
/// to 2.9e-8 (relative 1e-4 where the terms cancel to 2.9e-4), 0.14 of this tolerance, and
/// refuses to write the fixture above a quarter. Their `|P| + 1e-9` normaliser moves values by
/// 1e-10 at most. Still 100 (relative) and 50 (absolute) times tighter than [`F32`].
const F64_AUTHORS: Precision = Precision {
    dtype: DType::F64,
    rel: 1e-6,
    abs: 2e-7,
};

/// The mismatches of a run, its largest error as a fraction of the tolerance, and its largest
/// relative error on values of magnitude at least 1e-3 (sums, whose terms cancel, aside).
struct Checks {
    precision: Precision,
    failures: Vec<String>,
    worst: (f64, String),
    relative: (f64, String),
}

impl Checks {
    fn new(precision: Precision) -> Self {
        Self {
            precision,
            failures: Vec::new(),
            worst: (0.0, String::new()),
            relative: (0.0, String::new()),
        }
    }

    fn fail(&mut self, what: String) {
        self.failures.push(what);
    }

    /// `|a - e| <= rel |e| + abs`.
    fn value(&mut self, what: impl Fn() -> String, a: f64, e: f64, abs: f64) {
        let tolerance = abs + self.precision.rel * e.abs();
        let ratio = (a - e).abs() / tolerance;
        if ratio.is_nan() || ratio > 1.0 {
            self.failures
                .push(format!("{}: {a:e}, expected {e:e}", what()));
        } else if ratio > self.worst.0 {
            self.worst = (ratio, what());
        }
    }

    /// `|a - e| <= rel |e| + abs` with the precision's `abs`, noting the relative error.
    fn close(&mut self, what: impl Fn() -> String, a: f64, e: f64) {
        self.value(&what, a, e, self.precision.abs);
        let relative = (a - e).abs() / e.abs();
        if e.abs() >= 1e-3 && relative > self.relative.0 {
            self.relative = (relative, what());
        }
    }

    /// A tensor against its summary: sampled elements, the sum of absolute values and the norm
    /// to `rel |e| + abs`; the sum, whose terms have mixed signs, to `abs + rel * sum |e|`.
    fn tensor(&mut self, what: &str, values: &[f64], dims: &[usize], expected: &Summary) {
        let p = self.precision;
        let name = |stat: &str| format!("{what} ({}) {stat}", expected.name);
        if dims != expected.shape.as_slice() {
            self.fail(format!(
                "{}: {dims:?}, expected {:?}",
                name("shape"),
                expected.shape
            ));
            return;
        }
        let sum: f64 = values.iter().sum();
        let abs_sum: f64 = values.iter().map(|v| v.abs()).sum();
        let norm = values.iter().map(|v| v * v).sum::<f64>().sqrt();
        self.value(
            || name("sum"),
            sum,
            expected.sum,
            p.abs + p.rel * expected.abs_sum,
        );
        self.close(|| name("abs_sum"), abs_sum, expected.abs_sum);
        self.close(|| name("norm"), norm, expected.norm);
        for (&i, &e) in expected.index.iter().zip(&expected.values) {
            let a = values.get(i).copied().unwrap_or(f64::NAN);
            self.close(|| name(&format!("[{i}]")), a, e);
        }
    }
}

// ----- the crate's side -----------------------------------------------------------------------

/// A float tensor of a module.
struct Entry {
    path: String,
    trainable: bool,
    id: u64,
    dims: Vec<usize>,
    values: Vec<f64>,
}

/// Every float tensor of a module, in visiting order.
#[derive(Default)]
struct Collect {
    path: Vec<String>,
    tensors: Vec<Entry>,
}

impl ModuleVisitor for Collect {
    fn enter_module(&mut self, name: &str, _: &str) {
        self.path.push(name.to_string());
    }
    fn exit_module(&mut self, _: &str, _: &str) {
        self.path.pop();
    }
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        let t = param.val();
        self.tensors.push(Entry {
            path: self.path.join("."),
            trainable: param.is_require_grad(),
            id: param.id.val(),
            dims: t.dims().to_vec(),
            values: to_vec(t),
        });
    }
}

/// What a run varies from the published step, to show that the comparison sees it.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Variant {
    /// The step as the crate runs it.
    AsPublished,
    /// Weight decay 1e-4 instead of 5e-4.
    WeightDecay,
    /// Momentum with Burn's default dampening 0.1.
    Dampening,
    /// Nesterov momentum.
    Nesterov,
    /// The keys of a step are never enqueued.
    StaleQueue,
    /// Contrast weight 1 (the default of the authors' configuration) instead of 0.5.
    ContrastWeight,
    /// Temperature 0.1 (the default of the authors' configuration) instead of 0.2.
    Temperature,
    /// The keys of a step are enqueued before its loss is computed, which reads them.
    EnqueueFirst,
}

/// The run's settings as a training run holds them, with `variant`'s wrong weight decay,
/// contrast weight or temperature.
fn train_config(config: &Config, variant: Variant) -> TrainConfig {
    TrainConfig {
        method: Method::ResCom,
        loss: ResComLossConfig::new(config.class_counts.clone())
            .with_projection_dim(config.dim)
            .with_queue_per_class(config.queue_per_class)
            .with_mining(
                HardPairMinerConfig::new()
                    .with_hard_positives(config.hard_positives)
                    .with_hard_negatives(config.hard_negatives),
            )
            .with_contrastive(
                ClassBalancedContrastiveLossConfig::new()
                    .with_temperature(match variant {
                        Variant::Temperature => 0.1,
                        _ => config.temperature,
                    })
                    .with_effective_num_beta(config.effective_num_beta)
                    .with_prior_strength(0.0),
            )
            .with_contrast_weight(match variant {
                Variant::ContrastWeight => 1.0,
                _ => config.contrast_weight,
            }),
        epochs: 1,
        // Unused: every step passes its own rate.
        schedule: LrSchedule::Constant { lr: 0.0 },
        momentum: config.momentum,
        weight_decay: match variant {
            Variant::WeightDecay => 1e-4,
            _ => config.weight_decay,
        },
        seed: 0,
        eval_every: 1,
        dataset: "train_step fixture".into(),
    }
}

/// SGD as training runs build it ([`TrainConfig::optimizer`]: momentum without dampening or
/// Nesterov, L2 weight decay on every parameter added to the gradient before the momentum),
/// or with `variant`'s dampened or Nesterov momentum.
fn optimizer(config: &Config, variant: Variant) -> ModuleOptimizer {
    let sgd = train_config(config, variant).optimizer();
    let momentum = MomentumConfig::new().with_momentum(config.momentum);
    match variant {
        // Burn's default dampening.
        Variant::Dampening => sgd.with_momentum(Some(momentum.with_dampening(0.1))),
        Variant::Nesterov => {
            sgd.with_momentum(Some(momentum.with_dampening(0.0).with_nesterov(true)))
        }
        _ => sgd,
    }
    .init()
}

/// The three loss values of a step.
struct Losses {
    total: f64,
    classification: f64,
    contrastive: f64,
}

/// One training step as users run it: forward both views at once, the ResCom loss (which
/// enqueues the view-1 keys), backward, SGD. With `enqueue_first` the keys are enqueued first
/// and the loss is computed from the updated queue.
fn train_step(
    model: ResComModel,
    loss: &ResComLoss,
    optim: &mut ModuleOptimizer,
    images: Tensor<4>,
    labels: Tensor<1, Int>,
    lr: f64,
    enqueue_first: bool,
) -> (ResComModel, Losses) {
    let output = model.forward(images);
    let values = if enqueue_first {
        // `forward` enqueues the step's keys once it has computed its loss, discarded here.
        loss.forward(output.clone(), labels.clone())
            .expect("valid step");
        loss.loss(output, labels)
    } else {
        loss.forward(output, labels)
    }
    .expect("valid step");
    let read = |t: &Tensor<1>| to_vec(t.clone().detach())[0];
    let losses = Losses {
        total: read(&values.total),
        classification: read(&values.classification),
        contrastive: read(&values.contrastive),
    };
    let grads = GradientsParams::from_grads(values.total.backward(), &model);
    (optim.step(lr, model, grads), losses)
}

/// `2 u(2^40 + 2^32 step + i) - 1`, both views, view-major.
fn images(config: &Config, step: usize, device: &Device, dtype: DType) -> Tensor<4> {
    let shape = [2 * config.images, 3, config.size, config.size];
    let n: usize = shape.iter().product();
    let start = (1u64 << 40) + ((step as u64) << 32);
    let values: Vec<f64> = (0..n as u64)
        .map(|i| (2.0 * uniform(start + i) - 1.0) as f32 as f64)
        .collect();
    Tensor::from_data(TensorData::new(values, shape), (device, dtype))
}

/// Unit rows of `2 u(2^41 + i) - 1` (rounded to f32, normalised in f64).
fn initial_queue(config: &Config, device: &Device, dtype: DType) -> Tensor<2> {
    let (rows, dim) = (config.classes * config.queue_per_class, config.dim);
    let mut values: Vec<f64> = (0..(rows * dim) as u64)
        .map(|i| (2.0 * uniform((1 << 41) + i) - 1.0) as f32 as f64)
        .collect();
    for row in values.chunks_mut(dim) {
        let norm = row.iter().map(|v| v * v).sum::<f64>().sqrt();
        row.iter_mut().for_each(|v| *v /= norm);
    }
    Tensor::from_data(TensorData::new(values, [rows, dim]), (device, dtype))
}

/// The optimiser's momentum buffers by parameter id.
fn momentum_buffers(optim: &ModuleOptimizer) -> HashMap<u64, Vec<f64>> {
    let bytes = optim.to_record().into_bytes().expect("optimiser record");
    let reader = burn_pack::Reader::from_bytes(Bytes::from_bytes_vec(bytes.to_vec()))
        .expect("burnpack record");
    let mut buffers = HashMap::new();
    for tensor in reader.into_tensors().expect("record tensors") {
        let (name, dtype, shape, id, bytes) = tensor.into_parts().expect("record tensor");
        if let (Some(id), true) = (id, name.ends_with("velocity")) {
            let data = TensorData::from_bytes(bytes, shape, dtype);
            buffers.insert(id, data.convert::<f64>().try_to_vec::<f64>().expect("f64"));
        }
    }
    buffers
}

/// Runs the fixture's steps on `device` at `precision`, comparing after every step with each
/// of `references` (step lists of the fixture).
fn run(
    fixture: &Fixture,
    references: &[(&str, &[Step])],
    device: &Device,
    precision: Precision,
    variant: Variant,
) -> Checks {
    let c = &fixture.config;
    let dtype = precision.dtype;
    let backbone = CifarResNetConfig::new(c.depth).with_width(c.width);
    let model = ResComModelConfig::new(BackboneConfig::Cifar(backbone), c.classes)
        .with_projection_dim(c.dim)
        .init(device)
        .expect("valid model");
    let mut model = fill_as(model, dtype);
    let mut loss = train_config(c, variant)
        .rescom_loss()
        .init(device)
        .expect("valid loss")
        .with_queue_state(
            initial_queue(c, device, dtype),
            ints(&vec![0; c.classes], device),
        )
        .expect("valid queue");
    let mut optim = optimizer(c, variant);

    let mut checks = Checks::new(precision);
    let steps = references[0].1.len();
    for step in 0..steps {
        let (lr, labels) = (references[0].1[step].lr, &references[0].1[step].labels);
        let two_views: Vec<i64> = labels.iter().chain(labels).copied().collect();
        let before = (loss.queue().keys(), loss.queue().pointers());
        let (next, losses) = train_step(
            model,
            &loss,
            &mut optim,
            images(c, step, device, dtype),
            ints(&two_views, device),
            lr,
            variant == Variant::EnqueueFirst,
        );
        model = next;
        if variant == Variant::StaleQueue {
            loss = loss.with_queue_state(before.0, before.1).expect("queue");
        }
        model.sync_running_stats();
        let mut collect = Collect::default();
        model.visit(&mut collect);
        let buffers = momentum_buffers(&optim);
        let queue = to_vec(loss.queue().keys());
        let pointers = to_ints(loss.queue().pointers());
        let trainable: Vec<_> = collect.tensors.iter().filter(|t| t.trainable).collect();

        for (reference, expected) in references {
            let e = &expected[step];
            let at = |what: &str| format!("{reference}, step {step}: {what}");
            for (what, a, x) in [
                ("total loss", losses.total, e.total),
                (
                    "classification loss",
                    losses.classification,
                    e.classification,
                ),
                ("contrastive loss", losses.contrastive, e.contrastive),
            ] {
                checks.close(|| at(what), a, x);
            }
            if pointers != e.queue_pointers {
                checks.fail(at(&format!(
                    "queue pointers {pointers:?}, expected {:?}",
                    e.queue_pointers
                )));
            }
            let rows = c.classes * c.queue_per_class;
            checks.tensor(&at("queue"), &queue, &[rows, c.dim], &e.queue);
            if collect.tensors.len() != e.tensors.len() || trainable.len() != e.momentum.len() {
                checks.fail(at(&format!(
                    "{} tensors ({} trainable), expected {} ({})",
                    collect.tensors.len(),
                    trainable.len(),
                    e.tensors.len(),
                    e.momentum.len()
                )));
            }
            for (t, summary) in collect.tensors.iter().zip(&e.tensors) {
                checks.tensor(&at(&t.path), &t.values, &t.dims, summary);
            }
            for (t, summary) in trainable.iter().zip(&e.momentum) {
                let what = at(&format!("momentum of {}", t.path));
                match buffers.get(&t.id) {
                    Some(buffer) => checks.tensor(&what, buffer, &t.dims, summary),
                    None => checks.fail(format!("{what}: no buffer")),
                }
            }
        }
    }
    checks
}

fn report(failures: &[String], limit: usize) -> String {
    let mut lines: Vec<&str> = failures.iter().map(String::as_str).take(limit).collect();
    let more = format!("... and {} more", failures.len().saturating_sub(limit));
    if failures.len() > limit {
        lines.push(&more);
    }
    lines.join("\n")
}

/// The crate's steps against `fixture`: float64 against its float64 run to `f64_tolerance`,
/// float32 against both its float32 and its float64 runs to [`F32`].
fn assert_parity(fixture: &Fixture, f64_tolerance: Precision) {
    let device = Device::flex().autodiff();
    let f64_run = run(
        fixture,
        &[("float64 reference", &fixture.f64)],
        &device,
        f64_tolerance,
        Variant::AsPublished,
    );
    let f32_run = run(
        fixture,
        &[
            ("float32 reference", &fixture.f32),
            ("float64 reference", &fixture.f64),
        ],
        &device,
        F32,
        Variant::AsPublished,
    );
    for (name, checks) in [("float64", &f64_run), ("float32", &f32_run)] {
        println!(
            "{name}: largest error {:.3} of the tolerance, at {}; largest relative error {:.2e} \
             (values >= 1e-3, sums aside), at {}",
            checks.worst.0, checks.worst.1, checks.relative.0, checks.relative.1
        );
    }
    assert!(
        f64_run.failures.is_empty() && f32_run.failures.is_empty(),
        "float64 run:\n{}\nfloat32 run:\n{}",
        report(&f64_run.failures, 20),
        report(&f32_run.failures, 20)
    );
}

/// Each of `variants` makes the comparison with `fixture` fail, in float64 (to
/// `f64_tolerance`) and in float32.
fn assert_caught(fixture: &Fixture, f64_tolerance: Precision, variants: &[Variant]) {
    let device = Device::flex().autodiff();
    for &variant in variants {
        for (precision, reference) in [(f64_tolerance, &fixture.f64), (F32, &fixture.f32)] {
            let checks = run(
                fixture,
                &[("reference", reference)],
                &device,
                precision,
                variant,
            );
            let failures = &checks.failures;
            assert!(
                !failures.is_empty(),
                "{variant:?} in {:?} went unnoticed",
                precision.dtype
            );
            println!(
                "{variant:?} ({:?}): {} mismatches, first: {}",
                precision.dtype,
                failures.len(),
                failures[0]
            );
        }
    }
}

#[test]
fn training_steps_match_pytorch_in_float64_and_float32() {
    assert_parity(&fixture(CRATE_REFERENCE), F64);
}

#[test]
fn training_steps_match_the_authors_code() {
    assert_parity(&fixture(AUTHORS_REFERENCE), F64_AUTHORS);
}

#[test]
fn the_comparison_catches_a_wrong_optimiser_or_a_stale_queue() {
    assert_caught(
        &fixture(CRATE_REFERENCE),
        F64,
        &[
            Variant::WeightDecay,
            Variant::Dampening,
            Variant::Nesterov,
            Variant::StaleQueue,
        ],
    );
}

#[test]
fn the_authors_comparison_catches_a_wrong_weight_or_temperature_or_an_early_enqueue() {
    assert_caught(
        &fixture(AUTHORS_REFERENCE),
        F64_AUTHORS,
        &[
            Variant::ContrastWeight,
            Variant::Temperature,
            Variant::EnqueueFirst,
        ],
    );
}
