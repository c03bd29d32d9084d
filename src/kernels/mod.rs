//! The CPU kernels behind the crate's convolution and batch normalisation, on plain slices, and
//! (in `flex`) the flex backend extensions that run them inside Burn's graph.
//!
//! - `conv`: two-dimensional convolution (forward, input and weight gradients) as matrix
//!   products that write their results in place;
//! - `batch_norm`: training-mode batch normalisation, optionally followed by a ReLU, in a few
//!   passes over the data;
//! - `flex`: both as operations of the flex backend, with their autodiff backward steps.
//!
//! Nothing here is public: [`crate::nn`] is the entry that networks call.

pub(crate) mod batch_norm;
pub(crate) mod conv;
#[cfg(feature = "flex")]
pub(crate) mod flex;

use std::ops::{Add, AddAssign, Mul, Sub};

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
    + 'static
{
    /// `0`.
    const ZERO: Self;
    /// `1`.
    const ONE: Self;
    /// The value as `f64`.
    fn to_f64(self) -> f64;
    /// The nearest value to `v`.
    fn from_f64(v: f64) -> Self;
}

impl Element for f32 {
    const ZERO: Self = 0.0;
    const ONE: Self = 1.0;
    fn to_f64(self) -> f64 {
        self as f64
    }
    fn from_f64(v: f64) -> Self {
        v as f32
    }
}

impl Element for f64 {
    const ZERO: Self = 0.0;
    const ONE: Self = 1.0;
    fn to_f64(self) -> f64 {
        self
    }
    fn from_f64(v: f64) -> Self {
        v
    }
}
