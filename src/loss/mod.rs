//! The ResCom losses: Balanced Softmax, the class-balanced contrastive loss, and their
//! composition [`ResComLoss`], with the row normalisation the contrast uses.

mod balanced_softmax;
mod contrastive;
mod normalize;
mod rescom;
mod rescom_config;

pub use balanced_softmax::*;
pub use contrastive::*;
pub use normalize::*;
pub use rescom::*;
pub use rescom_config::*;
