#![doc = include_str!("../README.md")]
#![warn(missing_docs)]

pub mod data;
pub mod error;
pub mod fifo;
pub mod head;
pub mod loss;
#[doc = include_str!("../docs/method.md")]
pub mod method {}
pub mod mining;
pub mod model;
pub mod normalize;
pub mod queue;
pub mod rng;
pub mod stats;
pub mod train;

mod check;
mod ops;
mod select;

pub use error::{Error, Result};
pub use fifo::{FifoQueue, FifoQueueConfig};
pub use loss::{
    BalancedSoftmaxLoss, BalancedSoftmaxLossConfig, ClassBalancedContrastiveLoss,
    ClassBalancedContrastiveLossConfig, KeyMemory, MemoryKind, ResComLoss, ResComLossConfig,
    ResComOutput,
};
pub use mining::{HardPairMiner, HardPairMinerConfig, MinedPairs, MinedSet};
pub use normalize::l2_normalize;
pub use queue::{ClassBalancedQueue, ClassBalancedQueueConfig};
pub use rng::Rng;
pub use stats::{ClassStats, EmptyClassPolicy};
