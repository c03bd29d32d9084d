//! One training step of a CIFAR ResNet-32 on 128 images of 3x32x32, two views each (256
//! rows): forward, loss, backward and an SGD step (momentum 0.9, weight decay 5e-4), then a
//! device sync. Shared by `benches/train_step.rs` (criterion) and `examples/gpu_check.rs`.
//!
//! - cross-entropy: the backbone and classifier with plain cross-entropy (no projection head);
//! - ResCom: backbone + ResCom head + `ResComLoss` (CIFAR-100 recipe: D = 32, K = 10,
//!   k_pos = 1, k_neg = 400), queue update included.

use burn::optim::{GradientsParams, ModuleOptimizer};
use burn::tensor::{Device, Distribution, Int, Tensor, TensorData};
use rescom::model::{ResComModel, ResComModelConfig};
use rescom::train::Network;
use rescom::{BalancedSoftmaxLoss, BalancedSoftmaxLossConfig, ResComLoss, ResComLossConfig, Rng};

/// Images per step (each gives two views).
pub const IMAGES: usize = 128;
const CLASSES: usize = 100;

/// The CIFAR-100-LT histogram (imbalance 100, 500 .. 5 images per class).
fn counts() -> Vec<usize> {
    (0..CLASSES)
        .map(|c| (500.0 * 100f64.powf(-(c as f64) / 99.0)).floor() as usize)
        .collect()
}

/// Random images and view-major labels of one step.
pub fn batch(device: &Device) -> (Tensor<4>, Tensor<1, Int>) {
    let mut rng = Rng::new(5);
    let view1: Vec<i64> = (0..IMAGES).map(|_| rng.index(CLASSES) as i64).collect();
    let labels: Vec<i64> = view1.iter().chain(&view1).copied().collect();
    let images = Tensor::random(
        [2 * IMAGES, 3, 32, 32],
        Distribution::Normal(0.0, 1.0),
        device,
    );
    let labels = Tensor::from_data(TensorData::new(labels, [2 * IMAGES]), device);
    (images, labels)
}

/// ResNet-32 with the ResCom head, 100 classes.
pub fn model(device: &Device) -> ResComModel {
    ResComModelConfig::new("resnet32".into(), CLASSES)
        .init(device)
        .expect("the ResNet-32 configuration is valid")
}

/// Plain cross-entropy: uniform counts make the prior shift a constant.
pub fn cross_entropy(device: &Device) -> BalancedSoftmaxLoss {
    BalancedSoftmaxLossConfig::new(vec![1; CLASSES])
        .init(device)
        .expect("uniform counts give plain cross-entropy")
}

/// The ResCom loss of the CIFAR-100 recipe.
pub fn rescom_loss(device: &Device) -> ResComLoss {
    ResComLossConfig::new(counts())
        .init(device)
        .expect("the CIFAR-100 recipe is valid")
}

/// One cross-entropy step.
pub fn cross_entropy_step(
    model: ResComModel,
    optimizer: &mut ModuleOptimizer,
    loss: &BalancedSoftmaxLoss,
    (images, labels): &(Tensor<4>, Tensor<1, Int>),
    device: &Device,
) -> ResComModel {
    let logits = model.forward_logits(images.clone());
    let value = loss.forward(logits, labels.clone()).expect("valid inputs");
    let grads = GradientsParams::from_grads(value.backward(), &model);
    let model = optimizer.step(0.1, model, grads);
    device.sync().expect("device");
    model
}

/// One ResCom step.
pub fn rescom_step(
    model: ResComModel,
    optimizer: &mut ModuleOptimizer,
    loss: &mut ResComLoss,
    (images, labels): &(Tensor<4>, Tensor<1, Int>),
    device: &Device,
) -> ResComModel {
    let (logits, projections) = model.forward_train(images.clone());
    let out = loss
        .forward(projections, logits, labels.clone())
        .expect("valid inputs");
    let grads = GradientsParams::from_grads(out.total.backward(), &model);
    let model = optimizer.step(0.1, model, grads);
    device.sync().expect("device");
    model
}
