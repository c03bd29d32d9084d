//! The golden cases: loss values, gradients and queue states after every step, computed by
//! the float64 reference implementation `tests/reference/golden.py` (see
//! `tests/reference/README.md`; the method is documented in [`rescom::method`]).
//!
//! Every `tests/golden/*.json` is run, and, when `$RESCOM_GOLDEN_DIR` is set, every `*.json`
//! of that extra directory too (a missing or empty extra directory is an error). Each case runs
//! in step order on one `ResComLoss`, on an autodiff ndarray device and again on flex, in
//! float32 (relative 1e-4, absolute 1e-5), and once more on flex in float64, where the crate
//! must agree with the float64 reference to 1e-9.

mod common;

use std::path::{Path, PathBuf};

use burn::tensor::{DType, Device, Tensor};
use rescom::ResComLossConfig;
use serde::Deserialize;

use common::{autodiff_devices, close, ints, matrix_as, scalar, to_ints, to_vec};

/// Float type of a run and its tolerance (relative, absolute).
#[derive(Clone, Copy)]
struct Precision {
    dtype: DType,
    rel: f64,
    abs: f64,
}

const F32: Precision = Precision {
    dtype: DType::F32,
    rel: 1e-4,
    abs: 1e-5,
};
const F64: Precision = Precision {
    dtype: DType::F64,
    rel: 1e-9,
    abs: 1e-12,
};

#[derive(Deserialize)]
struct Case {
    name: String,
    config: CaseConfig,
    queue_init: Vec<Vec<f64>>,
    queue_ptr_init: Vec<i64>,
    steps: Vec<Step>,
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

#[derive(Deserialize)]
struct Step {
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

/// The cases that ship with the crate.
fn repository_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden")
}

/// Reads every `*.json` case of `dir`; a missing directory or one without a case is an error.
fn load_cases(dir: &Path) -> Vec<(PathBuf, Case)> {
    let entries = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("cannot read golden directory {}: {e}", dir.display()));
    let mut paths: Vec<PathBuf> = entries
        .map(|e| e.expect("directory entry").path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    paths.sort();
    assert!(
        !paths.is_empty(),
        "no golden case (*.json) in {}",
        dir.display()
    );
    paths
        .into_iter()
        .map(|path| {
            let text = std::fs::read_to_string(&path)
                .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            let case: Case = serde_json::from_str(&text)
                .unwrap_or_else(|e| panic!("{}: not a golden case: {e}", path.display()));
            (path, case)
        })
        .collect()
}

/// Compares element-wise; returns the worst violation as a message.
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

fn run_case(case: &Case, device: &Device, precision: Precision) -> Vec<String> {
    let matrix = |rows: &[Vec<f64>]| matrix_as(rows, device, precision.dtype);
    let c = &case.config;
    let mut failures = Vec::new();
    let loss = ResComLossConfig::new(c.class_counts.clone())
        .with_dim(c.dim)
        .with_queue_per_class(c.queue_per_class)
        .with_hard_positives(c.hard_positives)
        .with_hard_negatives(c.hard_negatives)
        .with_temperature(c.temperature)
        .with_contrast_weight(c.contrast_weight)
        .with_effective_num_beta(c.effective_num_beta)
        .with_prior_strength(c.prior_strength)
        .init(device)
        .expect("golden config is valid");
    let mut loss = loss
        .with_queue_state(matrix(&case.queue_init), ints(&case.queue_ptr_init, device))
        .expect("golden queue state is valid");

    for (s, step) in case.steps.iter().enumerate() {
        let features = matrix(&step.features).require_grad();
        let logits = matrix(&step.logits).require_grad();
        let labels = ints(&step.labels, device);
        let out = loss
            .forward(features.clone(), logits.clone(), labels)
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

/// Runs every case of `dir` on every backend and precision; panics with all mismatches.
fn run_directory(dir: &Path) {
    let cases = load_cases(dir);
    let mut failures = Vec::new();
    for (path, case) in &cases {
        let runs = autodiff_devices()
            .into_iter()
            .map(|(name, device)| (name, device, F32))
            .chain([("flex-f64", Device::flex().autodiff(), F64)]);
        for (backend, device, precision) in runs {
            let case_failures = run_case(case, &device, precision);
            println!(
                "{} ({}) on {backend}: {} steps, {}",
                case.name,
                path.display(),
                case.steps.len(),
                if case_failures.is_empty() {
                    "ok"
                } else {
                    "FAILED"
                }
            );
            failures.extend(
                case_failures
                    .into_iter()
                    .map(|f| format!("{} on {backend}: {f}", case.name)),
            );
        }
    }
    assert!(
        failures.is_empty(),
        "golden mismatches:\n{}",
        failures.join("\n")
    );
}

#[test]
fn golden_cases_match() {
    run_directory(&repository_dir());
}

/// Extra cases from `$RESCOM_GOLDEN_DIR`, run in addition to the shipped ones.
#[test]
fn extra_golden_cases_match() {
    match std::env::var_os("RESCOM_GOLDEN_DIR") {
        Some(dir) => run_directory(Path::new(&dir)),
        None => eprintln!("note: RESCOM_GOLDEN_DIR is not set; no extra golden cases"),
    }
}
