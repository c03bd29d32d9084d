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

use crate::ops::int_dtype;
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

/// What a queue's update is computed from, off the autodiff graph (the update is plain
/// state): the stored keys, the new keys on their device in their type, the labels in the
/// device's own integer width (whatever backend the state or labels came from), and whether
/// the stored keys were on an autodiff device, the association the result gets back
/// ([`Update::restore`]).
pub(crate) struct Update {
    pub(crate) queue: Tensor<2>,
    pub(crate) keys: Tensor<2>,
    pub(crate) labels: Tensor<1, Int>,
    pub(crate) int: DType,
    autodiff: bool,
}

impl Update {
    /// The inputs of an update of `stored` with `keys` of class `labels`.
    pub(crate) fn new(stored: Tensor<2>, keys: Tensor<2>, labels: Tensor<1, Int>) -> Self {
        let autodiff = stored.is_autodiff();
        let queue = stored.detach().without_autodiff();
        let device = queue.device();
        let keys = keys
            .detach()
            .without_autodiff()
            .to_device(&device)
            .cast(queue.dtype());
        let int = int_dtype(&device);
        let labels = labels.without_autodiff().to_device(&device).cast(int);
        Self {
            queue,
            keys,
            labels,
            int,
            autodiff,
        }
    }

    /// `tensor` with the autodiff association of the stored keys.
    pub(crate) fn restore<const D: usize, K>(&self, tensor: Tensor<D, K>) -> Tensor<D, K>
    where
        K: burn::tensor::kind::Autodiff,
    {
        if self.autodiff {
            tensor.autodiff()
        } else {
            tensor
        }
    }
}
