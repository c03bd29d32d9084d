//! A bundled long-tailed run on burn-train's Learner: the crate's plug-ins put together.
//!
//! [`fit`] trains a [`ResComNetwork`](crate::train::ResComNetwork) with the method of a [`TrainConfig`](crate::train::TrainConfig) through
//! [`SupervisedTraining`](burn::train::SupervisedTraining): the Learner's loop, its strategies for one or several devices, its
//! metrics, renderers (the dashboard on a terminal, plain lines otherwise) and checkpoints.
//! The crate adds the deterministic loaders, the epoch schedule, the long-tail metrics, atomic
//! checkpoints with validation on resume, and the reports ([`RunReport`](crate::report::RunReport)).
//!
//! The output directory holds `run.json` (what defines the run, compared on resume),
//! `checkpoint/` (the Learner's records of the last two epochs), `metrics.jsonl`,
//! `metrics.csv`, `summary.json`, the metric logs `train/`,
//! `valid/` in burn-train's layout ([`MetricFiles`](crate::report::MetricFiles)), and burn-train's `experiment.log`
//! where [`RunOptions::experiment_log`] asks for it;
//! with the feature `report` also the figures (`curves.svg`, `per_class.svg`,
//! `reliability.svg`, `confusion.svg`, `similarity.svg`) and the run's page `report.html`.
//!
//! The output directory is probed before anything is trained: one that cannot be written is
//! an [`Error::OutputNotWritable`](crate::Error::OutputNotWritable). A write that fails during the run (a full disk) stops it
//! with an [`Error::Training`](crate::Error::Training) naming the file, before the epoch's checkpoint. Checkpoint
//! records are the same bytes in every process for the same seed (see
//! [`AtomicFileCheckpointer`](crate::train::AtomicFileCheckpointer)).
//!
//! A run stopped at any moment ([`RunOptions::stop_after`], a crash, a kill, even inside a
//! write) continues with [`RunOptions::resume`] from its last complete checkpoint exactly as
//! if it had not stopped: model, batch-norm statistics and the ResCom queue (the model's
//! record), optimiser state, the schedule's position, and the data order and augmentations
//! (pure functions of the seed and the epoch) are restored. What a killed process leaves
//! behind, records of other epochs than the two kept and temporary files, is removed; a run
//! killed before its first complete checkpoint starts again from its `run.json`.
//!
//! A run whose network is the crate's [`ResComModel`](crate::model::ResComModel), with its
//! configuration given as [`RunOptions::model`], is rebuilt from its directory by
//! [`Predictor`], which classifies images and image files as the run's evaluation prepares
//! them; `run.json` also records the evaluation pipeline, the class names and where the test
//! split comes from ([`RunOptions::class_names`], [`RunOptions::test_split`]).

mod evaluate;
mod fit;
mod options;
mod predict;
mod state;

pub use evaluate::*;
pub use fit::*;
pub use options::*;
pub use predict::*;
