//! The files a run writes from burn-train's metrics: the per-epoch history (`metrics.jsonl`,
//! `metrics.csv`), `summary.json`, SVG plots (feature `report`), burn-train's metric logs, and the renderer of a
//! run without a terminal. [`RunReport`] is the burn-train logger that writes them at the end
//! of every epoch.

mod history;
mod logger;
mod metric_files;
#[cfg(feature = "report")]
mod plots;
mod renderer;
mod summary;

pub use history::*;
pub use logger::*;
pub use metric_files::*;
#[cfg(feature = "report")]
#[cfg_attr(docsrs, doc(cfg(feature = "report")))]
pub use plots::*;
pub use renderer::*;
pub use summary::*;
