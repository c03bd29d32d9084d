//! Helpers shared by the integration tests.
#![allow(dead_code)]

use burn::tensor::{Device, Int, Tensor, TensorData};

/// The CPU devices every test runs on, with autodiff: ndarray and flex.
#[allow(deprecated)]
pub fn autodiff_devices() -> Vec<(&'static str, Device)> {
    vec![
        ("ndarray", Device::ndarray().autodiff()),
        ("flex", Device::flex().autodiff()),
    ]
}

pub fn matrix(rows: &[Vec<f64>], device: &Device) -> Tensor<2> {
    let r = rows.len();
    let c = rows.first().map_or(0, Vec::len);
    let flat: Vec<f32> = rows.iter().flatten().map(|&v| v as f32).collect();
    Tensor::from_data(TensorData::new(flat, [r, c]), device)
}

pub fn ints(values: &[i64], device: &Device) -> Tensor<1, Int> {
    Tensor::from_data(TensorData::new(values.to_vec(), [values.len()]), device)
}

pub fn to_vec(t: Tensor<2>) -> Vec<f32> {
    t.into_data().convert::<f32>().to_vec::<f32>().unwrap()
}

pub fn to_ints<const D: usize>(t: Tensor<D, Int>) -> Vec<i64> {
    t.into_data().convert::<i64>().to_vec::<i64>().unwrap()
}

pub fn scalar(t: Tensor<1>) -> f64 {
    t.into_data().convert::<f64>().to_vec::<f64>().unwrap()[0]
}

/// `|a - e| <= abs + rel * |e|`, the SPEC tolerance for float32 against float64 references.
pub fn close(actual: f64, expected: f64, rel: f64, abs: f64) -> bool {
    (actual - expected).abs() <= abs + rel * expected.abs()
}
