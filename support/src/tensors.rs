//! Small tensor helpers, comparisons, and the counter-based fill of a module's parameters.

use burn::module::{Module, ModuleMapper, Param};
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

/// `|actual - expected| <= tol * max |expected|` element by element.
pub fn assert_close(what: &str, actual: &[f64], expected: &[f64], tol: f64) {
    assert_eq!(actual.len(), expected.len(), "{what}: lengths");
    let scale = expected
        .iter()
        .fold(f64::MIN_POSITIVE, |m, v| m.max(v.abs()));
    let worst = actual
        .iter()
        .zip(expected)
        .map(|(a, e)| (a - e).abs())
        .fold(0.0, f64::max);
    assert!(
        worst <= tol * scale,
        "{what}: largest difference {worst:e} exceeds {tol:e} x {scale:e}"
    );
}

/// `|a - e| <= abs + rel * |e|`, the golden-case tolerance for float32 against float64 references.
pub fn close(actual: f64, expected: f64, rel: f64, abs: f64) -> bool {
    (actual - expected).abs() <= abs + rel * expected.abs()
}

/// `u(i)` in `[0, 1)`: the top 24 bits of the splitmix64 finaliser of `i`; exact in `f32`.
/// The reference programs (tests/models.rs, tests/reference/train_step.py) use the same stream.
pub fn uniform(i: u64) -> f64 {
    let mut x = i.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    x ^= x >> 30;
    x = x.wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x ^= x >> 27;
    x = x.wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^= x >> 31;
    (x >> 40) as f64 / (1u64 << 24) as f64
}

/// Fills every float tensor as the reference programs' `fill` does, in visiting order (which is
/// the state-dict order of the PyTorch networks): weights of rank >= 2 with
/// `(2u - 1) sqrt(6 / fan_in)`, batch-norm scales and running variances with `0.5 + u`, biases,
/// shifts and running means with `0.2 (u - 0.5)`, each value rounded to `f32` and stored as
/// `dtype`. Linear weights are `[in, out]` in Burn and `[out, in]` in PyTorch: they are generated
/// in PyTorch's order and transposed.
pub struct Fill {
    path: Vec<String>,
    next: u64,
    dtype: DType,
}

impl ModuleMapper for Fill {
    fn enter_module(&mut self, name: &str, _: &str) {
        self.path.push(name.to_string());
    }
    fn exit_module(&mut self, _: &str, _: &str) {
        self.path.pop();
    }
    fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
        let name = self.path.last().cloned().unwrap_or_default();
        let start = self.next;
        let dims = param.lazy_shape().dims::<D>();
        let n = dims.iter().product::<usize>();
        self.next += n as u64;
        let dtype = self.dtype;
        param.map(|t| {
            let mut shape = dims;
            if D == 2 {
                shape.swap(0, 1);
            }
            let fan_in: usize = shape[1..].iter().product();
            let values: Vec<f64> = (0..n as u64)
                .map(|i| {
                    let u = uniform(start + i);
                    let v = if D >= 2 {
                        (2.0 * u - 1.0) * (6.0 / fan_in as f64).sqrt()
                    } else if name == "gamma" || name == "running_var" {
                        0.5 + u
                    } else {
                        0.2 * (u - 0.5)
                    };
                    v as f32 as f64
                })
                .collect();
            let filled =
                Tensor::<D>::from_data(TensorData::new(values, shape), (&t.device(), dtype));
            let filled = if D == 2 {
                filled.swap_dims(0, 1)
            } else {
                filled
            };
            if t.is_require_grad() {
                filled.require_grad()
            } else {
                filled
            }
        })
    }
}

/// [`Fill`] in `f32`.
pub fn fill<M: Module>(module: M) -> M {
    fill_as(module, DType::F32)
}

/// [`Fill`] with tensors of type `dtype`.
pub fn fill_as<M: Module>(module: M, dtype: DType) -> M {
    module.map(&mut Fill {
        path: Vec::new(),
        next: 0,
        dtype,
    })
}
