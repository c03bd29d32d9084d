//! The check of one device, in one binary that needs nothing beside it but the data of the
//! training run: every golden case, the gradient checks, the loss benches at both sizes, the
//! ResNet-32 two-view training step, a short run of the default Fashion-MNIST-LT job, and the
//! device's peak memory where Burn reports it.
//!
//! ```text
//! cargo run --release --example gpu_check -- --backend flex --quick     # dry run on the CPU
//! cargo run --release --features vulkan --example gpu_check -- --backend vulkan
//! scripts/gpu-check.sh --pack    # this binary (Vulkan), the data and the loaders, in .gpu/
//! ```
//!
//! Sections (`--only` picks some): `golden` (the shipped golden cases, embedded at compile
//! time, in float32 at relative 1e-4 / absolute 1e-5), `gradients` (the finite-difference
//! checks of `tests/common/gradients.rs`: the device's autodiff gradient in float32 at the
//! golden tolerance, and in float64 where the device computes in it, against float64
//! differences on flex), `loss` (the `loss`, `enqueue` and `mining` groups of
//! `benches/loss.rs`), `train-step` (`benches/train_step.rs`'s ResNet-32 step, cross-entropy
//! and ResCom) and `train` (the `train` example's default job, shortened, reading
//! `DATA_DIR/fashion-mnist`; `--write-data DIR` writes the long-tailed training subset and
//! the test set there). The timed work is the benches' own code (`benches/support/`).
//!
//! The loss step, the training steps and the training run check their inputs where the
//! training loop does (`--step-checks auto`, the default): on a GPU the trusted path, which
//! reads nothing from the device inside a step (labels checked from the batch's host copy, the
//! finiteness flag read after the step, as the run's metrics read it), and on the CPU backends
//! the checked path of the plain API. The table and the JSON name the path each figure timed;
//! `--step-checks device` or `host` times the other one.
//!
//! Output: a table on stdout and `OUT/gpu_check.json`, rewritten after every section so an
//! interrupted run keeps what finished; with `--criterion-dir DIR` also each median in the
//! layout criterion writes (`DIR/GROUP/ID/new/estimates.json`), so that
//! `CRITERION_HOME=DIR benches/compare.sh --no-run-rust` sets these figures against PyTorch.
//!
//! Exit status: 0 when everything passed, 1 when a check failed or a section broke, 2 for bad
//! arguments, 3 when the device does not exist or cannot compute (with a message, and the
//! JSON saying so).

use std::io::Write;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Instant;

use burn::tensor::{DType, Device};
use clap::{Parser, ValueEnum};
use rescom::l2_normalize;
use rescom::train::StepChecks;
use serde_json::{Value, json};

use rescom_support::device::panic_message;
use rescom_support::{golden, gradients, loss_cases, optim, train_steps};

use crate::{Backend, Checks};

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Section {
    /// Every shipped golden case, float32.
    Golden,
    /// The finite-difference gradient checks.
    Gradients,
    /// The loss, enqueue and mining benches at both sizes.
    Loss,
    /// The ResNet-32 two-view training step, cross-entropy and ResCom.
    TrainStep,
    /// A short run of the default Fashion-MNIST-LT job.
    Train,
}

const ALL: [Section; 5] = [
    Section::Golden,
    Section::Gradients,
    Section::Loss,
    Section::TrainStep,
    Section::Train,
];

/// `train gpu-check`: check rescom on one device.
#[derive(Debug, clap::Args)]
pub(crate) struct Cli {
    /// Device.
    #[arg(long, value_enum, default_value = "flex")]
    backend: Backend,
    /// Few repetitions and the smoke configuration of the training run (a dry run on a CPU).
    #[arg(long)]
    quick: bool,
    /// Sections to run (comma-separated; default all).
    #[arg(long, value_enum, value_delimiter = ',')]
    only: Vec<Section>,
    /// Where the timed steps and the training run check their inputs (auto: as the training
    /// loop does on the device, the trusted path on GPUs).
    #[arg(long, value_enum, default_value = "auto")]
    step_checks: Checks,
    /// Directory holding fashion-mnist/ for the training run.
    #[arg(long, default_value = "data")]
    data_dir: PathBuf,
    /// Output directory: gpu_check.json and the training run's files.
    #[arg(long, default_value = "runs/gpu-check")]
    out: PathBuf,
    /// Also write every median where criterion would (for benches/compare.sh).
    #[arg(long)]
    criterion_dir: Option<PathBuf>,
    /// Epochs of the training run (default 3; 1 with --quick).
    #[arg(long)]
    train_epochs: Option<usize>,
    /// Data-loading threads of the training run (default: the cores, at most 8).
    #[arg(long)]
    train_workers: Option<usize>,
    /// Write the default job's long-tailed training subset and the test set as raw IDX files
    /// under DIR/fashion-mnist (read from --data-dir), then exit.
    #[arg(long, value_name = "DIR")]
    write_data: Option<PathBuf>,
}

/// The last panic's message and place, kept by the panic hook for the section that caught it.
static LAST_PANIC: Mutex<Option<String>> = Mutex::new(None);

fn install_panic_hook() {
    std::panic::set_hook(Box::new(|info| {
        let message = panic_message(info.payload());
        let place = info
            .location()
            .map(|l| format!(" ({}:{})", l.file(), l.line()))
            .unwrap_or_default();
        let text = format!("{message}{place}");
        eprintln!("panic: {text}");
        if let Ok(mut last) = LAST_PANIC.lock() {
            *last = Some(text);
        }
    }));
}

/// Runs `f`, turning a panic into an error with the panic's message.
fn guarded<T>(f: impl FnOnce() -> T) -> Result<T, String> {
    catch_unwind(AssertUnwindSafe(f)).map_err(|payload| {
        LAST_PANIC
            .lock()
            .ok()
            .and_then(|mut last| last.take())
            .unwrap_or_else(|| panic_message(payload.as_ref()))
    })
}

/// The most memory the device's allocator held, sampled between timed iterations and read
/// from its pools' own high-water marks at the end.
struct Memory {
    device: Device,
    in_use: u64,
    reserved: u64,
    section_in_use: u64,
    section_reserved: u64,
    reported: bool,
}

impl Memory {
    fn new(device: &Device) -> Self {
        Self {
            device: device.clone(),
            in_use: 0,
            reserved: 0,
            section_in_use: 0,
            section_reserved: 0,
            reported: false,
        }
    }

    fn sample(&mut self) {
        if let Some(usage) = self.device.memory_pool_usage() {
            self.reported = true;
            self.section_in_use = self.section_in_use.max(usage.bytes_in_use);
            self.section_reserved = self.section_reserved.max(usage.bytes_reserved);
            self.in_use = self.in_use.max(usage.bytes_in_use);
            self.reserved = self.reserved.max(usage.bytes_reserved);
        }
    }

    /// The peaks sampled since the last call, then a fresh start.
    fn take_section(&mut self) -> Value {
        self.sample();
        let out = if self.reported {
            json!({"peak_bytes_in_use": self.section_in_use, "peak_bytes_reserved": self.section_reserved})
        } else {
            Value::Null
        };
        self.section_in_use = 0;
        self.section_reserved = 0;
        out
    }

    fn report(&mut self) -> Value {
        self.sample();
        if !self.reported {
            return json!({"reported": false, "note": "this backend does not report its memory to Burn"});
        }
        // The dynamic pools' own peaks (pages ever held at once); allocations that own their
        // page are not in them, so this and the sampled peak bound the truth from two sides.
        let pools_peak: u64 = self
            .device
            .memory_pool_report()
            .unwrap_or_default()
            .iter()
            .map(|p| p.page_size * p.pages_peak)
            .sum();
        json!({
            "reported": true,
            "peak_bytes_in_use_sampled": self.in_use,
            "peak_bytes_reserved_sampled": self.reserved,
            "pools_peak_bytes": pools_peak,
            "note": "Burn reports current usage only: the peaks are the largest values sampled \
                     after each timed iteration and each section, and the sum over the \
                     dynamic pools of page size x most pages ever held",
        })
    }
}

/// Medians and extremes of one timed piece of work, in milliseconds.
struct Timing {
    samples: Vec<f64>,
}

impl Timing {
    fn median(&self) -> f64 {
        let mut s = self.samples.clone();
        s.sort_by(f64::total_cmp);
        s[s.len() / 2]
    }

    fn json(&self) -> Value {
        let min = self.samples.iter().copied().fold(f64::INFINITY, f64::min);
        let mean = self.samples.iter().sum::<f64>() / self.samples.len() as f64;
        json!({"median_ms": self.median(), "min_ms": min, "mean_ms": mean, "samples": self.samples.len()})
    }
}

/// Runs `f` `warmup` times, then `samples` timed times (each call ends with a device sync),
/// sampling the memory after each call.
fn time(warmup: usize, samples: usize, memory: &mut Memory, mut f: impl FnMut()) -> Timing {
    for _ in 0..warmup {
        f();
        memory.sample();
    }
    let samples = (0..samples.max(1))
        .map(|_| {
            let start = Instant::now();
            f();
            let ms = start.elapsed().as_secs_f64() * 1e3;
            memory.sample();
            ms
        })
        .collect();
    Timing { samples }
}

/// Writes `value` to `path` through a temporary file and a rename.
fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let tmp = path.with_extension("tmp");
    std::fs::File::create(&tmp)?.write_all(bytes)?;
    std::fs::rename(&tmp, path)
}

/// A median where criterion keeps it (`DIR/GROUP/ID/new/estimates.json`, nanoseconds), the
/// one field `benches/compare.sh` reads.
fn write_estimate(dir: &Path, group: &str, id: &str, timing: &Timing) -> std::io::Result<()> {
    let ns = |ms: f64| ms * 1e6;
    let mean = timing.samples.iter().sum::<f64>() / timing.samples.len() as f64;
    let estimates = json!({
        "median": {"point_estimate": ns(timing.median())},
        "mean": {"point_estimate": ns(mean)},
    });
    write_atomic(
        &dir.join(group).join(id).join("new/estimates.json"),
        estimates.to_string().as_bytes(),
    )
}

struct Check {
    cli: Cli,
    device: Device,
    memory: Memory,
    report: Value,
    rows: Vec<[String; 3]>,
    failed: bool,
}

impl Check {
    fn json_path(&self) -> PathBuf {
        self.cli.out.join("gpu_check.json")
    }

    fn save(&self) {
        let text = serde_json::to_string_pretty(&self.report).unwrap_or_default();
        if let Err(e) = write_atomic(&self.json_path(), text.as_bytes()) {
            eprintln!("warning: cannot write {}: {e}", self.json_path().display());
        }
    }

    fn row(&mut self, what: impl Into<String>, status: impl Into<String>, figures: String) {
        let row = [what.into(), status.into(), figures];
        eprintln!("== {} | {} | {}", row[0], row[1], row[2]);
        self.rows.push(row);
    }

    fn estimate(&self, group: &str, id: &str, timing: &Timing) {
        if let Some(dir) = &self.cli.criterion_dir
            && let Err(e) = write_estimate(dir, group, id, timing)
        {
            eprintln!("warning: cannot write the estimate of {group}/{id}: {e}");
        }
    }

    /// Runs one section, recording its result, time and memory even when it panics.
    fn section(&mut self, section: Section) {
        let name = section
            .to_possible_value()
            .map(|v| v.get_name().to_string())
            .unwrap_or_default();
        eprintln!("== section {name}");
        let start = Instant::now();
        self.memory.take_section();
        let result = match section {
            Section::Golden => self.golden(),
            Section::Gradients => self.gradients(),
            Section::Loss => self.loss(),
            Section::TrainStep => self.train_step(),
            Section::Train => self.train(),
        };
        let mut value = match result {
            Ok(value) => value,
            Err(e) => {
                self.failed = true;
                self.row(name.clone(), "error", e.clone());
                json!({"status": "error", "error": e})
            }
        };
        value["seconds"] = json!(start.elapsed().as_secs_f64());
        value["memory"] = self.memory.take_section();
        self.report["sections"][name.as_str()] = value;
        self.report["memory"] = self.memory.report();
        self.save();
    }

    fn golden(&mut self) -> Result<Value, String> {
        let device = self.device.clone().autodiff();
        let mut cases = Vec::new();
        let (mut passed, mut steps) = (0, 0);
        for (file, text) in golden::SHIPPED {
            let case = golden::Case::parse(text).map_err(|e| format!("{file}: {e}"))?;
            steps += case.steps.len();
            let (status, failures) = match guarded(|| golden::run_case(&case, &device, golden::F32))
            {
                Ok(f) if f.is_empty() => ("pass", f),
                Ok(f) => ("fail", f),
                Err(e) => ("error", vec![e]),
            };
            passed += usize::from(status == "pass");
            cases.push(json!({
                "file": file,
                "name": case.name,
                "steps": case.steps.len(),
                "status": status,
                "failures": failures.iter().take(20).collect::<Vec<_>>(),
            }));
            self.memory.sample();
        }
        let total = cases.len();
        let status = if passed == total { "pass" } else { "fail" };
        self.failed |= passed != total;
        self.row(
            format!("golden cases ({total}, float32)"),
            status,
            format!("{passed}/{total} cases, {steps} steps"),
        );
        Ok(
            json!({"status": status, "precision": "float32, relative 1e-4, absolute 1e-5",
                  "passed": passed, "total": total, "cases": cases}),
        )
    }

    /// Every gradient check in float32, and again in float64 where the device computes in it.
    fn gradients(&mut self) -> Result<Value, String> {
        let device = self.device.clone().autodiff();
        let mut precisions = vec![(
            DType::F32,
            gradients::F32,
            "float32",
            "relative 1e-4, absolute 1e-5",
        )];
        if self.device.supports_dtype(DType::F64) {
            precisions.push((
                DType::F64,
                gradients::F64,
                "float64",
                "relative 1e-6, absolute 1e-8",
            ));
        }
        let mut runs = Vec::new();
        let mut all_passed = true;
        for (dtype, tolerance, float, bounds) in precisions {
            let mut checks = Vec::new();
            let (mut passed, mut worst) = (0, 0.0f64);
            let cases = gradients::cases();
            let total = cases.len();
            for case in cases {
                let (status, detail) = match guarded(|| case.check(&device, dtype, tolerance)) {
                    Ok(Ok(fraction)) => {
                        worst = worst.max(fraction);
                        ("pass", json!({"worst_fraction_of_tolerance": fraction}))
                    }
                    Ok(Err(e)) => ("fail", json!({"failure": e})),
                    Err(e) => ("error", json!({"error": e})),
                };
                passed += usize::from(status == "pass");
                let mut entry = json!({"name": case.name, "status": status});
                if let (Value::Object(entry), Value::Object(detail)) = (&mut entry, detail) {
                    entry.extend(detail);
                }
                checks.push(entry);
                self.memory.sample();
            }
            let status = if passed == total { "pass" } else { "fail" };
            all_passed &= passed == total;
            self.row(
                format!("gradient checks ({total}, {float})"),
                status,
                format!("{passed}/{total}, worst error {worst:.2} of the tolerance"),
            );
            runs.push(
                json!({"float": float, "tolerance": bounds, "status": status,
                             "passed": passed, "total": total, "checks": checks}),
            );
        }
        self.failed |= !all_passed;
        Ok(json!({
            "status": if all_passed { "pass" } else { "fail" },
            "reference": "central differences (h = 1e-6) on flex in float64",
            "runs": runs,
        }))
    }

    fn loss(&mut self) -> Result<Value, String> {
        let (warmup, samples) = if self.cli.quick { (2, 5) } else { (5, 30) };
        let plain = self.device.clone();
        let autodiff = plain.clone().autodiff();
        let checks = StepChecks::from(self.cli.step_checks);
        let trusted = checks.on_host(&autodiff);
        let loss_path = loss_cases::path(trusted);
        let loss_what = format!("fwd+bwd+enqueue, {loss_path}");
        let loss_path = loss_path.to_string();
        let mut results = Vec::new();
        for case in &loss_cases::CASES {
            let memory = &mut self.memory;
            let timings = guarded(|| {
                let loss = loss_cases::loss(case, &autodiff);
                let inputs = loss_cases::inputs(case, &autodiff);
                let loss_time = time(warmup, samples, memory, || {
                    loss_cases::loss_step(&loss, &inputs, trusted, &autodiff);
                });

                let mut queue = loss_cases::queue(case, &plain);
                let inputs = loss_cases::inputs(case, &plain);
                let (keys, view1) = loss_cases::enqueue_inputs(
                    inputs.features.clone(),
                    inputs.labels.clone(),
                    case,
                );
                let enqueue_time = time(warmup, samples, memory, || {
                    loss_cases::enqueue_step(&mut queue, &keys, &view1, &plain)
                });

                let queue = loss_cases::queue(case, &plain);
                let miner = loss_cases::miner(case);
                let queries = l2_normalize(inputs.features);
                let mining_time = time(warmup, samples, memory, || {
                    loss_cases::mining_step(&miner, &queue, &queries, &inputs.labels, &plain);
                });
                [
                    ("loss", loss_time),
                    ("enqueue", enqueue_time),
                    ("mining", mining_time),
                ]
            });
            let timings = timings.map_err(|e| format!("{}: {e}", case.name))?;
            for (group, timing) in timings {
                self.estimate(group, case.name, &timing);
                let what = match group {
                    "loss" => loss_what.clone(),
                    "enqueue" => "enqueue".into(),
                    _ => "similarities+mining".into(),
                };
                self.row(
                    format!("{group} {} ({what})", case.name),
                    "ok",
                    format!(
                        "{:.3} ms (median of {})",
                        timing.median(),
                        timing.samples.len()
                    ),
                );
                let mut entry = timing.json();
                entry["group"] = json!(group);
                entry["case"] = json!(case.name);
                results.push(entry);
            }
        }
        Ok(json!({"status": "ok", "warmup": warmup, "loss_path": loss_path, "results": results}))
    }

    fn train_step(&mut self) -> Result<Value, String> {
        let (warmup, samples) = if self.cli.quick { (1, 2) } else { (3, 10) };
        let device = self.device.clone().autodiff();
        let memory = &mut self.memory;
        let checks = StepChecks::from(self.cli.step_checks);
        let path = train_steps::path(checks, &device);
        let short = if train_steps::trusted(checks, &device) {
            "trusted"
        } else {
            "checked"
        };
        let timings = guarded(|| {
            device.seed(0);
            let batch = train_steps::batch(&device);
            let network = train_steps::network(&device);
            let mut model = Some(train_steps::cross_entropy_model(network, checks, &device));
            let mut optimizer = optim::sgd();
            let ce = time(warmup, samples, memory, || {
                if let Some(m) = model.take() {
                    model = Some(train_steps::step(m, &mut optimizer, &batch, &device));
                }
            });
            let network = model
                .take()
                .map(|m| m.network)
                .ok_or("the cross-entropy steps lost the model")?;
            let mut model = Some(train_steps::rescom_model(network, checks, &device));
            let mut optimizer = optim::sgd();
            let rescom = time(warmup, samples, memory, || {
                if let Some(m) = model.take() {
                    model = Some(train_steps::step(m, &mut optimizer, &batch, &device));
                }
            });
            Ok::<_, String>((ce, rescom))
        });
        let (ce, rescom) = timings??;
        let images = train_steps::IMAGES as f64;
        let mut results = Vec::new();
        for (id, label, timing) in [
            ("resnet32_ce", "cross-entropy", &ce),
            ("resnet32_rescom", "ResCom", &rescom),
        ] {
            self.estimate("train_step", id, timing);
            let seconds = timing.median() / 1e3;
            self.row(
                format!("ResNet-32 step, {label} ({short} path)"),
                "ok",
                format!(
                    "{:.1} ms, {:.0} images/s ({:.0} views/s)",
                    timing.median(),
                    images / seconds,
                    2.0 * images / seconds
                ),
            );
            let mut entry = timing.json();
            entry["id"] = json!(id);
            entry["images_per_s"] = json!(images / seconds);
            entry["views_per_s"] = json!(2.0 * images / seconds);
            results.push(entry);
        }
        self.row("training step path", "-", path.to_string());
        let overhead = (rescom.median() - ce.median()) / ce.median() * 100.0;
        self.row(
            "ResCom over cross-entropy",
            "ok",
            format!("{overhead:+.1} % per step"),
        );
        Ok(json!({
            "status": "ok",
            "warmup": warmup,
            "images_per_step": train_steps::IMAGES,
            "views_per_image": 2,
            "path": path,
            "trusted": train_steps::trusted(checks, &device),
            "results": results,
            "rescom_overhead_percent": overhead,
        }))
    }

    fn train(&mut self) -> Result<Value, String> {
        let out = self.cli.out.join("train-run");
        if out.exists() {
            std::fs::remove_dir_all(&out).map_err(|e| format!("{}: {e}", out.display()))?;
        }
        let workers = self
            .cli
            .train_workers
            .unwrap_or_else(|| std::thread::available_parallelism().map_or(2, |n| n.get().min(8)));
        let epochs = self
            .cli
            .train_epochs
            .unwrap_or(if self.cli.quick { 1 } else { 3 });
        let step_checks = self
            .cli
            .step_checks
            .to_possible_value()
            .map(|v| v.get_name().to_string())
            .unwrap_or_else(|| "auto".into());
        let step_checks = step_checks.as_str();
        let mut args: Vec<String> = [
            "train",
            "--backend",
            self.cli.backend.name(),
            "--data-dir",
            &self.cli.data_dir.to_string_lossy(),
            "--out",
            &out.to_string_lossy(),
            "--workers",
            &workers.to_string(),
            "--epochs",
            &epochs.to_string(),
            // One evaluation, after the last epoch.
            "--eval-every",
            &epochs.to_string(),
            "--step-checks",
            step_checks,
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        if self.cli.quick {
            args.push("--smoke".into());
        }
        let parsed = crate::Args::try_parse_from(&args).map_err(|e| e.to_string())?;
        let checks = StepChecks::from(self.cli.step_checks);
        let trusted = train_steps::trusted(checks, &self.device.clone().autodiff());
        let start = Instant::now();
        let result = guarded(|| crate::run(parsed).map_err(|e| e.to_string()));
        let seconds = start.elapsed().as_secs_f64();
        self.memory.sample();
        result??;
        let read = |name: &str| std::fs::read_to_string(out.join(name)).ok();
        let summary: Value = read("summary.json")
            .and_then(|t| serde_json::from_str(&t).ok())
            .unwrap_or(Value::Null);
        let epochs_log: Vec<Value> = read("metrics.jsonl")
            .map(|t| {
                t.lines()
                    .filter_map(|l| serde_json::from_str(l).ok())
                    .collect()
            })
            .unwrap_or_default();
        let top1 = summary["top1"].as_f64();
        let rates: Vec<f64> = epochs_log
            .iter()
            .filter_map(|e| e["images_per_second"].as_f64())
            .collect();
        let status = if top1.is_some_and(f64::is_finite) {
            "ok"
        } else {
            self.failed = true;
            "fail"
        };
        self.row(
            format!(
                "Fashion-MNIST-LT, {epochs} epoch{}{} ({} path)",
                if epochs == 1 { "" } else { "s" },
                if self.cli.quick { ", smoke" } else { "" },
                if trusted { "trusted" } else { "checked" }
            ),
            status,
            format!(
                "top-1 {}, {:.0} s, {} images/s (last epoch)",
                top1.map_or("n/a".into(), |v| format!("{:.2} %", 100.0 * v)),
                seconds,
                rates.last().map_or("n/a".into(), |v| format!("{v:.0}"))
            ),
        );
        let mut summary = summary;
        if let Value::Object(map) = &mut summary {
            map.remove("per_class");
            if let Some(Value::Object(best)) = map.get_mut("best") {
                best.remove("per_class");
            }
        }
        Ok(json!({
            "status": status,
            "args": &args[1..],
            "step_path": train_steps::path(checks, &self.device.clone().autodiff()),
            "seconds": seconds,
            "summary": summary,
            "epochs": epochs_log,
        }))
    }

    fn print_table(&self) {
        println!();
        println!("{}", self.report["title"].as_str().unwrap_or_default());
        println!("| check | status | figures |");
        println!("| --- | --- | --- |");
        for [what, status, figures] in &self.rows {
            println!("| {what} | {status} | {figures} |");
        }
        let mib = |key: &str| {
            self.report["memory"][key]
                .as_u64()
                .map(|b| format!("{:.1} MiB", b as f64 / (1 << 20) as f64))
        };
        match (
            mib("peak_bytes_in_use_sampled"),
            mib("peak_bytes_reserved_sampled"),
            mib("pools_peak_bytes"),
        ) {
            (Some(used), Some(reserved), Some(pools)) => println!(
                "| peak device memory | - | in use {used}, reserved {reserved} (sampled); \
                 pools' high-water mark {pools} |"
            ),
            _ => println!("| peak device memory | - | not reported by this backend |"),
        }
        println!(
            "\n{}: {}",
            self.json_path().display(),
            self.report["status"].as_str().unwrap_or_default()
        );
    }
}

/// Writes the default job's training subset and the test set as raw IDX files.
fn write_data(cli: &Cli, dir: &Path) -> Result<(), String> {
    let args =
        crate::Args::try_parse_from(["train", "--data-dir", &cli.data_dir.to_string_lossy()])
            .map_err(|e| e.to_string())?;
    let data = crate::load_data(&args).map_err(|e| e.to_string())?;
    let target = dir.join("fashion-mnist");
    for (prefix, set) in [("train", &data.train), ("t10k", &data.test)] {
        let n = set.len();
        let first = set.image(0).map_err(|e| e.to_string())?;
        let (channels, height, width) = first.shape();
        if channels != 1 {
            return Err(format!(
                "{prefix}: {channels} channels, IDX images have one"
            ));
        }
        let mut images = vec![0, 0, 8, 3];
        for d in [n, height, width] {
            images.extend((d as u32).to_be_bytes());
        }
        let mut labels = vec![0, 0, 8, 1];
        labels.extend((n as u32).to_be_bytes());
        for i in 0..n {
            images.extend(set.image(i).map_err(|e| e.to_string())?.pixels);
            labels.push(set.label(i) as u8);
        }
        for (kind, bytes) in [("images-idx3", &images), ("labels-idx1", &labels)] {
            let path = target.join(format!("{prefix}-{kind}-ubyte"));
            write_atomic(&path, bytes).map_err(|e| format!("{}: {e}", path.display()))?;
        }
        println!(
            "{}: {n} images, per class {:?}",
            target.join(prefix).display(),
            set.class_counts()
        );
    }
    // Read back as the training run will: the same images, labels and order.
    let args = crate::Args::try_parse_from(["train", "--data-dir", &dir.to_string_lossy()])
        .map_err(|e| e.to_string())?;
    let again = crate::load_data(&args).map_err(|e| e.to_string())?;
    for (prefix, written, read) in [
        ("train", &data.train, &again.train),
        ("t10k", &data.test, &again.test),
    ] {
        let same = written.len() == read.len()
            && (0..written.len()).all(|i| {
                written.label(i) == read.label(i)
                    && written.image(i).ok().map(|im| im.pixels)
                        == read.image(i).ok().map(|im| im.pixels)
            });
        if !same {
            return Err(format!(
                "{prefix}: the files written under {} do not read back as the same data",
                target.display()
            ));
        }
    }
    println!("read back: the default job sees the same data");
    Ok(())
}

/// Runs the check; exits the process with the status the module docs give.
pub(crate) fn main(cli: Cli) {
    if let Some(dir) = &cli.write_data {
        if let Err(e) = write_data(&cli, dir) {
            eprintln!("error: {e}");
            std::process::exit(1);
        }
        return;
    }
    rescom_support::allocator::keep_freed_memory();
    install_panic_hook();
    let sections: Vec<Section> = if cli.only.is_empty() {
        ALL.to_vec()
    } else {
        ALL.into_iter().filter(|s| cli.only.contains(s)).collect()
    };
    let mut report = json!({
        "tool": "rescom gpu_check",
        "version": env!("CARGO_PKG_VERSION"),
        "commit": option_env!("RESCOM_COMMIT"),
        "backend": cli.backend.name(),
        "quick": cli.quick,
        "sections": {},
    });
    let device = match rescom_support::device::open(cli.backend.name()) {
        Ok(device) => device,
        Err(e) => {
            eprintln!("error: {e}");
            report["status"] = json!("device-unavailable");
            report["error"] = json!(e);
            let path = cli.out.join("gpu_check.json");
            let text = serde_json::to_string_pretty(&report).unwrap_or_default();
            if let Err(e) = write_atomic(&path, text.as_bytes()) {
                eprintln!("warning: cannot write {}: {e}", path.display());
            }
            std::process::exit(3);
        }
    };
    report["device"] = describe(&device);
    report["title"] = json!(format!(
        "rescom {} on {} ({}){}",
        env!("CARGO_PKG_VERSION"),
        cli.backend.name(),
        report["device"]["name"].as_str().unwrap_or("?"),
        if cli.quick { ", quick" } else { "" }
    ));
    let mut check = Check {
        memory: Memory::new(&device),
        cli,
        device,
        report,
        rows: Vec::new(),
        failed: false,
    };
    check.save();
    let start = Instant::now();
    for section in sections {
        check.section(section);
    }
    check.report["seconds"] = json!(start.elapsed().as_secs_f64());
    check.report["memory"] = check.memory.report();
    check.report["status"] = json!(if check.failed { "fail" } else { "pass" });
    check.save();
    check.print_table();
    if check.failed {
        std::process::exit(1);
    }
}

/// What the device is: its name where the backend reports one, and its float64 support.
fn describe(device: &Device) -> Value {
    #[allow(unused_mut)]
    let mut name = format!("{device:?}");
    #[cfg(any(feature = "vulkan", feature = "cuda"))]
    if let Ok(Some(identity)) = guarded(|| device.identity()) {
        name = identity.name;
    }
    json!({
        "name": name,
        "debug": format!("{device:?}"),
        "float64": device.supports_dtype(DType::F64),
        "threads": std::thread::available_parallelism().map_or(1, |n| n.get()),
    })
}
