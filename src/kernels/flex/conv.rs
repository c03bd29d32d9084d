//! The convolution of [`super::kernel`] as an operation of the flex backend: a backend
//! extension with a flex implementation (forward) and an autodiff implementation whose
//! backward step computes the input, weight and bias gradients with the same kernels.
//!
//! Float types other than `f32` and `f64` fall back to flex's own convolution and its
//! gradients, so the operation is defined for every tensor flex holds.

use burn::backend::autodiff::NodeId;
use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::backend::flex::FlexTensor;
use burn::backend::ops::ModuleOps;
use burn::backend::tensor::FloatTensor;
use burn::backend::{Autodiff, Backend, Flex, TensorMetadata, backend_extension};
use burn::tensor::ops::ConvOptions;
use burn::tensor::{DType, Tensor};

use super::FlexElement;
use crate::device::on_flex;
use crate::kernels::conv::{self as kernel, Geometry};

/// The crate's convolution as a backend operation (flex, and autodiff over flex).
#[backend_extension(Flex, Autodiff)]
pub(crate) trait FlexConv: Backend {
    /// `conv2d(x, weight, None, options)`, as Burn's `ModuleOps::conv2d`.
    fn rescom_conv2d(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        options: ConvOptions<2>,
    ) -> FloatTensor<Self>;

    /// `conv2d(x, weight, Some(bias), options)`, as Burn's `ModuleOps::conv2d`.
    fn rescom_conv2d_bias(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        bias: FloatTensor<Self>,
        options: ConvOptions<2>,
    ) -> FloatTensor<Self>;
}

/// Whether [`conv2d`] takes this case: tensors on a flex device (with or without autodiff), in
/// `f32` or `f64`, with shapes that form a valid convolution.
pub(crate) fn handles(
    x: &Tensor<4>,
    weight: &Tensor<4>,
    bias: Option<&Tensor<1>>,
    options: &ConvOptions<2>,
) -> bool {
    let dtype = x.dtype();
    matches!(dtype, DType::F32 | DType::F64)
        && weight.dtype() == dtype
        && bias.is_none_or(|b| b.dtype() == dtype && b.dims() == [weight.dims()[0]])
        && on_flex(&x.device())
        && on_flex(&weight.device())
        && Geometry::new(x.dims(), weight.dims(), options).is_some()
}

/// The convolution through the backend extension; the caller has checked [`handles`].
pub(crate) fn conv2d(
    x: Tensor<4>,
    weight: Tensor<4>,
    bias: Option<Tensor<1>>,
    options: ConvOptions<2>,
) -> Tensor<4> {
    use burn::backend::Dispatch;
    let (x, weight) = (x.into_dispatch(), weight.into_dispatch());
    Tensor::from_dispatch(match bias {
        Some(bias) => {
            <Dispatch as FlexConv>::rescom_conv2d_bias(x, weight, bias.into_dispatch(), options)
        }
        None => <Dispatch as FlexConv>::rescom_conv2d(x, weight, options),
    })
}

fn dims(tensor: &FlexTensor) -> Option<[usize; 4]> {
    let shape = tensor.shape();
    (shape.num_dims() == 4).then(|| [shape[0], shape[1], shape[2], shape[3]])
}

/// The geometry and contiguous copies (views where already contiguous) of the operands, when
/// the kernels take the case.
fn prepare(
    x: &FlexTensor,
    weight: &FlexTensor,
    options: &ConvOptions<2>,
) -> Option<(Geometry, FlexTensor, FlexTensor)> {
    let geometry = Geometry::new(dims(x)?, dims(weight)?, options)?;
    let supported = matches!(x.dtype(), DType::F32 | DType::F64) && weight.dtype() == x.dtype();
    supported.then(|| (geometry, x.to_contiguous(), weight.to_contiguous()))
}

fn forward_typed<T: FlexElement>(
    g: &Geometry,
    x: &FlexTensor,
    weight: &FlexTensor,
    bias: Option<&FlexTensor>,
) -> Option<FlexTensor> {
    let bias = match bias {
        Some(b) if b.dtype() == T::DTYPE && b.shape().num_elements() == g.out_channels => {
            Some(b.to_contiguous())
        }
        Some(_) => return None,
        None => None,
    };
    let bias_values = match &bias {
        Some(b) => Some(T::values(b)?),
        None => None,
    };
    let y = kernel::forward(g, T::values(x)?, T::values(weight)?, bias_values);
    Some(T::tensor(
        y,
        vec![g.batch, g.out_channels, g.out_size[0], g.out_size[1]],
    ))
}

/// Forward convolution on flex tensors.
fn forward(
    x: FlexTensor,
    weight: FlexTensor,
    bias: Option<FlexTensor>,
    options: ConvOptions<2>,
) -> FlexTensor {
    let fast = prepare(&x, &weight, &options).and_then(|(g, xc, wc)| match x.dtype() {
        DType::F32 => forward_typed::<f32>(&g, &xc, &wc, bias.as_ref()),
        DType::F64 => forward_typed::<f64>(&g, &xc, &wc, bias.as_ref()),
        _ => None,
    });
    match fast {
        Some(y) => y,
        None => <Flex as ModuleOps<Flex>>::conv2d(x, weight, bias, options),
    }
}

/// Which gradient a backward kernel computes.
#[derive(Debug, Clone, Copy)]
enum Wrt {
    Input,
    Weight,
}

/// `dy` as a contiguous tensor, when it is the output gradient of `g` in `T`.
fn output_grad<T: FlexElement>(g: &Geometry, dy: &FlexTensor) -> Option<FlexTensor> {
    let shape = [g.batch, g.out_channels, g.out_size[0], g.out_size[1]];
    (dy.dtype() == T::DTYPE && dims(dy)? == shape).then(|| dy.to_contiguous())
}

fn grad_typed<T: FlexElement>(
    g: &Geometry,
    wrt: Wrt,
    x: &FlexTensor,
    weight: &FlexTensor,
    dy: &FlexTensor,
) -> Option<FlexTensor> {
    let dy = output_grad::<T>(g, dy)?;
    Some(match wrt {
        Wrt::Input => T::tensor(
            kernel::input_grad(g, T::values(weight)?, T::values(&dy)?),
            vec![g.batch, g.in_channels, g.in_size[0], g.in_size[1]],
        ),
        Wrt::Weight => T::tensor(
            kernel::weight_grad(g, T::values(x)?, T::values(&dy)?),
            dims(weight)?.to_vec(),
        ),
    })
}

/// The input or weight gradient of [`forward`] for the output gradient `dy`.
fn grad(
    wrt: Wrt,
    x: FlexTensor,
    weight: FlexTensor,
    dy: FlexTensor,
    options: ConvOptions<2>,
) -> FlexTensor {
    let fast = prepare(&x, &weight, &options).and_then(|(g, xc, wc)| match x.dtype() {
        DType::F32 => grad_typed::<f32>(&g, wrt, &xc, &wc, &dy),
        DType::F64 => grad_typed::<f64>(&g, wrt, &xc, &wc, &dy),
        _ => None,
    });
    match (fast, wrt) {
        (Some(grad), _) => grad,
        (None, Wrt::Input) => <Flex as ModuleOps<Flex>>::conv2d_x_backward(x, weight, dy, options),
        (None, Wrt::Weight) => {
            <Flex as ModuleOps<Flex>>::conv2d_weight_backward(x, weight, dy, options)
        }
    }
}

/// The input and weight gradients together, through the kernels' joint backward pass where
/// they take the case.
fn grads(
    x: FlexTensor,
    weight: FlexTensor,
    dy: FlexTensor,
    options: ConvOptions<2>,
) -> (FlexTensor, FlexTensor) {
    let fast = prepare(&x, &weight, &options).and_then(|(g, xc, wc)| match x.dtype() {
        DType::F32 => grads_typed::<f32>(&g, &xc, &wc, &dy),
        DType::F64 => grads_typed::<f64>(&g, &xc, &wc, &dy),
        _ => None,
    });
    fast.unwrap_or_else(|| {
        let dw = grad(
            Wrt::Weight,
            x.clone(),
            weight.clone(),
            dy.clone(),
            options.clone(),
        );
        (grad(Wrt::Input, x, weight, dy, options), dw)
    })
}

fn grads_typed<T: FlexElement>(
    g: &Geometry,
    x: &FlexTensor,
    weight: &FlexTensor,
    dy: &FlexTensor,
) -> Option<(FlexTensor, FlexTensor)> {
    let dy = output_grad::<T>(g, dy)?;
    let (dx, dw) = kernel::backward(g, T::values(x)?, T::values(weight)?, T::values(&dy)?);
    Some((
        T::tensor(dx, vec![g.batch, g.in_channels, g.in_size[0], g.in_size[1]]),
        T::tensor(dw, dims(weight)?.to_vec()),
    ))
}

/// Registers the gradients of `x` and `weight` that autodiff asks for (`nodes`).
fn register_grads(
    grads: &mut Gradients,
    [node_x, node_weight]: [Option<NodeId>; 2],
    x: FlexTensor,
    weight: FlexTensor,
    dy: FlexTensor,
    options: ConvOptions<2>,
) {
    match (node_x, node_weight) {
        (Some(node_x), Some(node_weight)) => {
            let (dx, dw) = self::grads(x, weight, dy, options);
            grads.register::<Flex>(node_weight, dw);
            grads.register::<Flex>(node_x, dx);
        }
        (None, Some(node)) => {
            grads.register::<Flex>(node, grad(Wrt::Weight, x, weight, dy, options));
        }
        (Some(node), None) => {
            grads.register::<Flex>(node, grad(Wrt::Input, x, weight, dy, options));
        }
        (None, None) => {}
    }
}

/// The bias gradient: `dy` summed over images and pixels.
fn bias_grad(x: FlexTensor, bias: FlexTensor, dy: FlexTensor) -> FlexTensor {
    let fast = dims(&dy).and_then(|[_, channels, h, w]| {
        let dy = dy.to_contiguous();
        match dy.dtype() {
            DType::F32 if bias.dtype() == DType::F32 => Some(f32::tensor(
                kernel::bias_grad(channels, h * w, f32::values(&dy)?),
                vec![channels],
            )),
            DType::F64 if bias.dtype() == DType::F64 => Some(f64::tensor(
                kernel::bias_grad(channels, h * w, f64::values(&dy)?),
                vec![channels],
            )),
            _ => None,
        }
    });
    match fast {
        Some(grad) => grad,
        None => <Flex as ModuleOps<Flex>>::conv2d_bias_backward(x, bias, dy),
    }
}

impl FlexConv for Flex {
    fn rescom_conv2d(x: FlexTensor, weight: FlexTensor, options: ConvOptions<2>) -> FlexTensor {
        forward(x, weight, None, options)
    }

    fn rescom_conv2d_bias(
        x: FlexTensor,
        weight: FlexTensor,
        bias: FlexTensor,
        options: ConvOptions<2>,
    ) -> FlexTensor {
        forward(x, weight, Some(bias), options)
    }
}

/// Backward step without bias: the input and weight gradients.
#[derive(Debug)]
struct ConvBackward;

impl Backward<Flex, 2> for ConvBackward {
    type State = (NodeId, NodeId, ConvOptions<2>);

    fn backward(
        self,
        ops: Ops<Self::State, 2>,
        grads: &mut Gradients,
        checkpointer: &mut Checkpointer,
    ) {
        let [node_x, node_weight] = ops.parents;
        let dy = grads.consume::<Flex>(&ops.node);
        let (x_state, weight_state, options) = ops.state;
        let x = checkpointer.retrieve_node_output::<FlexTensor>(x_state);
        let weight = checkpointer.retrieve_node_output::<FlexTensor>(weight_state);
        let nodes = [node_x.map(|n| n.id), node_weight.map(|n| n.id)];
        register_grads(grads, nodes, x, weight, dy, options);
    }
}

/// Backward step with bias: the input, weight and bias gradients.
#[derive(Debug)]
struct ConvBiasBackward;

impl Backward<Flex, 3> for ConvBiasBackward {
    type State = (NodeId, NodeId, NodeId, ConvOptions<2>);

    fn backward(
        self,
        ops: Ops<Self::State, 3>,
        grads: &mut Gradients,
        checkpointer: &mut Checkpointer,
    ) {
        let [node_x, node_weight, node_bias] = ops.parents;
        let dy = grads.consume::<Flex>(&ops.node);
        let (x_state, weight_state, bias_state, options) = ops.state;
        let x = checkpointer.retrieve_node_output::<FlexTensor>(x_state);
        let weight = checkpointer.retrieve_node_output::<FlexTensor>(weight_state);
        let bias = checkpointer.retrieve_node_output::<FlexTensor>(bias_state);
        if let Some(node) = node_bias {
            grads.register::<Flex>(node.id, bias_grad(x.clone(), bias, dy.clone()));
        }
        let nodes = [node_x.map(|n| n.id), node_weight.map(|n| n.id)];
        register_grads(grads, nodes, x, weight, dy, options);
    }
}

impl<C: CheckpointStrategy> FlexConv for Autodiff<Flex, C> {
    fn rescom_conv2d(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        options: ConvOptions<2>,
    ) -> FloatTensor<Self> {
        match ConvBackward
            .prepare::<C>([x.node(), weight.node()])
            .compute_bound()
            .stateful()
        {
            OpsKind::Tracked(mut prep) => {
                let state = (
                    prep.checkpoint(&x),
                    prep.checkpoint(&weight),
                    options.clone(),
                );
                let y = forward(x.into_primitive(), weight.into_primitive(), None, options);
                prep.finish(state, y)
            }
            OpsKind::UnTracked(prep) => prep.finish(forward(
                x.into_primitive(),
                weight.into_primitive(),
                None,
                options,
            )),
        }
    }

    fn rescom_conv2d_bias(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        bias: FloatTensor<Self>,
        options: ConvOptions<2>,
    ) -> FloatTensor<Self> {
        match ConvBiasBackward
            .prepare::<C>([x.node(), weight.node(), bias.node()])
            .compute_bound()
            .stateful()
        {
            OpsKind::Tracked(mut prep) => {
                let state = (
                    prep.checkpoint(&x),
                    prep.checkpoint(&weight),
                    prep.checkpoint(&bias),
                    options.clone(),
                );
                let y = forward(
                    x.into_primitive(),
                    weight.into_primitive(),
                    Some(bias.into_primitive()),
                    options,
                );
                prep.finish(state, y)
            }
            OpsKind::UnTracked(prep) => prep.finish(forward(
                x.into_primitive(),
                weight.into_primitive(),
                Some(bias.into_primitive()),
                options,
            )),
        }
    }
}
