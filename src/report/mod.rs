//! The files a run writes from burn-train's metrics: the per-epoch history (`metrics.jsonl`,
//! `metrics.csv`), `summary.json`, burn-train's metric logs, and the renderer of a run
//! without a terminal. [`RunReport`] is the burn-train logger that writes them at the end of
//! every epoch.
//!
//! With the feature `report`: the run's SVG figures and its self-contained page
//! `report.html` (`run_page`), and `Comparison` of runs over seeds (mean and sample
//! standard deviation per configuration, paired differences per seed, a page with overlaid
//! curves).

#[cfg(feature = "report")]
mod compare;
mod history;
#[cfg(feature = "report")]
mod html;
mod logger;
mod metric_files;
#[cfg(feature = "report")]
mod plots;
mod renderer;
mod summary;

#[cfg(feature = "report")]
#[cfg_attr(docsrs, doc(cfg(feature = "report")))]
pub use compare::*;
pub use history::*;
#[cfg(feature = "report")]
#[cfg_attr(docsrs, doc(cfg(feature = "report")))]
pub use html::*;
pub use logger::*;
pub use metric_files::*;
#[cfg(feature = "report")]
#[cfg_attr(docsrs, doc(cfg(feature = "report")))]
pub use plots::*;
pub use renderer::*;
pub use summary::*;
