//! Row-wise L2 normalisation.

use burn::tensor::Tensor;

/// The floor on the norm: `q = f / max(||f||_2, 1e-12)`
/// ([method](crate::method#notation-and-layout)).
pub const NORM_EPS: f64 = 1e-12;

/// Divides each row by its L2 norm (floored at `1e-12`); gradients flow through the norm.
///
/// # Shapes
/// - `x`: `[rows, dim]`
/// - output: `[rows, dim]`
///
/// ```
/// use burn::tensor::{Device, Tensor};
/// let device = Device::flex();
/// let x = Tensor::<2>::from_floats([[3.0, 4.0], [0.0, 0.0]], &device);
/// let q = rescom::l2_normalize(x).try_into_vec_as::<f32>().unwrap();
/// assert_eq!(q, vec![0.6, 0.8, 0.0, 0.0]);
/// ```
pub fn l2_normalize(x: Tensor<2>) -> Tensor<2> {
    // max(||x||, eps) == sqrt(max(||x||^2, eps^2)); clamping before the square root keeps the
    // gradient of an all-zero row at zero instead of 0 * inf.
    let norm = x
        .clone()
        .square()
        .sum_dim(1)
        .clamp_min(NORM_EPS * NORM_EPS)
        .sqrt();
    x / norm
}
