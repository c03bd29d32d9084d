//! Run reports and the bundled runs: per-epoch metrics files, `summary.json`, SVG plots, the
//! report plug-in that writes them from burn-train's metrics, and [`run::fit`], which puts
//! the crate's plug-ins on burn-train's Learner.

pub mod history;
pub mod logger;
pub mod metric_files;
pub mod plots;
pub mod renderer;
pub mod run;
pub mod summary;

pub use history::{EpochRecord, read_history, write_history};
pub use logger::{RunHistory, RunReport};
pub use metric_files::{MetricFiles, MetricFilesFailure};
pub use plots::{plot_curves, plot_per_class};
pub use renderer::SilentRenderer;
pub use run::{
    Devices, RunData, RunOptions, RunOutcome, evaluate_checkpoint, fit, load_checkpoint,
};
pub use summary::{RunIdentity, Summary};
