//! Batch normalisation whose running statistics follow PyTorch's `BatchNorm{1,2}d`.
//!
//! In training mode a batch is normalised with its own mean and *biased* variance (divided by
//! the `n` values per channel); the running mean moves towards the batch mean, and the running
//! variance towards the *unbiased* batch variance (times `n / (n - 1)`), both with
//! `running = (1 - momentum) * running + momentum * batch`. Evaluation then normalises with the
//! running statistics, so a trained network evaluates as the same network trained in PyTorch
//! would. (Burn's own `BatchNorm` moves the running variance towards the biased value.)
//!
//! The module keeps the parameter names and the record layout of Burn's `BatchNorm` (`gamma`,
//! `beta`, `training`, `running_mean`, `running_var`, `momentum`, `epsilon`), so records saved
//! from networks built on Burn's layer load into this one unchanged.
//!
//! On the flex CPU backend (`f32`, `f64`) the training path runs the crate's own kernels, a
//! few passes over the data with the ReLU that follows fused in ([`BatchNorm::forward_relu`]);
//! elsewhere it runs Burn's batch normalisation. Both compute the same function.

use burn::config::Config;
use burn::module::{Content, DisplaySettings, Flag, Module, ModuleDisplay, Param, RunningState};
use burn::nn::Initializer;
use burn::tensor::{Device, Tensor};

use crate::error::{Error, Result};
#[cfg(feature = "flex")]
use crate::kernels::flex::batch_norm as flex;

/// Configuration of a [`BatchNorm`].
#[derive(Config, Debug)]
pub struct BatchNormConfig {
    /// Number of channels (features) `C`.
    pub num_features: usize,
    /// Added to the variance before its square root; finite and positive.
    #[config(default = 1e-5)]
    pub epsilon: f64,
    /// Weight of the newest batch in the running statistics, in `[0, 1]`.
    #[config(default = 0.1)]
    pub momentum: f64,
}

impl BatchNormConfig {
    /// Builds the layer: scale 1, shift 0, running mean 0, running variance 1 (PyTorch's
    /// initial values), in training mode.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] for zero features, an `epsilon` that is not finite and
    /// positive, or a `momentum` outside `[0, 1]`.
    pub fn init(&self, device: &Device) -> Result<BatchNorm> {
        if self.num_features == 0 {
            return Err(Error::config("num_features", "must be at least 1"));
        }
        if !(self.epsilon.is_finite() && self.epsilon > 0.0) {
            return Err(Error::config(
                "epsilon",
                format!("must be finite and positive, got {}", self.epsilon),
            ));
        }
        if !(0.0..=1.0).contains(&self.momentum) {
            return Err(Error::config(
                "momentum",
                format!("must lie in [0, 1], got {}", self.momentum),
            ));
        }
        let c = self.num_features;
        Ok(BatchNorm {
            gamma: Initializer::Ones.init([c], device),
            beta: Initializer::Zeros.init([c], device),
            training: Param::from_bool(true),
            running_mean: RunningState::new(Tensor::zeros([c], device)),
            running_var: RunningState::new(Tensor::ones([c], device)),
            momentum: self.momentum,
            epsilon: self.epsilon,
        })
    }
}

/// Batch normalisation over `[B, C, ...]` inputs (one mean and variance per channel over the
/// batch and every other axis), with PyTorch's running statistics.
///
/// The training path runs when the input lives on an autodiff device and the layer is not
/// frozen ([`Module::freeze`] or [`Module::valid`] switch it to the running statistics).
/// The running statistics are [`RunningState`]s: an update made in a forward pass becomes
/// visible to [`RunningState::value`] only after a synchronisation
/// ([`RunningState::value_sync`], [`Module::valid`]).
///
/// ```
/// use burn::tensor::{Device, Tensor};
/// use rescom::nn::BatchNormConfig;
///
/// let device = Device::flex().autodiff();
/// let norm = BatchNormConfig::new(1).with_momentum(1.0).init(&device)?;
/// let x = Tensor::<2>::from_floats([[1.0], [2.0], [3.0], [6.0]], &device);
/// let y = norm.forward(x);
/// // Normalised with the biased variance 3.5 ...
/// let first = y.into_data().try_to_vec::<f32>().unwrap()[0];
/// assert!((first - (1.0 - 3.0) / (3.5f32 + 1e-5).sqrt()).abs() < 1e-5);
/// // ... while the running variance holds the unbiased one, 14 / 3.
/// let var = norm.running_var.value_sync().into_data().try_to_vec::<f32>().unwrap()[0];
/// assert!((var - 14.0 / 3.0).abs() < 1e-5);
/// # Ok::<(), rescom::Error>(())
/// ```
#[derive(Module, Debug)]
#[module(custom_display)]
pub struct BatchNorm {
    /// Learned scale, `[C]`.
    pub gamma: Param<Tensor<1>>,
    /// Learned shift, `[C]`.
    pub beta: Param<Tensor<1>>,
    /// Whether the layer takes the training path on an autodiff device.
    pub training: Param<Flag>,
    /// Running mean, `[C]`.
    pub running_mean: RunningState<Tensor<1>>,
    /// Running (unbiased) variance, `[C]`.
    pub running_var: RunningState<Tensor<1>>,
    /// Weight of the newest batch in the running statistics.
    pub momentum: f64,
    /// Added to the variance before its square root.
    pub epsilon: f64,
}

impl BatchNorm {
    /// Number of channels `C`.
    pub fn num_features(&self) -> usize {
        self.gamma.lazy_shape().dims::<1>()[0]
    }

    /// Normalises `input`; in training mode also updates the running statistics.
    ///
    /// With a single value per channel (`B * H * W == 1`) the batch variance says nothing
    /// about the spread: the running variance is then left unchanged (PyTorch refuses such a
    /// batch in training mode).
    ///
    /// # Shapes
    /// - `input`: `[B, C, ...]` (rank 2 or more)
    /// - output: same as `input`
    ///
    /// # Panics
    /// If the input has rank below 2 or its second axis is not `C` (Burn's convention for
    /// layers).
    pub fn forward<const D: usize>(&self, input: Tensor<D>) -> Tensor<D> {
        let dims = input.dims();
        assert!(
            D >= 2 && dims[1] == self.num_features(),
            "BatchNorm over {} channels got an input of shape {dims:?}",
            self.num_features()
        );
        if input.device().is_autodiff() && self.training.is_enabled() {
            self.forward_train(input, false)
        } else {
            self.forward_inference(input)
        }
    }

    /// `relu(self.forward(input))`; in training mode on flex the ReLU runs inside the
    /// normalisation's own passes.
    ///
    /// # Shapes
    /// - `input`: `[B, C, ...]` (rank 2 or more)
    /// - output: same as `input`
    ///
    /// # Panics
    /// As [`BatchNorm::forward`].
    ///
    /// ```
    /// use burn::tensor::{Device, Tensor};
    /// use rescom::nn::BatchNormConfig;
    ///
    /// let device = Device::flex().autodiff();
    /// let norm = BatchNormConfig::new(1).init(&device)?;
    /// let x = Tensor::<2>::from_floats([[1.0], [2.0], [3.0], [6.0]], &device);
    /// let y = norm.forward_relu(x).into_data().try_to_vec::<f32>().unwrap();
    /// // The two values below the mean of 3 are cut to zero.
    /// assert_eq!(&y[..3], &[0.0, 0.0, 0.0]);
    /// assert!(y[3] > 1.0);
    /// # Ok::<(), rescom::Error>(())
    /// ```
    pub fn forward_relu<const D: usize>(&self, input: Tensor<D>) -> Tensor<D> {
        let dims = input.dims();
        assert!(
            D >= 2 && dims[1] == self.num_features(),
            "BatchNorm over {} channels got an input of shape {dims:?}",
            self.num_features()
        );
        if input.device().is_autodiff() && self.training.is_enabled() {
            self.forward_train(input, true)
        } else {
            burn::tensor::activation::relu(self.forward_inference(input))
        }
    }

    fn forward_inference<const D: usize>(&self, input: Tensor<D>) -> Tensor<D> {
        let device = input.device();
        burn::tensor::module::batch_norm(
            input,
            self.gamma.val(),
            self.beta.val(),
            self.running_mean.value().to_device(&device),
            self.running_var.value().to_device(&device),
            self.epsilon,
        )
    }

    /// The training path: normalises with the batch statistics (then a ReLU when `relu`) and
    /// updates the running statistics.
    fn forward_train<const D: usize>(&self, input: Tensor<D>, relu: bool) -> Tensor<D> {
        let device = input.device();
        let per_channel = input.shape().num_elements() / self.num_features();
        let (output, mean, variance) = self.batch_statistics(input, relu);
        let momentum = self.momentum;
        let blend = |running: Tensor<1>, current: Tensor<1>| {
            running
                .to_device(&device)
                .mul_scalar(1.0 - momentum)
                .add(current.detach().mul_scalar(momentum))
                .detach()
        };
        let running_mean = blend(self.running_mean.value_sync(), mean);
        self.running_mean.update(running_mean);
        let running_var = self.running_var.value_sync();
        if per_channel > 1 {
            let unbiased = variance.mul_scalar(per_channel as f64 / (per_channel - 1) as f64);
            self.running_var.update(blend(running_var, unbiased));
        }
        output
    }

    /// The output normalised with the batch statistics (then a ReLU when `relu`), the batch
    /// mean and the biased batch variance.
    fn batch_statistics<const D: usize>(
        &self,
        input: Tensor<D>,
        relu: bool,
    ) -> (Tensor<D>, Tensor<1>, Tensor<1>) {
        let (gamma, beta) = (self.gamma.val(), self.beta.val());
        #[cfg(feature = "flex")]
        if flex::handles(&input, &gamma, &beta) {
            return flex::batch_norm_train(input, gamma, beta, self.epsilon, relu);
        }
        let batch = burn::tensor::module::batch_norm_train(input, gamma, beta, self.epsilon);
        let output = if relu {
            burn::tensor::activation::relu(batch.output)
        } else {
            batch.output
        };
        (output, batch.mean, batch.variance)
    }
}

impl ModuleDisplay for BatchNorm {
    fn custom_settings(&self) -> Option<DisplaySettings> {
        DisplaySettings::new()
            .with_new_line_after_attribute(false)
            .optional()
    }

    fn custom_content(&self, content: Content) -> Option<Content> {
        content
            .add("num_features", &self.num_features())
            .add("momentum", &self.momentum)
            .add("epsilon", &self.epsilon)
            .optional()
    }
}

#[cfg(test)]
mod tests {
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
}
