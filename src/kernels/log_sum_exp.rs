//! The CPU kernel of the losses' log-sum-exp, on plain slices: `log_sum_exp_rows` keeps the
//! softmax of each row for the backward step, which is then a product (`softmax_rows_grad`):
//! every exponential is computed once (Burn's `exp` computes it again in its backward step).
//!
//! Every sum runs in one fixed order (in [`LANES`] interleaved partial sums, combined in a
//! fixed tree), whatever the thread count and the vector instructions, so results are
//! reproducible.

use rayon::prelude::*;

use super::Element;
use super::simd::vectorised;

/// Rows per parallel task: enough work per task to pay for the split.
const MIN_ROWS_PER_TASK: usize = 8;

/// Independent partial maxima and sums per row: entry `j` of a row goes to lane `j % LANES`,
/// and the lanes are combined in one fixed order at the end. The order depends neither on the
/// thread count nor on the vector instructions the loop compiles to, and the lanes let the
/// loops run as vector instructions (one running sum would be one long dependency chain).
const LANES: usize = 16;

/// The log-sum-exp of every row of `x` (`[rows, width]` row-major), and, with
/// `keep_softmax`, the softmax of every row (`exp(x - lse)`, the gradient of the log-sum-exp).
/// Minus infinity is an excluded entry (softmax 0); a row with no finite entry has log-sum-exp
/// minus infinity and softmax 0; a NaN anywhere in a row makes its log-sum-exp NaN.
pub(crate) fn log_sum_exp_rows<T: Element>(
    x: &[T],
    width: usize,
    keep_softmax: bool,
) -> (Vec<T>, Option<Vec<T>>) {
    if width == 0 {
        return (Vec::new(), keep_softmax.then(Vec::new));
    }
    let rows = x.len() / width;
    let mut lse = vec![T::ZERO; rows];
    let mut softmax = keep_softmax.then(|| vec![T::ZERO; rows * width]);
    let row = |i: usize| &x[i * width..(i + 1) * width];
    let row_lse = |row: &[T], p: Option<&mut [T]>| {
        vectorised(
            #[inline(always)]
            || row_log_sum_exp(row, p),
        )
    };
    match softmax.as_mut() {
        Some(softmax) => softmax
            .par_chunks_mut(width)
            .zip(lse.par_iter_mut())
            .with_min_len(MIN_ROWS_PER_TASK)
            .enumerate()
            .for_each(|(i, (p, out))| *out = row_lse(row(i), Some(p))),
        None => lse
            .par_iter_mut()
            .with_min_len(MIN_ROWS_PER_TASK)
            .enumerate()
            .for_each(|(i, out)| *out = row_lse(row(i), None)),
    }
    (lse, softmax)
}

/// The log-sum-exp of one row, by lanes (see [`LANES`]); with `softmax`, also its softmax.
#[inline(always)]
fn row_log_sum_exp<T: Element>(row: &[T], softmax: Option<&mut [T]>) -> T {
    let max = by_lanes(
        row,
        T::NEG_INFINITY,
        |m, v| if v > m { v } else { m },
        |m, v| if v > m { v } else { m },
    );
    if max == T::NEG_INFINITY {
        // No finite entry (NaN aside): the row is empty, unless a NaN must reach the result.
        return match row.iter().find(|v| v.is_nan()) {
            Some(&nan) => nan,
            None => T::NEG_INFINITY,
        };
    }
    // A NaN anywhere makes its exponential, and so the sum, NaN.
    let sum = match softmax {
        Some(p) => {
            // The exponentials first, then their sum by lanes (the row is still in cache).
            for (e, &v) in p.iter_mut().zip(row) {
                *e = (v - max).exp();
            }
            let sum = by_lanes(p, T::ZERO, |s, e| s + e, |a, b| a + b);
            let scale = T::ONE / sum;
            p.iter_mut().for_each(|e| *e = *e * scale);
            sum
        }
        None => by_lanes(row, T::ZERO, |s, v| s + (v - max).exp(), |a, b| a + b),
    };
    sum.ln() + max
}

/// Folds `values` into [`LANES`] accumulators (entry `j` into lane `j % LANES`) with `step`,
/// then combines the lanes with `merge` in a fixed order.
#[inline(always)]
fn by_lanes<T: Element>(
    values: &[T],
    init: T,
    step: impl Fn(T, T) -> T,
    merge: impl Fn(T, T) -> T,
) -> T {
    let mut lanes = [init; LANES];
    let chunks = values.chunks_exact(LANES);
    let tail = chunks.remainder();
    for chunk in chunks {
        for l in 0..LANES {
            lanes[l] = step(lanes[l], chunk[l]);
        }
    }
    for (l, &v) in tail.iter().enumerate() {
        lanes[l] = step(lanes[l], v);
    }
    combine(lanes, merge)
}

/// The lanes combined pairwise: `(0, 8), (1, 9), ...`, then `(0, 4), ...`, down to one.
#[inline(always)]
fn combine<T: Element>(mut lanes: [T; LANES], merge: impl Fn(T, T) -> T) -> T {
    let mut half = LANES / 2;
    while half > 0 {
        for l in 0..half {
            lanes[l] = merge(lanes[l], lanes[l + half]);
        }
        half /= 2;
    }
    lanes[0]
}

/// `dx[i, j] = grad[i] * softmax[i, j]`: the backward step of [`log_sum_exp_rows`].
///
/// # Shapes
/// - `softmax`: `[rows, width]` row-major; `grad`: `[rows]`
pub(crate) fn softmax_rows_grad<T: Element>(softmax: &[T], grad: &[T]) -> Vec<T> {
    let rows = grad.len();
    if rows == 0 {
        return Vec::new();
    }
    let width = softmax.len() / rows;
    let mut out = vec![T::ZERO; softmax.len()];
    if width == 0 {
        return out;
    }
    out.par_chunks_mut(width)
        .with_min_len(MIN_ROWS_PER_TASK)
        .enumerate()
        .for_each(|(i, dx)| {
            let g = grad[i];
            for (d, &p) in dx.iter_mut().zip(&softmax[i * width..(i + 1) * width]) {
                *d = g * p;
            }
        });
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_sum_exp_rows_matches_the_definition_and_excludes_minus_infinity() {
        let inf = f64::NEG_INFINITY;
        let x = vec![
            1.0, 2.0, inf, 3.0, /* */ 700.0, 700.0, 1.0, inf, /* */ inf, inf, inf, inf,
        ];
        let (lse, softmax) = log_sum_exp_rows(&x, 4, true);
        let softmax = softmax.expect("kept");
        assert_eq!(log_sum_exp_rows(&x, 4, false), (lse.clone(), None));
        let expected0 = (1f64.exp() + 2f64.exp() + 3f64.exp()).ln();
        assert!((lse[0] - expected0).abs() < 1e-12);
        assert!((lse[1] - (700.0 + (2.0 + (-699f64).exp()).ln())).abs() < 1e-12);
        assert_eq!(lse[2], inf);
        assert_eq!(softmax[2], 0.0);
        assert_eq!(&softmax[8..], &[0.0; 4]);
        for (i, row) in softmax.chunks(4).take(2).enumerate() {
            assert!((row.iter().sum::<f64>() - 1.0).abs() < 1e-12, "row {i}");
        }
        let dx = softmax_rows_grad(&softmax, &[2.0, -1.0, 1.0]);
        assert!((dx[3] - 2.0 * (3.0 - expected0).exp()).abs() < 1e-12);
        assert_eq!(dx[7], 0.0);
    }

    #[test]
    fn the_vector_variants_agree_to_the_bit_and_with_float64() {
        // An odd width (a tail after the full lanes), excluded entries and a wide range.
        let width = 1037;
        let row: Vec<f32> = (0..width)
            .map(|j| match j % 97 {
                0 => f32::NEG_INFINITY,
                r => (j * 7919 % 1000) as f32 / 40.0 - 12.5 + r as f32 * 1e-3,
            })
            .collect();
        // The loop as compiled for the baseline, against the dispatched production path.
        let mut portable = vec![0.0; width];
        let expected = row_log_sum_exp(&row, Some(&mut portable));
        let (lse, widest) = log_sum_exp_rows(&row, width, true);
        let widest = widest.expect("kept");
        let got = lse[0];
        assert_eq!(got.to_bits(), expected.to_bits());
        assert!(
            portable
                .iter()
                .zip(&widest)
                .all(|(a, b)| a.to_bits() == b.to_bits())
        );
        let (without_softmax, _) = log_sum_exp_rows(&row, width, false);
        assert_eq!(without_softmax[0].to_bits(), got.to_bits());

        let exact = row.iter().map(|&v| (v as f64).exp()).sum::<f64>().ln();
        assert!(
            (got as f64 - exact).abs() < 1e-6 * exact.abs(),
            "{got} vs {exact}"
        );
        for (&p, &v) in widest.iter().zip(&row) {
            let exact_p = (v as f64 - exact).exp();
            assert!(
                (p as f64 - exact_p).abs() <= 1e-6 * exact_p + 1e-12,
                "{p} vs {exact_p}"
            );
        }
    }

    #[test]
    fn a_nan_reaches_the_log_sum_exp() {
        let (nan, inf) = (f32::NAN, f32::NEG_INFINITY);
        let (lse, _) = log_sum_exp_rows(&[1.0, nan, 2.0, inf, nan, inf], 3, false);
        assert!(lse[0].is_nan() && lse[1].is_nan(), "{lse:?}");
    }
}
