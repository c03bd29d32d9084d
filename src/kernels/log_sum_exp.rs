//! The CPU kernel of the losses' log-sum-exp, on plain slices: `log_sum_exp_rows` keeps the
//! softmax of each row for the backward step, which is then a product (`softmax_rows_grad`):
//! every exponential is computed once (Burn's `exp` computes it again in its backward step).
//!
//! Every sum runs in one fixed order (left to right along the row), whatever the thread count,
//! so results are reproducible.

use rayon::prelude::*;

use super::Element;

/// Rows per parallel task: enough work per task to pay for the split.
const MIN_ROWS_PER_TASK: usize = 8;

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
    let row_lse = |i: usize, p: Option<&mut [T]>| -> T {
        let row = &x[i * width..(i + 1) * width];
        // A NaN becomes the maximum, so that it reaches the result.
        let max = row.iter().fold(
            T::NEG_INFINITY,
            |m, &v| if v > m || v.is_nan() { v } else { m },
        );
        if max == T::NEG_INFINITY {
            return T::NEG_INFINITY;
        }
        let mut sum = T::ZERO;
        match p {
            Some(p) => {
                for (e, &v) in p.iter_mut().zip(row) {
                    *e = (v - max).exp();
                    sum += *e;
                }
                let scale = T::ONE / sum;
                for e in p.iter_mut() {
                    *e = *e * scale;
                }
            }
            None => row.iter().for_each(|&v| sum += (v - max).exp()),
        }
        sum.ln() + max
    };
    match softmax.as_mut() {
        Some(softmax) => softmax
            .par_chunks_mut(width)
            .zip(lse.par_iter_mut())
            .with_min_len(MIN_ROWS_PER_TASK)
            .enumerate()
            .for_each(|(i, (p, out))| *out = row_lse(i, Some(p))),
        None => lse
            .par_iter_mut()
            .with_min_len(MIN_ROWS_PER_TASK)
            .enumerate()
            .for_each(|(i, out)| *out = row_lse(i, None)),
    }
    (lse, softmax)
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
    fn a_nan_reaches_the_log_sum_exp() {
        let (nan, inf) = (f32::NAN, f32::NEG_INFINITY);
        let (lse, _) = log_sum_exp_rows(&[1.0, nan, 2.0, inf, nan, inf], 3, false);
        assert!(lse[0].is_nan() && lse[1].is_nan(), "{lse:?}");
    }
}
