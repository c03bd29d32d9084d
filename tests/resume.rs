//! Runs on burn-train's Learner stop and resume exactly, checkpoints are validated, and a
//! non-finite loss stops the run while keeping the last good checkpoint.

mod common;

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use burn::module::{Module, Param, ParamId};
use burn::nn::{BatchNorm, BatchNormConfig, Linear, Relu};
use burn::tensor::{Device, Tensor, TensorData};
use rescom::data::{
    Dataset, EvalLoader, InMemoryDataset, LoaderConfig, Pipeline, Step, TwoViewLoader,
};
use rescom::run::{RunData, RunOptions, RunOutcome, fit};
use rescom::train::{LongTailModel, LrSchedule, Method, Objective, ResComNetwork, TrainConfig};
use rescom::{
    ClassBalancedContrastiveLossConfig, Error, HardPairMinerConfig, ResComLossConfig,
    ResComLossInput, Rng,
};

const CLASSES: usize = 3;
const SIDE: usize = 4;
const INPUT: usize = SIDE * SIDE;
const COUNTS: [usize; CLASSES] = [24, 12, 6];

/// A small network with every kind of state a real one has: weights, batch-norm running
/// statistics, and a projection head. From step `poison_at` on (if set) its logits are NaN, as
/// a diverged network's would be.
#[derive(Module, Debug)]
struct Tiny {
    body: Linear,
    norm: BatchNorm,
    relu: Relu,
    classifier: Linear,
    projection: Linear,
    /// A parameter the steps never use, to give the model record a chosen size.
    ballast: Option<Param<Tensor<1>>>,
    #[module(skip)]
    poison: Poison,
}

#[derive(Debug, Clone, Default)]
struct Poison {
    at: Option<usize>,
    steps: Arc<AtomicUsize>,
}

impl Tiny {
    /// Deterministic initialisation from the crate's generator.
    fn new(device: &Device) -> Self {
        let mut rng = Rng::new(7);
        let mut linear = |input: usize, output: usize| {
            let values: Vec<f32> = (0..input * output)
                .map(|_| (rng.normal() / (input as f64).sqrt()) as f32)
                .collect();
            Linear {
                weight: Param::initialized(
                    ParamId::new(),
                    Tensor::from_data(TensorData::new(values, [input, output]), device),
                ),
                bias: Some(Param::initialized(
                    ParamId::new(),
                    Tensor::zeros([output], device),
                )),
            }
        };
        Self {
            body: linear(INPUT, 8),
            norm: BatchNormConfig::new(8).init(device),
            relu: Relu::new(),
            classifier: linear(8, CLASSES),
            projection: linear(8, 4),
            ballast: None,
            poison: Poison::default(),
        }
    }

    /// With an unused parameter of `len` values.
    fn with_ballast(mut self, len: usize, device: &Device) -> Self {
        self.ballast = Some(Param::initialized(
            ParamId::new(),
            Tensor::ones([len], device),
        ));
        self
    }

    fn features(&self, images: Tensor<4>) -> Tensor<2> {
        let [b, ..] = images.dims();
        let x = self.body.forward(images.reshape([b, INPUT]));
        let x = self.norm.forward(x.reshape([b, 8, 1])).reshape([b, 8]);
        self.relu.forward(x)
    }
}

impl ResComNetwork for Tiny {
    fn heads(&self, images: Tensor<4>) -> ResComLossInput {
        let f = self.features(images);
        let mut logits = self.classifier.forward(f.clone());
        let step = self.poison.steps.fetch_add(1, Ordering::SeqCst);
        if self.poison.at.is_some_and(|at| step >= at) {
            logits = logits.mul_scalar(f32::NAN);
        }
        ResComLossInput {
            logits,
            projections: self.projection.forward(f),
        }
    }

    fn logits(&self, images: Tensor<4>) -> Tensor<2> {
        self.classifier.forward(self.features(images))
    }
}

/// Class `c` is a bright row `c` on a noisy 4x4 image; training views are flipped at random
/// (a pure function of seed, epoch, image and view).
fn dataset(counts: &[usize], seed: u64) -> Arc<dyn Dataset> {
    let mut rng = Rng::new(seed);
    let mut pixels = Vec::new();
    let mut labels = Vec::new();
    for (c, &n) in counts.iter().enumerate() {
        for _ in 0..n {
            for p in 0..INPUT {
                let base = if p / SIDE == c { 220.0 } else { 40.0 };
                pixels.push((base + 25.0 * rng.normal()).clamp(0.0, 255.0) as u8);
            }
            labels.push(c);
        }
    }
    Arc::new(InMemoryDataset::new(1, SIDE, SIDE, pixels, labels, CLASSES).unwrap())
}

fn data(batch: usize) -> RunData {
    let device = Device::flex().autodiff();
    let config = |seed| {
        let mut config = LoaderConfig::new(batch, seed);
        config.workers = 1;
        config
    };
    let train = Pipeline::new(
        vec![Step::HorizontalFlip { p: 0.5 }],
        None,
        &[0.3],
        &[0.3],
        (1, SIDE, SIDE),
    )
    .unwrap();
    let eval = Pipeline::normalize_only((1, SIDE, SIDE), &[0.3], &[0.3]).unwrap();
    RunData {
        train: TwoViewLoader::new(dataset(&COUNTS, 1), train, config(3), &device).unwrap(),
        test: EvalLoader::new(dataset(&[10, 10, 10], 2), eval, config(3), &device.inner()).unwrap(),
    }
}

fn config(method: Method, epochs: usize) -> TrainConfig {
    TrainConfig {
        method,
        loss: ResComLossConfig::new(COUNTS.to_vec())
            .with_projection_dim(4)
            .with_queue_per_class(3)
            .with_mining(
                HardPairMinerConfig::new()
                    .with_hard_positives(2)
                    .with_hard_negatives(4),
            )
            .with_contrastive(
                ClassBalancedContrastiveLossConfig::new().with_effective_num_beta(0.99),
            ),
        epochs,
        schedule: LrSchedule::cifar_recipe(0.05, epochs),
        momentum: 0.9,
        weight_decay: 5e-4,
        seed: 3,
        // Checkpoints after epochs without an evaluation must hold fresh batch-norm statistics.
        eval_every: 3,
        dataset: "synthetic".into(),
    }
}

/// Every parameter, the batch-norm statistics and (ResCom) the queue.
fn state(model: &LongTailModel<Tiny>) -> Vec<f64> {
    let net = &model.network;
    let mut out = Vec::new();
    for t in [
        net.body.weight.val(),
        net.classifier.weight.val(),
        net.projection.weight.val(),
    ] {
        out.extend(common::to_vec(t));
    }
    out.extend(common::to_vec(net.norm.running_mean.value()));
    out.extend(common::to_vec(net.norm.running_var.value()));
    if let Objective::ResCom(loss) = &model.objective {
        let queue = loss.queue();
        out.extend(common::to_vec(queue.keys()));
        out.extend(common::to_ints(queue.pointers()).iter().map(|&p| p as f64));
    }
    out
}

fn quiet(out: &Path) -> RunOptions {
    let mut options = RunOptions::new(out, Device::flex().autodiff());
    options.renderer = Some(Box::new(burn::train::renderer::CliMetricsRenderer::new()));
    options
}

fn run(
    config: &TrainConfig,
    out: &Path,
    resume: bool,
    stop_after: Option<usize>,
) -> RunOutcome<Tiny> {
    let mut options = quiet(out);
    options.resume = resume;
    options.stop_after = stop_after;
    fit(
        config,
        Tiny::new(&Device::flex().autodiff()),
        data(12),
        options,
    )
    .unwrap()
}

/// Resumes the run in `out` with `network`: the outcome, or the error that stopped it.
fn resume_with(config: &TrainConfig, network: Tiny, out: &Path) -> Result<RunOutcome<Tiny>, Error> {
    let mut options = quiet(out);
    options.resume = true;
    fit(config, network, data(12), options)
}

fn flex_tiny() -> Tiny {
    Tiny::new(&Device::flex().autodiff())
}

#[test]
fn resumed_runs_are_bit_identical() {
    for method in [Method::ResCom, Method::BalancedSoftmax] {
        let straight_dir = tempfile::tempdir().unwrap();
        let split_dir = tempfile::tempdir().unwrap();
        let straight = run(&config(method, 4), straight_dir.path(), false, None);
        assert_eq!(straight.epochs_done(), 4);

        let first = run(&config(method, 4), split_dir.path(), false, Some(2));
        assert_eq!(first.epochs_done(), 2);
        let resumed = run(&config(method, 4), split_dir.path(), true, None);
        assert_eq!(resumed.epochs_done(), 4);

        assert_eq!(state(&straight.model), state(&resumed.model), "{method:?}");
        // The last two checkpoints are kept.
        let mut kept: Vec<String> = std::fs::read_dir(split_dir.path().join("checkpoint"))
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        kept.sort();
        assert_eq!(
            kept,
            [
                "model-3.bpk",
                "model-4.bpk",
                "optim-3.bpk",
                "optim-4.bpk",
                "scheduler-3.bpk",
                "scheduler-4.bpk"
            ]
        );
        let untimed = |o: &RunOutcome<Tiny>| {
            o.history
                .iter()
                .cloned()
                .map(|mut r| {
                    r.train.seconds = 0.0;
                    r.train.images_per_second = 0.0;
                    r
                })
                .collect::<Vec<_>>()
        };
        assert_eq!(untimed(&straight), untimed(&resumed), "{method:?}");
        // The records themselves are the same bytes (tensors in name order, parameter ids
        // numbered from the paths), although Burn draws ids at random in each process.
        assert_same_files(straight_dir.path(), split_dir.path(), &kept);
        for file in [
            "summary.json",
            "metrics.csv",
            "metrics.jsonl",
            "curves.svg",
            "per_class.svg",
        ] {
            let a = std::fs::read(straight_dir.path().join(file)).unwrap();
            let b = std::fs::read(split_dir.path().join(file)).unwrap();
            if file == "summary.json" {
                let a: serde_json::Value = serde_json::from_slice(&a).unwrap();
                let b: serde_json::Value = serde_json::from_slice(&b).unwrap();
                assert_eq!(a, b);
            } else {
                // Timings differ between runs; everything else is compared above.
                assert!(!a.is_empty() && !b.is_empty());
            }
        }
    }
}

#[test]
fn the_run_learns_and_writes_its_summary() {
    let dir = tempfile::tempdir().unwrap();
    let mut learning = config(Method::ResCom, 12);
    learning.schedule = LrSchedule::Constant { lr: 0.2 };
    let outcome = run(&learning, dir.path(), false, None);
    let summary: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("summary.json")).unwrap()).unwrap();
    for key in [
        "method",
        "dataset",
        "epochs",
        "top1",
        "top5",
        "many",
        "medium",
        "few",
        "per_class",
        "best_epoch",
        "best",
        "train_counts",
        "seed",
    ] {
        assert!(summary.get(key).is_some(), "summary.json lacks {key}");
    }
    assert_eq!(summary["method"], "rescom");
    assert_eq!(summary["epochs"], 12);
    let top1 = summary["top1"].as_f64().unwrap();
    assert!(
        top1 > 0.6,
        "the separable synthetic task should be learnt: top-1 {top1}"
    );
    let history = &outcome.history;
    assert!(history.last().unwrap().train.loss < history[0].train.loss);
    // Evaluations every 3 epochs and after the last one.
    let evaluated: Vec<usize> = history
        .iter()
        .filter(|r| r.eval.is_some())
        .map(|r| r.epoch)
        .collect();
    assert_eq!(evaluated, vec![2, 5, 8, 11]);
    let csv = std::fs::read_to_string(dir.path().join("metrics.csv")).unwrap();
    assert_eq!(csv.lines().count(), 13);
    assert_eq!(
        outcome.summary.unwrap().last.top1,
        history[11].eval.as_ref().unwrap().top1
    );
}

#[test]
fn a_non_finite_loss_stops_the_run_and_keeps_the_last_checkpoint() {
    let dir = tempfile::tempdir().unwrap();
    let config = config(Method::ResCom, 3);
    let mut network = Tiny::new(&Device::flex().autodiff());
    // 42 images in batches of 12: 4 steps per epoch; diverge in the second epoch.
    network.poison.at = Some(5);
    let err = fit(&config, network, data(12), quiet(dir.path()))
        .err()
        .expect("a NaN loss must stop the run");
    assert!(matches!(err, Error::Training { .. }), "{err}");
    assert!(err.to_string().contains("NaN"), "{err}");
    // The checkpoint of epoch 1 is intact and resumable.
    let resumed = run(&config, dir.path(), true, Some(0));
    assert_eq!(resumed.epochs_done(), 1);
}

#[test]
fn resuming_with_another_configuration_or_a_damaged_checkpoint_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    run(&config(Method::ResCom, 2), dir.path(), false, Some(1));
    let device = Device::flex().autodiff();
    let resume = |config: &TrainConfig| {
        let mut options = quiet(dir.path());
        options.resume = true;
        fit(config, Tiny::new(&device), data(12), options)
            .err()
            .expect("must refuse")
    };
    let err = resume(&config(Method::BalancedSoftmax, 2));
    assert!(matches!(err, Error::Checkpoint { .. }), "{err}");
    assert!(err.to_string().contains("run.json"), "{err}");

    // A damaged record is a clear error naming the file, never a panic of the Learner.
    let model = dir.path().join("checkpoint").join("model-1.bpk");
    let bytes = std::fs::read(&model).unwrap();
    std::fs::write(&model, &bytes[..bytes.len() / 2]).unwrap();
    let err = resume(&config(Method::ResCom, 2));
    assert!(matches!(err, Error::Checkpoint { .. }), "{err}");
    assert!(err.to_string().contains("model-1.bpk"), "{err}");

    // Records of another model do not load either.
    std::fs::write(&model, &bytes).unwrap();
    let mut mismatched = quiet(dir.path());
    mismatched.resume = true;
    let err = fit(
        &config(Method::ResCom, 2),
        Tiny {
            projection: Tiny::new(&device).classifier,
            ..Tiny::new(&device)
        },
        data(12),
        mismatched,
    )
    .err()
    .expect("a model of another shape must be refused");
    assert!(matches!(err, Error::Checkpoint { .. }), "{err}");

    let missing = tempfile::tempdir().unwrap();
    let err = resume_with(
        &config(Method::ResCom, 2),
        Tiny::new(&device),
        missing.path(),
    )
    .err()
    .expect("no checkpoint");
    assert!(matches!(err, Error::Checkpoint { .. }), "{err}");
}

/// The files `names` of `out`'s `checkpoint/` directory (and `summary.json`, `run.json`) hold
/// the same bytes in both runs, and the directories list exactly these records.
fn assert_same_files(a: &Path, b: &Path, names: &[String]) {
    for dir in [a, b] {
        let mut listed: Vec<String> = std::fs::read_dir(dir.join("checkpoint"))
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        listed.sort();
        assert_eq!(listed, names, "{}", dir.display());
    }
    for name in names {
        let path = |dir: &Path| dir.join("checkpoint").join(name);
        assert!(
            std::fs::read(path(a)).unwrap() == std::fs::read(path(b)).unwrap(),
            "{name} differs"
        );
    }
    for file in ["summary.json", "run.json"] {
        assert_eq!(
            std::fs::read(a.join(file)).unwrap(),
            std::fs::read(b.join(file)).unwrap(),
            "{file} differs"
        );
    }
}

/// Every temporary file of an atomic write under `dir`, at any depth.
fn temporaries(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut found = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else if path
                .file_name()
                .is_some_and(|n| n.to_string_lossy().contains(".tmp-"))
            {
                found.push(path);
            }
        }
    }
    found
}

/// The records a run of `last` epochs keeps: those of its last two epochs, in name order.
fn kept_after(last: usize) -> Vec<String> {
    ["model", "optim", "scheduler"]
        .into_iter()
        .flat_map(|record| [last - 1, last].map(|epoch| format!("{record}-{epoch}.bpk")))
        .collect()
}

#[test]
fn a_run_killed_inside_a_write_resumes_exactly_and_tidies_up() {
    let config = config(Method::ResCom, 4);
    let straight = tempfile::tempdir().unwrap();
    run(&config, straight.path(), false, None);

    let killed = tempfile::tempdir().unwrap();
    run(&config, killed.path(), false, Some(3));
    let checkpoint = killed.path().join("checkpoint");
    let copy = |from: &str, to: &str| std::fs::copy(checkpoint.join(from), checkpoint.join(to));
    // What a process killed at these moments leaves: records of epoch 4 saved but not all
    // three (killed while saving), a record of epoch 1 not yet deleted (killed while deleting),
    // and torn temporary files of a checkpoint write and a report write.
    copy("model-3.bpk", "model-4.bpk").unwrap();
    copy("optim-2.bpk", "optim-1.bpk").unwrap();
    std::fs::write(checkpoint.join(".scheduler-4.bpk.tmp-4000000"), b"torn").unwrap();
    std::fs::write(killed.path().join(".summary.json.tmp-4000001"), b"{\"to").unwrap();

    let resumed = run(&config, killed.path(), true, None);
    assert_eq!(resumed.epochs_done(), 4);
    assert_same_files(straight.path(), killed.path(), &kept_after(4));
    assert_eq!(temporaries(killed.path()), Vec::<std::path::PathBuf>::new());
}

#[test]
fn a_run_killed_before_its_first_checkpoint_starts_again_on_resume() {
    let config = config(Method::ResCom, 4);
    let straight = tempfile::tempdir().unwrap();
    run(&config, straight.path(), false, None);

    // The run has written its run.json, and was killed while saving its first checkpoint.
    let killed = tempfile::tempdir().unwrap();
    run(&config, killed.path(), false, Some(0));
    let checkpoint = killed.path().join("checkpoint");
    std::fs::create_dir_all(&checkpoint).unwrap();
    std::fs::copy(
        straight.path().join("checkpoint/optim-4.bpk"),
        checkpoint.join("optim-1.bpk"),
    )
    .unwrap();
    std::fs::write(checkpoint.join(".model-1.bpk.tmp-4000000"), b"torn").unwrap();
    let resumed = run(&config, killed.path(), true, None);
    assert_eq!(resumed.epochs_done(), 4);
    assert_same_files(straight.path(), killed.path(), &kept_after(4));
    assert_eq!(temporaries(killed.path()), Vec::<std::path::PathBuf>::new());

    // Records of a later epoch without a complete one are damage, not a fresh start.
    for name in [
        "model-3.bpk",
        "model-4.bpk",
        "optim-3.bpk",
        "scheduler-3.bpk",
    ] {
        std::fs::remove_file(checkpoint.join(name)).unwrap();
    }
    std::fs::remove_file(checkpoint.join("scheduler-4.bpk")).unwrap();
    let err = resume_with(&config, flex_tiny(), killed.path())
        .err()
        .expect("no complete checkpoint after the first epoch");
    assert!(matches!(err, Error::Checkpoint { .. }), "{err}");
    assert!(
        checkpoint.join("optim-4.bpk").exists(),
        "nothing is deleted"
    );
}

#[test]
fn an_unwritable_output_directory_fails_before_training() {
    let dir = tempfile::tempdir().unwrap();
    // A directory under a regular file cannot be made, not even by root (which mode bits do
    // not stop).
    let file = dir.path().join("file");
    std::fs::write(&file, b"").unwrap();
    let out = file.join("run");
    for resume in [false, true] {
        let network = Tiny::new(&Device::flex().autodiff());
        let steps = network.poison.steps.clone();
        let mut options = quiet(&out);
        options.resume = resume;
        let err = fit(&config(Method::ResCom, 2), network, data(12), options)
            .err()
            .expect("an unwritable output must be refused");
        assert!(matches!(err, Error::OutputNotWritable { .. }), "{err}");
        assert!(err.to_string().contains("is not writable"), "{err}");
        assert!(err.to_string().contains(&*out.to_string_lossy()), "{err}");
        assert_eq!(steps.load(Ordering::SeqCst), 0, "nothing may be trained");
    }
}

/// The environment variable that makes [`full_disk_child`] run (with the run's directory).
const FULL_DISK_DIR: &str = "RESCOM_TEST_FULL_DISK_DIR";
/// The model record with its ballast takes about 256 KiB; every other file of the run less
/// than this limit.
const FILE_LIMIT_KIB: u64 = 128;
const BALLAST: usize = 64 * 1024;

fn ballasted() -> Tiny {
    let device = Device::flex().autodiff();
    Tiny::new(&device).with_ballast(BALLAST, &device)
}

/// Resumes the run in `$RESCOM_TEST_FULL_DISK_DIR` in a process that cannot write a file
/// larger than [`FILE_LIMIT_KIB`]: run by
/// `a_full_disk_stops_the_run_and_keeps_the_last_checkpoint`, not on its own.
#[test]
#[ignore = "runs in a child process of a_full_disk_stops_the_run_and_keeps_the_last_checkpoint"]
fn full_disk_child() {
    let Some(dir) = std::env::var_os(FULL_DISK_DIR) else {
        return;
    };
    let err = resume_with(&config(Method::ResCom, 3), ballasted(), Path::new(&dir))
        .err()
        .expect("a checkpoint larger than the disk allows must stop the run");
    println!("the run stopped with: {err}");
    assert!(matches!(err, Error::Training { .. }), "{err}");
    assert!(err.to_string().contains("model-2.bpk"), "{err}");
    assert!(err.to_string().contains("File too large"), "{err}");
}

#[test]
fn a_full_disk_stops_the_run_and_keeps_the_last_checkpoint() {
    let config = config(Method::ResCom, 3);
    let straight = tempfile::tempdir().unwrap();
    let options = quiet(straight.path());
    fit(&config, ballasted(), data(12), options).unwrap();
    let record = std::fs::metadata(straight.path().join("checkpoint/model-3.bpk"))
        .unwrap()
        .len();
    assert!(record > 2 * FILE_LIMIT_KIB * 1024, "{record} bytes");

    let dir = tempfile::tempdir().unwrap();
    let mut options = quiet(dir.path());
    options.stop_after = Some(1);
    fit(&config, ballasted(), data(12), options).unwrap();
    // The second epoch in a child process whose files may not grow beyond the limit
    // (RLIMIT_FSIZE, which binds root too; with SIGXFSZ ignored, a write past it fails with
    // EFBIG, as on a full disk).
    let exe = std::env::current_exe().unwrap();
    let child = std::process::Command::new("bash")
        .arg("-c")
        .arg(format!(
            "trap '' XFSZ; ulimit -f {FILE_LIMIT_KIB} && exec \"$0\" \"$@\""
        ))
        .arg(&exe)
        .args(["full_disk_child", "--exact", "--ignored", "--nocapture"])
        .env(FULL_DISK_DIR, dir.path())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&child.stdout);
    assert!(
        child.status.success() && stdout.contains("the run stopped with"),
        "{stdout}\n{}",
        String::from_utf8_lossy(&child.stderr)
    );
    let checkpoints = rescom::train::CheckpointDir::new(dir.path().join("checkpoint"));
    assert_eq!(
        checkpoints.complete_epochs(),
        vec![1],
        "the last good checkpoint is kept"
    );
    assert_eq!(temporaries(dir.path()), Vec::<std::path::PathBuf>::new());

    // With room again, the run continues from it and ends as the straight one.
    let resumed = resume_with(&config, ballasted(), dir.path()).unwrap();
    assert_eq!(resumed.epochs_done(), 3);
    assert_same_files(straight.path(), dir.path(), &kept_after(3));
}

#[test]
fn a_full_disk_while_logging_metrics_stops_the_run_and_keeps_the_last_checkpoint() {
    // `/dev/full` fails every write with ENOSPC, as a full disk does; the second epoch's loss
    // log points there.
    let full = Path::new("/dev/full");
    if !full.exists() {
        eprintln!("skipped: this system has no /dev/full");
        return;
    }
    let config = config(Method::ResCom, 3);
    let straight = tempfile::tempdir().unwrap();
    run(&config, straight.path(), false, None);

    let dir = tempfile::tempdir().unwrap();
    run(&config, dir.path(), false, Some(1));
    let log = dir.path().join("train/epoch-2/Loss.log");
    std::fs::create_dir_all(log.parent().unwrap()).unwrap();
    std::os::unix::fs::symlink(full, &log).unwrap();
    let err = resume_with(&config, flex_tiny(), dir.path())
        .err()
        .expect("a metric log that cannot be written must stop the run");
    assert!(matches!(err, Error::Training { .. }), "{err}");
    assert!(err.to_string().contains("Loss.log"), "{err}");
    assert!(err.to_string().contains("No space left on device"), "{err}");
    let checkpoints = rescom::train::CheckpointDir::new(dir.path().join("checkpoint"));
    assert_eq!(
        checkpoints.complete_epochs(),
        vec![1],
        "the last good checkpoint is kept"
    );
    assert_eq!(temporaries(dir.path()), Vec::<std::path::PathBuf>::new());

    // With room again, the run continues from it and ends as the straight one, logs included.
    std::fs::remove_file(&log).unwrap();
    let resumed = resume_with(&config, flex_tiny(), dir.path()).unwrap();
    assert_eq!(resumed.epochs_done(), 3);
    assert_same_files(straight.path(), dir.path(), &kept_after(3));
    for epoch in 1..=3 {
        let path = |dir: &Path| dir.join(format!("train/epoch-{epoch}/Loss.log"));
        let a = std::fs::read_to_string(path(straight.path())).unwrap();
        // A line per batch, then the epoch's aggregate.
        assert!(a.lines().count() > 1, "{a}");
        assert!(a.lines().last().unwrap().ends_with(",final"), "{a}");
        assert_eq!(a, std::fs::read_to_string(path(dir.path())).unwrap());
    }
}
