//! Input validation shared by the loss components.
//!
//! Shapes are checked from metadata alone. Label checks read the (small) label tensor back to
//! the host once; finiteness checks reduce on the device and read back one boolean.

use burn::tensor::{Bool, Int, Tensor};

use crate::error::{Error, Result};

/// Fails unless `tensor` has exactly `expected` dims (`None` = any size).
pub(crate) fn shape<const D: usize, K: burn::tensor::kind::Basic>(
    name: &'static str,
    tensor: &Tensor<D, K>,
    expected: [Option<usize>; D],
) -> Result<[usize; D]> {
    let dims = tensor.dims();
    let ok = dims
        .iter()
        .zip(expected.iter())
        .all(|(&d, e)| e.is_none_or(|e| e == d));
    if ok {
        Ok(dims)
    } else {
        let expected = expected
            .iter()
            .map(|e| e.map_or_else(|| "_".to_string(), |e| e.to_string()))
            .collect::<Vec<_>>()
            .join(", ");
        Err(Error::Shape {
            name,
            actual: dims.to_vec(),
            expected: format!("[{expected}]"),
        })
    }
}

/// Reads `labels` to the host and checks every value lies in `0..num_classes`.
pub(crate) fn labels(labels: &Tensor<1, Int>, num_classes: usize) -> Result<Vec<i64>> {
    let values = labels
        .clone()
        .try_into_vec_as::<i64>()
        .map_err(|e| Error::DeviceRead {
            name: "labels",
            reason: format!("{e:?}"),
        })?;
    labels_in_range(&values, num_classes)?;
    Ok(values)
}

/// Checks host labels lie in `0..num_classes`.
pub(crate) fn labels_in_range(values: &[i64], num_classes: usize) -> Result<()> {
    match values
        .iter()
        .position(|&l| l < 0 || l as u64 >= num_classes as u64)
    {
        Some(row) => Err(Error::LabelOutOfRange {
            row,
            label: values[row],
            num_classes,
        }),
        None => Ok(()),
    }
}

/// Checks a view-major two-view label vector: even length, `y[i] == y[i + N]`.
pub(crate) fn paired_views(values: &[i64]) -> Result<()> {
    let rows = values.len();
    if rows == 0 || !rows.is_multiple_of(2) {
        return Err(Error::OddRows { rows });
    }
    let n = rows / 2;
    match (0..n).find(|&i| values[i] != values[i + n]) {
        Some(row) => Err(Error::ViewLabelMismatch {
            row,
            second_row: row + n,
            first: values[row],
            second: values[row + n],
        }),
        None => Ok(()),
    }
}

/// Fails with [`Error::NonFinite`] naming the first of `tensors` that holds a NaN or infinity.
/// All tensors are reduced on their device and read back together.
pub(crate) fn finite(tensors: &[(&'static str, Tensor<2>)]) -> Result<()> {
    if tensors.is_empty() {
        return Ok(());
    }
    let flags: Vec<Tensor<1, Bool>> = tensors
        .iter()
        .map(|(_, t)| t.clone().is_finite().all())
        .collect();
    let flags = Tensor::cat(flags, 0)
        .try_into_vec_as::<bool>()
        .map_err(|e| Error::DeviceRead {
            name: tensors[0].0,
            reason: format!("{e:?}"),
        })?;
    match flags.iter().position(|ok| !ok) {
        Some(i) => Err(Error::NonFinite { name: tensors[i].0 }),
        None => Ok(()),
    }
}
