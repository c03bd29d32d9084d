//! Training-mode batch normalisation (and the ReLU after it) as an operation of the flex
//! backend: a backend extension with a flex implementation and an autodiff implementation
//! whose backward step runs the kernels of `kernel.rs`. Float types other than `f32` and
//! `f64` fall back to Burn's batch normalisation on flex.

use burn::backend::autodiff::NodeId;
use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::backend::flex::FlexTensor;
use burn::backend::ops::{ActivationOps, ModuleOps};
use burn::backend::tensor::FloatTensor;
use burn::backend::{Autodiff, Backend, Flex, TensorMetadata, backend_extension};
use burn::tensor::{DType, Shape, Tensor};

use super::FlexElement;
use crate::device::on_flex;
use crate::kernels::batch_norm::{self as kernel, Layout};

/// Training-mode batch normalisation as a backend operation (flex, and autodiff over flex).
#[backend_extension(Flex, Autodiff)]
pub(crate) trait FlexNorm: Backend {
    /// Normalises `x` (`[B, C, ...]`) with its batch statistics, scales by `gamma`, shifts by
    /// `beta`, then applies a ReLU when `relu`; returns the output, the batch mean and the
    /// biased batch variance (`[C]` each, not differentiated).
    fn rescom_batch_norm_train(
        x: FloatTensor<Self>,
        gamma: FloatTensor<Self>,
        beta: FloatTensor<Self>,
        epsilon: f64,
        relu: bool,
    ) -> (FloatTensor<Self>, FloatTensor<Self>, FloatTensor<Self>);
}

/// Whether [`batch_norm_train`] takes this case: `f32` or `f64` tensors of one type on a flex
/// device (with or without autodiff), with `C = dims[1]` scales and shifts.
pub(crate) fn handles<const D: usize>(x: &Tensor<D>, gamma: &Tensor<1>, beta: &Tensor<1>) -> bool {
    let dtype = x.dtype();
    let dims = x.dims();
    D >= 2
        && matches!(dtype, DType::F32 | DType::F64)
        && gamma.dtype() == dtype
        && beta.dtype() == dtype
        && gamma.dims() == [dims[1]]
        && beta.dims() == [dims[1]]
        && on_flex(&x.device())
}

/// The operation through the backend extension; the caller has checked [`handles`].
pub(crate) fn batch_norm_train<const D: usize>(
    x: Tensor<D>,
    gamma: Tensor<1>,
    beta: Tensor<1>,
    epsilon: f64,
    relu: bool,
) -> (Tensor<D>, Tensor<1>, Tensor<1>) {
    use burn::backend::Dispatch;
    let (y, mean, var) = <Dispatch as FlexNorm>::rescom_batch_norm_train(
        x.into_dispatch(),
        gamma.into_dispatch(),
        beta.into_dispatch(),
        epsilon,
        relu,
    );
    (
        Tensor::from_dispatch(y),
        Tensor::from_dispatch(mean),
        Tensor::from_dispatch(var),
    )
}

fn layout(x: &FlexTensor) -> Option<Layout> {
    let shape = x.shape();
    (shape.num_dims() >= 2).then(|| Layout {
        images: shape[0],
        channels: shape[1],
        pixels: shape.iter().skip(2).product(),
    })
}

fn forward_typed<T: FlexElement>(
    x: &FlexTensor,
    gamma: &FlexTensor,
    beta: &FlexTensor,
    epsilon: f64,
    relu: bool,
) -> Option<(FlexTensor, FlexTensor, FlexTensor)> {
    let l = layout(x)?;
    let (x, gamma, beta) = (
        x.to_contiguous(),
        gamma.to_contiguous(),
        beta.to_contiguous(),
    );
    let (y, mean, var) = kernel::forward(
        l,
        T::values(&x)?,
        T::values(&gamma)?,
        T::values(&beta)?,
        epsilon,
        relu,
    );
    let channels = Shape::from(vec![l.channels]);
    Some((
        T::tensor(y, x.shape()),
        T::tensor(mean, channels.clone()),
        T::tensor(var, channels),
    ))
}

fn supported(x: &FlexTensor, others: &[&FlexTensor]) -> bool {
    let dtype = x.dtype();
    matches!(dtype, DType::F32 | DType::F64)
        && others.iter().all(|t| t.dtype() == dtype)
        && layout(x).is_some_and(|l| {
            l.images * l.pixels > 0
                && others[..2]
                    .iter()
                    .all(|t| t.shape().num_elements() == l.channels)
        })
}

/// Forward pass on flex tensors.
fn forward(
    x: FlexTensor,
    gamma: FlexTensor,
    beta: FlexTensor,
    epsilon: f64,
    relu: bool,
) -> (FlexTensor, FlexTensor, FlexTensor) {
    let fast = if supported(&x, &[&gamma, &beta]) {
        match x.dtype() {
            DType::F32 => forward_typed::<f32>(&x, &gamma, &beta, epsilon, relu),
            DType::F64 => forward_typed::<f64>(&x, &gamma, &beta, epsilon, relu),
            _ => None,
        }
    } else {
        None
    };
    if let Some(result) = fast {
        return result;
    }
    let result = <Flex as ModuleOps<Flex>>::batch_norm_train(x, gamma, beta, epsilon);
    let output = if relu {
        <Flex as ActivationOps<Flex>>::relu(result.output)
    } else {
        result.output
    };
    (output, result.mean, result.variance)
}

/// State of the backward step: the checkpointed input, the scale and shift, the batch
/// statistics, `epsilon` and whether a ReLU followed.
type State = (
    NodeId,
    FlexTensor,
    FlexTensor,
    FlexTensor,
    FlexTensor,
    f64,
    bool,
);

fn backward_typed<T: FlexElement>(
    x: &FlexTensor,
    dy: &FlexTensor,
    [gamma, beta, mean, var]: [&FlexTensor; 4],
    epsilon: f64,
    relu: bool,
) -> Option<(FlexTensor, FlexTensor, FlexTensor)> {
    let l = layout(x)?;
    let contiguous = |t: &FlexTensor| t.to_contiguous();
    let (x, dy) = (contiguous(x), contiguous(dy));
    let [gamma, beta, mean, var] = [gamma, beta, mean, var].map(contiguous);
    let (dx, dgamma, dbeta) = kernel::backward(
        l,
        T::values(&x)?,
        T::values(&dy)?,
        T::values(&gamma)?,
        T::values(&beta)?,
        T::values(&mean)?,
        T::values(&var)?,
        epsilon,
        relu,
    );
    let channels = Shape::from(vec![l.channels]);
    Some((
        T::tensor(dx, x.shape()),
        T::tensor(dgamma, channels.clone()),
        T::tensor(dbeta, channels),
    ))
}

/// Gradients of the input, scale and shift.
fn backward(
    x: FlexTensor,
    dy: FlexTensor,
    [gamma, beta, mean, var]: [FlexTensor; 4],
    epsilon: f64,
    relu: bool,
) -> (FlexTensor, FlexTensor, FlexTensor) {
    let fast = if supported(&x, &[&gamma, &beta, &mean, &var, &dy]) {
        let stats = [&gamma, &beta, &mean, &var];
        match x.dtype() {
            DType::F32 => backward_typed::<f32>(&x, &dy, stats, epsilon, relu),
            DType::F64 => backward_typed::<f64>(&x, &dy, stats, epsilon, relu),
            _ => None,
        }
    } else {
        None
    };
    if let Some(result) = fast {
        return result;
    }
    // Burn's gradients, through the ReLU first.
    let dy = if relu {
        let (output, _, _) = forward(x.clone(), gamma.clone(), beta.clone(), epsilon, true);
        <Flex as ActivationOps<Flex>>::relu_backward(output, dy)
    } else {
        dy
    };
    let result =
        <Flex as ModuleOps<Flex>>::batch_norm_train_backward(x, gamma, mean, var, epsilon, dy);
    (result.x_grad, result.gamma_grad, result.beta_grad)
}

impl FlexNorm for Flex {
    fn rescom_batch_norm_train(
        x: FlexTensor,
        gamma: FlexTensor,
        beta: FlexTensor,
        epsilon: f64,
        relu: bool,
    ) -> (FlexTensor, FlexTensor, FlexTensor) {
        forward(x, gamma, beta, epsilon, relu)
    }
}

#[derive(Debug)]
struct NormBackward;

impl Backward<Flex, 3> for NormBackward {
    type State = State;

    fn backward(
        self,
        ops: Ops<Self::State, 3>,
        grads: &mut Gradients,
        checkpointer: &mut Checkpointer,
    ) {
        let [node_x, node_gamma, node_beta] = ops.parents;
        let dy = grads.consume::<Flex>(&ops.node);
        let (x_state, gamma, beta, mean, var, epsilon, relu) = ops.state;
        let x = checkpointer.retrieve_node_output::<FlexTensor>(x_state);
        let (dx, dgamma, dbeta) = backward(x, dy, [gamma, beta, mean, var], epsilon, relu);
        if let Some(node) = node_x {
            grads.register::<Flex>(node.id, dx);
        }
        if let Some(node) = node_gamma {
            grads.register::<Flex>(node.id, dgamma);
        }
        if let Some(node) = node_beta {
            grads.register::<Flex>(node.id, dbeta);
        }
    }
}

impl<C: CheckpointStrategy> FlexNorm for Autodiff<Flex, C> {
    fn rescom_batch_norm_train(
        x: FloatTensor<Self>,
        gamma: FloatTensor<Self>,
        beta: FloatTensor<Self>,
        epsilon: f64,
        relu: bool,
    ) -> (FloatTensor<Self>, FloatTensor<Self>, FloatTensor<Self>) {
        match NormBackward
            .prepare::<C>([x.node(), gamma.node(), beta.node()])
            .compute_bound()
            .stateful()
        {
            OpsKind::Tracked(mut prep) => {
                let x_state = prep.checkpoint(&x);
                let (gamma, beta) = (gamma.into_primitive(), beta.into_primitive());
                let (y, mean, var) = forward(
                    x.into_primitive(),
                    gamma.clone(),
                    beta.clone(),
                    epsilon,
                    relu,
                );
                let state = (
                    x_state,
                    gamma,
                    beta,
                    mean.clone(),
                    var.clone(),
                    epsilon,
                    relu,
                );
                (
                    prep.finish(state, y),
                    FloatTensor::<Self>::new(mean),
                    FloatTensor::<Self>::new(var),
                )
            }
            OpsKind::UnTracked(prep) => {
                let (y, mean, var) = forward(
                    x.into_primitive(),
                    gamma.into_primitive(),
                    beta.into_primitive(),
                    epsilon,
                    relu,
                );
                (
                    prep.finish(y),
                    FloatTensor::<Self>::new(mean),
                    FloatTensor::<Self>::new(var),
                )
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Rng;
    use burn::tensor::{Device, TensorData};

    fn random<const D: usize>(
        rng: &mut Rng,
        shape: [usize; D],
        device: &Device,
        dtype: DType,
    ) -> Tensor<D> {
        let n = shape.iter().product();
        let values: Vec<f64> = (0..n).map(|_| rng.normal() * 1.5 + 0.3).collect();
        Tensor::from_data(TensorData::new(values, shape), (device, dtype))
    }

    fn host<const D: usize>(t: Tensor<D>) -> Vec<f64> {
        t.into_data()
            .convert::<f64>()
            .try_to_vec::<f64>()
            .unwrap_or_default()
    }

    fn close(what: &str, a: &[f64], e: &[f64], tol: f64) {
        assert_eq!(a.len(), e.len(), "{what}");
        let scale = e.iter().fold(f64::MIN_POSITIVE, |m, v| m.max(v.abs()));
        let worst = a
            .iter()
            .zip(e)
            .map(|(a, e)| (a - e).abs())
            .fold(0.0, f64::max);
        assert!(
            worst <= tol * scale,
            "{what}: {worst:e} > {tol:e} x {scale:e}"
        );
    }

    fn check<const D: usize>(shape: [usize; D], relu: bool) {
        let device = Device::flex().autodiff();
        for (dtype, tol) in [(DType::F64, 1e-10), (DType::F32, 1e-5)] {
            let mut rng = Rng::new(shape.iter().sum::<usize>() as u64);
            let c = shape[1];
            let x = random(&mut rng, shape, &device, dtype).require_grad();
            let gamma = random(&mut rng, [c], &device, dtype).require_grad();
            let beta = random(&mut rng, [c], &device, dtype).require_grad();
            let r = random(&mut rng, shape, &device, dtype);
            assert!(handles(&x, &gamma, &beta));
            let run = |ours: bool| {
                let (y, mean, var) = if ours {
                    batch_norm_train(x.clone(), gamma.clone(), beta.clone(), 1e-5, relu)
                } else {
                    let out = burn::tensor::module::batch_norm_train(
                        x.clone(),
                        gamma.clone(),
                        beta.clone(),
                        1e-5,
                    );
                    let y = if relu {
                        burn::tensor::activation::relu(out.output)
                    } else {
                        out.output
                    };
                    (y, out.mean, out.variance)
                };
                let grads = (y.clone() * r.clone()).sum().backward();
                [
                    host(y),
                    host(mean),
                    host(var),
                    host(x.grad(&grads).unwrap()),
                    host(gamma.grad(&grads).unwrap()),
                    host(beta.grad(&grads).unwrap()),
                ]
            };
            let (ours, burn) = (run(true), run(false));
            for (i, what) in ["output", "mean", "variance", "dx", "dgamma", "dbeta"]
                .iter()
                .enumerate()
            {
                close(
                    &format!("{shape:?} relu {relu} {dtype:?} {what}"),
                    &ours[i],
                    &burn[i],
                    tol,
                );
            }
        }
    }

    #[test]
    fn matches_burns_batch_norm_and_relu() {
        check([4, 3, 5, 6], false);
        check([4, 3, 5, 6], true);
        check([7, 16], true);
        check([1, 5, 3, 3], false);
        check([3, 2, 4], true);
    }
}
