//! Checkpoints of the Learner, in burn-train's rooms: atomic files, the checkpointer that
//! writes the Learner's records with them ([`AtomicFileCheckpointer`]), the checkpoint
//! directory of a run with validated reading for resume ([`CheckpointDir`]), the strategy of
//! what to keep ([`KeepLastTwo`]), and single-file records with named sections
//! ([`SectionFile`]).
//!
//! burn-train saves a checkpoint as three records (model, optimiser, learning-rate scheduler)
//! through three checkpointers. Its file checkpointer writes in place and its loader panics on
//! a damaged file, so the bundled runs plug in [`AtomicFileCheckpointer`] (atomic writes, every
//! failure reported as an error, which stops the run) and validate a checkpoint before handing
//! it to the Learner ([`CheckpointDir::latest`]). [`KeepLastTwo`] saves every epoch and deletes
//! the one before the previous, so the last complete checkpoint survives a crash in the middle
//! of the next one.

mod atomic;
mod checkpointer;
mod keep_last_two;
mod sections;

pub(crate) use atomic::*;
pub use checkpointer::*;
pub use keep_last_two::*;
pub use sections::*;
