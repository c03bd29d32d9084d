//! The ResCom losses: Balanced Softmax, the class-balanced contrastive loss, and their
//! composition [`ResComLoss`].

pub mod balanced_softmax;
pub mod contrastive;
pub mod rescom;

pub use balanced_softmax::{BalancedSoftmaxLoss, BalancedSoftmaxLossConfig};
pub use contrastive::{ClassBalancedContrastiveLoss, ClassBalancedContrastiveLossConfig};
pub use rescom::{KeyMemory, MemoryKind, ResComLoss, ResComLossConfig, ResComOutput};
