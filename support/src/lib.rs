//! What the tests, benches and examples of `rescom` share, so that each lives in one place:
//!
//! - [`tensors`]: small tensor helpers, the counter-based fill of parameters, comparisons;
//! - [`golden`], [`gradients`]: the golden cases and the finite-difference gradient checks,
//!   run by the tests and by the device check of the `train` example;
//! - [`loss_cases`], [`optim`], and with feature `train` [`train_steps`]: the work the
//!   benches time (and the device check times again on a GPU);
//! - [`device`]: devices by name, refused with a message when absent; [`allocator`]: the
//!   allocator of the benches and examples;
//! - with feature `train`, [`small_run`]: a tiny, fast training run on synthetic data.
//!
//! Not published: it exists for the repository's own targets.

pub mod allocator;
pub mod device;
pub mod golden;
pub mod gradients;
pub mod loss_cases;
pub mod optim;
#[cfg(feature = "train")]
pub mod small_run;
pub mod tensors;
#[cfg(feature = "train")]
pub mod train_steps;
