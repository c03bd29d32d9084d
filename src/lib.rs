//! **ResCom** (Rebalanced Siamese Contrastive Mining, Zhong et al. 2022) for long-tailed image
//! recognition on the [Burn](https://burn.dev) deep-learning framework.
//!
//! In a long-tailed training set a few head classes own most images and many tail classes
//! have a handful. ResCom trains a classifier and a supervised contrastive branch jointly, in
//! one stage, and rebalances both:
//!
//! - a **Siamese Balanced Softmax** classifier on both augmented views ([`BalancedSoftmaxLoss`]);
//! - a **class-balanced supervised contrastive loss** with effective-number class weights
//!   ([`ClassBalancedContrastiveLoss`], [`ClassStats`]);
//! - a **class-balanced queue** of `K` past keys per class ([`ClassBalancedQueue`]);
//! - **supervised hard positive and negative mining** from that queue ([`HardPairMiner`]).
//!
//! [`ResComLoss`] composes them. Every part is a Burn module over `Tensor`s and runs on any
//! Burn device; the method is stated exactly, with every convention, in [`method`].
//!
//! ```
//! use burn::tensor::{Device, Distribution::Normal, Int, Tensor};
//! use rescom::{HardPairMinerConfig, ResComLossConfig, ResComLossInput};
//!
//! let device = Device::flex().autodiff();
//! // Four classes with K = 10 keys each: at most 30 hard negatives per row.
//! let loss = ResComLossConfig::new(vec![500, 120, 30, 5])
//!     .with_mining(HardPairMinerConfig::new().with_hard_negatives(15))
//!     .init(&device)?;
//! println!("{loss}"); // the hyper-parameters of every part
//! // Two views of 3 images, view-major (rows 0..3 view 1, rows 3..6 view 2).
//! let output = ResComLossInput {
//!     projections: Tensor::random([6, 32], Normal(0.0, 1.0), &device).require_grad(),
//!     logits: Tensor::random([6, 4], Normal(0.0, 1.0), &device).require_grad(),
//! };
//! let labels = Tensor::<1, Int>::from_ints([0, 3, 1, 0, 3, 1], &device);
//! let out = loss.forward(output, labels)?; // reads the queue, then enqueues view 1
//! let grads = out.total.backward();
//! # let _ = grads;
//! # Ok::<(), rescom::Error>(())
//! ```
//!
//! `forward` takes `&self`, as burn-train's `TrainStep::step` does; the queue is shared by
//! clones and forks of the loss and travels in the module's record. `examples/learner.rs` in
//! the repository trains a network of one's own holding the loss with burn-train's `Learner`.
//!
//! # Crate features
//!
//! The loss, queue, mining and class statistics (the modules without a feature below) need
//! only Burn, serde, serde_json, thiserror and rayon. Everything else is a layer on top, all
//! on by default:
//!
//! | feature | what it adds |
//! | --- | --- |
//! | `flex` | Burn's pure-Rust CPU backend (default backend), and the losses' fused log-sum-exp on it |
//! | `ndarray`, `vulkan`, `cuda` | further Burn backends (`cuda` downloads an LLVM bundle at build time) |
//! | `data` | module `data`: CIFAR, IDX and list-file readers, long-tailed subsets, augmentations, deterministic loaders (Burn `DataLoader`s) |
//! | `models` | modules `nn` (batch norm, the convolution entry, with the crate's flex kernels) and `model` (CIFAR ResNets, ResNet-50/ResNeXt-50, the ResCom head) |
//! | `train` | modules `eval` (accuracy, calibration, confusion, feature-space diagnostics), `train` (burn-train `Learner` plug-ins: train/inference steps, schedules, metrics, atomic checkpoints), `report` (the files a run writes) and `run` (`run::fit`, the bundled runs, prediction with a saved run: `run::Predictor`); implies `data` and `models` |
//! | `report` | a run's SVG figures and its self-contained page `report.html`, and `report::Comparison` of runs over seeds; implies `train` |
//! | `x86-v4` | on by default: gemm's AVX-512 kernels for flex, chosen at run time |
//!
//! A loss-only build: `rescom = { version = "0.1", default-features = false, features =
//! ["flex"] }`.
#![warn(missing_docs)]

// The method: every layer below builds on these, and none of them on a layer above.
mod check;
mod device;
mod error;
#[cfg(any(feature = "flex", feature = "models"))]
mod kernels;
mod loss;
mod memory;
mod mining;
mod ops;
mod rng;
mod stats;

pub use error::*;
pub use loss::*;
pub use memory::*;
pub use mining::*;
pub use rng::*;
pub use stats::*;

#[doc = include_str!("../docs/method.md")]
pub mod method {}

/// The README's examples, compiled and run as doctests (they use every layer).
#[cfg(all(doctest, feature = "report"))]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;

// The networks.
#[cfg(feature = "models")]
#[cfg_attr(docsrs, doc(cfg(feature = "models")))]
pub mod model;
#[cfg(feature = "models")]
#[cfg_attr(docsrs, doc(cfg(feature = "models")))]
pub mod nn;

// The runs.
#[cfg(feature = "data")]
#[cfg_attr(docsrs, doc(cfg(feature = "data")))]
pub mod data;
#[cfg(feature = "train")]
#[cfg_attr(docsrs, doc(cfg(feature = "train")))]
pub mod eval;
#[cfg(feature = "train")]
#[cfg_attr(docsrs, doc(cfg(feature = "train")))]
pub mod report;
#[cfg(feature = "train")]
#[cfg_attr(docsrs, doc(cfg(feature = "train")))]
pub mod run;
#[cfg(feature = "train")]
#[cfg_attr(docsrs, doc(cfg(feature = "train")))]
pub mod train;
