//! `ResComLoss` in a model of your own, trained by burn-train's Learner.
//!
//! A small convolutional network holds the loss as a field; its `TrainStep` runs the network
//! on a two-view batch and the loss on the named outputs, through a shared reference (the
//! loss's queue is updated inside, and kept across the Learner's clones). Fashion-MNIST-LT
//! (imbalance 100) from `scripts/fetch-data.sh`:
//!
//! ```text
//! cargo run --release --example learner -- --epochs 2
//! ```

use std::sync::Arc;

use burn::module::Module;
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::loss::CrossEntropyLossConfig;
use burn::nn::pool::{AdaptiveAvgPool2d, AdaptiveAvgPool2dConfig};
use burn::nn::{BatchNorm, BatchNormConfig, Linear, LinearConfig, PaddingConfig2d, Relu};
use burn::optim::SgdConfig;
use burn::optim::momentum::MomentumConfig;
use burn::tensor::{Device, Tensor};
use burn::train::metric::{AccuracyMetric, LossMetric};
use burn::train::{
    ClassificationOutput, InferenceStep, Learner, SupervisedTraining, TrainOutput, TrainStep,
};
use clap::Parser;
use rescom::data::{
    Batch, Dataset, EvalLoader, ImbalanceProfile, LoaderConfig, LongTailed, Pipeline, Split,
    TwoViewLoader, load_fashion_mnist,
};
use rescom::eval::Accuracy;
use rescom::{HardPairMinerConfig, ResComLoss, ResComLossConfig, ResComLossInput};

/// Three convolutions with batch norm, a linear classifier and a linear projection, with the
/// ResCom loss.
#[derive(Module, Debug)]
struct Net {
    convs: Vec<Conv2d>,
    norms: Vec<BatchNorm>,
    relu: Relu,
    pool: AdaptiveAvgPool2d,
    classifier: Linear,
    projector: Linear,
    loss: ResComLoss,
}

impl Net {
    fn new(class_counts: Vec<usize>, device: &Device) -> rescom::Result<Self> {
        let widths = [1, 32, 64, 64];
        let convs = widths
            .windows(2)
            .map(|w| {
                Conv2dConfig::new([w[0], w[1]], [3, 3])
                    .with_stride([2, 2])
                    .with_padding(PaddingConfig2d::Explicit(1, 1, 1, 1))
                    .init(device)
            })
            .collect();
        let norms = widths[1..]
            .iter()
            .map(|&w| BatchNormConfig::new(w).init(device))
            .collect();
        let classes = class_counts.len();
        Ok(Self {
            convs,
            norms,
            relu: Relu::new(),
            pool: AdaptiveAvgPool2dConfig::new([1, 1]).init(),
            classifier: LinearConfig::new(64, classes).init(device),
            projector: LinearConfig::new(64, 32).init(device),
            loss: ResComLossConfig::new(class_counts)
                .with_projection_dim(32)
                .with_mining(HardPairMinerConfig::scaled(classes, 10))
                .init(device)?,
        })
    }

    /// `[B, 1, 28, 28]` images to `[B, 64]` features.
    fn features(&self, images: Tensor<4>) -> Tensor<2> {
        let x = self
            .convs
            .iter()
            .zip(&self.norms)
            .fold(images, |x, (conv, norm)| {
                self.relu.forward(norm.forward(conv.forward(x)))
            });
        self.pool.forward(x).flatten(1, 3)
    }
}

impl TrainStep for Net {
    type Input = Batch;
    type Output = ClassificationOutput;

    /// A two-view batch (view 1 in rows `0..N`, view 2 in rows `N..2N`): Siamese Balanced
    /// Softmax plus the contrastive loss; the loss enqueues the step's view-1 keys.
    fn step(&self, batch: Batch) -> TrainOutput<ClassificationOutput> {
        let features = self.features(batch.images);
        let output = ResComLossInput {
            logits: self.classifier.forward(features.clone()),
            projections: self.projector.forward(features),
        };
        let logits = output.logits.clone();
        let loss = self
            .loss
            .forward(output, batch.labels.clone())
            .expect("batches of the loader are valid two-view batches");
        let grads = loss.total.backward();
        let item = ClassificationOutput::new(loss.total, logits, batch.labels);
        TrainOutput::new(self, grads, item)
    }
}

impl InferenceStep for Net {
    type Input = Batch;
    type Output = ClassificationOutput;

    /// Plain logits on the balanced test set.
    fn step(&self, batch: Batch) -> ClassificationOutput {
        let logits = self.classifier.forward(self.features(batch.images));
        let loss = CrossEntropyLossConfig::new()
            .init(&logits.device())
            .forward(logits.clone(), batch.labels.clone());
        ClassificationOutput::new(loss, logits, batch.labels)
    }
}

#[derive(Debug, Parser)]
#[command(about = "Train a small network of your own with ResComLoss on burn-train's Learner")]
struct Args {
    /// Epochs.
    #[arg(long, default_value_t = 4)]
    epochs: usize,
    /// Directory holding fashion-mnist/.
    #[arg(long, default_value = "data")]
    data_dir: std::path::PathBuf,
    /// Output directory (burn-train's logs and checkpoints).
    #[arg(long, default_value = "runs/learner")]
    out: std::path::PathBuf,
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = Args::parse();
    let device = Device::flex().autodiff();
    device.seed(0);
    let dir = args.data_dir.join("fashion-mnist");
    let full: Arc<dyn Dataset> = Arc::new(load_fashion_mnist(&dir, Split::Train)?);
    let train = LongTailed::new(full, ImbalanceProfile::Exponential, 100.0, Some(600), 0)?;
    let test = load_fashion_mnist(&dir, Split::Test)?;
    let loader = |batch| LoaderConfig::new(batch, 0);
    let train_loader = TwoViewLoader::new(
        Arc::new(train.subset),
        Pipeline::fashion_mnist_train(),
        loader(64),
        &device,
    )?;
    let eval = EvalLoader::new(
        Arc::new(test),
        Pipeline::fashion_mnist_eval(),
        loader(256),
        &device.clone().inner(),
    )?;
    let test_loader = eval.clone();

    let counts = train.counts.clone();
    let model = Net::new(train.counts, &device)?;
    let optimizer = SgdConfig::new()
        .with_momentum(Some(MomentumConfig::new().with_dampening(0.0)))
        .init();
    let result = SupervisedTraining::new(&args.out, Arc::new(train_loader), Arc::new(test_loader))
        .metrics((AccuracyMetric::new(), LossMetric::new()))
        .num_epochs(args.epochs)
        .launch(Learner::new(model, optimizer, 0.1));
    if let Some(error) = result.error {
        return Err(error.to_string().into());
    }

    // Long-tail accuracy of the trained model: top-1 and the shot groups.
    let mut accuracy = Accuracy::new(counts.len());
    for batch in eval.batches()? {
        let batch = batch?;
        let out = InferenceStep::step(&result.model, batch.clone());
        accuracy.update(out.output, &batch.host_labels)?;
    }
    let report = accuracy.report(&counts)?;
    let pct = |v: Option<f64>| v.map_or("-".into(), |v| format!("{:.2} %", 100.0 * v));
    println!(
        "test accuracy after {} epochs: top-1 {}, many-shot {}, medium-shot {}, few-shot {}",
        args.epochs,
        pct(Some(report.top1)),
        pct(report.many),
        pct(report.medium),
        pct(report.few)
    );
    Ok(())
}
