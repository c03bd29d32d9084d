//! The kernels' loops compiled for the widest vector instructions the CPU has.
//!
//! The crate is compiled for the baseline of its target (SSE2 on x86-64), so its loops use
//! 128-bit vectors. [`vectorised`] runs a closure inlined into a function compiled with
//! AVX-512F or AVX2 enabled, when the CPU has them (detected at run time; the standard library
//! caches the answer). Every variant computes the same operations in the same order (Rust
//! never fuses a multiplication and an addition on its own), so the results agree to the bit
//! whatever the CPU; only the speed differs.

/// Runs `f` compiled for AVX-512F or AVX2 where the CPU has them, else as compiled.
///
/// Mark the closure `#[inline(always)]` (`vectorised(#[inline(always)] || ...)`), and the
/// functions it calls too: only code inlined into a variant is compiled for its instructions.
#[inline(always)]
pub(crate) fn vectorised<R>(f: impl FnOnce() -> R) -> R {
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx512f") {
            // SAFETY: the CPU has AVX-512F, checked just above.
            return unsafe { avx512(f) };
        }
        if std::arch::is_x86_feature_detected!("avx2") {
            // SAFETY: the CPU has AVX2, checked just above.
            return unsafe { avx2(f) };
        }
    }
    f()
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
fn avx512<R>(f: impl FnOnce() -> R) -> R {
    f()
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn avx2<R>(f: impl FnOnce() -> R) -> R {
    f()
}
