//! Both gradients of a convolution in one pass over the output gradient.

use rayon::prelude::*;

use super::{
    Element, Geometry, canvas, direct, filled, flip_transpose, input_grad, sum_in_order,
    weight_grad_on, weight_grad_plan,
};

/// Both gradients: the input gradient and the weight gradient, as [`input_grad`] and
/// [`weight_grad`] compute them one at a time.
///
/// # Panics
/// If a slice is shorter than `g` says.
pub(crate) fn backward<T: Element>(
    g: &Geometry,
    x: &[T],
    weight: &[T],
    dy: &[T],
) -> (Vec<T>, Vec<T>) {
    backward_on(g, x, weight, dy, direct::Isa::detect())
}

/// [`backward`], with the direct kernels of `isa` where the canvas path runs in `f32`: for
/// a convolution whose input gradient is laid on the same canvas (a "same" convolution), the
/// output gradient goes onto one canvas per chunk that both gradients read.
pub(super) fn backward_on<T: Element>(
    g: &Geometry,
    x: &[T],
    weight: &[T],
    dy: &[T],
    isa: Option<direct::Isa>,
) -> (Vec<T>, Vec<T>) {
    assert!(x.len() >= g.input_len() && dy.len() >= g.output_len());
    assert!(weight.len() >= g.weight_len());
    let shared = isa.zip(g.transposed()).filter(|&(isa, transposed)| {
        T::as_f32(x).is_some() && canvas::shares_canvas(g, &transposed, isa)
    });
    let Some((isa, transposed)) = shared else {
        return (input_grad(g, weight, dy), weight_grad_on(g, x, dy, isa));
    };
    let (Some(x), Some(dy), Some(weight)) = (T::as_f32(x), T::as_f32(dy), T::as_f32(weight)) else {
        unreachable!("checked above: T is f32");
    };
    let (x, dy) = (&x[..g.input_len()], &dy[..g.output_len()]);
    let plan = weight_grad_plan(g);
    let flipped = canvas::TapWeights::new(&transposed, &flip_transpose(g, weight), Some(isa));
    let mut partial = Vec::new();
    let dx = filled(g.input_len(), |dx| {
        partial = dx
            .par_chunks_mut(plan.task_images * g.image_in())
            .zip(x.par_chunks(plan.task_images * g.image_in()))
            .zip(dy.par_chunks(plan.task_images * g.image_out()))
            .map(|((dx, x), dy)| canvas::backward(g, &transposed, &plan, x, dy, &flipped, isa, dx))
            .collect();
    });
    let dw = canvas::weight_layout(g, &sum_in_order(partial, g.weight_len()));
    let (Some(dx), Some(dw)) = (T::from_f32_vec(dx), T::from_f32_vec(dw)) else {
        unreachable!("checked above: T is f32");
    };
    (dx, dw)
}
