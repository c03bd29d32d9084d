//! The key memory of the contrastive branch: the class-balanced queue of `K` keys per class
//! ([`ClassBalancedQueue`]), the FIFO queue of its ablation ([`FifoQueue`]), and the memory
//! shared by every copy of a [`ResComLoss`](crate::ResComLoss) and its replicas
//! (`SharedMemory`, crate-private).

mod class_balanced;
mod fifo;
mod shared;

pub use class_balanced::*;
pub use fifo::*;
pub(crate) use shared::SharedMemory;

use burn::module::Module;
use burn::tensor::{DType, Int, Tensor};
use serde::{Deserialize, Serialize};

/// Which memory the contrastive branch mines from.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MemoryKind {
    /// `K` keys per class (ResCom).
    #[default]
    ClassBalanced,
    /// The most recent `C * K` keys whatever their class.
    Fifo,
}

/// The memory a [`ResComLoss`](crate::ResComLoss) mines from.
#[derive(Module, Debug)]
pub enum KeyMemory {
    /// The class-balanced queue.
    ClassBalanced(ClassBalancedQueue),
    /// A FIFO queue (ablation).
    Fifo(FifoQueue),
}

impl KeyMemory {
    /// Similarities of (normalised) queries with every slot, `[rows, slots]`; the memory is
    /// read on the queries' device and carries no gradient.
    pub(crate) fn similarities(&self, queries: Tensor<2>) -> Tensor<2> {
        match self {
            KeyMemory::ClassBalanced(queue) => queue.similarities(queries),
            KeyMemory::Fifo(queue) => queue.similarities(queries),
        }
    }

    /// The dtype of the stored keys.
    pub(crate) fn key_dtype(&self) -> DType {
        match self {
            KeyMemory::ClassBalanced(queue) => queue.keys().dtype(),
            KeyMemory::Fifo(queue) => queue.keys().dtype(),
        }
    }

    /// Writes `keys` (already validated) in row order: the queues' exact vectorised rule.
    pub(crate) fn enqueue_unchecked(&mut self, keys: Tensor<2>, labels: Tensor<1, Int>) {
        match self {
            KeyMemory::ClassBalanced(queue) => queue.enqueue_unchecked(keys, labels),
            KeyMemory::Fifo(queue) => queue.enqueue_unchecked(keys, labels),
        }
    }
}
