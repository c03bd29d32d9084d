//! Small tensor helpers shared by the components.

use burn::tensor::{Bool, Device, IndexingUpdateOp, Int, Tensor};

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

/// Writes `rows[i]` into `memory[slots[i]]` for every `i` with `survives[i]`, leaving the
/// other slots untouched. Surviving rows must target distinct slots; a non-surviving row must
/// target a slot that a surviving row also writes (its values are zeroed and added there).
/// The touched slots are cleared and the rows scatter-added, which reproduces plain
/// assignment exactly (`0 + x = x`) with an operation every backend supports with duplicates.
///
/// # Shapes
/// - `memory`: `[S, D]` (or `[S]` as `[S, 1]`)
/// - `slots`, `survives`: `[N]`
/// - `rows`: `[N, D]`
pub(crate) fn overwrite_rows<K>(
    memory: Tensor<2, K>,
    slots: Tensor<1, Int>,
    survives: Tensor<1, Bool>,
    rows: Tensor<2, K>,
) -> Tensor<2, K>
where
    K: burn::tensor::kind::Numeric,
{
    let [size, dim] = memory.dims();
    let n = slots.dims()[0];
    let touched = Tensor::<1, Int>::zeros([size], &memory.device())
        .select_assign(
            0,
            slots.clone(),
            survives.clone().int(),
            IndexingUpdateOp::Add,
        )
        .greater_elem(0)
        .reshape([size, 1])
        .expand([size, dim]);
    let rows = rows.mask_fill(survives.bool_not().reshape([n, 1]).expand([n, dim]), 0);
    memory
        .mask_fill(touched, 0)
        .select_assign(0, slots, rows, IndexingUpdateOp::Add)
}

/// `tensor` on `device`, with the device's autodiff association: how a shared memory is read
/// by a replica on another device, or by a step on an autodiff device.
pub(crate) fn on_device<const D: usize, K>(tensor: Tensor<D, K>, device: &Device) -> Tensor<D, K>
where
    K: burn::tensor::kind::Autodiff,
{
    let tensor = if tensor.device() == *device {
        tensor
    } else {
        tensor.to_device(device)
    };
    if device.is_autodiff() {
        tensor.autodiff()
    } else {
        tensor.without_autodiff()
    }
}

/// The integer dtype `device` creates by default (backends differ: 32 or 64 bits).
pub(crate) fn int_dtype(device: &Device) -> burn::tensor::DType {
    Tensor::<1, Int>::zeros([0], device).dtype()
}
