//! Class statistics of a long-tailed training set ([method](crate::method#class-statistics)).
//!
//! From the class histogram `n_c`: the prior `pi_c = n_c / n`, the log prior
//! `log(pi_c + 1e-9)` used by every prior-shifted term, and the effective-number weights of
//! Cui et al. (2019), `E_c = (1 - beta^{n_c}) / (1 - beta)`, `w_c = (sum_k E_k / C) / E_c`.
//! Everything is computed in `f64` on the host once, then uploaded as `f32` tensors.

use burn::module::Module;
use burn::tensor::{DType, Device, Tensor, TensorData};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// The constant added to the prior before taking its logarithm.
pub const LOG_PRIOR_EPS: f64 = 1e-9;

/// What to do with a class that has no training sample.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum EmptyClassPolicy {
    /// Reject the histogram with [`Error::EmptyClass`] (the default).
    #[default]
    Reject,
    /// Keep the class: its prior is 0 (log prior `log(1e-9)`), and its effective number is
    /// that of a class with one sample (`E = 1`), so its weight is finite.
    CountAsOne,
}

/// Prior and effective-number statistics of a class histogram.
///
/// ```
/// use rescom::ClassStats;
/// let stats = ClassStats::new(&[30, 10])?;
/// assert_eq!(stats.prior(), vec![0.75, 0.25]);
/// let w = stats.effective_number_weights(0.0)?;
/// assert_eq!(w, vec![1.0, 1.0]);
/// # Ok::<(), rescom::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClassStats {
    counts: Vec<usize>,
    policy: EmptyClassPolicy,
}

impl ClassStats {
    /// Statistics of `counts`, rejecting an empty histogram or an empty class.
    pub fn new(counts: &[usize]) -> Result<Self> {
        Self::with_policy(counts, EmptyClassPolicy::Reject)
    }

    /// Statistics of `counts` with an explicit rule for empty classes.
    pub fn with_policy(counts: &[usize], policy: EmptyClassPolicy) -> Result<Self> {
        if counts.is_empty() {
            return Err(Error::NoClasses);
        }
        if policy == EmptyClassPolicy::Reject
            && let Some(class) = counts.iter().position(|&n| n == 0)
        {
            return Err(Error::EmptyClass { class });
        }
        if counts.iter().all(|&n| n == 0) {
            return Err(Error::InvalidDataset(
                "every class of the histogram is empty".into(),
            ));
        }
        Ok(Self {
            counts: counts.to_vec(),
            policy,
        })
    }

    /// Number of classes `C`.
    pub fn num_classes(&self) -> usize {
        self.counts.len()
    }

    /// The histogram `n_c`.
    pub fn counts(&self) -> &[usize] {
        &self.counts
    }

    /// Total number of samples `n`.
    pub fn total(&self) -> usize {
        self.counts.iter().sum()
    }

    /// `pi_c = n_c / n`.
    pub fn prior(&self) -> Vec<f64> {
        let n = self.total() as f64;
        self.counts.iter().map(|&c| c as f64 / n).collect()
    }

    /// `log(pi_c + 1e-9)`.
    pub fn log_prior(&self) -> Vec<f64> {
        self.prior()
            .into_iter()
            .map(|p| (p + LOG_PRIOR_EPS).ln())
            .collect()
    }

    /// Effective-number class weights `w_c = (sum_k E_k / C) / E_c` for `beta` in `[0, 1)`.
    /// With `beta == 0` every weight is 1.
    pub fn effective_number_weights(&self, beta: f64) -> Result<Vec<f64>> {
        if !(0.0..1.0).contains(&beta) {
            return Err(Error::InvalidBeta { beta });
        }
        let effective: Vec<f64> = self
            .counts
            .iter()
            .map(|&n| {
                let n = match self.policy {
                    EmptyClassPolicy::CountAsOne => n.max(1),
                    EmptyClassPolicy::Reject => n,
                };
                effective_number(n, beta)
            })
            .collect();
        let mean = effective.iter().sum::<f64>() / effective.len() as f64;
        Ok(effective.iter().map(|e| mean / e).collect())
    }

    /// [`ClassStats::log_prior`] as an `f32` tensor of shape `[C]` on `device`.
    pub fn log_prior_tensor(&self, device: &Device) -> Tensor<1> {
        to_tensor(&self.log_prior(), device)
    }

    /// [`ClassStats::effective_number_weights`] as an `f32` tensor of shape `[C]` on `device`.
    pub fn weights_tensor(&self, beta: f64, device: &Device) -> Result<Tensor<1>> {
        Ok(to_tensor(&self.effective_number_weights(beta)?, device))
    }
}

/// A per-class constant kept in `f64` on the host and as an `f32` tensor on the device, handed
/// out in the float type of the computation (so the losses run in `f32`, `f64` or half
/// precision without losing the `f64` statistics).
#[derive(Module, Debug)]
pub(crate) struct ClassVector {
    pub(crate) host: Vec<f64>,
    pub(crate) tensor: Tensor<1>,
}

impl ClassVector {
    pub(crate) fn new(values: Vec<f64>, device: &Device) -> Self {
        Self {
            tensor: to_tensor(&values, device),
            host: values,
        }
    }

    /// The values as a `[C]` tensor of `dtype` on `device`.
    pub(crate) fn get(&self, dtype: DType, device: &Device) -> Tensor<1> {
        let stored = self.tensor.clone();
        if stored.dtype() == dtype && &stored.device() == device {
            return stored;
        }
        if dtype == DType::F64 {
            let data = TensorData::new(self.host.clone(), [self.host.len()]);
            return Tensor::from_data(data, (device, DType::F64));
        }
        stored.to_device(device).cast(dtype)
    }
}

/// `E = (1 - beta^n) / (1 - beta)`, computed as `sum_{i<n} beta^i` in a cancellation-free form.
fn effective_number(n: usize, beta: f64) -> f64 {
    if beta == 0.0 {
        return 1.0;
    }
    // -expm1(n ln beta) / -ln_1p(-beta) * (-ln_1p(-beta)) / (1 - beta) keeps full precision
    // when beta is close to 1, where 1 - beta^n and 1 - beta both cancel.
    let n = n as f64;
    -(n * beta.ln()).exp_m1() / (1.0 - beta)
}

fn to_tensor(values: &[f64], device: &Device) -> Tensor<1> {
    let data: Vec<f32> = values.iter().map(|&v| v as f32).collect();
    Tensor::from_data(TensorData::new(data, [values.len()]), device)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn weights_follow_the_definition() {
        let counts = [5000, 500, 50];
        let beta = 0.999;
        let stats = ClassStats::new(&counts).unwrap();
        let w = stats.effective_number_weights(beta).unwrap();
        let e: Vec<f64> = counts
            .iter()
            .map(|&n| (1.0 - beta.powi(n as i32)) / (1.0 - beta))
            .collect();
        let mean = e.iter().sum::<f64>() / 3.0;
        for (wc, ec) in w.iter().zip(&e) {
            assert!((wc - mean / ec).abs() < 1e-12 * wc.abs());
        }
        // Rarer classes weigh more.
        assert!(w[0] < w[1] && w[1] < w[2]);
    }

    #[test]
    fn equal_counts_give_unit_weights() {
        let stats = ClassStats::new(&[7, 7, 7]).unwrap();
        for w in stats.effective_number_weights(0.9999).unwrap() {
            assert!((w - 1.0).abs() < 1e-12);
        }
    }

    #[test]
    fn beta_close_to_one_keeps_precision() {
        let stats = ClassStats::new(&[500, 5]).unwrap();
        let w = stats.effective_number_weights(0.999999).unwrap();
        // E_c ~ n_c for beta -> 1, so w ~ mean(n) / n_c.
        assert!((w[1] / w[0] - 100.0).abs() / 100.0 < 1e-3);
    }

    #[test]
    fn bad_histograms_are_rejected() {
        assert!(matches!(ClassStats::new(&[]), Err(Error::NoClasses)));
        assert!(matches!(
            ClassStats::new(&[3, 0, 1]),
            Err(Error::EmptyClass { class: 1 })
        ));
        let stats = ClassStats::new(&[3, 1]).unwrap();
        for beta in [-0.1, 1.0, 1.5, f64::NAN] {
            assert!(matches!(
                stats.effective_number_weights(beta),
                Err(Error::InvalidBeta { .. })
            ));
        }
    }

    #[test]
    fn empty_class_opt_in_counts_as_one() {
        let stats = ClassStats::with_policy(&[4, 0], EmptyClassPolicy::CountAsOne).unwrap();
        let lp = stats.log_prior();
        assert!((lp[1] - LOG_PRIOR_EPS.ln()).abs() < 1e-12);
        let w = stats.effective_number_weights(0.5).unwrap();
        assert!(w.iter().all(|w| w.is_finite()));
        let one = ClassStats::new(&[4, 1]).unwrap();
        assert_eq!(w, one.effective_number_weights(0.5).unwrap());
    }
}
