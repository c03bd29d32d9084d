//! The backbones and the ResCom network: outputs against PyTorch/torchvision with the same
//! weights, parameter counts against the published architectures, the option-A shortcut,
//! initialisation, training and inference modes, and saving and loading.
//!
//! # Reference values
//!
//! The `*_REFERENCE` constants come from PyTorch 2.15 / torchvision 0.29 (CPU). Every float
//! tensor of the state dict, in order and skipping `num_batches_tracked`, is filled from one
//! stream `u(i)` (see [`uniform`]): weights of rank >= 2 with `(2u - 1) * sqrt(6 / fan_in)`,
//! batch-norm scales and running variances with `0.5 + u`, biases, batch-norm shifts and
//! running means with `0.2 * (u - 0.5)`. Images are `2 u(2^40 + i) - 1`. Each mode starts
//! from freshly filled tensors (a training pass moves the running statistics).
//!
//! ```python
//! import numpy as np, torch, torch.nn as nn, torch.nn.functional as F, torchvision
//! def uniform(start, n):
//!     x = (np.arange(n, dtype=np.uint64) + np.uint64(start)) * np.uint64(0x9E3779B97F4A7C15)
//!     x ^= x >> np.uint64(30); x *= np.uint64(0xBF58476D1CE4E5B9)
//!     x ^= x >> np.uint64(27); x *= np.uint64(0x94D049BB133111EB)
//!     x ^= x >> np.uint64(31)
//!     return (x >> np.uint64(40)).astype(np.float64) / float(1 << 24)
//! def fill(model):
//!     i = 0
//!     for name, t in model.state_dict().items():
//!         if name.endswith("num_batches_tracked"): continue
//!         u = uniform(i, t.numel()); i += t.numel()
//!         if t.dim() >= 2: v = (2 * u - 1) * np.sqrt(6.0 / int(np.prod(t.shape[1:])))
//!         elif name.endswith("running_var") or name.endswith("weight"): v = 0.5 + u
//!         else: v = 0.2 * (u - 0.5)
//!         t.copy_(torch.from_numpy(v.astype(np.float32)).reshape(t.shape))
//! def images(shape):
//!     n = int(np.prod(shape))
//!     return torch.from_numpy((2 * uniform(1 << 40, n) - 1).astype(np.float32)).reshape(shape)
//! class LambdaLayer(nn.Module):
//!     def __init__(self, f): super().__init__(); self.f = f
//!     def forward(self, x): return self.f(x)
//! class BasicBlock(nn.Module):  # LDAM-DRW / ResCom resnet_cifar.py, option A
//!     def __init__(self, inp, planes, stride=1):
//!         super().__init__()
//!         self.conv1 = nn.Conv2d(inp, planes, 3, stride, 1, bias=False)
//!         self.bn1 = nn.BatchNorm2d(planes)
//!         self.conv2 = nn.Conv2d(planes, planes, 3, 1, 1, bias=False)
//!         self.bn2 = nn.BatchNorm2d(planes)
//!         self.shortcut = nn.Sequential()
//!         if stride != 1 or inp != planes:
//!             self.shortcut = LambdaLayer(lambda x: F.pad(x[:, :, ::2, ::2],
//!                 (0, 0, 0, 0, planes // 4, planes // 4), "constant", 0))
//!     def forward(self, x):
//!         out = F.relu(self.bn1(self.conv1(x)))
//!         return F.relu(self.bn2(self.conv2(out)) + self.shortcut(x))
//! class ResNetS(nn.Module):
//!     def __init__(self, n, in_ch=3):
//!         super().__init__()
//!         self.conv1 = nn.Conv2d(in_ch, 16, 3, 1, 1, bias=False); self.bn1 = nn.BatchNorm2d(16)
//!         layers, inp = [], 16
//!         for planes, stride in [(16, 1), (32, 2), (64, 2)]:
//!             for s in [stride] + [1] * (n - 1):
//!                 layers.append(BasicBlock(inp, planes, s)); inp = planes
//!         self.layers = nn.Sequential(*layers)
//!     def forward(self, x):
//!         out = self.layers(F.relu(self.bn1(self.conv1(x))))
//!         return F.adaptive_avg_pool2d(out, 1).flatten(1)
//! class Model(nn.Module):  # backbone + ResCom head, in the order of the Rust fields
//!     def __init__(self, backbone, feat, hidden, dim, classes):
//!         super().__init__()
//!         self.backbone = backbone
//!         self.hidden = nn.Linear(feat, hidden); self.norm = nn.BatchNorm1d(hidden)
//!         self.projection = nn.Linear(hidden, dim); self.classifier = nn.Linear(feat, classes)
//!     def forward(self, x):
//!         f = self.backbone(x)
//!         return self.classifier(f), self.projection(F.relu(self.norm(self.hidden(f))))
//! def stats(t):
//!     t = t.double(); return [float(v) for v in (t.sum(), (t * t).sum(), t[0, 0], t[-1, -1])]
//! def run(net, x):  # training mode, then inference mode
//!     for mode in [True, False]:
//!         fill(net); net.train(mode)
//!         with torch.no_grad(): out = net(x)
//!         print(mode, [stats(t) for t in (out if isinstance(out, tuple) else (out,))])
//! run(Model(ResNetS(3, 3), 64, 64, 32, 10), images([4, 3, 32, 32]))   # logits, projections
//! run(ResNetS(3, 1), images([2, 1, 28, 28]))                           # features
//! for arch in [torchvision.models.resnet50, torchvision.models.resnext50_32x4d]:
//!     net = arch(); net.fc = nn.Identity(); run(net, images([2, 3, 64, 64]))
//! ```

mod common;

use burn::module::{Module, ModuleMapper, ModuleVisitor, Param};
use burn::optim::momentum::MomentumConfig;
use burn::optim::{GradientsParams, SgdConfig};
use burn::tensor::{Device, Distribution, Int, Tensor, TensorData};
use rescom::model::{
    Architecture, BackboneConfig, CifarResNet, CifarResNetConfig, ResComHeadConfig, ResComModel,
    ResComModelConfig, ResNetConfig,
};
use rescom::{BalancedSoftmaxLossConfig, Error};

use common::{fill, to_vec, uniform};

// ----- helpers ------------------------------------------------------------------------------

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

/// Every float tensor with its module path (`blocks.3.norm2.gamma`), values on the host.
struct Collect(Vec<String>, Vec<(String, Vec<usize>, Vec<f64>)>);

impl ModuleVisitor for Collect {
    fn enter_module(&mut self, name: &str, _: &str) {
        self.0.push(name.to_string());
    }
    fn exit_module(&mut self, _: &str, _: &str) {
        self.0.pop();
    }
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        let t = param.val();
        self.1
            .push((self.0.join("."), t.dims().to_vec(), to_vec(t)));
    }
}

fn tensors<M: Module>(module: &M) -> Vec<(String, Vec<usize>, Vec<f64>)> {
    let mut c = Collect(Vec::new(), Vec::new());
    module.visit(&mut c);
    c.1
}

/// The reference images `2 u(2^40 + i) - 1`.
fn reference_images(shape: [usize; 4], device: &Device) -> Tensor<4> {
    let n: usize = shape.iter().product();
    let values: Vec<f32> = (0..n as u64)
        .map(|i| (2.0 * uniform((1 << 40) + i) - 1.0) as f32)
        .collect();
    Tensor::from_data(TensorData::new(values, shape), device)
}

/// `[sum, sum of squares, first element, last element]`.
fn stats(t: Tensor<2>) -> [f64; 4] {
    let v = to_vec(t);
    [
        v.iter().sum(),
        v.iter().map(|x| x * x).sum(),
        v[0],
        v[v.len() - 1],
    ]
}

/// Float32 against PyTorch's float32: relative 2e-4, absolute 1e-3 of the RMS (sums of
/// mixed-sign values can be small).
fn assert_matches(what: &str, actual: [f64; 4], expected: [f64; 4], rows: usize, cols: usize) {
    let rms = (expected[1] / (rows * cols) as f64).sqrt();
    for (k, (a, e)) in actual.iter().zip(expected).enumerate() {
        let tolerance = 2e-4 * e.abs() + 1e-3 * rms * if k == 0 { rows as f64 } else { 1.0 };
        assert!(
            (a - e).abs() <= tolerance,
            "{what} statistic {k}: {a} vs PyTorch {e} (actual {actual:?})"
        );
    }
}

fn plain() -> Device {
    Device::flex()
}

fn training() -> Device {
    Device::flex().autodiff()
}

// ----- agreement with PyTorch ---------------------------------------------------------------

/// ResNet-20 + head (64 -> 64 -> BN -> ReLU -> 32, 10 classes), batch 4 of 3x32x32.
const MODEL20_REFERENCE: [[[f64; 4]; 2]; 2] = [
    // training mode: logits, projections
    [
        [-64.7232785, 212.100655, -2.95948839, -1.40631044],
        [-28.297099, 170.389622, -0.264471442, -0.833508253],
    ],
    // inference mode
    [
        [-414.583286, 17011.0596, -6.73246241, 11.2971411],
        [-576.839067, 143167.901, -21.4623756, -36.2855225],
    ],
];

/// ResNet-20 features, batch 2 of 1x28x28 (odd 7x7 maps in the last downsampling).
const GRAY20_REFERENCE: [[f64; 4]; 2] = [
    [166.816015, 248.381527, 0.958944499, 1.01309776],
    [3200.01047, 136691.428, 38.2797356, 57.4460754],
];

/// torchvision ResNet-50 / ResNeXt-50 32x4d features, batch 2 of 3x64x64.
const RESNET50_REFERENCE: [[f64; 4]; 2] = [
    [4438.60125, 5829.8401, 1.22731209, 1.32489812],
    [11381743.7, 6.03348695e10, 957.061768, 2599.75586],
];
const RESNEXT50_REFERENCE: [[f64; 4]; 2] = [
    [4417.11423, 5707.16505, 0.951004207, 1.42497444],
    [12026501.4, 6.74526593e10, 3906.06787, 330.518524],
];

#[test]
fn resnet20_with_head_matches_pytorch_in_both_modes() {
    let model = fill(
        ResComModelConfig::new("resnet20".parse().unwrap(), 10)
            .init(&training())
            .unwrap(),
    );
    // Inference first: a training pass would move the running statistics.
    let inference = model.valid();
    let out = inference.forward(reference_images([4, 3, 32, 32], &plain()));
    assert_matches(
        "eval logits",
        stats(out.logits),
        MODEL20_REFERENCE[1][0],
        4,
        10,
    );
    assert_matches(
        "eval projections",
        stats(out.projections),
        MODEL20_REFERENCE[1][1],
        4,
        32,
    );
    let out = model.forward(reference_images([4, 3, 32, 32], &training()));
    assert_matches(
        "train logits",
        stats(out.logits),
        MODEL20_REFERENCE[0][0],
        4,
        10,
    );
    assert_matches(
        "train projections",
        stats(out.projections),
        MODEL20_REFERENCE[0][1],
        4,
        32,
    );
}

#[test]
fn resnet20_on_28x28_gray_images_matches_pytorch() {
    let net = fill(
        CifarResNetConfig::new(20)
            .with_in_channels(1)
            .init(&training())
            .unwrap(),
    );
    let eval = net
        .valid()
        .forward(reference_images([2, 1, 28, 28], &plain()));
    assert_matches("eval", stats(eval), GRAY20_REFERENCE[1], 2, 64);
    let train = net.forward(reference_images([2, 1, 28, 28], &training()));
    assert_matches("train", stats(train), GRAY20_REFERENCE[0], 2, 64);
}

/// Parameter counts (torchvision without the fc layer), the fan-out initialisation, and the
/// outputs with the reference weights.
#[test]
fn resnet50_and_resnext50_match_torchvision() {
    for (name, config, weights, reference) in [
        (
            "resnet50",
            ResNetConfig::resnet50(),
            23_508_032,
            RESNET50_REFERENCE,
        ),
        (
            "resnext50_32x4d",
            ResNetConfig::resnext50_32x4d(),
            22_979_904,
            RESNEXT50_REFERENCE,
        ),
    ] {
        let net = config.init(&training()).unwrap();
        assert_eq!(trainable(&net), weights, "{name}");
        assert_eq!(net.feature_dim(), 2048);
        // Kaiming-normal, fan-out = out_channels * k * k (groups ignored, as PyTorch).
        let mut checked = 0;
        for (path, dims, values) in tensors(&net) {
            if dims.len() == 4 && values.len() >= 65_536 {
                let expected = (2.0 / (dims[0] * dims[2] * dims[3]) as f64).sqrt();
                let std = (values.iter().map(|v| v * v).sum::<f64>() / values.len() as f64).sqrt();
                assert!((std / expected - 1.0).abs() < 0.03, "{name} {path}: {std}");
                checked += 1;
            }
        }
        assert!(checked > 20, "{name}: {checked}");

        let net = fill(net);
        let eval = net
            .valid()
            .forward(reference_images([2, 3, 64, 64], &plain()));
        assert_matches(&format!("{name} eval"), stats(eval), reference[1], 2, 2048);
        let train = net.forward(reference_images([2, 3, 64, 64], &training()));
        assert_matches(
            &format!("{name} train"),
            stats(train),
            reference[0],
            2,
            2048,
        );
    }
}

// ----- sizes and shapes ---------------------------------------------------------------------

/// Trainable weights of a CIFAR ResNet with `n` blocks per stage and width 16: stem, stage 1,
/// the first (downsampling) and other blocks of stages 2 and 3; option-A shortcuts add none.
fn cifar_resnet_weights(n: usize, in_channels: usize) -> usize {
    let block = |c_in: usize, c: usize| c_in * c * 9 + c * c * 9 + 4 * c;
    (in_channels * 16 * 9 + 32)
        + n * block(16, 16)
        + block(16, 32)
        + (n - 1) * block(32, 32)
        + block(32, 64)
        + (n - 1) * block(64, 64)
}

#[test]
fn configurations_count_the_values_of_the_networks_they_build() {
    let device = training();
    let mut configs: Vec<ResComModelConfig> = Vec::new();
    for depth in [8, 20, 32, 110] {
        for (width, in_channels) in [(16, 3), (4, 1), (6, 2)] {
            let backbone = CifarResNetConfig::new(depth)
                .with_width(width)
                .with_in_channels(in_channels);
            configs.push(ResComModelConfig::new(BackboneConfig::Cifar(backbone), 10));
        }
    }
    for backbone in [
        ResNetConfig::resnet50(),
        ResNetConfig::resnext50_32x4d().with_in_channels(1),
        ResNetConfig::new()
            .with_layers([1, 2, 1, 3])
            .with_groups(2)
            .with_width_per_group(8),
    ] {
        configs.push(
            ResComModelConfig::new(BackboneConfig::ImageNet(backbone), 1000)
                .with_projection_dim(128)
                .with_hidden_dim(Some(512)),
        );
    }
    for config in configs {
        let built = config.init(&device).unwrap().num_params();
        assert_eq!(config.num_params(), Some(built), "{config:?}");
    }
    // Sizes beyond usize are None, not a wrapped count.
    let huge = |backbone| ResComModelConfig::new(backbone, 10).num_params();
    let cifar =
        |depth, width| BackboneConfig::Cifar(CifarResNetConfig::new(depth).with_width(width));
    assert_eq!(huge(cifar(usize::MAX - 3, 16)), None);
    assert_eq!(huge(cifar(20, usize::MAX / 2)), None);
    let layers = ResNetConfig::new().with_layers([3, usize::MAX, 6, 3]);
    assert_eq!(huge(BackboneConfig::ImageNet(layers)), None);
    let groups = ResNetConfig::new().with_groups(usize::MAX);
    assert_eq!(huge(BackboneConfig::ImageNet(groups)), None);
    let wide = ResComModelConfig::new(cifar(20, 16), 10).with_hidden_dim(Some(usize::MAX));
    assert_eq!(wide.num_params(), None);
}

#[test]
fn cifar_resnets_have_the_published_sizes_and_shapes() {
    // PyTorch counts of the LDAM-DRW/ResCom `resnet_cifar.py` backbones (no classifier):
    // 0.27M, 0.46M, 0.66M, 0.85M, 1.7M in He et al. (2016), table 6.
    for (depth, weights) in [
        (20, 269_072),
        (32, 463_504),
        (44, 657_936),
        (56, 852_368),
        (110, 1_727_312),
    ] {
        assert_eq!(cifar_resnet_weights((depth - 2) / 6, 3), weights);
        let config: BackboneConfig = format!("resnet{depth}").parse().unwrap();
        let net = config.init(&training()).unwrap();
        assert_eq!(trainable(&net), weights, "ResNet-{depth}");
        assert_eq!(net.feature_dim(), 64);
        let net = net.valid();
        assert_eq!(
            net.forward(Tensor::zeros([2, 3, 32, 32], &plain())).dims(),
            [2, 64],
            "ResNet-{depth}"
        );
    }
    let gray = CifarResNetConfig::new(32)
        .with_in_channels(1)
        .init(&training())
        .unwrap();
    assert_eq!(trainable(&gray), cifar_resnet_weights(5, 1));
    assert_eq!(gray.in_channels(), 1);
    // Any size >= 1 works; 8x8 and odd sizes included.
    let gray = gray.valid();
    for size in [28, 9, 8, 5] {
        let images = Tensor::zeros([3, 1, size, size], &plain());
        assert_eq!(gray.forward(images).dims(), [3, 64], "{size}x{size}");
    }
    // A narrow network for quick demonstrations.
    let narrow = CifarResNetConfig::new(20)
        .with_width(4)
        .init(&plain())
        .unwrap();
    assert_eq!(narrow.feature_dim(), 16);
    assert_eq!(
        narrow
            .forward(Tensor::zeros([2, 3, 32, 32], &plain()))
            .dims(),
        [2, 16]
    );
}

#[test]
fn rescom_models_produce_logits_projections_and_features() {
    let cases = [
        ("resnet32", 3, 32, 100, 32, 64),
        ("resnet20", 1, 28, 10, 16, 64),
    ];
    for (arch, channels, size, classes, dim, features) in cases {
        let backbone = arch.parse::<BackboneConfig>().unwrap();
        let model = ResComModelConfig::new(backbone.with_in_channels(channels), classes)
            .with_projection_dim(dim)
            .init(&training())
            .unwrap();
        let images = Tensor::random(
            [4, channels, size, size],
            Distribution::Normal(0.0, 1.0),
            &training(),
        );
        model.check_input(images.dims()).unwrap();
        let out = model.forward(images.clone());
        assert_eq!(out.logits.dims(), [4, classes], "{arch}");
        assert_eq!(out.projections.dims(), [4, dim], "{arch}");
        assert_eq!(
            model.backbone.forward(images.clone()).dims(),
            [4, features],
            "{arch}"
        );
        assert_eq!(model.logits(images).dims(), [4, classes]);
        assert_eq!(model.head.feature_dim(), features);
        assert_eq!(model.head.num_classes(), classes);
        assert_eq!(model.head.projection_dim(), dim);
    }
    // ImageNet-sized backbone and head (2048 -> 2048 -> BN -> ReLU -> 128) on a small image.
    let model = ResComModelConfig::new("resnext50".parse().unwrap(), 5)
        .with_projection_dim(128)
        .init(&training())
        .unwrap();
    let valid = model.valid();
    let out = valid.forward(Tensor::zeros([1, 3, 32, 32], &plain()));
    let features = valid
        .backbone
        .forward(Tensor::zeros([1, 3, 32, 32], &plain()));
    assert_eq!(
        (out.logits.dims(), out.projections.dims(), features.dims()),
        ([1, 5], [1, 128], [1, 2048])
    );
    let head = (2048 * 2048 + 2048) + 2 * 2048 + (2048 * 128 + 128) + (2048 * 5 + 5);
    assert_eq!(trainable(&model.head), head);
}

// ----- the option-A shortcut ----------------------------------------------------------------

/// Sets the stem to copy input channel 0 into every channel and silences the residual branch
/// of every block (last batch-norm scale and shift 0), so each block is `relu(shortcut(x))`.
struct ShortcutsOnly(Vec<String>);

impl ModuleMapper for ShortcutsOnly {
    fn enter_module(&mut self, name: &str, _: &str) {
        self.0.push(name.to_string());
    }
    fn exit_module(&mut self, _: &str, _: &str) {
        self.0.pop();
    }
    fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
        let path = self.0.join(".");
        if path == "stem.weight" {
            param.map(|w| {
                let [out, inp, kh, kw] = [w.dims()[0], w.dims()[1], w.dims()[2], w.dims()[3]];
                let mut v = vec![0.0f32; out * inp * kh * kw];
                for o in 0..out {
                    v[o * inp * kh * kw + kw + 1] = 1.0; // channel 0, centre tap
                }
                Tensor::from_data(TensorData::new(v, w.dims()), &w.device())
            })
        } else if path.ends_with("norm2.gamma") || path.ends_with("norm2.beta") {
            param.map(|t| t.zeros_like())
        } else {
            param
        }
    }
}

#[test]
fn option_a_shortcut_subsamples_and_pads_with_exact_zeros() {
    // Depth 8 (one block per stage), width 16: stage 2 pads 8 zero channels on each side of
    // 16, stage 3 pads 16 on each side of 32, so only features 24..40 carry the input.
    let net: CifarResNet = CifarResNetConfig::new(8)
        .with_in_channels(1)
        .init(&plain())
        .unwrap()
        .map(&mut ShortcutsOnly(Vec::new()));
    let images = Tensor::<4>::random([2, 1, 12, 12], Distribution::Uniform(0.5, 1.5), &plain());
    let features = to_vec(net.forward(images.clone()));
    // Two stride-2 subsamplings keep pixels 0, 4, 8 of each axis; the stem's inference batch
    // norm divides by sqrt(1 + 1e-5).
    let kept = to_vec(images.slice(burn::tensor::s![.., .., ..;4, ..;4]));
    let scale = 1.0 / (1.0 + 1e-5f64).sqrt();
    for b in 0..2 {
        let mean = kept[b * 9..(b + 1) * 9].iter().sum::<f64>() / 9.0 * scale;
        for c in 0..64 {
            let f = features[b * 64 + c];
            if (24..40).contains(&c) {
                assert!(
                    (f - mean).abs() < 1e-5 * mean,
                    "image {b} channel {c}: {f} vs {mean}"
                );
            } else {
                assert_eq!(f, 0.0, "image {b} channel {c} must be exactly zero");
            }
        }
    }
}

// ----- initialisation -----------------------------------------------------------------------

#[test]
fn initialisation_follows_pytorch() {
    let model = ResComModelConfig::new("resnet56".parse().unwrap(), 100)
        .init(&plain())
        .unwrap();
    let std_of = |values: &[f64]| {
        let n = values.len() as f64;
        let mean = values.iter().sum::<f64>() / n;
        (values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / n).sqrt()
    };
    // Convolutions: Kaiming-normal, fan-in, gain sqrt(2). Each layer loosely (a wrong fan or
    // gain is off by 40% or more), all layers pooled tightly (~850k draws).
    let (mut convs, mut squares, mut draws) = (0, 0.0, 0usize);
    let (mut linears, mut head_squares, mut head_draws) = (0, 0.0, 0usize);
    for (path, dims, values) in tensors(&model) {
        if path.ends_with(".gamma") || path.ends_with("running_var") {
            assert!(values.iter().all(|&v| v == 1.0), "{path}");
        } else if path.ends_with(".beta") || path.ends_with("running_mean") {
            assert!(values.iter().all(|&v| v == 0.0), "{path}");
        } else if dims.len() == 4 {
            let expected = (2.0 / (dims[1] * dims[2] * dims[3]) as f64).sqrt();
            let std = std_of(&values);
            assert!(
                (std / expected - 1.0).abs() < 0.15,
                "{path}: {std} vs {expected}"
            );
            squares += values.iter().map(|v| (v / expected).powi(2)).sum::<f64>();
            draws += values.len();
            convs += 1;
        } else if dims.len() == 2 || path.ends_with("bias") {
            // The head's linear layers (all with fan-in 64): PyTorch's `nn.Linear` default,
            // weight and bias uniform in +-1/sqrt(64), standard deviation bound/sqrt(3).
            // (Kaiming-normal would have a standard deviation 2.45 times larger.)
            let bound = 1.0 / 64f64.sqrt();
            let largest = values.iter().fold(0f64, |m, v| m.max(v.abs()));
            assert!(largest <= bound, "{path}: |w| up to {largest}");
            let ratio = std_of(&values) / (bound / 3f64.sqrt());
            let tolerance = if dims.len() == 2 { 0.05 } else { 0.4 };
            assert!((ratio - 1.0).abs() < tolerance, "{path}: std ratio {ratio}");
            head_squares += values.iter().map(|v| (v / bound).powi(2)).sum::<f64>();
            head_draws += values.len();
            linears += 1;
        } else {
            panic!("unexpected tensor {path} {dims:?}");
        }
    }
    assert_eq!(
        linears, 6,
        "weights and biases of hidden, projection and classifier"
    );
    // Uniform on [-1, 1] has a mean square of 1/3 (~13k draws pooled).
    let pooled = head_squares / head_draws as f64;
    assert!(
        (pooled * 3.0 - 1.0).abs() < 0.04,
        "head mean square {pooled}"
    );
    assert_eq!(
        convs, 55,
        "the stem and the 3x3 convolutions of the 27 blocks"
    );
    let pooled = (squares / draws as f64).sqrt();
    assert!((pooled - 1.0).abs() < 0.01, "pooled std ratio {pooled}");
}

#[test]
fn zero_init_residual_zeroes_the_last_norm_of_each_block() {
    for zero in [false, true] {
        let net = ResNetConfig::resnet50()
            .with_zero_init_residual(zero)
            .init(&plain())
            .unwrap();
        let mut last = 0;
        for (path, _, values) in tensors(&net) {
            if path.ends_with(".gamma") {
                let expected = if zero && path.ends_with("norm3.gamma") {
                    0.0
                } else {
                    1.0
                };
                last += usize::from(path.ends_with("norm3.gamma"));
                assert!(values.iter().all(|&v| v == expected), "{path}");
            }
        }
        assert_eq!(last, 16, "one per bottleneck");
    }
    let backbone = BackboneConfig::ImageNet(ResNetConfig::resnet50().with_zero_init_residual(true))
        .init(&plain())
        .unwrap();
    let zeros = tensors(&backbone)
        .into_iter()
        .filter(|(p, _, v)| p.ends_with("gamma") && v.iter().all(|&x| x == 0.0))
        .count();
    assert_eq!(zeros, 16);
}

// ----- configuration ------------------------------------------------------------------------

#[test]
fn architectures_parse_print_and_reject_unknown_names() {
    for (name, arch) in [
        ("resnet20", Architecture::CifarResNet(20)),
        ("resnet32", Architecture::CifarResNet(32)),
        ("resnet44", Architecture::CifarResNet(44)),
        ("resnet56", Architecture::CifarResNet(56)),
        ("resnet110", Architecture::CifarResNet(110)),
        ("resnet50", Architecture::ResNet50),
        ("resnext50", Architecture::ResNeXt50),
        ("cifar_resnet50", Architecture::CifarResNet(50)),
    ] {
        assert_eq!(name.parse::<Architecture>().unwrap(), arch);
        assert_eq!(arch.to_string(), name);
        let json = serde_json::to_string(&arch).unwrap();
        assert_eq!(json, format!("\"{name}\""));
        assert_eq!(serde_json::from_str::<Architecture>(&json).unwrap(), arch);
    }
    assert_eq!(
        "resnext50_32x4d".parse::<Architecture>().unwrap(),
        Architecture::ResNeXt50
    );
    for bad in [
        "resnet33",
        "vgg16",
        "resnet2",
        "resnet",
        "resnet+20",
        "ResNet32",
        "",
    ] {
        assert!(
            matches!(
                bad.parse::<Architecture>(),
                Err(Error::InvalidConfig {
                    field: "architecture",
                    ..
                })
            ),
            "{bad}"
        );
    }
    assert!(serde_json::from_str::<Architecture>("\"resnet33\"").is_err());

    let config = BackboneConfig::from(Architecture::ResNeXt50).with_in_channels(1);
    let json = serde_json::to_string(&config).unwrap();
    let back: BackboneConfig = serde_json::from_str(&json).unwrap();
    assert_eq!(back, config);
    assert_eq!((back.in_channels(), back.feature_dim()), (1, 2048));
    assert_eq!(back.feature_dim(), 2048);
}

#[test]
fn invalid_configurations_are_errors() {
    let device = plain();
    let invalid = |r: Result<ResComModel, Error>, field: &str| match r {
        Err(Error::InvalidConfig { field: f, .. }) => assert_eq!(f, field),
        other => panic!("expected an invalid `{field}`, got {other:?}"),
    };
    let config = |arch: &str| ResComModelConfig::new(arch.parse().unwrap(), 10);
    assert!(matches!(
        "resnet33".parse::<BackboneConfig>(),
        Err(Error::InvalidConfig {
            field: "architecture",
            ..
        })
    ));
    invalid(
        ResComModelConfig::new(
            "resnet20"
                .parse::<BackboneConfig>()
                .unwrap()
                .with_in_channels(0),
            10,
        )
        .init(&device),
        "in_channels",
    );
    invalid(
        ResComModelConfig::new(
            BackboneConfig::Cifar(CifarResNetConfig::new(20).with_width(3)),
            10,
        )
        .init(&device),
        "width",
    );
    invalid(
        config("resnet20").with_projection_dim(0).init(&device),
        "projection_dim",
    );
    invalid(
        config("resnet20").with_hidden_dim(Some(0)).init(&device),
        "hidden_dim",
    );
    invalid(
        ResComModelConfig::new("resnet20".parse().unwrap(), 0).init(&device),
        "num_classes",
    );
    assert!(CifarResNetConfig::new(33).init(&device).is_err());
    assert!(
        ResNetConfig::resnet50()
            .with_groups(0)
            .init(&device)
            .is_err()
    );
    assert!(
        BackboneConfig::from(Architecture::ResNet50)
            .with_in_channels(0)
            .init(&device)
            .is_err()
    );

    let model = config("resnet20").init(&device).unwrap();
    model.check_input([2, 3, 32, 32]).unwrap();
    for dims in [[2, 1, 32, 32], [0, 3, 32, 32], [2, 3, 0, 32]] {
        assert!(
            matches!(
                model.check_input(dims),
                Err(Error::Shape { name: "images", .. })
            ),
            "{dims:?}"
        );
    }
}

// ----- training, inference, checkpoints -----------------------------------------------------

fn small_model(device: &Device) -> ResComModel {
    ResComModelConfig::new(
        "resnet8"
            .parse::<BackboneConfig>()
            .unwrap()
            .with_in_channels(1),
        3,
    )
    .with_projection_dim(8)
    .init(device)
    .unwrap()
}

fn sgd() -> burn::optim::ModuleOptimizer {
    SgdConfig::new()
        .with_momentum(Some(
            MomentumConfig::new().with_momentum(0.9).with_dampening(0.0),
        ))
        .init()
}

fn train_steps(model: ResComModel, images: &Tensor<4>, steps: usize) -> (ResComModel, Vec<f64>) {
    let device = images.device();
    let labels = Tensor::<1, Int>::from_data(
        TensorData::new(
            (0..images.dims()[0] as i64)
                .map(|i| i % 3)
                .collect::<Vec<_>>(),
            [images.dims()[0]],
        ),
        &device,
    );
    let loss_fn = BalancedSoftmaxLossConfig::new(vec![10, 10, 10])
        .init(&device)
        .unwrap();
    let mut optim = sgd();
    let mut model = model;
    let mut losses = Vec::new();
    for _ in 0..steps {
        let logits = model.forward(images.clone()).logits;
        let loss = loss_fn.forward(logits, labels.clone()).unwrap();
        losses.push(common::scalar(loss.clone()));
        let grads = GradientsParams::from_grads(loss.backward(), &model);
        model = optim.step(0.05, model, grads);
    }
    (model, losses)
}

#[test]
fn sgd_steps_reduce_the_loss_and_inference_uses_running_statistics() {
    let device = training();
    device.seed(1);
    let images = Tensor::<4>::random([12, 1, 12, 12], Distribution::Normal(0.0, 1.0), &device);
    let (model, losses) = train_steps(small_model(&device), &images, 8);
    assert!(losses.iter().all(|l| l.is_finite()), "{losses:?}");
    assert!(losses[7] < 0.8 * losses[0], "{losses:?}");

    // Training mode normalises with batch statistics: a row's logits depend on its batch.
    let all = to_vec(model.logits(images.clone()));
    let half = to_vec(model.logits(images.clone().narrow(0, 0, 6)));
    assert!(
        all[..3]
            .iter()
            .zip(&half[..3])
            .any(|(a, b)| (a - b).abs() > 1e-4)
    );

    // Inference mode uses the running statistics: per-sample and deterministic.
    let valid = model.valid();
    let batch = images.without_autodiff();
    let all = to_vec(valid.logits(batch.clone()));
    let one = to_vec(valid.logits(batch.clone().narrow(0, 0, 1)));
    for (a, b) in all.iter().zip(&one) {
        assert!((a - b).abs() < 1e-5, "{a} vs {b}");
    }
    // ... which training moved away from their initial values (mean 0, variance 1).
    let moved = tensors(&valid)
        .into_iter()
        .filter(|(p, _, v)| p.ends_with("running_mean") && v.iter().any(|&x| x != 0.0))
        .count();
    assert!(moved >= 5, "{moved}");
}

#[test]
fn records_round_trip_exactly() {
    let device = training();
    device.seed(7);
    let images = Tensor::<4>::random([6, 1, 10, 10], Distribution::Normal(0.0, 1.0), &device);
    // Two steps, so weights and running statistics differ from any fresh model.
    let (model, _) = train_steps(small_model(&device), &images, 2);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("model.bpk");
    model.sync_running_stats();
    model.clone().save_file(&path).unwrap();

    device.seed(99);
    let other = small_model(&device);
    let batch = images.without_autodiff();
    let before = to_vec(model.valid().forward(batch.clone()).logits);
    assert_ne!(to_vec(other.valid().logits(batch.clone())), before);
    let loaded = other.try_load_file(&path).unwrap();
    let after = loaded.valid().forward(batch.clone());
    assert_eq!(to_vec(after.logits), before);
    assert_eq!(
        to_vec(after.projections),
        to_vec(model.valid().forward(batch).projections)
    );
    assert_eq!(tensors(&loaded), tensors(&model));
}

/// The head as records of earlier versions saved it: Burn's own `BatchNorm` in the middle.
#[derive(Module, Debug)]
struct HeadWithBurnsBatchNorm {
    hidden: burn::nn::Linear,
    norm: burn::nn::BatchNorm,
    relu: burn::nn::Relu,
    projection: burn::nn::Linear,
    classifier: burn::nn::Linear,
}

#[test]
fn records_saved_with_burns_batch_norm_load() {
    let device = training();
    device.seed(3);
    let old = HeadWithBurnsBatchNorm {
        hidden: burn::nn::LinearConfig::new(8, 8).init(&device),
        norm: burn::nn::BatchNormConfig::new(8).init(&device),
        relu: burn::nn::Relu::new(),
        projection: burn::nn::LinearConfig::new(8, 4).init(&device),
        classifier: burn::nn::LinearConfig::new(8, 3).init(&device),
    };
    // One training pass moves the running statistics away from their initial values.
    let features = Tensor::<2>::random([6, 8], Distribution::Normal(0.0, 1.0), &device);
    let _ = old.norm.forward(old.hidden.forward(features.clone()));
    let old = old.valid();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("head.bpk");
    old.clone().save_file(&path).unwrap();

    let head = ResComHeadConfig::new(8, 3, 8, 4)
        .init(&plain())
        .unwrap()
        .try_load_file(&path)
        .unwrap();
    let x = features.without_autodiff();
    let hidden = old
        .relu
        .forward(old.norm.forward(old.hidden.forward(x.clone())));
    let out = head.valid().forward(x.clone());
    assert_eq!(to_vec(out.logits), to_vec(old.classifier.forward(x)));
    assert_eq!(
        to_vec(out.projections),
        to_vec(old.projection.forward(hidden))
    );
}
