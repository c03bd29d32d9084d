#![doc = include_str!("../README.md")]
#![warn(missing_docs)]

#[cfg(feature = "data")]
#[cfg_attr(docsrs, doc(cfg(feature = "data")))]
pub mod data;
pub mod error;
pub mod fifo;
#[cfg(feature = "models")]
#[cfg_attr(docsrs, doc(cfg(feature = "models")))]
pub mod head;
pub mod loss;
#[doc = include_str!("../docs/method.md")]
pub mod method {}
pub mod mining;
#[cfg(feature = "models")]
#[cfg_attr(docsrs, doc(cfg(feature = "models")))]
pub mod model;
pub mod normalize;
pub mod queue;
#[cfg(feature = "report")]
#[cfg_attr(docsrs, doc(cfg(feature = "report")))]
pub mod report;
pub mod rng;
pub mod stats;
#[cfg(feature = "train")]
#[cfg_attr(docsrs, doc(cfg(feature = "train")))]
pub mod train;

mod check;
mod ops;
mod select;

pub use error::{Error, Result};
pub use fifo::{FifoQueue, FifoQueueConfig};
pub use loss::{
    BalancedSoftmaxLoss, BalancedSoftmaxLossConfig, ClassBalancedContrastiveLoss,
    ClassBalancedContrastiveLossConfig, KeyMemory, MemoryKind, ResComLoss, ResComLossConfig,
    ResComModelOutput, ResComOutput,
};
pub use mining::{HardPairMiner, HardPairMinerConfig, MinedPairs, MinedSet};
pub use normalize::l2_normalize;
pub use queue::{ClassBalancedQueue, ClassBalancedQueueConfig};
pub use rng::Rng;
pub use stats::{ClassStats, EmptyClassPolicy};
