//! The helpers of the integration tests, from the repository's `support` crate.
#![allow(unused_imports)]

pub use rescom_support::tensors::*;
pub use rescom_support::{golden, gradients};
