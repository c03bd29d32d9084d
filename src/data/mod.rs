//! The data side: readers of real datasets, long-tailed subsampling, augmentation and
//! parallel two-view loaders.
//!
//! - the owned 8-bit CHW [`Image`] every reader yields and every transform maps;
//! - the [`Dataset`] trait, the contiguous [`InMemoryDataset`] and [`Subset`];
//! - readers: CIFAR-10/100, binary version ([`load_cifar`]); IDX files, MNIST and
//!   Fashion-MNIST, raw or gzipped ([`load_idx_pair`]); ImageNet-LT-style list files of JPEG
//!   and PNG images ([`ListDataset`]); a dataset by where it lives, as a run records it
//!   ([`DatasetSpec`]);
//! - exponential and step long-tailed subsets with their class counts ([`LongTailed`],
//!   [`long_tail_counts`]; [method](crate::method#long-tailed-splits-and-shot-groups));
//! - per-view augmentation pipelines ([`Pipeline`] of [`Step`]s: crop, flip, AutoAugment,
//!   Cutout, RandomResizedCrop, colour jitter, grayscale, RandAugment, resize and centre
//!   crop, normalisation);
//! - background, multi-threaded two-view training and single-view evaluation loaders
//!   ([`TwoViewLoader`], [`EvalLoader`]), Burn `DataLoader`s whose output is a pure function
//!   of `(seed, epoch, sample, view)`.
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

mod augment;
mod cifar;
mod dataset;
mod idx;
mod image;
mod list;
mod loader;
mod longtail;
mod spec;

pub use augment::timm_randaugment::TimmRandAugment;
pub use augment::{
    CIFAR_MEAN, CIFAR_STD, FASHION_MNIST_MEAN, FASHION_MNIST_STD, IMAGENET_MEAN, IMAGENET_STD,
    MNIST_MEAN, MNIST_STD, Pipeline, RandAugmentPolicy, Step,
};
pub use cifar::{Cifar, load_cifar, load_cifar_file, load_cifar10, load_cifar100, verify_archive};
pub use dataset::{Dataset, InMemoryDataset, Subset};
pub use idx::{Split, load_fashion_mnist, load_idx_pair, load_mnist};
pub use image::Image;
pub(crate) use list::decode_image_file;
pub use list::{ListDataset, MAX_IMAGE_BYTES, MAX_IMAGE_SIDE, OnUnreadable};
pub use loader::{Batch, EvalLoader, HostBatch, LoaderConfig, TwoViewLoader};
pub use longtail::{
    ImbalanceProfile, LongTailed, class_counts, long_tail_counts, shot_groups, subsample,
};
pub use spec::{CIFAR10_CLASSES, DatasetSource, DatasetSpec, FASHION_MNIST_CLASSES};
