//! Input validation shared by the loss components.
//!
//! Shapes are checked from metadata alone. Label checks read the (small) label tensor back to
//! the host once, or check labels the caller still has on the host without any read;
//! finiteness checks reduce on the device and read back one boolean per tensor, or leave one
//! flag on the device for the caller to read later.

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

/// Checks `host`, the caller's host copy of `labels`, without reading the device: one value
/// per row of `labels`, each in `0..num_classes`. That `labels` holds these values is the
/// caller's promise.
pub(crate) fn host_labels(host: &[i64], labels: &Tensor<1, Int>, num_classes: usize) -> Result<()> {
    let [rows] = labels.dims();
    if host.len() != rows {
        return Err(Error::Shape {
            name: "host_labels",
            actual: vec![host.len()],
            expected: format!("[{rows}] (one per row of `labels`)"),
        });
    }
    labels_in_range(host, num_classes)
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

/// One flag per tensor, `Bool [tensors.len()]` on the device: whether it is free of NaN and
/// infinity. Nothing is read.
fn finite_flags(tensors: &[(&'static str, Tensor<2>)]) -> Tensor<1, Bool> {
    let flags: Vec<Tensor<1, Bool>> = tensors
        .iter()
        .map(|(_, t)| t.clone().detach().is_finite().all())
        .collect();
    Tensor::cat(flags, 0)
}

/// `Bool [1]` on the device of the tensors: whether every one of them is free of NaN and
/// infinity. Nothing is read; the caller reads the flag when it reads its other results.
///
/// # Panics
/// When `tensors` is empty (a programming error).
pub(crate) fn finite_flag(tensors: &[(&'static str, Tensor<2>)]) -> Tensor<1, Bool> {
    finite_flags(tensors).all()
}

/// Fails with [`Error::NonFinite`] naming the first of `tensors` that holds a NaN or infinity.
/// All tensors are reduced on their device and read back together. Returns the flag of
/// [`finite_flag`] (then `true`), so that a caller reporting it needs no second reduction.
///
/// # Panics
/// When `tensors` is empty (a programming error).
pub(crate) fn finite(tensors: &[(&'static str, Tensor<2>)]) -> Result<Tensor<1, Bool>> {
    let flags = finite_flags(tensors);
    let values = flags
        .clone()
        .try_into_vec_as::<bool>()
        .map_err(|e| Error::DeviceRead {
            name: tensors[0].0,
            reason: format!("{e:?}"),
        })?;
    match values.iter().position(|ok| !ok) {
        Some(i) => Err(Error::NonFinite { name: tensors[i].0 }),
        None => Ok(flags.all()),
    }
}
