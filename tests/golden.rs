//! The golden cases: loss values, gradients and queue states after every step, computed by
//! the float64 reference implementation `tests/reference/golden.py` (see
//! `tests/reference/README.md`; the method is documented in [`rescom::method`]).
//!
//! Every `tests/golden/*.json` is run, and, when `$RESCOM_GOLDEN_DIR` is set, every `*.json`
//! of that extra directory too (a missing or empty extra directory is an error). Each case runs
//! in step order on one `ResComLoss`, on an autodiff ndarray device and again on flex, in
//! float32 (relative 1e-4, absolute 1e-5), and once more on flex in float64, where the crate
//! must agree with the float64 reference to 1e-9. The case format and the runner are in
//! `tests/common/golden.rs`, shared with `examples/gpu_check.rs`.

mod common;

use std::path::{Path, PathBuf};

use burn::tensor::Device;

use common::autodiff_devices;
use common::golden::{Case, F32, F64, SHIPPED, run_case};

/// The cases that ship with the crate.
fn repository_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden")
}

/// The `*.json` files of `dir`, sorted; a missing directory or one without a case is an error.
fn case_paths(dir: &Path) -> Vec<PathBuf> {
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
}

/// Reads every `*.json` case of `dir`.
fn load_cases(dir: &Path) -> Vec<(PathBuf, Case)> {
    case_paths(dir)
        .into_iter()
        .map(|path| {
            let text = std::fs::read_to_string(&path)
                .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            let case = Case::parse(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            (path, case)
        })
        .collect()
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

/// The cases embedded for `examples/gpu_check.rs` are exactly the files of `tests/golden`,
/// with the same contents.
#[test]
fn embedded_cases_are_the_shipped_files() {
    let on_disk: Vec<(String, String)> = case_paths(&repository_dir())
        .into_iter()
        .map(|path| {
            let name = path
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            let text = std::fs::read_to_string(&path)
                .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            (name, text)
        })
        .collect();
    let embedded: Vec<(String, String)> = SHIPPED
        .iter()
        .map(|(name, text)| (name.to_string(), text.to_string()))
        .collect();
    let names = |cases: &[(String, String)]| cases.iter().map(|c| c.0.clone()).collect::<Vec<_>>();
    assert_eq!(
        names(&embedded),
        names(&on_disk),
        "tests/common/golden.rs: SHIPPED must list every tests/golden/*.json, sorted"
    );
    assert!(
        embedded == on_disk,
        "an embedded case differs from its file"
    );
}

/// Extra cases from `$RESCOM_GOLDEN_DIR`, run in addition to the shipped ones.
#[test]
fn extra_golden_cases_match() {
    match std::env::var_os("RESCOM_GOLDEN_DIR") {
        Some(dir) => run_directory(Path::new(&dir)),
        None => eprintln!("note: RESCOM_GOLDEN_DIR is not set; no extra golden cases"),
    }
}
