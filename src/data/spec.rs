//! Where a dataset comes from, as a run records it: [`DatasetSpec`].

use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::data::cifar::{Cifar, load_cifar, load_cifar_file};
use crate::data::dataset::{Dataset, Subset};
use crate::data::idx::{Split, load_fashion_mnist, load_mnist};
use crate::data::list::{ListDataset, OnUnreadable};
use crate::error::{Error, Result};

/// The Fashion-MNIST class names, by label.
pub const FASHION_MNIST_CLASSES: [&str; 10] = [
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
];

/// The CIFAR-10 class names, by label (its `batches.meta.txt`).
pub const CIFAR10_CLASSES: [&str; 10] = [
    "airplane",
    "automobile",
    "bird",
    "cat",
    "deer",
    "dog",
    "frog",
    "horse",
    "ship",
    "truck",
];

/// A dataset by where it lives: one of the crate's readers with its files
/// ([`DatasetSource`]), and optionally only its first images. Serialisable: a run records
/// where its test split comes from with it (`run.json`), so that the run's own test images
/// can be classified again later ([`Predictor`](crate::run::Predictor)).
///
/// ```
/// use rescom::data::{Cifar, DatasetSpec, Split};
///
/// let fixture = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/cifar10_test20.bin");
/// let spec = DatasetSpec::cifar_file(fixture, Cifar::Ten).with_first(8);
/// let test = spec.open()?;
/// assert_eq!((test.len(), test.num_classes()), (8, 10));
/// assert_eq!(spec.class_names().unwrap()[test.label(0)], "cat");
///
/// // A dataset that is not there: the error names the directory and where to get the data.
/// let missing = DatasetSpec::fashion_mnist("/nowhere/fashion-mnist", Split::Test).open();
/// let message = missing.err().unwrap().to_string();
/// assert!(message.contains("/nowhere/fashion-mnist") && message.contains("fetch-data.sh"));
/// # Ok::<(), rescom::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DatasetSpec {
    /// The reader and its files.
    pub source: DatasetSource,
    /// Only the first this many images (all when there are fewer); `None` for all of them.
    #[serde(default)]
    pub first: Option<usize>,
}

/// One of the crate's dataset readers with its files (see [`DatasetSpec`]). Serialised with
/// its name as `"kind"` (`"fashion_mnist"`, `"mnist"`, `"cifar10"`, `"cifar100"`,
/// `"cifar_file"`, `"list"`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum DatasetSource {
    /// Fashion-MNIST's IDX files in `dir` ([`load_fashion_mnist`]).
    FashionMnist {
        /// The directory of the four files (`data/fashion-mnist`).
        dir: PathBuf,
        /// Training or test images.
        split: Split,
    },
    /// MNIST's IDX files in `dir` ([`load_mnist`]).
    Mnist {
        /// The directory of the four files (`data/mnist`).
        dir: PathBuf,
        /// Training or test images.
        split: Split,
    },
    /// Binary CIFAR-10 under `dir` ([`load_cifar10`](crate::data::load_cifar10)).
    Cifar10 {
        /// `cifar-10-batches-bin` or its parent.
        dir: PathBuf,
        /// Training or test images.
        split: Split,
    },
    /// Binary CIFAR-100 under `dir` ([`load_cifar100`](crate::data::load_cifar100)).
    Cifar100 {
        /// `cifar-100-binary` or its parent.
        dir: PathBuf,
        /// Training or test images.
        split: Split,
    },
    /// One binary CIFAR file of any number of records ([`load_cifar_file`]).
    CifarFile {
        /// The file.
        path: PathBuf,
        /// CIFAR-10 or CIFAR-100 records.
        cifar: Cifar,
    },
    /// A list file of image paths and labels ([`ListDataset::open`]).
    List {
        /// The list file.
        list: PathBuf,
        /// The directory the listed paths are relative to.
        root: PathBuf,
        /// Number of classes.
        num_classes: usize,
        /// What to do with entries whose image cannot be read.
        on_unreadable: OnUnreadable,
    },
}

impl From<DatasetSource> for DatasetSpec {
    fn from(source: DatasetSource) -> Self {
        Self {
            source,
            first: None,
        }
    }
}

impl DatasetSpec {
    /// Fashion-MNIST's `split` in `dir`.
    pub fn fashion_mnist(dir: impl Into<PathBuf>, split: Split) -> Self {
        DatasetSource::FashionMnist {
            dir: dir.into(),
            split,
        }
        .into()
    }

    /// MNIST's `split` in `dir`.
    pub fn mnist(dir: impl Into<PathBuf>, split: Split) -> Self {
        DatasetSource::Mnist {
            dir: dir.into(),
            split,
        }
        .into()
    }

    /// Binary CIFAR-10's `split` under `dir`.
    pub fn cifar10(dir: impl Into<PathBuf>, split: Split) -> Self {
        DatasetSource::Cifar10 {
            dir: dir.into(),
            split,
        }
        .into()
    }

    /// Binary CIFAR-100's `split` under `dir`.
    pub fn cifar100(dir: impl Into<PathBuf>, split: Split) -> Self {
        DatasetSource::Cifar100 {
            dir: dir.into(),
            split,
        }
        .into()
    }

    /// The records of one binary CIFAR file.
    pub fn cifar_file(path: impl Into<PathBuf>, cifar: Cifar) -> Self {
        DatasetSource::CifarFile {
            path: path.into(),
            cifar,
        }
        .into()
    }

    /// The images of a list file, paths relative to `root`.
    pub fn list(
        list: impl Into<PathBuf>,
        root: impl Into<PathBuf>,
        num_classes: usize,
        on_unreadable: OnUnreadable,
    ) -> Self {
        DatasetSource::List {
            list: list.into(),
            root: root.into(),
            num_classes,
            on_unreadable,
        }
        .into()
    }

    /// The same dataset, only its first `n` images (all of them when there are fewer).
    pub fn with_first(mut self, n: usize) -> Self {
        self.first = Some(n);
        self
    }

    /// Number of classes, known without reading anything.
    pub fn num_classes(&self) -> usize {
        match &self.source {
            DatasetSource::FashionMnist { .. }
            | DatasetSource::Mnist { .. }
            | DatasetSource::Cifar10 { .. } => 10,
            DatasetSource::Cifar100 { .. } => 100,
            DatasetSource::CifarFile { cifar, .. } => cifar.num_classes(),
            DatasetSource::List { num_classes, .. } => *num_classes,
        }
    }

    /// The well-known class names, by label: Fashion-MNIST's, MNIST's digits and CIFAR-10's;
    /// `None` for the others.
    pub fn class_names(&self) -> Option<Vec<String>> {
        let names = |names: &[&str]| Some(names.iter().map(|n| n.to_string()).collect());
        match &self.source {
            DatasetSource::FashionMnist { .. } => names(&FASHION_MNIST_CLASSES),
            DatasetSource::Mnist { .. } => Some((0..10).map(|d| d.to_string()).collect()),
            DatasetSource::Cifar10 { .. }
            | DatasetSource::CifarFile {
                cifar: Cifar::Ten, ..
            } => names(&CIFAR10_CLASSES),
            _ => None,
        }
    }

    /// Reads the dataset.
    ///
    /// # Errors
    /// [`Error::DatasetMissing`] naming the directory or file that is not there, with where to
    /// get the data; the reader's errors for damaged files ([`Error::CorruptData`],
    /// [`Error::Image`] for an unreadable listed image under [`OnUnreadable::Fail`]).
    pub fn open(&self) -> Result<Arc<dyn Dataset>> {
        let full: Arc<dyn Dataset> = match &self.source {
            DatasetSource::FashionMnist { dir, split } => {
                Arc::new(load_fashion_mnist(dir, *split)?)
            }
            DatasetSource::Mnist { dir, split } => Arc::new(load_mnist(dir, *split)?),
            DatasetSource::Cifar10 { dir, split } => {
                Arc::new(load_cifar(dir, Cifar::Ten, *split, &[])?)
            }
            DatasetSource::Cifar100 { dir, split } => {
                Arc::new(load_cifar(dir, Cifar::Hundred, *split, &[])?)
            }
            DatasetSource::CifarFile { path, cifar } => {
                if !path.is_file() {
                    let (archive, _) = cifar.archive();
                    return Err(Error::DatasetMissing {
                        path: path.clone(),
                        hint: format!(
                            "the binary CIFAR file does not exist; it is one of the files of \
                             {archive} (binary version, from https://www.cs.toronto.edu/~kriz/)"
                        ),
                    });
                }
                Arc::new(load_cifar_file(path, *cifar)?)
            }
            DatasetSource::List {
                list,
                root,
                num_classes,
                on_unreadable,
            } => Arc::new(ListDataset::open(list, root, *num_classes, *on_unreadable)?),
        };
        match self.first {
            Some(n) if n < full.len() => Ok(Arc::new(Subset::new(full, (0..n).collect())?)),
            _ => Ok(full),
        }
    }
}

impl fmt::Display for DatasetSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let split = |split: &Split| match split {
            Split::Train => "training",
            Split::Test => "test",
        };
        match &self.source {
            DatasetSource::FashionMnist { dir, split: s } => {
                write!(f, "Fashion-MNIST {} split in {}", split(s), dir.display())
            }
            DatasetSource::Mnist { dir, split: s } => {
                write!(f, "MNIST {} split in {}", split(s), dir.display())
            }
            DatasetSource::Cifar10 { dir, split: s } => {
                write!(f, "CIFAR-10 {} split in {}", split(s), dir.display())
            }
            DatasetSource::Cifar100 { dir, split: s } => {
                write!(f, "CIFAR-100 {} split in {}", split(s), dir.display())
            }
            DatasetSource::CifarFile { path, .. } => write!(f, "CIFAR file {}", path.display()),
            DatasetSource::List { list, root, .. } => write!(
                f,
                "list {} of images under {}",
                list.display(),
                root.display()
            ),
        }?;
        match self.first {
            Some(n) => write!(f, " (its first {n} images)"),
            None => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn specs_read_back_equal() {
        let specs = [
            DatasetSpec::fashion_mnist("data/fashion-mnist", Split::Test).with_first(512),
            DatasetSpec::mnist("data/mnist", Split::Train),
            DatasetSpec::cifar10("data", Split::Test),
            DatasetSpec::cifar100("data", Split::Train),
            DatasetSpec::cifar_file("x.bin", Cifar::Hundred),
            DatasetSpec::list("val.txt", "/images", 8142, OnUnreadable::Skip),
        ];
        for spec in specs {
            let json = serde_json::to_string(&spec).unwrap();
            assert_eq!(
                serde_json::from_str::<DatasetSpec>(&json).unwrap(),
                spec,
                "{json}"
            );
        }
        let json = serde_json::to_string(&DatasetSpec::cifar10("d", Split::Test)).unwrap();
        assert_eq!(
            json,
            r#"{"source":{"kind":"cifar10","dir":"d","split":"test"},"first":null}"#
        );
    }

    #[test]
    fn missing_files_are_named() {
        let dir = std::env::temp_dir().join(format!("rescom-spec-{}", std::process::id()));
        for spec in [
            DatasetSpec::mnist(&dir, Split::Test),
            DatasetSpec::cifar10(&dir, Split::Test),
            DatasetSpec::cifar_file(dir.join("test_batch.bin"), Cifar::Ten),
            DatasetSpec::list(dir.join("val.txt"), &dir, 3, OnUnreadable::Fail),
        ] {
            let err = spec.open().err().expect("nothing is there");
            assert!(matches!(err, Error::DatasetMissing { .. }), "{err}");
            assert!(err.to_string().contains(&*dir.to_string_lossy()), "{err}");
        }
    }
}
