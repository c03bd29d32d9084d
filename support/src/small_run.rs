//! A tiny training run: a small network with the kinds of state a real one has, a synthetic
//! 4x4 dataset of three classes, its loaders and a ResCom configuration. Shared by
//! `tests/damaged_files.rs` and the fuzz example's checkpoint target, which both need a real
//! run directory to damage.

use std::sync::Arc;

use burn::module::Module;
use burn::nn::{BatchNorm, BatchNormConfig, Linear, LinearConfig};
use burn::tensor::{Device, Tensor};
use rescom::data::{
    Dataset, EvalLoader, InMemoryDataset, LoaderConfig, Pipeline, Step, TwoViewLoader,
};
use rescom::run::RunData;
use rescom::train::{LrSchedule, Method, ResComNetwork, TrainConfig};
use rescom::{HardPairMinerConfig, ResComLossConfig};
use rescom::{ResComLossInput, Result, Rng};

/// Image side.
pub const SIDE: usize = 4;
/// Number of classes.
pub const CLASSES: usize = 3;

/// A small network with weights, batch-norm running statistics and a projection head.
#[derive(Module, Debug)]
pub struct Small {
    body: Linear,
    norm: BatchNorm,
    classifier: Linear,
    projection: Linear,
}

impl Small {
    /// The same weights in every process.
    pub fn new(device: &Device) -> Self {
        device.seed(7);
        Self {
            body: LinearConfig::new(SIDE * SIDE, 8).init(device),
            norm: BatchNormConfig::new(8).init(device),
            classifier: LinearConfig::new(8, CLASSES).init(device),
            projection: LinearConfig::new(8, 4).init(device),
        }
    }

    fn features(&self, images: Tensor<4>) -> Tensor<2> {
        let [b, ..] = images.dims();
        let x = self.body.forward(images.reshape([b, SIDE * SIDE]));
        let x = self.norm.forward(x.reshape([b, 8, 1])).reshape([b, 8]);
        burn::tensor::activation::relu(x)
    }
}

impl ResComNetwork for Small {
    fn heads(&self, images: Tensor<4>) -> ResComLossInput {
        let f = self.features(images);
        ResComLossInput {
            logits: self.classifier.forward(f.clone()),
            projections: self.projection.forward(f),
        }
    }

    fn logits(&self, images: Tensor<4>) -> Tensor<2> {
        self.classifier.forward(self.features(images))
    }
}

/// `counts[c]` noisy 4x4 images of class `c`, a bright row `c` each.
pub fn synthetic(counts: &[usize], seed: u64) -> Result<Arc<dyn Dataset>> {
    let mut rng = Rng::new(seed);
    let (mut pixels, mut labels) = (Vec::new(), Vec::new());
    for (c, &n) in counts.iter().enumerate() {
        for _ in 0..n {
            for p in 0..SIDE * SIDE {
                let base = if p / SIDE == c { 220.0 } else { 40.0 };
                pixels.push((base + 25.0 * rng.normal()).clamp(0.0, 255.0) as u8);
            }
            labels.push(c);
        }
    }
    Ok(Arc::new(InMemoryDataset::new(
        1, SIDE, SIDE, pixels, labels, CLASSES,
    )?))
}

/// Batches of 6 images, seed 3, one worker.
pub fn loader_config() -> LoaderConfig {
    let mut config = LoaderConfig::new(6, 3);
    config.workers = 1;
    config
}

/// The test loader: 4 images per class, on `device` (without autodiff).
pub fn eval_loader(device: &Device) -> Result<EvalLoader> {
    let eval = Pipeline::normalize_only((1, SIDE, SIDE), &[0.3], &[0.3])?;
    EvalLoader::new(synthetic(&[4, 4, 4], 2)?, eval, loader_config(), device)
}

/// The training loader (counts 8, 4, 2; flips) on `device` (with autodiff) and the test loader.
pub fn run_data(device: &Device) -> Result<RunData> {
    let train = Pipeline::new(
        vec![Step::HorizontalFlip { p: 0.5 }],
        None,
        &[0.3],
        &[0.3],
        (1, SIDE, SIDE),
    )?;
    Ok(RunData {
        train: TwoViewLoader::new(synthetic(&[8, 4, 2], 1)?, train, loader_config(), device)?,
        test: eval_loader(&device.clone().inner())?,
    })
}

/// ResCom with a queue of 2 keys per class, 1 hard positive and 2 hard negatives, for
/// `epochs` epochs, evaluated after each.
pub fn run_config(epochs: usize, dataset: &str) -> TrainConfig {
    TrainConfig {
        method: Method::ResCom,
        loss: ResComLossConfig::new(vec![8, 4, 2])
            .with_projection_dim(4)
            .with_queue_per_class(2)
            .with_mining(HardPairMinerConfig::new().with_hard_negatives(2)),
        epochs,
        schedule: LrSchedule::cifar_recipe(0.05, epochs),
        momentum: 0.9,
        weight_decay: 5e-4,
        seed: 3,
        eval_every: 1,
        dataset: dataset.into(),
    }
}
