//! Plug-ins for burn-train's Learner: the model's training and inference steps, the run's
//! configuration and recipes, learning-rate schedules as burn-optim schedulers, long-tail
//! metrics, and atomic, validated checkpoints.

mod checkpoint;
mod config;
mod metric;
mod recipe;
mod schedule;
mod step;

pub use checkpoint::{
    AtomicFileCheckpointer, CheckpointDir, KeepLastTwo, Record, SectionFile, with_canonical_ids,
};
pub(crate) use checkpoint::{remove_stale_temporaries, write_atomic};
pub use config::*;
pub use metric::*;
pub use recipe::*;
pub use schedule::*;
pub use step::*;
