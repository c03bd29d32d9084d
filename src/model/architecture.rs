//! Backbone architectures by name.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// A backbone architecture by name.
///
/// Names: `resnet20`, `resnet32`, `resnet44`, `resnet56`, `resnet110` (any `resnet{6n+2}` is a
/// CIFAR ResNet, except `resnet50`), `resnet50`, `resnext50` (or `resnext50_32x4d`). A CIFAR
/// ResNet of depth 50 is spelled `cifar_resnet50`; `cifar_resnet{depth}` works for every depth.
/// It is written to configuration files as its name.
///
/// ```
/// use rescom::model::Architecture;
///
/// let arch: Architecture = "resnet32".parse()?;
/// assert_eq!(arch, Architecture::CifarResNet(32));
/// assert_eq!(arch.feature_dim(), 64);
/// assert_eq!(Architecture::ResNeXt50.to_string(), "resnext50");
/// assert!("resnet33".parse::<Architecture>().is_err());
/// # Ok::<(), rescom::Error>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub enum Architecture {
    /// CIFAR ResNet of depth `6n + 2` (20, 32, 44, 56, 110, ...).
    CifarResNet(usize),
    /// ResNet-50 (torchvision layout).
    ResNet50,
    /// ResNeXt-50 32x4d (torchvision layout).
    ResNeXt50,
}

impl Architecture {
    /// Dimension of the pooled feature at the default width: 64 for CIFAR ResNets, 2048 for
    /// ResNet-50 and ResNeXt-50.
    pub fn feature_dim(&self) -> usize {
        match self {
            Architecture::CifarResNet(_) => 64,
            Architecture::ResNet50 | Architecture::ResNeXt50 => 2048,
        }
    }

    /// Whether this is one of the ImageNet-sized networks (ResNet-50, ResNeXt-50).
    pub fn is_imagenet(&self) -> bool {
        !matches!(self, Architecture::CifarResNet(_))
    }
}

impl fmt::Display for Architecture {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Architecture::CifarResNet(50) => f.write_str("cifar_resnet50"),
            Architecture::CifarResNet(depth) => write!(f, "resnet{depth}"),
            Architecture::ResNet50 => f.write_str("resnet50"),
            Architecture::ResNeXt50 => f.write_str("resnext50"),
        }
    }
}

impl FromStr for Architecture {
    type Err = Error;

    /// Parses `resnet20`, `resnet32`, ..., `resnet110`, `cifar_resnet{depth}`, `resnet50`,
    /// `resnext50`.
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "resnet50" => Ok(Architecture::ResNet50),
            "resnext50" | "resnext50_32x4d" => Ok(Architecture::ResNeXt50),
            _ => s
                .strip_prefix("cifar_resnet")
                .or_else(|| s.strip_prefix("resnet"))
                .filter(|d| !d.is_empty() && d.bytes().all(|b| b.is_ascii_digit()))
                .and_then(|d| d.parse::<usize>().ok())
                .filter(|&d| d >= 8 && (d - 2).is_multiple_of(6))
                .map(Architecture::CifarResNet)
                .ok_or_else(|| {
                    Error::config(
                        "architecture",
                        format!(
                            "unknown architecture `{s}`; use resnet20|32|44|56|110 (CIFAR, any \
                             depth 6n + 2), resnet50 or resnext50"
                        ),
                    )
                }),
        }
    }
}

impl TryFrom<String> for Architecture {
    type Error = Error;

    fn try_from(s: String) -> Result<Self> {
        s.parse()
    }
}

impl From<Architecture> for String {
    fn from(a: Architecture) -> Self {
        a.to_string()
    }
}
