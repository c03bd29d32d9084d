//! Helpers shared by the integration tests.
#![allow(dead_code)]

use burn::tensor::{DType, Device, Int, Tensor, TensorData};

/// The CPU devices every test runs on, with autodiff: ndarray and flex.
#[allow(deprecated)]
pub fn autodiff_devices() -> Vec<(&'static str, Device)> {
    vec![
        ("ndarray", Device::ndarray().autodiff()),
        ("flex", Device::flex().autodiff()),
    ]
}

pub fn matrix(rows: &[Vec<f64>], device: &Device) -> Tensor<2> {
    matrix_as(rows, device, DType::F32)
}

/// A `[rows, cols]` tensor of the given float type.
pub fn matrix_as(rows: &[Vec<f64>], device: &Device, dtype: DType) -> Tensor<2> {
    let r = rows.len();
    let c = rows.first().map_or(0, Vec::len);
    let flat: Vec<f64> = rows.iter().flatten().copied().collect();
    Tensor::from_data(TensorData::new(flat, [r, c]), (device, dtype))
}

pub fn ints(values: &[i64], device: &Device) -> Tensor<1, Int> {
    Tensor::from_data(TensorData::new(values.to_vec(), [values.len()]), device)
}

pub fn to_vec<const D: usize>(t: Tensor<D>) -> Vec<f64> {
    t.try_into_vec_as::<f64>().unwrap()
}

pub fn to_ints<const D: usize>(t: Tensor<D, Int>) -> Vec<i64> {
    t.try_into_vec_as::<i64>().unwrap()
}

pub fn scalar(t: Tensor<1>) -> f64 {
    to_vec(t)[0]
}

/// `|a - e| <= abs + rel * |e|`, the golden-case tolerance for float32 against float64 references.
pub fn close(actual: f64, expected: f64, rel: f64, abs: f64) -> bool {
    (actual - expected).abs() <= abs + rel * expected.abs()
}

pub mod golden;
pub mod gradients;
