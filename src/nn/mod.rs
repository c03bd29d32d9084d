//! The layers the crate's networks are built from, where they differ from burn-nn's: batch
//! normalisation with PyTorch's running statistics ([`BatchNorm`]) and the convolution entry
//! ([`conv2d`], [`apply`]), both running the crate's own kernels on flex.

mod batch_norm;
mod conv;

pub use batch_norm::*;
pub use conv::*;
