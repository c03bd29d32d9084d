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
mod tests;
