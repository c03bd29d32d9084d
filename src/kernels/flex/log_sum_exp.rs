//! The row-wise log-sum-exp of `log_sum_exp.rs` as an operation of the flex backend: a backend
//! extension with a flex implementation and an autodiff implementation whose backward step
//! multiplies by the softmax that the forward step kept, so every exponential is computed once.
//!
//! It takes `f32` or `f64` tensors on a flex device ([`handles`]); the losses keep Burn's
//! tensor operations for every other case (GPUs among them).

use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::backend::flex::FlexTensor;
use burn::backend::tensor::FloatTensor;
use burn::backend::{Autodiff, Backend, Flex, TensorMetadata, backend_extension};
use burn::tensor::{DType, Tensor};

use super::FlexElement;
use crate::device::on_flex;
use crate::kernels::log_sum_exp as kernel;

/// The row-wise log-sum-exp as a backend operation (flex, and autodiff over flex).
#[backend_extension(Flex, Autodiff)]
pub(crate) trait FlexLogSumExp: Backend {
    /// The log-sum-exp of every row of `x` (`[rows, width]`), `[rows, 1]`; minus infinity
    /// marks an excluded entry.
    fn rescom_log_sum_exp(x: FloatTensor<Self>) -> FloatTensor<Self>;
}

/// Whether [`log_sum_exp`] takes `x`: `f32` or `f64` on a flex device (with or without
/// autodiff).
pub(crate) fn handles(x: &Tensor<2>) -> bool {
    matches!(x.dtype(), DType::F32 | DType::F64) && on_flex(&x.device())
}

/// The log-sum-exp of every row; the caller has checked [`handles`].
///
/// # Shapes
/// - `x`: `[rows, width]`; output `[rows, 1]`
pub(crate) fn log_sum_exp(x: Tensor<2>) -> Tensor<2> {
    use burn::backend::Dispatch;
    Tensor::from_dispatch(<Dispatch as FlexLogSumExp>::rescom_log_sum_exp(
        x.into_dispatch(),
    ))
}

fn forward_typed<T: FlexElement>(
    x: &FlexTensor,
    keep_softmax: bool,
) -> Option<(FlexTensor, Option<FlexTensor>)> {
    let shape = x.shape();
    let [rows, width] = [shape[0], shape[1]];
    let x = x.to_contiguous();
    let (lse, softmax) = kernel::log_sum_exp_rows(T::values(&x)?, width, keep_softmax);
    Some((
        T::tensor(lse, vec![rows, 1]),
        softmax.map(|p| T::tensor(p, vec![rows, width])),
    ))
}

/// The log-sum-exp of every row and, with `keep_softmax`, the softmax of every row (its
/// gradient).
fn forward(x: FlexTensor, keep_softmax: bool) -> (FlexTensor, Option<FlexTensor>) {
    let out = match x.dtype() {
        DType::F32 => forward_typed::<f32>(&x, keep_softmax),
        DType::F64 => forward_typed::<f64>(&x, keep_softmax),
        _ => None,
    };
    out.expect("the log-sum-exp on flex takes f32 or f64 (see `handles`)")
}

fn grad_typed<T: FlexElement>(softmax: &FlexTensor, grad: &FlexTensor) -> Option<FlexTensor> {
    let grad = grad.to_contiguous();
    let dx = kernel::softmax_rows_grad(T::values(softmax)?, T::values(&grad)?);
    Some(T::tensor(dx, softmax.shape()))
}

impl FlexLogSumExp for Flex {
    fn rescom_log_sum_exp(x: FlexTensor) -> FlexTensor {
        forward(x, false).0
    }
}

/// Backward step: the output gradient times the forward's softmax.
#[derive(Debug)]
struct LogSumExpBackward;

impl Backward<Flex, 1> for LogSumExpBackward {
    /// The softmax of every row.
    type State = FlexTensor;

    fn backward(self, ops: Ops<Self::State, 1>, grads: &mut Gradients, _: &mut Checkpointer) {
        let [node_x] = ops.parents;
        let grad = grads.consume::<Flex>(&ops.node);
        let softmax = ops.state;
        if let Some(node) = node_x {
            let dx = match softmax.dtype() {
                DType::F32 => grad_typed::<f32>(&softmax, &grad),
                DType::F64 => grad_typed::<f64>(&softmax, &grad),
                _ => None,
            };
            let dx = dx.expect("the log-sum-exp on flex takes f32 or f64 (see `handles`)");
            grads.register::<Flex>(node.id, dx);
        }
    }
}

impl<C: CheckpointStrategy> FlexLogSumExp for Autodiff<Flex, C> {
    fn rescom_log_sum_exp(x: FloatTensor<Self>) -> FloatTensor<Self> {
        match LogSumExpBackward
            .prepare::<C>([x.node()])
            .compute_bound()
            .stateful()
        {
            OpsKind::Tracked(prep) => match forward(x.into_primitive(), true) {
                (lse, Some(softmax)) => prep.finish(softmax, lse),
                (_, None) => unreachable!("the softmax is kept when asked for"),
            },
            OpsKind::UnTracked(prep) => prep.finish(forward(x.into_primitive(), false).0),
        }
    }
}
