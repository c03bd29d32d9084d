//! One training step of a CIFAR ResNet-32 on 128 images of 3x32x32, two views each (256
//! rows), run as the Learner runs it: the model's `TrainStep::step` (forward, loss, backward)
//! and its `optimize` hook (an SGD step: momentum 0.9, weight decay 5e-4), then a device sync
//! and the reads the run's metrics make after a step (the loss and, on the trusted path, the
//! finiteness flag). Shared by `benches/train_step.rs` (criterion) and
//! `examples/gpu_check.rs`.
//!
//! - cross-entropy: the backbone and classifier with plain cross-entropy (no projection head);
//! - ResCom: backbone + ResCom head + `ResComLoss` (CIFAR-100 recipe: D = 32, K = 10,
//!   k_pos = 1, k_neg = 400), queue update included.
//!
//! By default ([`StepChecks::Auto`]) the step checks its inputs where the training loop does
//! on the device: the trusted path on GPUs, the checked path on the CPU backends; [`path`]
//! names it.

use burn::optim::ModuleOptimizer;
use burn::tensor::{Device, Distribution, Tensor, TensorData};
use burn::train::TrainStep;
use rescom::data::Batch;
use rescom::model::{BackboneConfig, CifarResNetConfig, ResComModel, ResComModelConfig};
use rescom::train::{LongTailModel, Objective, StepChecks};
use rescom::{BalancedSoftmaxLoss, BalancedSoftmaxLossConfig, ResComLoss, ResComLossConfig, Rng};

/// Images per step (each gives two views).
pub const IMAGES: usize = 128;
const CLASSES: usize = 100;
/// The learning rate of every step.
const LR: f64 = 0.1;

/// A network with its objective, as the Learner trains it.
pub type StepModel = LongTailModel<ResComModel>;

/// The CIFAR-100-LT histogram (imbalance 100, 500 .. 5 images per class).
fn counts() -> Vec<usize> {
    (0..CLASSES)
        .map(|c| (500.0 * 100f64.powf(-(c as f64) / 99.0)).floor() as usize)
        .collect()
}

/// Random images and view-major labels of one step, with the labels' host copy, as the
/// loader delivers a batch.
pub fn batch(device: &Device) -> Batch {
    let mut rng = Rng::new(5);
    let view1: Vec<i64> = (0..IMAGES).map(|_| rng.index(CLASSES) as i64).collect();
    let host_labels: Vec<i64> = view1.iter().chain(&view1).copied().collect();
    let images = Tensor::random(
        [2 * IMAGES, 3, 32, 32],
        Distribution::Normal(0.0, 1.0),
        device,
    );
    let labels = Tensor::from_data(TensorData::new(host_labels.clone(), [2 * IMAGES]), device);
    Batch {
        images,
        labels,
        host_labels,
        images_in_batch: IMAGES,
    }
}

/// ResNet-32 with the ResCom head, 100 classes.
pub fn network(device: &Device) -> ResComModel {
    ResComModelConfig::new(BackboneConfig::Cifar(CifarResNetConfig::new(32)), CLASSES)
        .init(device)
        .expect("the ResNet-32 configuration is valid")
}

/// Plain cross-entropy: uniform counts make the prior shift a constant.
fn cross_entropy(device: &Device) -> BalancedSoftmaxLoss {
    BalancedSoftmaxLossConfig::new(vec![1; CLASSES])
        .init(device)
        .expect("uniform counts give plain cross-entropy")
}

/// The ResCom loss of the CIFAR-100 recipe.
fn rescom_loss(device: &Device) -> ResComLoss {
    ResComLossConfig::new(counts())
        .init(device)
        .expect("the CIFAR-100 recipe is valid")
}

/// `network` trained with plain cross-entropy, checking its steps as `checks` says.
pub fn cross_entropy_model(network: ResComModel, checks: StepChecks, device: &Device) -> StepModel {
    LongTailModel::new(network, Objective::Classifier(cross_entropy(device)))
        .with_step_checks(checks)
}

/// `network` trained with the ResCom loss of the CIFAR-100 recipe, checking its steps as
/// `checks` says.
pub fn rescom_model(network: ResComModel, checks: StepChecks, device: &Device) -> StepModel {
    LongTailModel::new(network, Objective::ResCom(rescom_loss(device))).with_step_checks(checks)
}

/// Whether a training step on `device` takes the trusted path (nothing read from the device
/// inside the step) under `checks`.
pub fn trusted(checks: StepChecks, device: &Device) -> bool {
    checks.on_host(device)
}

/// The name of the path a training step takes on `device` under `checks`.
pub fn path(checks: StepChecks, device: &Device) -> &'static str {
    if trusted(checks, device) {
        "trusted (labels checked on the host, finiteness flag read after the step)"
    } else {
        "checked (labels and finiteness read from the device inside the step)"
    }
}

/// One training step as the Learner runs it, then a device sync and the metrics' reads.
///
/// # Panics
/// When the step fails or its inputs were not finite: the timed work would not be a step.
pub fn step(
    model: StepModel,
    optimizer: &mut ModuleOptimizer,
    batch: &Batch,
    device: &Device,
) -> StepModel {
    let output = TrainStep::step(&model, batch.clone());
    if let Some(failure) = &output.item.failure {
        panic!("the training step failed: {failure}");
    }
    let model = model.optimize(optimizer, LR.into(), output.grads);
    device.sync().expect("device");
    let total = output.item.total.into_scalar::<f64>();
    let finite = output
        .item
        .inputs_finite
        .is_none_or(|flag| flag.into_scalar::<bool>());
    assert!(
        finite && total.is_finite(),
        "the training step gave a non-finite loss"
    );
    model
}
