//! Small tensor helpers shared by the components.

use burn::tensor::{Bool, Int, Tensor};

/// `mask[i, c] = (labels[i] == c)`, for any number of classes (Burn's `one_hot` needs at
/// least two).
///
/// # Shapes
/// - `labels`: `Int [rows]`
/// - output: `Bool [rows, classes]`
pub(crate) fn class_mask(labels: Tensor<1, Int>, classes: usize) -> Tensor<2, Bool> {
    let rows = labels.dims()[0];
    let columns = Tensor::<1, Int>::arange(0..classes as i64, &labels.device())
        .reshape([1, classes])
        .expand([rows, classes]);
    labels
        .reshape([rows, 1])
        .expand([rows, classes])
        .equal(columns)
}
