//! The CPU kernels behind the crate's convolution and batch normalisation, on plain slices, and
//! (in `flex`) the flex backend extensions that run them inside Burn's graph.
//!
//! - `conv`: two-dimensional convolution (forward, input and weight gradients) as matrix
//!   products that write their results in place;
//! - `batch_norm`: training-mode batch normalisation, optionally followed by a ReLU, in a few
//!   passes over the data;
//! - `log_sum_exp`: the losses' row-wise log-sum-exp, each exponential computed once, with
//!   `exp`, an `f32` exponential that vectorises;
//! - `simd`: the loops above compiled for the widest vector instructions the CPU has;
//! - `flex`: all of them as operations of the flex backend, with their autodiff backward
//!   steps.
//!
//! Nothing here is public: [`crate::nn`] is the entry that networks call, and the losses call
//! `flex::log_sum_exp` on flex devices.

#[cfg(feature = "models")]
pub(crate) mod batch_norm;
#[cfg(feature = "models")]
pub(crate) mod conv;
#[cfg_attr(not(feature = "flex"), allow(dead_code))]
pub(crate) mod exp;
#[cfg(feature = "flex")]
pub(crate) mod flex;
#[cfg(feature = "flex")]
pub(crate) mod log_sum_exp;
#[cfg_attr(not(feature = "flex"), allow(dead_code))]
pub(crate) mod simd;

use std::mem::MaybeUninit;
use std::ops::{Add, AddAssign, Div, Mul, Sub};

/// The element types the kernels run on (`f32`, `f64`).
pub(crate) trait Element:
    Copy
    + Send
    + Sync
    + PartialOrd
    + Add<Output = Self>
    + AddAssign
    + Sub<Output = Self>
    + Mul<Output = Self>
    + Div<Output = Self>
    + 'static
{
    /// `0`.
    const ZERO: Self;
    /// `1`.
    const ONE: Self;
    /// Minus infinity.
    #[cfg_attr(not(feature = "flex"), allow(dead_code))]
    const NEG_INFINITY: Self;
    /// The value as `f64`.
    #[cfg_attr(not(feature = "models"), allow(dead_code))]
    fn to_f64(self) -> f64;
    /// The nearest value to `v`.
    #[cfg_attr(not(feature = "models"), allow(dead_code))]
    fn from_f64(v: f64) -> Self;
    /// `e^self`: for `f32` the vectorisable [`exp::exp_f32`] (about one unit in the last
    /// place), for `f64` the standard library's.
    #[cfg_attr(not(feature = "flex"), allow(dead_code))]
    fn exp(self) -> Self;
    /// The natural logarithm.
    #[cfg_attr(not(feature = "flex"), allow(dead_code))]
    fn ln(self) -> Self;
    /// Whether the value is NaN.
    #[cfg_attr(not(feature = "flex"), allow(dead_code))]
    fn is_nan(self) -> bool;
    /// The slice as `f32`, when `Self` is `f32`.
    #[cfg_attr(not(feature = "models"), allow(dead_code))]
    fn as_f32(slice: &[Self]) -> Option<&[f32]>;
    /// The slice as `f32`, when `Self` is `f32`.
    #[cfg_attr(not(feature = "models"), allow(dead_code))]
    fn as_f32_mut(slice: &mut [Self]) -> Option<&mut [f32]>;
    /// The (possibly uninitialised) slice as `f32`, when `Self` is `f32`.
    #[cfg_attr(not(feature = "models"), allow(dead_code))]
    fn as_f32_uninit(slice: &mut [MaybeUninit<Self>]) -> Option<&mut [MaybeUninit<f32>]>;
    /// The vector as one of `Self`, when `Self` is `f32`.
    #[cfg_attr(not(feature = "models"), allow(dead_code))]
    fn from_f32_vec(v: Vec<f32>) -> Option<Vec<Self>>;
}

impl Element for f32 {
    const ZERO: Self = 0.0;
    const ONE: Self = 1.0;
    const NEG_INFINITY: Self = f32::NEG_INFINITY;
    #[inline(always)]
    fn to_f64(self) -> f64 {
        self as f64
    }
    #[inline(always)]
    fn from_f64(v: f64) -> Self {
        v as f32
    }
    #[inline(always)]
    fn exp(self) -> Self {
        exp::exp_f32(self)
    }
    fn ln(self) -> Self {
        f32::ln(self)
    }
    fn is_nan(self) -> bool {
        f32::is_nan(self)
    }
    fn as_f32(slice: &[Self]) -> Option<&[f32]> {
        Some(slice)
    }
    fn as_f32_mut(slice: &mut [Self]) -> Option<&mut [f32]> {
        Some(slice)
    }
    fn as_f32_uninit(slice: &mut [MaybeUninit<Self>]) -> Option<&mut [MaybeUninit<f32>]> {
        Some(slice)
    }
    fn from_f32_vec(v: Vec<f32>) -> Option<Vec<Self>> {
        Some(v)
    }
}

impl Element for f64 {
    const ZERO: Self = 0.0;
    const ONE: Self = 1.0;
    const NEG_INFINITY: Self = f64::NEG_INFINITY;
    #[inline(always)]
    fn to_f64(self) -> f64 {
        self
    }
    #[inline(always)]
    fn from_f64(v: f64) -> Self {
        v
    }
    fn exp(self) -> Self {
        f64::exp(self)
    }
    fn ln(self) -> Self {
        f64::ln(self)
    }
    fn is_nan(self) -> bool {
        f64::is_nan(self)
    }
    fn as_f32(_: &[Self]) -> Option<&[f32]> {
        None
    }
    fn as_f32_mut(_: &mut [Self]) -> Option<&mut [f32]> {
        None
    }
    fn as_f32_uninit(_: &mut [MaybeUninit<Self>]) -> Option<&mut [MaybeUninit<f32>]> {
        None
    }
    fn from_f32_vec(_: Vec<f32>) -> Option<Vec<Self>> {
        None
    }
}
