//! The ResCom losses: Balanced Softmax, the class-balanced contrastive loss, and their
//! composition [`ResComLoss`].

pub mod balanced_softmax;
pub mod contrastive;
pub mod memory;
pub mod rescom;

pub use balanced_softmax::{BalancedSoftmaxLoss, BalancedSoftmaxLossConfig};
pub use contrastive::{ClassBalancedContrastiveLoss, ClassBalancedContrastiveLossConfig};
pub use memory::{KeyMemory, MemoryKind, SharedMemory};
pub use rescom::{ResComLoss, ResComLossConfig, ResComModelOutput, ResComOutput};
