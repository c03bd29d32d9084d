//! An `f32` exponential that compilers vectorise: no branches, no calls, no float-to-integer
//! conversion, so a loop over [`exp_f32`] compiles to vector instructions (libm's `expf` is a
//! scalar call per element).
//!
//! The method: `e^x = 2^n e^r` with `n = round(x / ln 2)` and `|r| <= ln 2 / 2`, the reduction
//! in two parts (`ln 2 = C1 + C2`, `C1` exact in few bits, so `x - n C1` is exact), `e^r` by a
//! degree-7 polynomial (Taylor's series through `r^7 / 7!`: truncation error below `2e-9`
//! relative on that interval), and `2^n` written into the exponent bits (as `2 * 2^(n-1)`, so
//! that the largest `n` has a biased exponent). The relative error is below `1.5e-7` (about
//! one unit in the last place; `exp_f32_is_within_one_ulp` measures it). Results below `e^-86`
//! (about `4.4e-38`, near the bottom of the normal range) are flushed to zero; above the
//! largest finite value the result is infinite; a NaN stays NaN.

/// `1 / ln 2`.
const LOG2_E: f32 = std::f32::consts::LOG2_E;
/// `1.5 * 2^23`: adding it rounds to an integer (ties to even) and leaves that integer in the
/// low mantissa bits.
const ROUND: f32 = 12_582_912.0;
/// The high part of `ln 2` (9 significant bits, so `n * C1` is exact for `|n| <= 128`).
const LN2_HI: f32 = 0.693_359_4;
/// `ln 2 - LN2_HI`.
const LN2_LO: f32 = -2.121_944_4e-4;
/// Below this the result is flushed to zero.
const MIN_ARG: f32 = -86.0;
/// Above this `e^x` overflows `f32` (`ln(f32::MAX)` rounded up).
const MAX_ARG: f32 = 88.722_84;

/// `e^x` in `f32` (see the module's documentation for its error and range).
#[inline(always)]
pub(crate) fn exp_f32(x: f32) -> f32 {
    // Clamped so that `n - 1 + 127` stays a valid biased exponent; a NaN passes through.
    let clamped = x.clamp(MIN_ARG, MAX_ARG);
    let shifted = clamped * LOG2_E + ROUND;
    let n = shifted - ROUND;
    let r = (clamped - n * LN2_HI) - n * LN2_LO;
    // e^r = 1 + r + r^2/2! + ... + r^7/7!, by Horner's rule.
    let mut p = 1.0 / 5040.0;
    p = p * r + 1.0 / 720.0;
    p = p * r + 1.0 / 120.0;
    p = p * r + 1.0 / 24.0;
    p = p * r + 1.0 / 6.0;
    p = p * r + 0.5;
    p = p * r + 1.0;
    p = p * r + 1.0;
    // The integer n sits in the low bits of `shifted`; `(n - 1 + 127) << 23` is the bit
    // pattern of 2^(n-1) (the shift drops the bits of the 1.5 * 2^23 offset), and n - 1 + 127
    // is in 1..=254 for n in -125..=128.
    let half_scale = f32::from_bits(shifted.to_bits().wrapping_add(126) << 23);
    let y = (p + p) * half_scale;
    if x < MIN_ARG {
        0.0
    } else if x > MAX_ARG {
        f32::INFINITY
    } else {
        y
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Relative error against `f64::exp` on a fine grid of the whole range, and the edges.
    #[test]
    fn exp_f32_is_within_one_ulp() {
        let mut worst = 0f64;
        let (steps, top) = (2_000_000, 88.72);
        for i in 0..=steps {
            let x = MIN_ARG + (top - MIN_ARG) * i as f32 / steps as f32;
            let exact = (x as f64).exp();
            let relative = ((exp_f32(x) as f64 - exact) / exact).abs();
            worst = worst.max(relative);
        }
        assert!(worst < 1.5e-7, "worst relative error {worst:e}");
        assert_eq!(exp_f32(0.0), 1.0);
        assert_eq!(exp_f32(f32::NEG_INFINITY), 0.0);
        assert_eq!(exp_f32(-86.5), 0.0);
        assert!(exp_f32(MAX_ARG - 1e-5).is_finite());
        assert_eq!(exp_f32(89.0), f32::INFINITY);
        assert_eq!(exp_f32(f32::INFINITY), f32::INFINITY);
        assert!(exp_f32(f32::NAN).is_nan());
    }
}
