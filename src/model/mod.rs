//! Backbones and the full ResCom network.
//!
//! - [`CifarResNet`]: ResNet-20/32/44/56/110 for 32x32 (or 28x28) images, 64-d feature;
//! - [`ResNet`]: ResNet-50 and ResNeXt-50 (32x4d) for ImageNet-sized images, 2048-d feature;
//! - [`Backbone`]: either of them, chosen at run time by name ([`Architecture`],
//!   [`BackboneConfig`]);
//! - [`ResComModel`]: a backbone followed by a [`ResComHead`] (projection MLP and linear
//!   classifier), whose output [`ResComLossInput`](crate::ResComLossInput) is what the ResCom loss takes.
//!
//! Forward passes follow Burn's convention and panic on an input whose channel count does not
//! match the network; [`ResComModel::check_input`] reports such a shape as an
//! [`Error`](crate::Error) instead.

mod architecture;
mod backbone;
mod cifar_resnet;
mod head;
mod rescom_model;
mod resnet;

pub use architecture::*;
pub use backbone::*;
pub use cifar_resnet::*;
pub use head::*;
pub use rescom_model::*;
pub use resnet::*;
