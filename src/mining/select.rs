//! Exact top-k selection on host memory for the CPU backends.
//!
//! Burn's `topk` on the CPU backends sorts every row (`O(n log n)` with index pairs). Mining
//! needs only the *set* of the `k` largest negatives per row (the loss is invariant to their
//! order: [method](crate::method#hard-pair-mining)), which a selection finds in `O(n)`. On
//! backends whose tensors live in host memory (flex, ndarray) the miner therefore reads the
//! detached similarity matrix and selects with `select_nth_unstable` in parallel over rows; on
//! other devices it uses the tensor path.

use burn::tensor::{DType, Int, Tensor, TensorData};
use rayon::prelude::*;

/// For each row of `similarities` (`[rows, C*K]`), the column indices of the `k` largest
/// entries outside the row's own class block `label*K .. (label+1)*K`, in column order
/// (ties at the k-th value are taken in column order). `None` when the data cannot be read.
pub(crate) fn top_negatives(
    similarities: Tensor<2>,
    labels: Tensor<1, Int>,
    per_class: usize,
    k: usize,
) -> Option<Tensor<2, Int>> {
    let device = similarities.device();
    let [rows, columns] = similarities.dims();
    let labels = labels.try_into_vec_as::<i64>().ok()?;
    let data = similarities.detach().without_autodiff().into_data();
    let indices = match data.dtype() {
        DType::F32 => select_rows(data.as_slice::<f32>().ok()?, columns, &labels, per_class, k),
        _ => {
            let data = data.convert::<f64>();
            select_rows(data.as_slice::<f64>().ok()?, columns, &labels, per_class, k)
        }
    };
    Some(Tensor::from_data(
        TensorData::new(indices, [rows, k]),
        &device,
    ))
}

/// Floats mapped to unsigned integers of the same total order (`a < b` iff
/// `key(a) < key(b)`, with `-0 < +0`), so that selection compares plain integers.
trait Key: Copy + Send + Sync {
    type Ordered: Ord + Copy + Send;
    fn key(self) -> Self::Ordered;
}

impl Key for f32 {
    type Ordered = u32;
    fn key(self) -> u32 {
        let bits = self.to_bits();
        if bits >> 31 == 1 {
            !bits
        } else {
            bits | 1 << 31
        }
    }
}

impl Key for f64 {
    type Ordered = u64;
    fn key(self) -> u64 {
        let bits = self.to_bits();
        if bits >> 63 == 1 {
            !bits
        } else {
            bits | 1 << 63
        }
    }
}

fn select_rows<T: Key>(
    values: &[T],
    columns: usize,
    labels: &[i64],
    per_class: usize,
    k: usize,
) -> Vec<i64> {
    let mut out = vec![0i64; labels.len() * k];
    out.par_chunks_mut(k)
        .zip(values.par_chunks(columns))
        .zip(labels.par_iter())
        .for_each_init(
            || Vec::with_capacity(columns),
            |scratch, ((out, row), &label)| {
                let own = label as usize * per_class..(label as usize + 1) * per_class;
                select_row(row, own, scratch, out);
            },
        );
    out
}

/// Writes into `out` the column indices of the `out.len()` largest `values` outside `own`;
/// entries equal to the smallest selected value are taken in column order.
fn select_row<T: Key>(
    values: &[T],
    own: std::ops::Range<usize>,
    scratch: &mut Vec<T::Ordered>,
    out: &mut [i64],
) {
    let k = out.len();
    let parts = [(0, &values[..own.start]), (own.end, &values[own.end..])];
    scratch.clear();
    for (_, part) in parts {
        scratch.extend(part.iter().map(|v| v.key()));
    }
    // The k-th largest key (the (n - k)-th smallest, in the natural order): everything
    // above it is taken, equal keys fill the remainder in column order.
    let n = scratch.len();
    let threshold = *scratch.select_nth_unstable(n - k).1;
    // Branch-free compaction: write every index, advance only past the selected ones. The
    // slot after the last selected one absorbs the trailing writes.
    let mut taken = 0;
    let mut ties = 0;
    for (offset, part) in parts {
        for (j, value) in part.iter().enumerate() {
            let key = value.key();
            out[taken.min(k - 1)] = (offset + j) as i64;
            taken += usize::from(key > threshold);
            ties += usize::from(key == threshold);
        }
    }
    debug_assert!(taken < k && taken + ties >= k);
    for (offset, part) in parts {
        for (j, value) in part.iter().enumerate() {
            if taken == k {
                return;
            }
            if value.key() == threshold {
                out[taken] = (offset + j) as i64;
                taken += 1;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn selects_the_largest_outside_the_own_block() {
        let row = [0.9f32, 0.8, 0.1, 0.7, 0.7, 0.3];
        let (mut scratch, mut out) = (Vec::new(), vec![0; 3]);
        // Own block is columns 0..2; the largest others are 0.7, 0.7, 0.3.
        select_row(&row, 0..2, &mut scratch, &mut out);
        assert_eq!(out, vec![3, 4, 5]);
        let mut out = vec![0; 1];
        select_row(&row, 0..2, &mut scratch, &mut out);
        assert_eq!(out, vec![3], "ties are taken in column order");
    }

    /// Against a sort: every k from 1 to all negatives, with many ties.
    #[test]
    fn radix_selection_matches_a_sort() {
        let mut rng = crate::rng::Rng::new(8);
        for trial in 0..200 {
            let n = 1 + rng.index(60);
            let values: Vec<f32> = (0..n)
                .map(|_| (rng.normal() * if trial % 2 == 0 { 1.0 } else { 0.001 }) as f32)
                .map(|v| {
                    if trial % 3 == 0 {
                        (v * 4.0).round() / 4.0
                    } else {
                        v
                    }
                })
                .collect();
            let keys: Vec<u32> = values.iter().map(|v| v.key()).collect();
            let start = rng.index(n);
            let own = start..(start + rng.index(3)).min(n);
            let others: Vec<usize> = (0..n).filter(|j| !own.contains(j)).collect();
            if others.is_empty() {
                continue;
            }
            let k = 1 + rng.index(others.len());
            let mut out = vec![0i64; k];
            select_row(&values, own.clone(), &mut Vec::new(), &mut out);
            let mut sorted: Vec<u32> = others.iter().map(|&j| keys[j]).collect();
            sorted.sort_unstable_by(|a, b| b.cmp(a));
            let mut got: Vec<u32> = out.iter().map(|&j| keys[j as usize]).collect();
            got.sort_unstable_by(|a, b| b.cmp(a));
            assert_eq!(got, sorted[..k], "trial {trial}");
            assert!(out.iter().all(|&j| !own.contains(&(j as usize))));
        }
    }

    /// Long rows (values within a few binades, many of them equal in f32) in f32 and f64.
    #[test]
    fn selection_in_long_rows_matches_a_sort() {
        let mut rng = crate::rng::Rng::new(9);
        for (trial, &(n, k, scale)) in [(4000, 1000, 0.05), (3000, 1, 1.0), (2500, 2490, 1e-3)]
            .iter()
            .enumerate()
        {
            let values: Vec<f64> = (0..n).map(|_| 0.3 + scale * rng.normal()).collect();
            let own = 8..12;
            let expected = |keys: &[u64]| {
                let mut others: Vec<u64> = (0..n)
                    .filter(|j| !own.contains(j))
                    .map(|j| keys[j])
                    .collect();
                others.sort_unstable_by(|a, b| b.cmp(a));
                others[..k].to_vec()
            };
            let got = |out: &[i64], keys: &[u64]| {
                let mut got: Vec<u64> = out.iter().map(|&j| keys[j as usize]).collect();
                got.sort_unstable_by(|a, b| b.cmp(a));
                got
            };
            let mut out = vec![0i64; k];
            select_row(&values, own.clone(), &mut Vec::new(), &mut out);
            let keys: Vec<u64> = values.iter().map(|v| v.key()).collect();
            assert_eq!(got(&out, &keys), expected(&keys), "f64, trial {trial}");
            let values: Vec<f32> = values.iter().map(|&v| v as f32).collect();
            select_row(&values, own.clone(), &mut Vec::new(), &mut out);
            let keys: Vec<u64> = values.iter().map(|&v| u64::from(v.key())).collect();
            assert_eq!(got(&out, &keys), expected(&keys), "f32, trial {trial}");
        }
    }

    #[test]
    fn keys_preserve_the_float_order() {
        let values = [
            -f32::INFINITY,
            -2.5,
            -1e-30,
            -0.0,
            0.0,
            1e-30,
            0.5,
            3.0,
            f32::INFINITY,
        ];
        for pair in values.windows(2) {
            assert!(pair[0].key() < pair[1].key(), "{pair:?}");
            assert!((pair[0] as f64).key() < (pair[1] as f64).key(), "{pair:?}");
        }
    }
}
