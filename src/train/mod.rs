//! Training runs: learning-rate schedules, evaluation metrics, atomic checkpoints and
//! reports.

pub mod checkpoint;
pub mod metrics;
pub mod report;
pub mod schedule;
pub mod trainer;

pub use crate::data::{Batch, EvalData, TrainData};
pub use checkpoint::{Checkpoint, write_atomic};
pub use metrics::{Accuracy, EvalReport, ShotGroup};
pub use report::{EpochRecord, plot_curves, plot_per_class, write_history};
pub use schedule::{EpochLrScheduler, LrSchedule};
pub use trainer::{
    LossSettings, Method, Network, Parts, Progress, Silent, Summary, TrainConfig, Trainer, evaluate,
};
