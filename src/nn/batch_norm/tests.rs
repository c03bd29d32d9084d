//! Unit tests of the parent module.

use super::*;
use burn::tensor::{Distribution, TensorData};

fn host(t: Tensor<1>) -> Vec<f64> {
    t.into_data()
        .convert::<f64>()
        .try_to_vec::<f64>()
        .unwrap_or_default()
}

/// Per-channel biased and unbiased variances of a `[B, C, H, W]` array, in `f64`.
fn variances(values: &[f32], [b, c, h, w]: [usize; 4]) -> (Vec<f64>, Vec<f64>, Vec<f64>) {
    let n = b * h * w;
    let (mut mean, mut biased, mut unbiased) = (vec![0.0; c], vec![0.0; c], vec![0.0; c]);
    for ch in 0..c {
        let xs: Vec<f64> = (0..b)
            .flat_map(|i| (0..h * w).map(move |p| ((i * c + ch) * h * w) + p))
            .map(|k| values[k] as f64)
            .collect();
        let m = xs.iter().sum::<f64>() / n as f64;
        let ss = xs.iter().map(|x| (x - m) * (x - m)).sum::<f64>();
        mean[ch] = m;
        biased[ch] = ss / n as f64;
        unbiased[ch] = ss / (n - 1) as f64;
    }
    (mean, biased, unbiased)
}

#[test]
fn running_variance_is_the_unbiased_batch_variance_as_in_pytorch() {
    let device = Device::flex().autodiff();
    let shape = [3, 2, 2, 2];
    let norm = BatchNormConfig::new(2).init(&device).unwrap();
    let mut expected_mean = vec![0.0; 2];
    let mut expected_var = vec![1.0; 2];
    for seed in 0..3 {
        device.seed(seed);
        let x = Tensor::<4>::random(shape, Distribution::Normal(0.5, 2.0), &device);
        let values = x.to_data().try_to_vec::<f32>().unwrap();
        let (mean, _, unbiased) = variances(&values, shape);
        let _ = norm.forward(x);
        for ch in 0..2 {
            expected_mean[ch] = 0.9 * expected_mean[ch] + 0.1 * mean[ch];
            expected_var[ch] = 0.9 * expected_var[ch] + 0.1 * unbiased[ch];
        }
    }
    for (got, want) in host(norm.running_mean.value_sync())
        .iter()
        .zip(&expected_mean)
        .chain(
            host(norm.running_var.value_sync())
                .iter()
                .zip(&expected_var),
        )
    {
        assert!(
            (got - want).abs() < 1e-5 * want.abs().max(1.0),
            "{got} vs {want}"
        );
    }
}

#[test]
fn scale_and_shift_are_trained_and_the_running_statistics_are_not() {
    let device = Device::flex().autodiff();
    let norm = BatchNormConfig::new(3).init(&device).unwrap();
    let x = Tensor::<2>::random([4, 3], Distribution::Normal(0.0, 1.0), &device);
    let y = norm.forward(x);
    let grads = (y.clone() * y).sum().backward();
    assert!(norm.gamma.grad(&grads).is_some());
    assert!(norm.beta.grad(&grads).is_some());
    assert!(!norm.running_mean.value_sync().is_require_grad());
    assert!(!norm.running_var.value_sync().is_require_grad());
    assert_eq!(norm.num_params(), 12);
}

#[test]
fn training_output_uses_the_biased_batch_variance() {
    let device = Device::flex().autodiff();
    let shape = [4, 3, 2, 1];
    let norm = BatchNormConfig::new(3).init(&device).unwrap();
    device.seed(5);
    let x = Tensor::<4>::random(shape, Distribution::Normal(0.0, 1.0), &device);
    let values = x.to_data().try_to_vec::<f32>().unwrap();
    let (mean, biased, _) = variances(&values, shape);
    let y = norm
        .forward(x)
        .into_data()
        .convert::<f64>()
        .try_to_vec::<f64>()
        .unwrap();
    for (k, got) in y.iter().enumerate() {
        let ch = (k / 2) % 3;
        let want = (values[k] as f64 - mean[ch]) / (biased[ch] + 1e-5).sqrt();
        assert!((got - want).abs() < 1e-5, "{got} vs {want}");
    }
}

/// `forward_relu` is `relu(forward)`, in values, gradients and running statistics, on the
/// flex path (the crate's kernels) as on the ndarray one (Burn's batch normalisation).
#[test]
#[allow(deprecated)]
fn forward_relu_is_relu_of_forward_on_every_backend() {
    for device in [Device::flex().autodiff(), Device::ndarray().autodiff()] {
        let shape = [3, 4, 5, 2];
        device.seed(9);
        let x = Tensor::<4>::random(shape, Distribution::Normal(0.3, 1.5), &device);
        let r = Tensor::<4>::random(shape, Distribution::Normal(0.0, 1.0), &device);
        let run = |fused: bool| {
            let norm = BatchNormConfig::new(4).init(&device).unwrap();
            let x = x.clone().require_grad();
            let y = if fused {
                norm.forward_relu(x.clone())
            } else {
                burn::tensor::activation::relu(norm.forward(x.clone()))
            };
            let grads = (y.clone() * r.clone()).sum().backward();
            let flat = |t: Tensor<4>| host(t.flatten::<1>(0, 3));
            [
                flat(y),
                flat(x.grad(&grads).unwrap()),
                host(norm.gamma.val().grad(&grads).unwrap()),
                host(norm.running_mean.value_sync()),
                host(norm.running_var.value_sync()),
            ]
        };
        let (fused, plain) = (run(true), run(false));
        for (a, b) in fused.iter().zip(&plain) {
            for (p, q) in a.iter().zip(b) {
                assert!(
                    (p - q).abs() <= 1e-5 * (1.0 + q.abs()),
                    "{device:?}: {p} vs {q}"
                );
            }
        }
    }
}

#[test]
fn inference_uses_the_running_statistics_and_frozen_layers_keep_them() {
    let device = Device::flex().autodiff();
    let norm = BatchNormConfig::new(1).init(&device).unwrap();
    let x = Tensor::<2>::from_floats([[1.0], [3.0]], &device);
    let _ = norm.forward(x.clone());
    // mean 0.1 * 2 = 0.2; variance 0.9 + 0.1 * 2 = 1.1 (unbiased 2, biased 1).
    let valid = norm.valid();
    let y = host(valid.forward(x.clone().inner()).reshape([2]));
    let scale = (1.1f64 + 1e-5).sqrt();
    assert!((y[0] - (1.0 - 0.2) / scale).abs() < 1e-6, "{y:?}");
    assert!((y[1] - (3.0 - 0.2) / scale).abs() < 1e-6, "{y:?}");
    let frozen = norm.freeze();
    let before = host(frozen.running_var.value_sync());
    let _ = frozen.forward(x);
    assert_eq!(host(frozen.running_var.value_sync()), before);
}

#[test]
fn one_value_per_channel_leaves_the_running_variance_alone() {
    let device = Device::flex().autodiff();
    let norm = BatchNormConfig::new(2).init(&device).unwrap();
    let y = norm.forward(Tensor::<2>::from_floats([[4.0, -2.0]], &device));
    assert!(host(y.reshape([2])).iter().all(|v| v.is_finite()));
    assert_eq!(host(norm.running_var.value_sync()), vec![1.0, 1.0]);
    let mean = host(norm.running_mean.value_sync());
    assert!((mean[0] - 0.4).abs() < 1e-6 && (mean[1] + 0.2).abs() < 1e-6);
}

#[test]
fn records_of_burns_batch_norm_load_unchanged() {
    let device = Device::flex().autodiff();
    let plain = Device::flex();
    // Burn's layer after one training step, so every tensor differs from a fresh layer.
    let burns = burn::nn::BatchNormConfig::new(3)
        .with_momentum(0.3)
        .init(&device);
    device.seed(1);
    let _ = burns.forward(Tensor::<2>::random(
        [5, 3],
        Distribution::Normal(1.0, 2.0),
        &device,
    ));
    let burns = burns.valid();
    let gamma = Tensor::<1>::from_data(TensorData::from([0.5f32, 1.5, 2.0]), &plain);
    let burns = burn::nn::BatchNorm {
        gamma: Param::initialized(burns.gamma.id, gamma),
        ..burns
    };
    let ours = BatchNormConfig::new(3)
        .init(&plain)
        .unwrap()
        .try_load_record(burns.clone().into_record())
        .unwrap();
    assert_eq!(host(ours.gamma.val()), host(burns.gamma.val()));
    assert_eq!(host(ours.beta.val()), host(burns.beta.val()));
    assert_eq!(
        host(ours.running_mean.value()),
        host(burns.running_mean.value())
    );
    assert_eq!(
        host(ours.running_var.value()),
        host(burns.running_var.value())
    );
    // And back: the layout is the same both ways.
    let back = burn::nn::BatchNormConfig::new(3)
        .init(&plain)
        .try_load_record(ours.clone().into_record())
        .unwrap();
    assert_eq!(
        host(back.running_var.value()),
        host(ours.running_var.value())
    );
}

#[test]
fn invalid_settings_are_errors() {
    let device = Device::flex();
    assert!(BatchNormConfig::new(0).init(&device).is_err());
    assert!(
        BatchNormConfig::new(2)
            .with_epsilon(0.0)
            .init(&device)
            .is_err()
    );
    assert!(
        BatchNormConfig::new(2)
            .with_epsilon(f64::NAN)
            .init(&device)
            .is_err()
    );
    assert!(
        BatchNormConfig::new(2)
            .with_momentum(1.5)
            .init(&device)
            .is_err()
    );
    assert!(
        BatchNormConfig::new(2)
            .with_momentum(f64::NAN)
            .init(&device)
            .is_err()
    );
}
