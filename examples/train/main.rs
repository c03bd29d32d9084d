//! Long-tailed training runs with ResCom, its ablations and the baselines.
//!
//! The default trains ResCom on Fashion-MNIST-LT (imbalance 100, at most 600 images per class)
//! with a small CIFAR ResNet on the CPU in about ten minutes:
//!
//! ```text
//! scripts/fetch-data.sh && cargo run --release --example train
//! ```
//!
//! The same example runs CIFAR-10/100-LT with ResNet-32 and the published recipe
//! (`--dataset cifar100-lt --data-dir DIR --recipe`), and ImageNet-LT-style list datasets
//! with ResNet-50 (`--dataset list --train-list ... --test-list ... --image-root ...`;
//! `--dataset inaturalist` for iNaturalist's list files and statistics).
//! Run `cargo run --release --example train -- --help` for every option.
//!
//! The loop is burn-train's Learner (`rescom::run::fit`): its dashboard on a terminal,
//! plain progress lines otherwise, its checkpoints (written atomically, validated on
//! `--resume`), and its strategies for several devices (`--devices`, `--ddp`).
//!
//! `train gpu-check` checks one device in this same binary (see `gpu_check.rs`): the golden
//! cases, the gradient checks, the benches' work and a short run of the default job.

mod gpu_check;

use rescom_support::{allocator, device};

use std::path::{Path, PathBuf};
use std::sync::Arc;

use burn::tensor::Device;
use clap::{Parser, ValueEnum};
use rescom::ResComLossConfig;
use rescom::data::{
    Dataset, DatasetSpec, EvalLoader, ImbalanceProfile, ListDataset, LoaderConfig, OnUnreadable,
    Pipeline, Split, Subset, TwoViewLoader, long_tail_counts, subsample,
};
use rescom::model::BackboneConfig;
use rescom::model::ResComModelConfig;
use rescom::report::Summary;
use rescom::run::{Devices, RunData, RunOptions, evaluate_checkpoint, fit};
use rescom::train::{Ablation, Method, Recipe, ScheduleKind, StepChecks, TrainConfig};
use rescom::{ClassBalancedContrastiveLossConfig, HardPairMinerConfig};

rescom_support::use_mimalloc!();

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum DatasetName {
    /// Fashion-MNIST with a long-tailed training set (data from scripts/fetch-data.sh).
    FashionMnistLt,
    /// MNIST with a long-tailed training set.
    MnistLt,
    /// CIFAR-10-LT (binary CIFAR-10 under --data-dir).
    Cifar10Lt,
    /// CIFAR-100-LT (binary CIFAR-100 under --data-dir).
    Cifar100Lt,
    /// ImageNet-LT / Places-LT style list files (ImageNet statistics).
    List,
    /// iNaturalist 2018 list files (its own statistics).
    Inaturalist,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum AblationArg {
    /// Effective-number class weights.
    Weights,
    /// The class-balanced queue (replaced by a FIFO queue).
    Queue,
    /// Hard mining (every queue key is used).
    Mining,
    /// Balanced Softmax (replaced by cross-entropy).
    BalancedSoftmax,
}

impl From<AblationArg> for Ablation {
    fn from(a: AblationArg) -> Self {
        match a {
            AblationArg::Weights => Ablation::Weights,
            AblationArg::Queue => Ablation::Queue,
            AblationArg::Mining => Ablation::Mining,
            AblationArg::BalancedSoftmax => Ablation::BalancedSoftmax,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Schedule {
    /// Linear warm-up, x0.1 at 80 % and x0.01 at 90 % of the epochs (CIFAR recipe).
    Multistep,
    /// Linear warm-up, then cosine to 1e-5 of the rate (ImageNet recipe).
    Cosine,
    /// Constant rate (what the authors' released CIFAR code actually ran).
    Constant,
}

impl From<Schedule> for ScheduleKind {
    fn from(s: Schedule) -> Self {
        match s {
            Schedule::Multistep => ScheduleKind::Multistep,
            Schedule::Cosine => ScheduleKind::Cosine,
            Schedule::Constant => ScheduleKind::Constant,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum Backend {
    /// Pure-Rust CPU backend (SIMD + threads).
    Flex,
    /// burn-ndarray CPU backend (requires `--features ndarray`).
    Ndarray,
    /// GPU through wgpu/Vulkan (requires `--features vulkan`).
    Vulkan,
    /// NVIDIA GPU through CUDA (requires `--features cuda`).
    Cuda,
}

impl Backend {
    /// The backend's name, as `rescom_support::device::open` takes it.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Backend::Flex => "flex",
            Backend::Ndarray => "ndarray",
            Backend::Vulkan => "vulkan",
            Backend::Cuda => "cuda",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum Checks {
    /// On the host on GPUs (nothing read from the device inside a step), on the device on
    /// the CPU backends.
    Auto,
    /// The plain API's checks inside every step: labels and finiteness read from the device.
    Device,
    /// Labels checked from the batch's host copy, finiteness read with the step's metrics.
    Host,
}

impl From<Checks> for StepChecks {
    fn from(c: Checks) -> Self {
        match c {
            Checks::Auto => StepChecks::Auto,
            Checks::Device => StepChecks::Device,
            Checks::Host => StepChecks::Host,
        }
    }
}

#[derive(Debug, Parser)]
pub(crate) struct Args {
    /// Dataset.
    #[arg(long, value_enum, default_value = "fashion-mnist-lt")]
    dataset: DatasetName,
    /// Directory holding the datasets (fashion-mnist/, mnist/, cifar-10-batches-bin/, ...).
    #[arg(long, default_value = "data")]
    data_dir: PathBuf,
    /// Imbalance factor of the long-tailed training set.
    #[arg(long, default_value_t = 100.0)]
    imbalance: f64,
    /// Images of the largest class (default: 600 for (Fashion-)MNIST, the full class for CIFAR).
    #[arg(long)]
    n_max: Option<usize>,
    /// Training objective.
    #[arg(long, value_parser = ["rescom", "cross-entropy", "balanced-softmax"], default_value = "rescom")]
    method: String,
    /// ResCom parts to switch off (comma-separated).
    #[arg(long, value_enum, value_delimiter = ',')]
    ablate: Vec<AblationArg>,
    /// Backbone: resnet8|14|20|32|44|56|110 (CIFAR ResNets), resnet50, resnext50.
    #[arg(long)]
    arch: Option<String>,
    /// Epochs.
    #[arg(long)]
    epochs: Option<usize>,
    /// Images per batch (each gives two views).
    #[arg(long)]
    batch_size: Option<usize>,
    /// Peak learning rate.
    #[arg(long)]
    lr: Option<f64>,
    /// Learning-rate schedule.
    #[arg(long, value_enum)]
    schedule: Option<Schedule>,
    /// Weight decay.
    #[arg(long, default_value_t = 5e-4)]
    weight_decay: f64,
    /// Use the published recipe of the dataset (CIFAR: ResNet-32, 400 epochs, batch 128,
    /// lr 0.1; ImageNet-LT / iNaturalist: ResNet-50, 400 epochs, batch 256, lr 0.06, cosine,
    /// beta 0.99); drops each epoch's incomplete last batch, as the recipes do.
    #[arg(long)]
    recipe: bool,
    /// Contrastive temperature.
    #[arg(long, default_value_t = recipe().contrastive.temperature)]
    temperature: f64,
    /// Queue keys per class K.
    #[arg(long, default_value_t = recipe().queue_per_class)]
    queue_per_class: usize,
    /// Hard positives per row.
    #[arg(long, default_value_t = recipe().mining.hard_positives)]
    hard_positives: usize,
    /// Hard negatives per row (default: `HardPairMinerConfig::scaled`, min(400, (C - 1) K / 2)).
    #[arg(long)]
    hard_negatives: Option<usize>,
    /// Weight of the contrastive term.
    #[arg(long, default_value_t = recipe().contrast_weight)]
    contrast_weight: f64,
    /// Effective-number beta of the class weights (default: 0.999999; 0.99 for list
    /// datasets under --recipe).
    #[arg(long)]
    beta: Option<f64>,
    /// Prior strength eta inside the contrast.
    #[arg(long, default_value_t = recipe().contrastive.prior_strength)]
    prior_strength: f64,
    /// Projection dimension (default 32; 128 for ResNet-50).
    #[arg(long)]
    proj_dim: Option<usize>,
    /// Seed of every random choice.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Output directory (checkpoint, metrics, plots, summary.json).
    #[arg(long, default_value = "runs/default")]
    out: PathBuf,
    /// Continue the run saved in --out.
    #[arg(long)]
    resume: bool,
    /// Stop after this many epochs of this invocation (continue later with --resume).
    #[arg(long)]
    stop_after: Option<usize>,
    /// Only evaluate the checkpoint in --out on the test set.
    #[arg(long)]
    eval_only: bool,
    /// Evaluate every this many epochs (the last epoch is always evaluated).
    #[arg(long)]
    eval_every: Option<usize>,
    /// A tiny, fast configuration for checking the whole path (CI).
    #[arg(long)]
    smoke: bool,
    /// Data-loading threads.
    #[arg(long, default_value_t = 2)]
    workers: usize,
    /// Compute backend.
    #[arg(long, value_enum, default_value = "flex")]
    backend: Backend,
    /// Train on several devices of the backend (indices, e.g. `0,1`) with burn-train's
    /// multi-device strategy. The CPU backends have one device each.
    #[arg(long, value_delimiter = ',')]
    devices: Vec<usize>,
    /// With --devices: use burn-train's distributed data parallel strategy (gradients
    /// all-reduced; needs collectives, which Burn implements for CUDA only).
    #[arg(long)]
    ddp: bool,
    /// Where a training step checks its batch and the network's outputs.
    #[arg(long, value_enum, default_value = "auto")]
    step_checks: Checks,
    /// List datasets: training list file.
    #[arg(long)]
    train_list: Option<PathBuf>,
    /// List datasets: test list file.
    #[arg(long)]
    test_list: Option<PathBuf>,
    /// List datasets: image root the list paths are relative to.
    #[arg(long)]
    image_root: Option<PathBuf>,
    /// List datasets: number of classes.
    #[arg(long)]
    num_classes: Option<usize>,
    /// List datasets: training/evaluation crop size.
    #[arg(long, default_value_t = 224)]
    image_size: usize,
    /// List datasets: skip unreadable images instead of failing.
    #[arg(long)]
    skip_unreadable: bool,
}

/// The loss hyper-parameters of the published recipe: the defaults of `ResComLossConfig`.
fn recipe() -> ResComLossConfig {
    ResComLossConfig::new(Vec::new())
}

/// The autodiff device `index` of `backend`, or why there is none (not compiled in, absent,
/// or unable to compute).
fn device(backend: Backend, index: usize) -> Result<Device, String> {
    Ok(device::open_at(backend.name(), index)?.autodiff())
}

/// Where to train, from `--backend`, `--devices` and `--ddp`.
fn devices(args: &Args) -> Result<Devices, String> {
    if args.ddp && args.backend != Backend::Cuda {
        return Err(format!(
            "--ddp needs all-reduce collectives, which Burn implements for CUDA only, not for \
             the {:?} backend; use --devices for the multi-device strategy",
            args.backend
        ));
    }
    if args.devices.len() <= 1 {
        if args.ddp {
            return Err("--ddp needs at least two --devices".into());
        }
        let index = args.devices.first().copied().unwrap_or(0);
        return Ok(Devices::Single(device(args.backend, index)?));
    }
    let devices = args
        .devices
        .iter()
        .map(|&i| device(args.backend, i))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(if args.ddp {
        Devices::Ddp(devices)
    } else {
        Devices::MultiDevice(devices)
    })
}

pub(crate) struct Data {
    pub(crate) train: Arc<dyn Dataset>,
    pub(crate) test: Arc<dyn Dataset>,
    train_pipeline: Pipeline,
    eval_pipeline: Pipeline,
    description: String,
    channels: usize,
    /// Where the test set comes from, recorded in run.json.
    test_split: DatasetSpec,
    /// The class names, where the dataset has well-known ones.
    class_names: Option<Vec<String>>,
}

/// The images a smoke run evaluates: the first 512 of the test set keep it fast.
const SMOKE_TEST_IMAGES: usize = 512;

pub(crate) fn load_data(args: &Args) -> rescom::Result<Data> {
    if matches!(args.dataset, DatasetName::List | DatasetName::Inaturalist) {
        return load_list_data(args);
    }
    // Absolute paths in run.json, so that a run can be predicted from any directory.
    let dir = std::path::absolute(&args.data_dir).map_err(|e| rescom::Error::Io {
        path: args.data_dir.clone(),
        source: e,
    })?;
    let (spec, channels, name, default_n_max): (fn(PathBuf, Split) -> DatasetSpec, _, _, _) =
        match args.dataset {
            DatasetName::FashionMnistLt => (
                |d, s| DatasetSpec::fashion_mnist(d.join("fashion-mnist"), s),
                1,
                "Fashion-MNIST-LT",
                600,
            ),
            DatasetName::MnistLt => (
                |d, s| DatasetSpec::mnist(d.join("mnist"), s),
                1,
                "MNIST-LT",
                600,
            ),
            DatasetName::Cifar10Lt => (DatasetSpec::cifar10, 3, "CIFAR-10-LT", 5000),
            _ => (DatasetSpec::cifar100, 3, "CIFAR-100-LT", 500),
        };
    let mut test_split = spec(dir.clone(), Split::Test);
    if args.smoke {
        test_split = test_split.with_first(SMOKE_TEST_IMAGES);
    }
    let train_full = spec(dir, Split::Train).open()?;
    let test = test_split.open()?;
    let classes = train_full.num_classes();
    let n_max = args.n_max.unwrap_or(default_n_max);
    let counts = long_tail_counts(
        n_max,
        classes,
        ImbalanceProfile::Exponential,
        args.imbalance,
    )?;
    let indices = subsample(&train_full.labels(), classes, &counts, args.seed)?;
    let train: Arc<dyn Dataset> = Arc::new(Subset::new(train_full, indices)?);
    let (train_pipeline, eval_pipeline) = if channels == 1 {
        (
            Pipeline::fashion_mnist_train(),
            Pipeline::fashion_mnist_eval(),
        )
    } else {
        (Pipeline::cifar_train(), Pipeline::cifar_eval())
    };
    Ok(Data {
        description: format!("{name} (imbalance {}, n_max {n_max})", args.imbalance),
        train,
        test,
        train_pipeline,
        eval_pipeline,
        channels,
        class_names: test_split.class_names(),
        test_split,
    })
}

/// ImageNet-LT style list files (`--dataset list`) or iNaturalist's (`--dataset inaturalist`).
fn load_list_data(args: &Args) -> rescom::Result<Data> {
    let missing = |what: &str| rescom::Error::InvalidConfig {
        field: "list dataset",
        reason: format!("list datasets need {what}"),
    };
    let absolute = |path: PathBuf| {
        std::path::absolute(&path).map_err(|source| rescom::Error::Io { path, source })
    };
    let root = absolute(
        args.image_root
            .clone()
            .ok_or_else(|| missing("--image-root"))?,
    )?;
    let classes = args.num_classes.ok_or_else(|| missing("--num-classes"))?;
    let policy = if args.skip_unreadable {
        OnUnreadable::Skip
    } else {
        OnUnreadable::Fail
    };
    // Opened here rather than through the spec, to report the images skipped.
    let open = |list: &Path| -> rescom::Result<Arc<dyn Dataset>> {
        let ds = ListDataset::open(list, &root, classes, policy)?;
        if !ds.skipped().is_empty() {
            eprintln!(
                "{}: skipped {} unreadable images",
                list.display(),
                ds.skipped().len()
            );
        }
        Ok(Arc::new(ds))
    };
    let train = open(
        &args
            .train_list
            .clone()
            .ok_or_else(|| missing("--train-list"))?,
    )?;
    let test_list = absolute(
        args.test_list
            .clone()
            .ok_or_else(|| missing("--test-list"))?,
    )?;
    let mut test = open(&test_list)?;
    let mut test_split = DatasetSpec::list(test_list, &root, classes, policy);
    if args.smoke {
        test_split = test_split.with_first(SMOKE_TEST_IMAGES);
        let n = test.len().min(SMOKE_TEST_IMAGES);
        test = Arc::new(Subset::new(test, (0..n).collect())?);
    }
    let size = args.image_size;
    let (mut train_pipeline, mut eval_pipeline) = (
        Pipeline::imagenet_train(size),
        Pipeline::imagenet_eval(size),
    );
    let mut description = format!("list dataset ({classes} classes)");
    if args.dataset == DatasetName::Inaturalist
        && let Some((mean, std)) = Recipe::inaturalist().normalization
    {
        // The ImageNet pipelines with iNaturalist's statistics.
        let restat = |p: &Pipeline| {
            Pipeline::new(
                p.steps().to_vec(),
                p.cutout(),
                &mean,
                &std,
                p.output_shape(),
            )
        };
        train_pipeline = restat(&train_pipeline)?;
        eval_pipeline = restat(&eval_pipeline)?;
        description = format!("iNaturalist ({classes} classes)");
    }
    Ok(Data {
        description,
        train,
        test,
        train_pipeline,
        eval_pipeline,
        channels: 3,
        test_split,
        class_names: None,
    })
}

pub(crate) fn run(args: Args) -> Result<(), Box<dyn std::error::Error>> {
    allocator::keep_freed_memory();
    let devices = devices(&args)?;
    let device = devices.main();
    device.seed(args.seed);
    let data = load_data(&args)?;
    let counts = data.train.class_counts();
    let classes = counts.len();
    let imagenet = matches!(args.dataset, DatasetName::List | DatasetName::Inaturalist);

    // Defaults: a fast CPU configuration, or the published recipe with --recipe.
    let recipe = match (args.smoke, args.recipe, args.dataset) {
        (true, _, _) => Recipe::smoke(),
        (false, true, DatasetName::Inaturalist) => Recipe::inaturalist(),
        (false, true, DatasetName::List) => Recipe::imagenet_lt(),
        (false, true, _) => Recipe::cifar(),
        (false, false, DatasetName::List | DatasetName::Inaturalist) => Recipe::list_default(),
        (false, false, _) => Recipe::cpu_default(),
    };
    let arch = args.arch.clone().unwrap_or(recipe.architecture.clone());
    let epochs = args.epochs.unwrap_or(recipe.epochs);
    let batch = args.batch_size.unwrap_or(recipe.batch_size);
    let lr = args.lr.unwrap_or(recipe.lr);
    let kind = args.schedule.map_or(recipe.schedule, ScheduleKind::from);
    let schedule = Recipe::schedule(kind, lr, epochs);
    // List datasets train ResNet-50 with a 128-d projection, also in a smoke run.
    let proj_dim = args.proj_dim.unwrap_or(if imagenet {
        Recipe::imagenet_lt().projection_dim
    } else {
        recipe.projection_dim
    });
    let beta = args.beta.unwrap_or(recipe.effective_num_beta);
    let method = match args.method.as_str() {
        "cross-entropy" => Method::CrossEntropy,
        "balanced-softmax" => Method::BalancedSoftmax,
        _ => Method::ResCom,
    };
    let mining = match args.hard_negatives {
        Some(k) => HardPairMinerConfig::new().with_hard_negatives(k),
        None => HardPairMinerConfig::scaled(classes, args.queue_per_class),
    };
    let mut loss = ResComLossConfig::new(counts.clone())
        .with_projection_dim(proj_dim)
        .with_queue_per_class(args.queue_per_class)
        .with_mining(mining.with_hard_positives(args.hard_positives))
        .with_contrastive(
            ClassBalancedContrastiveLossConfig::new()
                .with_temperature(args.temperature)
                .with_effective_num_beta(beta)
                .with_prior_strength(args.prior_strength),
        )
        .with_contrast_weight(args.contrast_weight);
    for ablation in &args.ablate {
        loss = Ablation::from(*ablation).apply(loss);
    }
    let config = TrainConfig {
        method,
        loss,
        epochs,
        schedule,
        momentum: 0.9,
        weight_decay: args.weight_decay,
        seed: args.seed,
        eval_every: args
            .eval_every
            .unwrap_or(if args.smoke { 1 } else { (epochs / 6).max(1) }),
        dataset: data.description.clone(),
    };

    let backbone = arch
        .parse::<BackboneConfig>()?
        .with_in_channels(data.channels);
    let model = ResComModelConfig::new(backbone, classes).with_projection_dim(proj_dim);
    let network = model.init(&device)?;
    let loader_config = |seed| LoaderConfig {
        batch_size: batch,
        workers: args.workers,
        prefetch: 4,
        // The published recipes drop each epoch's incomplete last batch; the CPU default
        // keeps it.
        drop_last: recipe.drop_last,
        seed,
    };
    let test = EvalLoader::new(
        data.test.clone(),
        data.eval_pipeline.clone(),
        loader_config(args.seed),
        &device.clone().inner(),
    )?;

    eprintln!(
        "{}: {} training images in {classes} classes ({} .. {} per class), {} test images",
        data.description,
        data.train.len(),
        counts.iter().max().unwrap_or(&0),
        counts.iter().min().unwrap_or(&0),
        data.test.len()
    );
    eprintln!(
        "{} with {arch}, {epochs} epochs, batch {batch} x 2 views, lr {lr}, out {}",
        config.method_name(),
        args.out.display()
    );

    if args.eval_only {
        let evaluated = evaluate_checkpoint(network, test, &args.out)?;
        let history = rescom::report::read_history(&args.out)?;
        let identity = rescom::run::identity(&rescom::run::run_config(&args.out)?);
        let summary = Summary::of(&identity, &history[..evaluated.epoch.min(history.len())])
            .ok_or("the checkpoint's run has no evaluation yet")?;
        summary.print_table(Some(&evaluated.report));
        return Ok(());
    }
    let train = TwoViewLoader::new(
        data.train.clone(),
        data.train_pipeline,
        loader_config(args.seed),
        &device,
    )?;
    let mut options = RunOptions::new(&args.out, device);
    options.devices = devices;
    options.resume = args.resume;
    options.stop_after = args.stop_after;
    options.step_checks = args.step_checks.into();
    // One run in this process: burn-train's log goes to the run's experiment.log.
    options.experiment_log = true;
    // What rebuilds the run for prediction (examples/predict.rs).
    options.model = Some(model);
    options.class_names = data.class_names;
    options.test_split = Some(data.test_split);
    let outcome = fit(&config, network, RunData { train, test }, options)?;
    if let Some(summary) = &outcome.summary {
        summary.print_table(None);
    }
    if outcome.epochs_done() < config.epochs {
        eprintln!(
            "stopped after {} of {} epochs; continue with --resume",
            outcome.epochs_done(),
            config.epochs
        );
    }
    Ok(())
}

/// The command line: a training run, or `gpu-check`.
#[derive(Debug, Parser)]
#[command(
    about = "Train ResCom (or a baseline) on a long-tailed dataset",
    args_conflicts_with_subcommands = true
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    #[command(flatten)]
    args: Args,
}

#[derive(Debug, clap::Subcommand)]
enum Command {
    /// Check rescom on one device: golden cases, gradients, benches, a training run.
    GpuCheck(gpu_check::Cli),
}

fn main() {
    let cli = Cli::parse();
    if let Some(Command::GpuCheck(check)) = cli.command {
        gpu_check::main(check);
        return;
    }
    if let Err(e) = run(cli.args) {
        eprintln!("error: {e}");
        std::process::exit(1);
    }
}
