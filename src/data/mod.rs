//! The data side: readers of real datasets, long-tailed subsampling, augmentation and
//! parallel two-view loaders.

pub mod augment;
pub mod cifar;
pub mod dataset;
pub mod idx;
pub mod image;
pub mod list;
pub mod loader;
pub mod longtail;

pub use augment::{Pipeline, Step};
pub use cifar::{Cifar, load_cifar, load_cifar_file, load_cifar10, load_cifar100};
pub use dataset::{Dataset, InMemoryDataset, Subset};
pub use idx::{Split, load_fashion_mnist, load_idx_pair, load_mnist};
pub use image::Image;
pub use list::{ListDataset, OnUnreadable};
pub use loader::{EvalLoader, LoaderConfig, TwoViewLoader};
pub use longtail::{ImbalanceProfile, class_counts, long_tail_counts, shot_groups, subsample};
