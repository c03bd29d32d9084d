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
//! with ResNet-50 (`--dataset list --train-list ... --test-list ... --image-root ...`).
//! Run `cargo run --release --example train -- --help` for every option.

#[path = "../benches/support/allocator.rs"]
pub(crate) mod allocator;
#[path = "../benches/support/device.rs"]
pub(crate) mod device;

use std::path::PathBuf;
use std::sync::Arc;

use burn::tensor::Device;
use clap::{Parser, ValueEnum};
use indicatif::{ProgressBar, ProgressStyle};
use rescom::data::{
    Dataset, EvalLoader, ImbalanceProfile, ListDataset, LoaderConfig, OnUnreadable, Pipeline,
    Split, Subset, TwoViewLoader, load_cifar10, load_cifar100, load_fashion_mnist, load_mnist,
    long_tail_counts, subsample,
};
use rescom::model::ResComModelConfig;
use rescom::train::{
    LossSettings, LrSchedule, Method, Parts, Progress, Summary, TrainConfig, Trainer, evaluate,
};

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
    /// ImageNet-LT / Places-LT / iNaturalist style list files.
    List,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Ablation {
    /// Effective-number class weights.
    Weights,
    /// The class-balanced queue (replaced by a FIFO queue).
    Queue,
    /// Hard mining (every queue key is used).
    Mining,
    /// Balanced Softmax (replaced by cross-entropy).
    BalancedSoftmax,
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

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Backend {
    /// Pure-Rust CPU backend (SIMD + threads).
    Flex,
    /// burn-ndarray CPU backend (requires `--features ndarray`).
    Ndarray,
    /// GPU through wgpu/Vulkan (requires `--features vulkan`).
    Vulkan,
    /// NVIDIA GPU through CUDA (requires `--features cuda`).
    Cuda,
}

#[derive(Debug, Parser)]
#[command(about = "Train ResCom (or a baseline) on a long-tailed dataset")]
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
    ablate: Vec<Ablation>,
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
    /// lr 0.1; ImageNet-LT: ResNet-50, 400 epochs, batch 256, lr 0.06, cosine).
    #[arg(long)]
    recipe: bool,
    /// Contrastive temperature.
    #[arg(long, default_value_t = 0.2)]
    temperature: f64,
    /// Queue keys per class K.
    #[arg(long, default_value_t = 10)]
    queue_per_class: usize,
    /// Hard positives per row.
    #[arg(long, default_value_t = 1)]
    hard_positives: usize,
    /// Hard negatives per row (default: min(400, (C - 1) K / 2)).
    #[arg(long)]
    hard_negatives: Option<usize>,
    /// Weight of the contrastive term.
    #[arg(long, default_value_t = 0.5)]
    contrast_weight: f64,
    /// Effective-number beta of the class weights.
    #[arg(long, default_value_t = 0.999999)]
    beta: f64,
    /// Prior strength eta inside the contrast.
    #[arg(long, default_value_t = 0.0)]
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

/// The autodiff device of `backend`, or why there is none (not compiled in, absent).
fn device(backend: Backend) -> Result<Device, String> {
    let name = format!("{backend:?}").to_lowercase();
    Ok(device::open(&name)?.autodiff())
}

/// Progress bars on stderr.
struct Bars {
    bar: Option<ProgressBar>,
}

impl Progress for Bars {
    fn start(&mut self, phase: &str, epoch: usize, steps: usize) {
        let bar = ProgressBar::new(steps as u64);
        bar.set_style(
            ProgressStyle::with_template(&format!(
                "{phase} {:>3} [{{bar:30}}] {{pos}}/{{len}} {{msg}} ({{elapsed}})",
                epoch + 1
            ))
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
        );
        self.bar = Some(bar);
    }

    fn step(&mut self, status: &str) {
        if let Some(bar) = &self.bar {
            bar.inc(1);
            bar.set_message(status.to_string());
        }
    }

    fn finish(&mut self, summary: &str) {
        if let Some(bar) = self.bar.take() {
            bar.finish_and_clear();
        }
        eprintln!("{summary}");
    }
}

pub(crate) struct Data {
    pub(crate) train: Arc<dyn Dataset>,
    pub(crate) test: Arc<dyn Dataset>,
    train_pipeline: Pipeline,
    eval_pipeline: Pipeline,
    description: String,
    channels: usize,
}

pub(crate) fn load_data(args: &Args) -> rescom::Result<Data> {
    let (train_full, test, channels, name, default_n_max): (
        Arc<dyn Dataset>,
        Arc<dyn Dataset>,
        _,
        _,
        _,
    ) = match args.dataset {
        DatasetName::FashionMnistLt => {
            let dir = args.data_dir.join("fashion-mnist");
            (
                Arc::new(load_fashion_mnist(&dir, Split::Train)?),
                Arc::new(load_fashion_mnist(&dir, Split::Test)?),
                1,
                "Fashion-MNIST-LT",
                600,
            )
        }
        DatasetName::MnistLt => {
            let dir = args.data_dir.join("mnist");
            (
                Arc::new(load_mnist(&dir, Split::Train)?),
                Arc::new(load_mnist(&dir, Split::Test)?),
                1,
                "MNIST-LT",
                600,
            )
        }
        DatasetName::Cifar10Lt => (
            Arc::new(load_cifar10(&args.data_dir, Split::Train)?),
            Arc::new(load_cifar10(&args.data_dir, Split::Test)?),
            3,
            "CIFAR-10-LT",
            5000,
        ),
        DatasetName::Cifar100Lt => (
            Arc::new(load_cifar100(&args.data_dir, Split::Train)?),
            Arc::new(load_cifar100(&args.data_dir, Split::Test)?),
            3,
            "CIFAR-100-LT",
            500,
        ),
        DatasetName::List => {
            let missing = |what: &str| rescom::Error::InvalidConfig {
                field: "list dataset",
                reason: format!("--dataset list needs {what}"),
            };
            let root = args
                .image_root
                .clone()
                .ok_or_else(|| missing("--image-root"))?;
            let classes = args.num_classes.ok_or_else(|| missing("--num-classes"))?;
            let policy = if args.skip_unreadable {
                OnUnreadable::Skip
            } else {
                OnUnreadable::Fail
            };
            let open = |list: &Option<PathBuf>, flag: &str| -> rescom::Result<Arc<dyn Dataset>> {
                let list = list.clone().ok_or_else(|| missing(flag))?;
                let ds = ListDataset::open(&list, &root, classes, policy)?;
                if !ds.skipped().is_empty() {
                    eprintln!(
                        "{}: skipped {} unreadable images",
                        list.display(),
                        ds.skipped().len()
                    );
                }
                Ok(Arc::new(ds))
            };
            let train = open(&args.train_list, "--train-list")?;
            let test = open(&args.test_list, "--test-list")?;
            let size = args.image_size;
            return Ok(Data {
                description: format!("list dataset ({} classes)", classes),
                train,
                test,
                train_pipeline: Pipeline::imagenet_train(size),
                eval_pipeline: Pipeline::imagenet_eval(size),
                channels: 3,
            });
        }
    };
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
    })
}

pub(crate) fn run(args: Args) -> Result<(), Box<dyn std::error::Error>> {
    allocator::keep_freed_memory();
    let device = device(args.backend)?;
    device.seed(args.seed);
    let data = load_data(&args)?;
    let counts = data.train.class_counts();
    let classes = counts.len();
    let imagenet = args.dataset == DatasetName::List;

    // Defaults: a fast CPU configuration, or the published recipe with --recipe.
    let (arch, epochs, batch, lr, schedule) = match (args.recipe, imagenet, args.smoke) {
        (_, _, true) => ("resnet8", 2, 32, 0.05, Schedule::Multistep),
        (true, true, _) => ("resnet50", 400, 256, 0.06, Schedule::Cosine),
        (true, false, _) => ("resnet32", 400, 128, 0.1, Schedule::Multistep),
        (false, true, _) => ("resnet50", 90, 256, 0.06, Schedule::Cosine),
        (false, false, _) => ("resnet20", 20, 64, 0.1, Schedule::Multistep),
    };
    let arch = args.arch.clone().unwrap_or_else(|| arch.to_string());
    let epochs = args.epochs.unwrap_or(epochs);
    let batch = args.batch_size.unwrap_or(batch);
    let lr = args.lr.unwrap_or(lr);
    let schedule = match args.schedule.unwrap_or(schedule) {
        Schedule::Multistep => LrSchedule::cifar_recipe(lr, epochs),
        Schedule::Cosine => LrSchedule::imagenet_recipe(lr, epochs),
        Schedule::Constant => LrSchedule::Constant { lr },
    };
    let proj_dim = args.proj_dim.unwrap_or(if imagenet { 128 } else { 32 });
    let method = match args.method.as_str() {
        "cross-entropy" => Method::CrossEntropy,
        "balanced-softmax" => Method::BalancedSoftmax,
        _ => Method::Rescom,
    };
    let mut parts = Parts::default();
    for a in &args.ablate {
        match a {
            Ablation::Weights => parts.class_weights = false,
            Ablation::Queue => parts.balanced_queue = false,
            Ablation::Mining => parts.hard_mining = false,
            Ablation::BalancedSoftmax => parts.balanced_softmax = false,
        }
    }
    let negatives = (classes - 1) * args.queue_per_class;
    let config = TrainConfig {
        method,
        parts,
        loss: LossSettings {
            dim: proj_dim,
            queue_per_class: args.queue_per_class,
            hard_positives: args.hard_positives,
            hard_negatives: args.hard_negatives.unwrap_or(400.min(negatives / 2)),
            temperature: args.temperature,
            contrast_weight: args.contrast_weight,
            effective_num_beta: args.beta,
            prior_strength: args.prior_strength,
        },
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

    let model = ResComModelConfig::new(arch.clone(), classes)
        .with_in_channels(data.channels)
        .with_projection_dim(proj_dim)
        .init(&device)?;
    let loader_config = |seed| LoaderConfig {
        batch_size: batch,
        workers: args.workers,
        prefetch: 4,
        drop_last: false,
        seed,
    };
    let test_set: Arc<dyn Dataset> = if args.smoke {
        // A slice of the test set keeps the smoke run fast.
        let n = data.test.len().min(512);
        Arc::new(Subset::new(data.test.clone(), (0..n).collect())?)
    } else {
        data.test.clone()
    };
    let mut test = EvalLoader::new(
        test_set,
        data.eval_pipeline.clone(),
        loader_config(args.seed),
        &device,
    )?;
    let mut bars = Bars { bar: None };

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
        let trainer = Trainer::resume(config, model, &counts, &device, &args.out)?;
        let report = evaluate(
            trainer.model(),
            &mut test,
            &counts,
            trainer.epochs_done(),
            &mut bars,
        )?;
        print_table(&trainer.summary()?, Some(&report));
        return Ok(());
    }
    let mut trainer = if args.resume {
        Trainer::resume(config, model, &counts, &device, &args.out)?
    } else {
        Trainer::new(config, model, &counts, &device, &args.out)?
    };
    let mut train = TwoViewLoader::new(
        data.train.clone(),
        data.train_pipeline,
        loader_config(args.seed),
        &device,
    )?;
    let summary = trainer.fit_epochs(
        &mut train,
        &mut test,
        &mut bars,
        args.stop_after.unwrap_or(usize::MAX),
    )?;
    if let Some(summary) = summary {
        print_table(&summary, None);
    }
    if trainer.epochs_done() < trainer.config().epochs {
        eprintln!(
            "stopped after {} of {} epochs; continue with --resume",
            trainer.epochs_done(),
            trainer.config().epochs
        );
    }
    Ok(())
}

fn print_table(summary: &Summary, fresh: Option<&rescom::train::EvalReport>) {
    let pct = |v: Option<f64>| v.map_or("   -".into(), |v| format!("{:5.2}", 100.0 * v));
    println!();
    println!(
        "{} on {}, {} epochs",
        summary.method, summary.dataset, summary.epochs
    );
    println!("| evaluation | top-1 | top-5 | many | medium | few |");
    println!("| --- | --- | --- | --- | --- | --- |");
    if let Some(r) = fresh {
        println!(
            "| checkpoint | {} | {} | {} | {} | {} |",
            pct(Some(r.top1)),
            pct(Some(r.top5)),
            pct(r.many),
            pct(r.medium),
            pct(r.few)
        );
    }
    println!(
        "| last epoch | {} | {} | {} | {} | {} |",
        pct(Some(summary.last.top1)),
        pct(Some(summary.last.top5)),
        pct(summary.last.many),
        pct(summary.last.medium),
        pct(summary.last.few)
    );
    let b = &summary.best;
    println!(
        "| best epoch ({}) | {} | {} | {} | {} | {} |",
        summary.best_epoch + 1,
        pct(Some(b.top1)),
        pct(Some(b.top5)),
        pct(b.many),
        pct(b.medium),
        pct(b.few)
    );
}

fn main() {
    if let Err(e) = run(Args::parse()) {
        eprintln!("error: {e}");
        std::process::exit(1);
    }
}
