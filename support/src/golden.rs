//! The golden cases (`tests/golden/*.json`, written by the float64 reference
//! `tests/reference/golden.py`) and the runner that replays one on a device. Shared by
//! `tests/golden.rs` and `examples/gpu_check.rs`, which embeds the shipped cases.

use burn::tensor::{DType, Device, Tensor};
use rescom::{ResComLossConfig, ResComLossInput};
use serde::Deserialize;

use crate::tensors::{close, ints, matrix_as, scalar, to_ints, to_vec};
use rescom::ClassBalancedContrastiveLossConfig;
use rescom::HardPairMinerConfig;

/// The shipped cases, `(file name, JSON text)`, embedded at compile time; `tests/golden.rs`
/// checks that this list and the directory agree.
pub const SHIPPED: [(&str, &str); 7] = [
    (
        "absent_classes_all_negatives.json",
        include_str!("../../tests/golden/absent_classes_all_negatives.json"),
    ),
    (
        "cifar10_like.json",
        include_str!("../../tests/golden/cifar10_like.json"),
    ),
    (
        "no_hard_negatives.json",
        include_str!("../../tests/golden/no_hard_negatives.json"),
    ),
    (
        "overwrite_ring.json",
        include_str!("../../tests/golden/overwrite_ring.json"),
    ),
    (
        "prior_in_contrast.json",
        include_str!("../../tests/golden/prior_in_contrast.json"),
    ),
    (
        "single_slot_per_class.json",
        include_str!("../../tests/golden/single_slot_per_class.json"),
    ),
    ("tiny.json", include_str!("../../tests/golden/tiny.json")),
];

/// Float type of a run and its tolerance (relative, absolute).
#[derive(Clone, Copy, Debug)]
pub struct Precision {
    pub dtype: DType,
    pub rel: f64,
    pub abs: f64,
}

/// Float32 against the float64 reference.
pub const F32: Precision = Precision {
    dtype: DType::F32,
    rel: 1e-4,
    abs: 1e-5,
};

/// Float64 against the float64 reference.
pub const F64: Precision = Precision {
    dtype: DType::F64,
    rel: 1e-9,
    abs: 1e-12,
};

/// One golden case: a loss configuration, the initial queue and the steps in order.
#[derive(Deserialize)]
pub struct Case {
    pub name: String,
    config: CaseConfig,
    queue_init: Vec<Vec<f64>>,
    queue_ptr_init: Vec<i64>,
    pub steps: Vec<Step>,
}

#[derive(Deserialize)]
struct CaseConfig {
    class_counts: Vec<usize>,
    queue_per_class: usize,
    hard_positives: usize,
    hard_negatives: usize,
    temperature: f64,
    contrast_weight: f64,
    effective_num_beta: f64,
    prior_strength: f64,
    dim: usize,
}

/// One step: the inputs and what the reference computed from them.
#[derive(Deserialize)]
pub struct Step {
    features: Vec<Vec<f64>>,
    logits: Vec<Vec<f64>>,
    labels: Vec<i64>,
    expected: Expected,
}

#[derive(Deserialize)]
struct Expected {
    total: f64,
    classification: f64,
    contrastive: f64,
    grad_features: Vec<Vec<f64>>,
    grad_logits: Vec<Vec<f64>>,
    queue_after: Vec<Vec<f64>>,
    queue_ptr_after: Vec<i64>,
}

impl Case {
    /// Parses a case from its JSON text.
    pub fn parse(text: &str) -> Result<Case, String> {
        serde_json::from_str(text).map_err(|e| format!("not a golden case: {e}"))
    }
}

/// Compares element-wise; pushes the worst violation as a message.
fn compare(
    what: &str,
    actual: &[f64],
    expected: &[Vec<f64>],
    precision: Precision,
    failures: &mut Vec<String>,
) {
    let expected: Vec<f64> = expected.iter().flatten().copied().collect();
    if actual.len() != expected.len() {
        failures.push(format!(
            "{what}: {} values, expected {}",
            actual.len(),
            expected.len()
        ));
        return;
    }
    let bad = actual
        .iter()
        .zip(&expected)
        .enumerate()
        .filter(|(_, (a, e))| !close(**a, **e, precision.rel, precision.abs))
        .map(|(i, (a, e))| (i, *a, *e))
        .max_by(|x, y| (x.1 - x.2).abs().total_cmp(&(y.1 - y.2).abs()));
    if let Some((i, a, e)) = bad {
        failures.push(format!("{what}[{i}] = {a:e}, expected {e:e}"));
    }
}

/// Replays `case` in step order on one `ResComLoss` on `device` (an autodiff device) in
/// `precision`: loss values, both input gradients, and the queue and its pointers after every
/// step. Returns every mismatch, empty when the case passes.
pub fn run_case(case: &Case, device: &Device, precision: Precision) -> Vec<String> {
    let matrix = |rows: &[Vec<f64>]| matrix_as(rows, device, precision.dtype);
    let c = &case.config;
    let mut failures = Vec::new();
    let loss = ResComLossConfig::new(c.class_counts.clone())
        .with_projection_dim(c.dim)
        .with_queue_per_class(c.queue_per_class)
        .with_contrast_weight(c.contrast_weight)
        .with_mining(
            HardPairMinerConfig::new()
                .with_hard_positives(c.hard_positives)
                .with_hard_negatives(c.hard_negatives),
        )
        .with_contrastive(
            ClassBalancedContrastiveLossConfig::new()
                .with_temperature(c.temperature)
                .with_effective_num_beta(c.effective_num_beta)
                .with_prior_strength(c.prior_strength),
        )
        .init(device)
        .expect("golden config is valid");
    let loss = loss
        .with_queue_state(matrix(&case.queue_init), ints(&case.queue_ptr_init, device))
        .expect("golden queue state is valid");

    for (s, step) in case.steps.iter().enumerate() {
        let features = matrix(&step.features).require_grad();
        let logits = matrix(&step.logits).require_grad();
        let labels = ints(&step.labels, device);
        let output = ResComLossInput {
            logits: logits.clone(),
            projections: features.clone(),
        };
        let out = loss
            .forward(output, labels)
            .expect("golden inputs are valid");
        let e = &step.expected;
        for (what, value, expected) in [
            ("total", out.total.clone(), e.total),
            (
                "classification",
                out.classification.clone(),
                e.classification,
            ),
            ("contrastive", out.contrastive.clone(), e.contrastive),
        ] {
            let v = scalar(value);
            if !close(v, expected, precision.rel, precision.abs) {
                failures.push(format!("step {s}: {what} = {v:e}, expected {expected:e}"));
            }
        }
        let grads = out.total.backward();
        let grad = |t: &Tensor<2>| to_vec(t.grad(&grads).expect("gradient exists"));
        let mut step_failures = Vec::new();
        let mut check = |what: &str, actual: Vec<f64>, expected: &[Vec<f64>]| {
            compare(what, &actual, expected, precision, &mut step_failures)
        };
        check("grad_features", grad(&features), &e.grad_features);
        check("grad_logits", grad(&logits), &e.grad_logits);
        check("queue_after", to_vec(loss.queue().keys()), &e.queue_after);
        let pointers = to_ints(loss.queue().pointers());
        if pointers != e.queue_ptr_after {
            step_failures.push(format!(
                "queue_ptr_after = {pointers:?}, expected {:?}",
                e.queue_ptr_after
            ));
        }
        failures.extend(step_failures.into_iter().map(|f| format!("step {s}: {f}")));
    }
    failures
}
