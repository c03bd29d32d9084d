//! Plug-ins for burn-train's Learner: the model's training and inference steps, the run's
//! configuration, learning-rate schedules as burn-optim schedulers, long-tail metrics, and
//! atomic, validated checkpoints.

pub mod checkpoint;
pub mod checkpointer;
pub mod config;
pub mod learner_metrics;
pub mod recipe;
pub mod schedule;
pub mod step;

pub use checkpoint::{
    Checkpoint, SLOW_WRITES_ENV, is_stale_temporary, remove_stale_temporaries, write_atomic,
};
pub use checkpointer::{AtomicFileCheckpointer, CheckpointDir, KeepLastTwo, with_canonical_ids};
pub use config::{LossSettings, Method, Parts, TrainConfig};
pub use learner_metrics::{
    AccuracyFigure, ClassAccuracyMetric, EVAL_REPORT, EvalReportMetric, LatestReport, LossTerm,
    LossTermMetric, TRAIN_RECORD, TrainRecord, TrainRecordMetric,
};
pub use recipe::{INATURALIST_MEAN, INATURALIST_STD, Recipe, ScheduleKind};
pub use schedule::{EpochLrScheduler, LrSchedule};
pub use step::{
    EvalStepOutput, LongTailModel, Objective, ResComNetwork, StepChecks, TrainStepOutput,
};
