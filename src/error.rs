//! The crate's error type.
//!
//! Every fallible public function returns [`Result`]. Bad input (wrong shapes, labels out of
//! range, impossible mining counts, corrupt or missing data files) is reported here instead of
//! panicking or silently producing NaN.

use std::path::PathBuf;

/// Result alias for this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong in `rescom`.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    // ----- class statistics -------------------------------------------------------------
    /// A class histogram with no classes.
    #[error("the class histogram is empty: at least one class is needed")]
    NoClasses,
    /// A class with no training sample where the effective number needs one.
    #[error(
        "class {class} has no training samples, so it has no effective number; remove the class, \
         or opt in with `EmptyClassPolicy::CountAsOne`"
    )]
    EmptyClass {
        /// Index of the empty class.
        class: usize,
    },
    /// Effective-number `beta` outside `[0, 1)`.
    #[error("effective-number beta must lie in [0, 1), got {beta}")]
    InvalidBeta {
        /// The rejected value.
        beta: f64,
    },

    // ----- configuration ----------------------------------------------------------------
    /// A configuration value outside its domain.
    #[error("invalid configuration: `{field}` {reason}")]
    InvalidConfig {
        /// Name of the offending field.
        field: &'static str,
        /// What is wrong with it.
        reason: String,
    },
    /// `hard_positives` outside `1..=queue_per_class`.
    #[error(
        "hard_positives = {hard_positives} is impossible: each class owns {queue_per_class} queue \
         slots, so it must lie in 1..={queue_per_class}"
    )]
    InvalidHardPositives {
        /// Requested number of mined positives.
        hard_positives: usize,
        /// Queue slots per class (`K`).
        queue_per_class: usize,
    },
    /// `hard_negatives` larger than the number of queue negatives `(C - 1) * K`.
    #[error(
        "hard_negatives = {hard_negatives} is impossible: a row has only (C - 1) * K = {available} \
         queue negatives ({num_classes} classes, {queue_per_class} slots per class)"
    )]
    InvalidHardNegatives {
        /// Requested number of mined negatives.
        hard_negatives: usize,
        /// `(C - 1) * K`.
        available: usize,
        /// Number of classes `C`.
        num_classes: usize,
        /// Queue slots per class `K`.
        queue_per_class: usize,
    },

    // ----- tensor inputs ----------------------------------------------------------------
    /// A tensor argument has the wrong shape.
    #[error("`{name}` has shape {actual:?}, expected {expected}")]
    Shape {
        /// Argument name.
        name: &'static str,
        /// The shape that was passed.
        actual: Vec<usize>,
        /// A description of the expected shape.
        expected: String,
    },
    /// The batch does not hold two views stacked view-major.
    #[error(
        "a two-view batch needs an even, positive number of rows (view 1 in rows 0..N, view 2 in \
         rows N..2N), got {rows}"
    )]
    OddRows {
        /// Number of rows passed.
        rows: usize,
    },
    /// A label outside `0..num_classes`.
    #[error("label {label} at row {row} is out of range for {num_classes} classes")]
    LabelOutOfRange {
        /// Row of the offending label.
        row: usize,
        /// The label.
        label: i64,
        /// Number of classes.
        num_classes: usize,
    },
    /// The two views of one image carry different labels.
    #[error(
        "the two views of image {row} disagree: row {row} has label {first} but row {second_row} \
         has label {second}"
    )]
    ViewLabelMismatch {
        /// Row in view 1.
        row: usize,
        /// Row in view 2 (`row + N`).
        second_row: usize,
        /// Label in view 1.
        first: i64,
        /// Label in view 2.
        second: i64,
    },
    /// NaN or infinity in an input tensor.
    #[error("`{name}` contains NaN or infinite values")]
    NonFinite {
        /// Argument name.
        name: &'static str,
    },
    /// Reading a tensor back from its device failed.
    #[error("reading `{name}` from the device failed: {reason}")]
    DeviceRead {
        /// Argument name.
        name: &'static str,
        /// The backend's message.
        reason: String,
    },

    // ----- files and data ---------------------------------------------------------------
    /// An I/O error on a path.
    #[error("{path}: {source}")]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// A dataset directory or file that does not exist.
    #[error("dataset not found at {path}: {hint}")]
    DatasetMissing {
        /// Where the dataset was looked for.
        path: PathBuf,
        /// What to download and where to put it.
        hint: String,
    },
    /// A data file whose contents are not what its format promises.
    #[error("{path} is corrupt: {reason}")]
    CorruptData {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// A checksum that does not match.
    #[error("{path}: md5 {actual} does not match the expected {expected}")]
    Checksum {
        /// The file.
        path: PathBuf,
        /// Expected digest (hex).
        expected: String,
        /// Computed digest (hex).
        actual: String,
    },
    /// A dataset that is well formed but unusable as asked (e.g. a class left empty).
    #[error("invalid dataset: {0}")]
    InvalidDataset(String),
    /// An image that cannot be decoded.
    #[error("cannot decode image {path}: {reason}")]
    Image {
        /// The image file.
        path: PathBuf,
        /// The decoder's message.
        reason: String,
    },

    /// A data-loading worker panicked while preparing a batch (a bug in a dataset or a
    /// transform); the loader reports it as the batch's result and stops the epoch.
    #[error(
        "a data-loading worker panicked while preparing the batch of images {indices}: {reason}"
    )]
    WorkerPanic {
        /// The dataset indices of the batch, abbreviated.
        indices: String,
        /// The panic message.
        reason: String,
    },

    // ----- training -----------------------------------------------------------------------
    /// A checkpoint that cannot be written or read back.
    #[error("checkpoint {path}: {reason}")]
    Checkpoint {
        /// The checkpoint file or directory.
        path: PathBuf,
        /// What went wrong.
        reason: String,
    },
    /// The output directory of a run cannot be created or written (a path under a regular
    /// file, a read-only file system, missing permissions, a full disk); found before
    /// anything is trained.
    #[error("output directory {path} is not writable: {source}")]
    OutputNotWritable {
        /// The directory.
        path: PathBuf,
        /// The error of the probe write.
        #[source]
        source: std::io::Error,
    },
    /// Training stopped on an error: a step whose loss could not be computed or is no longer
    /// finite, a batch that could not be loaded, a failed device or checkpoint write. The last
    /// complete checkpoint is kept.
    #[error("training stopped: {reason}; the last complete checkpoint is kept")]
    Training {
        /// What burn-train reported.
        reason: String,
    },

    // ----- prediction ---------------------------------------------------------------------
    /// A run directory that does not exist or holds no `run.json`.
    #[error(
        "no run at {path}: {reason}; point it at the output directory of a training run (its \
         `--out`)"
    )]
    NoRun {
        /// The directory, or the `run.json` it lacks.
        path: PathBuf,
        /// What is missing.
        reason: String,
    },
    /// A run whose network cannot be rebuilt from its `run.json`: it records no model
    /// configuration (a network of the caller's own, trained through `run::fit` without
    /// `RunOptions::model`).
    #[error(
        "{path} holds no model configuration, so its network cannot be rebuilt (a network of \
         the caller's own?); build that network and load the checkpoint with \
         `rescom::run::load_checkpoint`"
    )]
    NoModelConfig {
        /// The run's `run.json`.
        path: PathBuf,
    },
    /// A number of top classes that is 0 or above the number of classes.
    #[error("top-k of {top_k} is impossible: it must lie in 1..={num_classes} (the run's classes)")]
    InvalidTopK {
        /// The requested number of classes.
        top_k: usize,
        /// Classes of the run.
        num_classes: usize,
    },

    /// Serialising or parsing JSON failed.
    #[error("json: {0}")]
    Json(#[from] serde_json::Error),
}

impl Error {
    /// Shorthand for [`Error::InvalidConfig`].
    pub(crate) fn config(field: &'static str, reason: impl Into<String>) -> Self {
        Error::InvalidConfig {
            field,
            reason: reason.into(),
        }
    }

    /// Shorthand for [`Error::Io`].
    #[cfg(feature = "data")]
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io {
            path: path.into(),
            source,
        }
    }
}
