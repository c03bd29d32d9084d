//! The crate's convolution equals Burn's: forward, input gradient, weight gradient and bias
//! gradient, on every layer shape the networks use (and a few more), in float64 (to 1e-10)
//! and float32 (to 1e-5), relative to the largest magnitude of Burn's result. Records saved
//! before the layers ran the crate's convolution still load and give the same outputs.

mod common;

use burn::module::Module;
use burn::nn::PaddingConfig2d;
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::tensor::ops::ConvOptions;
use burn::tensor::{DType, Device, Tensor, TensorData};
use common::{assert_close, to_vec};
use rescom::Rng;
use rescom::model::{BackboneConfig, CifarResNetConfig, ResComModelConfig};
use rescom::nn::{apply, conv2d, uses_crate_kernels};

fn random<const D: usize>(
    rng: &mut Rng,
    shape: [usize; D],
    device: &Device,
    dtype: DType,
) -> Tensor<D> {
    let n = shape.iter().product();
    let values: Vec<f64> = (0..n).map(|_| rng.normal()).collect();
    Tensor::from_data(TensorData::new(values, shape), (device, dtype))
}

/// Output, input gradient, weight gradient and bias gradient of `conv` for the loss
/// `sum(conv(x, w, b) * r)`.
type Results = (Vec<f64>, Vec<f64>, Vec<f64>, Option<Vec<f64>>);

fn evaluate(
    conv: impl Fn(Tensor<4>, Tensor<4>, Option<Tensor<1>>) -> Tensor<4>,
    x: &Tensor<4>,
    w: &Tensor<4>,
    b: Option<&Tensor<1>>,
    r: &Tensor<4>,
) -> Results {
    let x = x.clone().require_grad();
    let w = w.clone().require_grad();
    let b = b.cloned().map(Tensor::require_grad);
    let y = conv(x.clone(), w.clone(), b.clone());
    let grads = (y.clone() * r.clone()).sum().backward();
    let grad = |t: &Tensor<4>| to_vec(t.grad(&grads).expect("tracked"));
    (
        to_vec(y),
        grad(&x),
        grad(&w),
        b.map(|b| to_vec(b.grad(&grads).expect("tracked"))),
    )
}

/// One convolution in both float types, through [`conv2d`] and Burn's own.
fn check(
    name: &str,
    x_shape: [usize; 4],
    w_shape: [usize; 4],
    options: ConvOptions<2>,
    bias: bool,
) {
    let device = Device::flex().autodiff();
    for (dtype, tol) in [(DType::F64, 1e-10), (DType::F32, 1e-5)] {
        let mut rng = Rng::new(x_shape.iter().chain(&w_shape).sum::<usize>() as u64);
        let x = random(&mut rng, x_shape, &device, dtype);
        let w = random(&mut rng, w_shape, &device, dtype);
        let b = bias.then(|| random(&mut rng, [w_shape[0]], &device, dtype));
        let y_shape =
            burn::tensor::module::conv2d(x.clone(), w.clone(), b.clone(), options.clone()).dims();
        let r = random(&mut rng, y_shape, &device, dtype);
        assert!(
            uses_crate_kernels(&x, &w, b.as_ref(), &options),
            "{name} {dtype:?}: not on the crate's kernels"
        );
        let ours = evaluate(
            |x, w, b| conv2d(x, w, b, options.clone()),
            &x,
            &w,
            b.as_ref(),
            &r,
        );
        let burn = evaluate(
            |x, w, b| burn::tensor::module::conv2d(x, w, b, options.clone()),
            &x,
            &w,
            b.as_ref(),
            &r,
        );
        let what = |part: &str| format!("{name} {dtype:?} {part}");
        assert_close(&what("output"), &ours.0, &burn.0, tol);
        assert_close(&what("input gradient"), &ours.1, &burn.1, tol);
        assert_close(&what("weight gradient"), &ours.2, &burn.2, tol);
        if let (Some(ours), Some(burn)) = (&ours.3, &burn.3) {
            assert_close(&what("bias gradient"), ours, burn, tol);
        }
    }
}

fn options(stride: usize, padding: usize, groups: usize) -> ConvOptions<2> {
    ConvOptions::new([stride; 2], [padding; 2], [1, 1], groups)
}

#[test]
fn cifar_resnet_layers_match_burn() {
    check("stem", [3, 3, 9, 9], [16, 3, 3, 3], options(1, 1, 1), false);
    check(
        "gray stem",
        [1, 1, 28, 28],
        [16, 1, 3, 3],
        options(1, 1, 1),
        false,
    );
    check(
        "stage 1",
        [3, 16, 8, 8],
        [16, 16, 3, 3],
        options(1, 1, 1),
        false,
    );
    check(
        "to stage 2",
        [2, 16, 9, 9],
        [32, 16, 3, 3],
        options(2, 1, 1),
        false,
    );
    check(
        "stage 2",
        [1, 32, 5, 5],
        [32, 32, 3, 3],
        options(1, 1, 1),
        false,
    );
    check(
        "to stage 3",
        [1, 32, 7, 7],
        [64, 32, 3, 3],
        options(2, 1, 1),
        false,
    );
    check(
        "stage 3",
        [3, 64, 4, 4],
        [64, 64, 3, 3],
        options(1, 1, 1),
        false,
    );
}

#[test]
fn resnet50_layers_match_burn() {
    check(
        "stem 7x7/2",
        [1, 3, 23, 23],
        [64, 3, 7, 7],
        options(2, 3, 1),
        false,
    );
    check(
        "reduce 1x1",
        [2, 64, 6, 6],
        [64, 64, 1, 1],
        options(1, 0, 1),
        false,
    );
    check(
        "3x3",
        [3, 64, 5, 5],
        [64, 64, 3, 3],
        options(1, 1, 1),
        false,
    );
    check(
        "3x3/2",
        [2, 128, 7, 7],
        [128, 128, 3, 3],
        options(2, 1, 1),
        false,
    );
    check(
        "expand 1x1",
        [2, 64, 5, 5],
        [256, 64, 1, 1],
        options(1, 0, 1),
        false,
    );
    check(
        "downsample 1x1/2",
        [2, 256, 7, 7],
        [512, 256, 1, 1],
        options(2, 0, 1),
        false,
    );
}

#[test]
fn resnext50_grouped_layers_match_burn() {
    check(
        "grouped 3x3",
        [2, 128, 6, 6],
        [128, 4, 3, 3],
        options(1, 1, 32),
        false,
    );
    check(
        "grouped 3x3/2",
        [1, 256, 7, 7],
        [256, 8, 3, 3],
        options(2, 1, 32),
        false,
    );
    check(
        "grouped 1x1",
        [3, 8, 3, 5],
        [4, 2, 1, 1],
        options(1, 0, 4),
        false,
    );
    // Stages 2 and 3 of ResNeXt-50 32x4d: 8 and 16 channels per group, stride 1 (the
    // zero-padded canvas, per group).
    check(
        "grouped 3x3, 8 per group",
        [3, 256, 5, 5],
        [256, 8, 3, 3],
        options(1, 1, 32),
        false,
    );
    check(
        "grouped 3x3, 16 per group",
        [1, 512, 4, 4],
        [512, 16, 3, 3],
        options(1, 1, 32),
        false,
    );
}

/// Batches large enough that the images are shared out over several tasks, with a shorter last
/// task and, on the canvas, a shorter last chunk of images (a CIFAR stage-1 layer: chunks of 2
/// images, 17 tasks, the last over 2 + 1 images).
#[test]
fn large_odd_batches_match_burn() {
    check(
        "stage 1, 67 images",
        [67, 16, 32, 32],
        [16, 16, 3, 3],
        options(1, 1, 1),
        false,
    );
    check(
        "to stage 2, 67 images",
        [67, 16, 17, 17],
        [32, 16, 3, 3],
        options(2, 1, 1),
        false,
    );
    check(
        "1x1, 37 images",
        [37, 24, 5, 5],
        [40, 24, 1, 1],
        options(1, 0, 1),
        true,
    );
}

/// Output and both gradients do not depend on the number of threads: bit for bit the same on
/// one thread as on three.
#[test]
fn results_do_not_depend_on_the_thread_count() {
    let device = Device::flex().autodiff();
    let cases = [
        ([37, 16, 12, 12], [16, 16, 3, 3], options(1, 1, 1)),
        ([37, 16, 12, 12], [32, 16, 3, 3], options(2, 1, 1)),
        ([37, 3, 9, 9], [16, 3, 3, 3], options(1, 1, 1)),
    ];
    for (x_shape, w_shape, options) in cases {
        let mut rng = Rng::new(21);
        let x = random(&mut rng, x_shape, &device, DType::F32);
        let w = random(&mut rng, w_shape, &device, DType::F32);
        let y_shape =
            burn::tensor::module::conv2d(x.clone(), w.clone(), None, options.clone()).dims();
        let r = random(&mut rng, y_shape, &device, DType::F32);
        let run = |threads: usize| {
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .expect("thread pool");
            pool.install(|| evaluate(|x, w, b| conv2d(x, w, b, options.clone()), &x, &w, None, &r))
        };
        let (one, three) = (run(1), run(3));
        assert!(one.0 == three.0, "{x_shape:?}: output");
        assert!(one.1 == three.1, "{x_shape:?}: input gradient");
        assert!(one.2 == three.2, "{x_shape:?}: weight gradient");
    }
}

#[test]
fn other_options_match_burn() {
    check("bias", [2, 3, 6, 7], [5, 3, 3, 3], options(1, 1, 1), true);
    check(
        "bias, 1x1/2",
        [2, 4, 5, 5],
        [6, 4, 1, 1],
        options(2, 0, 1),
        true,
    );
    check(
        "no padding",
        [1, 2, 6, 5],
        [3, 2, 3, 2],
        options(1, 0, 1),
        false,
    );
    let dilated = ConvOptions::new([1, 1], [2, 2], [2, 2], 1);
    check("dilation", [2, 3, 8, 8], [4, 3, 3, 3], dilated, true);
    let uneven = ConvOptions::new_with_padding([1, 2], [(0, 1), (2, 1)], [1, 2], 1);
    check("uneven", [2, 3, 7, 9], [4, 3, 2, 3], uneven, false);
    let wide = ConvOptions::new([3, 1], [4, 0], [1, 1], 1);
    check(
        "padding beyond the kernel",
        [1, 2, 5, 6],
        [3, 2, 3, 3],
        wide,
        false,
    );
}

#[test]
fn layers_give_the_same_result_as_burns_module() {
    let device = Device::flex();
    let mut rng = Rng::new(2);
    let layers: Vec<Conv2d> = vec![
        Conv2dConfig::new([3, 4], [3, 3])
            .with_padding(PaddingConfig2d::Explicit(1, 1, 1, 1))
            .init(&device),
        Conv2dConfig::new([4, 6], [4, 4])
            .with_padding(PaddingConfig2d::Same)
            .with_stride([2, 2])
            .with_groups(2)
            .init(&device),
        Conv2dConfig::new([3, 2], [2, 3])
            .with_padding(PaddingConfig2d::Explicit(0, 1, 1, 2))
            .with_dilation([2, 1])
            .with_bias(false)
            .init(&device),
        Conv2dConfig::new([3, 5], [5, 5]).init(&device),
    ];
    for (i, layer) in layers.iter().enumerate() {
        let channels = layer.weight.dims()[1] * layer.groups;
        let x = random(&mut rng, [2, channels, 9, 8], &device, DType::F32);
        assert_close(
            &format!("layer {i}"),
            &to_vec(apply(layer, x.clone())),
            &to_vec(layer.forward(x)),
            1e-5,
        );
    }
}

#[test]
#[allow(deprecated)]
fn other_backends_and_types_use_burns_convolution() {
    let options = options(1, 1, 1);
    let mut rng = Rng::new(4);
    for device in [Device::ndarray(), Device::ndarray().autodiff()] {
        let x = random(&mut rng, [2, 3, 5, 5], &device, DType::F32);
        let w = random(&mut rng, [4, 3, 3, 3], &device, DType::F32);
        assert!(!uses_crate_kernels(&x, &w, None, &options));
        assert_eq!(
            to_vec(conv2d(x.clone(), w.clone(), None, options.clone())),
            to_vec(burn::tensor::module::conv2d(x, w, None, options.clone()))
        );
    }
    let device = Device::flex();
    let x = random(&mut rng, [2, 3, 5, 5], &device, DType::F16);
    let w = random(&mut rng, [4, 3, 3, 3], &device, DType::F16);
    assert!(!uses_crate_kernels(&x, &w, None, &options));
    assert_eq!(
        to_vec(conv2d(x.clone(), w.clone(), None, options.clone())),
        to_vec(burn::tensor::module::conv2d(x, w, None, options.clone()))
    );
    // Mixed float types and mismatched channels are left to Burn.
    let x = random(&mut rng, [2, 3, 5, 5], &device, DType::F64);
    let w = random(&mut rng, [4, 3, 3, 3], &device, DType::F32);
    assert!(!uses_crate_kernels(&x, &w, None, &options));
    let w = random(&mut rng, [4, 2, 3, 3], &device, DType::F64);
    assert!(!uses_crate_kernels(&x, &w, None, &options));
}

/// A ResNet-8 (width 2, one input channel, three classes) saved with `save_file` by the crate
/// when its layers ran Burn's convolution, with that version's inference logits for the images
/// below (`tests/fixtures/resnet8_record.json`).
#[test]
fn records_saved_before_load_and_give_the_same_outputs() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    let expected: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(dir.join("resnet8_record.json")).expect("fixture"),
    )
    .expect("fixture JSON");
    let expected: Vec<f64> = expected["logits"]
        .as_array()
        .expect("logits")
        .iter()
        .map(|v| v.as_f64().expect("number"))
        .collect();
    for device in [Device::flex(), Device::flex().autodiff()] {
        let backbone = CifarResNetConfig::new(8).with_in_channels(1).with_width(2);
        let model = ResComModelConfig::new(BackboneConfig::Cifar(backbone), 3)
            .init(&device)
            .expect("valid configuration")
            .try_load_file(dir.join("resnet8_record.bpk"))
            .expect("the record loads");
        let images = fixture_images(&device);
        assert!(uses_crate_kernels(
            &images,
            &Tensor::zeros([2, 1, 3, 3], &device),
            None,
            &options(1, 1, 1)
        ));
        let logits = to_vec(model.valid().logits(images.without_autodiff()));
        assert_close("logits", &logits, &expected, 1e-5);
    }
}

/// A ResNet-8 (width 16, one input channel, ten classes) with its head, trained for two epochs
/// and saved when the networks were built from Burn's own `Conv2d` and `BatchNorm` layers and
/// ran Burn's convolution and batch normalisation (`tests/fixtures/resnet8_burn_layers.bpk`,
/// the model record of that version's checkpoint). It loads into the current network, and the
/// crate's kernels on flex give the outputs Burn's operations give on ndarray, in inference and
/// in training mode.
#[test]
#[allow(deprecated)]
fn records_of_networks_built_from_burns_layers_load() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/resnet8_burn_layers.bpk");
    let load = |device: &Device| {
        let backbone = CifarResNetConfig::new(8).with_in_channels(1);
        ResComModelConfig::new(BackboneConfig::Cifar(backbone), 10)
            .init(device)
            .expect("valid configuration")
            .try_load_file(&path)
            .expect("the record loads")
    };
    let (flex, reference) = (Device::flex().autodiff(), Device::ndarray().autodiff());
    let (ours, burns) = (load(&flex), load(&reference));
    let images = |device: &Device| {
        let mut rng = Rng::new(12);
        random(&mut rng, [5, 1, 28, 28], device, DType::F32)
    };
    assert!(uses_crate_kernels(
        &images(&flex),
        &Tensor::zeros([16, 1, 3, 3], &flex),
        None,
        &options(1, 1, 1)
    ));
    let eval = |model: &rescom::model::ResComModel, device: &Device| {
        to_vec(model.valid().logits(images(device).without_autodiff()))
    };
    let expected = eval(&burns, &reference);
    assert!(expected.iter().any(|v| v.abs() > 0.1), "trained logits");
    assert_close("inference logits", &eval(&ours, &flex), &expected, 1e-5);
    let train = |model: &rescom::model::ResComModel, device: &Device| {
        let out = model.forward(images(device));
        (to_vec(out.logits), to_vec(out.projections))
    };
    let (logits, projections) = train(&ours, &flex);
    let (expected_logits, expected_projections) = train(&burns, &reference);
    assert_close("training logits", &logits, &expected_logits, 1e-4);
    assert_close(
        "training projections",
        &projections,
        &expected_projections,
        1e-4,
    );
}

/// The images the fixture's logits were computed on: 3 images of 1x10x10, standard normal
/// values from `Rng::new(11)`.
fn fixture_images(device: &Device) -> Tensor<4> {
    let mut rng = Rng::new(11);
    random(&mut rng, [3, 1, 10, 10], device, DType::F32)
}
