//! The backbones and the ResCom network: shapes, parameter counts against the published
//! architectures, the option-A shortcut, initialisation, training and inference modes, and
//! saving and loading.

mod common;

use burn::module::{Module, ModuleVisitor, Param};
use burn::optim::{GradientsParams, SgdConfig};
use burn::tensor::{Device, Distribution, Int, Tensor};
use rescom::model::{
    Architecture, Backbone, CifarResNetConfig, ResComModel, ResComModelConfig, ResNetConfig,
};
use rescom::train::Network;
use rescom::{BalancedSoftmaxLossConfig, Error};

use common::to_vec;

/// Counts trainable weights: every float parameter that requires a gradient on an autodiff
/// device (batch-norm running statistics do not).
struct Trainable(usize);

impl ModuleVisitor for Trainable {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        if param.val().is_require_grad() {
            self.0 += param.lazy_shape().num_elements();
        }
    }
}

fn trainable<M: Module>(module: &M) -> usize {
    let mut counter = Trainable(0);
    module.visit(&mut counter);
    counter.0
}

/// Trainable weights of a CIFAR ResNet with `n` blocks per stage and width 16: stem, stage 1,
/// the first (downsampling) and other blocks of stages 2 and 3; option-A shortcuts add none.
fn cifar_resnet_weights(n: usize) -> usize {
    let block = |c_in: usize, c: usize| c_in * c * 9 + c * c * 9 + 4 * c;
    (3 * 16 * 9 + 32)
        + n * block(16, 16)
        + block(16, 32)
        + (n - 1) * block(32, 32)
        + block(32, 64)
        + (n - 1) * block(64, 64)
}

#[test]
fn cifar_resnets_have_the_published_sizes() {
    let device = Device::flex().autodiff();
    // ResNet-32 has 0.46M weights with its 100-way classifier (463,504 + 6,500).
    assert_eq!(cifar_resnet_weights(5), 463_504);
    for depth in [8, 20, 32, 56, 110] {
        let net = CifarResNetConfig::new(depth).init(&device).unwrap();
        assert_eq!(
            trainable(&net),
            cifar_resnet_weights((depth - 2) / 6),
            "ResNet-{depth}"
        );
    }
    let net = CifarResNetConfig::new(32).init(&device).unwrap();
    let features = net.forward(Tensor::zeros([2, 3, 32, 32], &device));
    assert_eq!(features.dims(), [2, 64]);
    let gray = CifarResNetConfig::new(20)
        .with_in_channels(1)
        .init(&device)
        .unwrap();
    assert_eq!(
        gray.forward(Tensor::zeros([3, 1, 28, 28], &device)).dims(),
        [3, 64]
    );
}

#[test]
fn imagenet_backbones_match_torchvision_parameter_counts() {
    let device = Device::flex().autodiff();
    // torchvision resnet50 / resnext50_32x4d without the 1000-way fc layer.
    let resnet = ResNetConfig::resnet50().init(&device).unwrap();
    assert_eq!(trainable(&resnet), 23_508_032);
    let resnext = ResNetConfig::resnext50_32x4d().init(&device).unwrap();
    assert_eq!(trainable(&resnext), 22_979_904);
    let plain = Device::flex();
    let resnet = ResNetConfig::resnet50().init(&plain).unwrap();
    assert_eq!(
        resnet.forward(Tensor::zeros([1, 3, 64, 64], &plain)).dims(),
        [1, 2048]
    );
}

#[test]
fn kaiming_initialisation_has_the_expected_spread() {
    let device = Device::flex();
    let net = CifarResNetConfig::new(56).init(&device).unwrap();
    struct Stds(Vec<(usize, f64)>);
    impl ModuleVisitor for Stds {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
            if D == 4 {
                let t = param.val();
                let dims = t.dims();
                let fan_in = dims[1] * dims[2] * dims[3];
                let v = to_vec(t);
                let mean = v.iter().sum::<f64>() / v.len() as f64;
                let var = v.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / v.len() as f64;
                self.0.push((fan_in, var.sqrt()));
            }
        }
    }
    let mut stds = Stds(Vec::new());
    net.visit(&mut stds);
    for (fan_in, std) in stds.0.iter().filter(|(f, _)| *f >= 144) {
        let expected = (2.0 / *fan_in as f64).sqrt();
        assert!(
            (std / expected - 1.0).abs() < 0.1,
            "fan-in {fan_in}: std {std} vs {expected}"
        );
    }
}

#[test]
fn architectures_parse_and_reject_unknown_names() {
    assert_eq!(
        "resnet32".parse::<Architecture>().unwrap(),
        Architecture::CifarResNet(32)
    );
    assert_eq!(
        "resnet50".parse::<Architecture>().unwrap(),
        Architecture::ResNet50
    );
    assert_eq!(
        "resnext50".parse::<Architecture>().unwrap(),
        Architecture::ResNeXt50
    );
    for bad in ["resnet33", "vgg16", "resnet2"] {
        assert!(
            matches!(
                bad.parse::<Architecture>(),
                Err(Error::InvalidConfig { .. })
            ),
            "{bad}"
        );
    }
    assert!(CifarResNetConfig::new(33).init(&Device::flex()).is_err());
    assert!(Backbone::new(Architecture::CifarResNet(20), 0, &Device::flex()).is_err());
}

fn small_model(device: &Device) -> ResComModel {
    ResComModelConfig::new("resnet8".into(), 3)
        .with_in_channels(1)
        .with_projection_dim(8)
        .init(device)
        .unwrap()
}

#[test]
fn sgd_steps_reduce_the_loss_and_inference_uses_running_statistics() {
    let device = Device::flex().autodiff();
    device.seed(1);
    let mut model = small_model(&device);
    let images = Tensor::<4>::random([12, 1, 12, 12], Distribution::Normal(0.0, 1.0), &device);
    let labels = Tensor::<1, Int>::from_ints([0, 1, 2, 0, 1, 2, 0, 1, 2, 0, 1, 2], &device);
    let loss_fn = BalancedSoftmaxLossConfig::new(vec![10, 10, 10])
        .init(&device)
        .unwrap();
    let mut optim = SgdConfig::new().init();
    let mut losses = Vec::new();
    for _ in 0..8 {
        let (logits, _) = model.forward_train(images.clone());
        let loss = loss_fn.forward(logits, labels.clone()).unwrap();
        losses.push(common::scalar(loss.clone()));
        let grads = GradientsParams::from_grads(loss.backward(), &model);
        model = optim.step(0.05, model, grads);
    }
    assert!(losses.last().unwrap() < &losses[0], "{losses:?}");

    // Inference mode: deterministic per sample (no batch statistics).
    let valid = model.valid();
    let batch = images.clone().without_autodiff();
    let all = to_vec(valid.forward_logits(batch.clone()));
    let one = to_vec(valid.forward_logits(batch.narrow(0, 0, 1)));
    for (a, b) in all.iter().zip(&one) {
        assert!((a - b).abs() < 1e-5, "{a} vs {b}");
    }
}

#[test]
fn records_round_trip_exactly() {
    let device = Device::flex();
    let model = small_model(&device);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("model.bpk");
    model.clone().save_file(&path).unwrap();
    device.seed(99);
    let other = small_model(&device);
    let images = Tensor::<4>::random([2, 1, 10, 10], Distribution::Normal(0.0, 1.0), &device);
    let before = to_vec(model.logits(images.clone()));
    assert_ne!(to_vec(other.logits(images.clone())), before);
    let loaded = other.try_load_file(&path).unwrap();
    assert_eq!(to_vec(loaded.logits(images)), before);
}
