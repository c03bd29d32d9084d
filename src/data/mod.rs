//! The data side: readers of real datasets, long-tailed subsampling, augmentation and
//! parallel two-view loaders.
//!
//! - [`image`]: the owned 8-bit CHW [`Image`] every reader yields and every transform maps.
//! - [`dataset`]: the [`Dataset`] trait, the contiguous [`InMemoryDataset`] and [`Subset`].
//! - [`cifar`], [`idx`], [`list`]: CIFAR-10/100 (binary version), IDX files (MNIST,
//!   Fashion-MNIST; raw or gzipped) and ImageNet-LT-style list files (JPEG/PNG).
//! - [`longtail`]: exponential and step long-tailed subsets with their class counts and
//!   shot groups ([method](crate::method#long-tailed-splits-and-shot-groups)).
//! - [`augment`]: per-view pipelines (crop, flip, AutoAugment, Cutout, RandomResizedCrop,
//!   colour jitter, grayscale, RandAugment, resize and centre crop, normalisation).
//! - [`loader`]: background, multi-threaded two-view training and single-view evaluation
//!   loaders whose output is a pure function of `(seed, epoch, sample, view)`.
//!
//! ```
//! use std::sync::Arc;
//! use burn::tensor::Device;
//! use rescom::data::{
//!     Cifar, Dataset, ImbalanceProfile, LoaderConfig, LongTailed, Pipeline, TwoViewLoader,
//!     load_cifar_file,
//! };
//!
//! let path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/cifar10_test20.bin");
//! let full: Arc<dyn Dataset> = Arc::new(load_cifar_file(path.as_ref(), Cifar::Ten)?);
//! assert_eq!(full.len(), 20); // the first 20 CIFAR-10 test images
//! // Classes 2 and 4 have no image among them: a long-tailed subset is a clear error.
//! let lt = LongTailed::new(full.clone(), ImbalanceProfile::Exponential, 10.0, None, 0);
//! assert!(lt.unwrap_err().to_string().contains("would be empty"));
//! let loader = TwoViewLoader::new(full, Pipeline::cifar_train(), LoaderConfig::new(8, 0), &Device::flex())?;
//! let first = loader.host_batches(0, 0)?.next().unwrap()?;
//! assert_eq!(first.shape, [16, 3, 32, 32]); // 8 images x 2 views
//! # Ok::<(), rescom::Error>(())
//! ```

pub mod augment;
pub mod cifar;
pub mod dataset;
pub mod idx;
pub mod image;
pub mod list;
pub mod loader;
pub mod longtail;

pub use augment::{Pipeline, RandAugmentPolicy, Step};
pub use cifar::{Cifar, load_cifar, load_cifar_file, load_cifar10, load_cifar100, verify_archive};
pub use dataset::{Dataset, InMemoryDataset, Subset};
pub use idx::{Split, load_fashion_mnist, load_idx_pair, load_mnist};
pub use image::Image;
pub use list::{ListDataset, OnUnreadable};
pub use loader::{EvalLoader, HostBatch, LoaderConfig, TwoViewLoader};
pub use longtail::{
    ImbalanceProfile, LongTailed, ShotGroup, class_counts, long_tail_counts, shot_groups, subsample,
};
