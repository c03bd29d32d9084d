//! The AVX-512 kernels of [`super`].

use std::arch::x86_64::*;

use super::{Args, GRAD_TAPS, GradArgs};

/// Output channels of a block.
const OUTS: usize = 8;
/// Lanes of a vector.
const LANES: usize = 16;

/// Accumulates `P` vectors of positions for [`OUTS`] output channels over every input
/// channel and tap, then stores them.
///
/// # Safety
/// The CPU has AVX-512F; the reads and writes `a` describes are in bounds.
#[target_feature(enable = "avx512f")]
pub(super) unsafe fn forward<const P: usize>(a: &Args) {
    let taps = a.offsets.len();
    let mut acc = [[_mm512_setzero_ps(); P]; OUTS];
    for i in 0..a.group_in {
        // SAFETY: in bounds by the caller's contract.
        unsafe {
            let x = a.x.add(i * a.plane);
            let w = a.w.add(i * taps * OUTS);
            for (t, &offset) in a.offsets.iter().enumerate() {
                let mut v = [_mm512_setzero_ps(); P];
                for (p, v) in v.iter_mut().enumerate() {
                    *v = _mm512_loadu_ps(x.add(offset + p * LANES));
                }
                let w = w.add(t * OUTS);
                for (o, acc) in acc.iter_mut().enumerate() {
                    let b = _mm512_set1_ps(*w.add(o));
                    for (acc, &v) in acc.iter_mut().zip(&v) {
                        *acc = _mm512_fmadd_ps(v, b, *acc);
                    }
                }
            }
        }
    }
    for (o, acc) in acc.iter().enumerate().take(a.rows) {
        for (p, &acc) in acc.iter().enumerate() {
            // SAFETY: in bounds by the caller's contract.
            unsafe { _mm512_storeu_ps(a.dst.add(o * a.span + p * LANES), acc) };
        }
    }
}

/// Adds `T` taps of one input channel against [`OUTS`] output channels over one tile to
/// the block's vector sums.
///
/// # Safety
/// The CPU has AVX-512F; the reads and writes `a` describes are in bounds.
#[target_feature(enable = "avx512f")]
pub(super) unsafe fn weight<const T: usize>(a: &GradArgs) {
    let mut offsets = [0; T];
    offsets.copy_from_slice(&a.offsets[..T]);
    let sum = |o: usize, k: usize| (o * GRAD_TAPS + k) * LANES;
    let mut acc = [[_mm512_setzero_ps(); T]; OUTS];
    for (o, acc) in acc.iter_mut().enumerate() {
        for (k, acc) in acc.iter_mut().enumerate() {
            *acc = if a.fresh {
                _mm512_setzero_ps()
            } else {
                // SAFETY: `sums` holds the block's vectors, written before.
                unsafe { _mm512_loadu_ps(a.sums.add(sum(o, k))) }
            };
        }
    }
    for p in (0..a.len).step_by(LANES) {
        // SAFETY: in bounds by the caller's contract.
        unsafe {
            let mut x = [_mm512_setzero_ps(); T];
            for (x, &offset) in x.iter_mut().zip(&offsets) {
                *x = _mm512_loadu_ps(a.x.add(offset + p));
            }
            for (o, acc) in acc.iter_mut().enumerate() {
                let dy = _mm512_loadu_ps(a.gradient.add(o * a.stride + p));
                for (acc, &x) in acc.iter_mut().zip(&x) {
                    *acc = _mm512_fmadd_ps(dy, x, *acc);
                }
            }
        }
    }
    for (o, acc) in acc.iter().enumerate() {
        for (k, &acc) in acc.iter().enumerate() {
            // SAFETY: `sums` holds the block's vectors.
            unsafe { _mm512_storeu_ps(a.sums.add(sum(o, k)), acc) };
        }
    }
}
