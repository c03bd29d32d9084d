//! What the Learner keeps: the last two epochs' checkpoints.

use burn::train::Interrupter;
use burn::train::checkpoint::{CheckpointingAction, CheckpointingStrategy};
use burn::train::metric::store::{Aggregate, EventStoreClient, Split};

/// Saves a checkpoint after every epoch and deletes the one two epochs back, so that the
/// previous complete checkpoint exists while the next one is written.
///
/// Before saving it waits for the run's metric loggers to have handled the epoch (one query
/// to the event store, which answers in order), so the reports written by a logger are never
/// behind the checkpoint. With [`with_interrupter`](Self::with_interrupter) it then saves
/// nothing if the run has been stopped meanwhile: a logger that failed to write the epoch's
/// reports or logs (a full disk) keeps that epoch out of the checkpoints.
#[derive(Clone, Default)]
pub struct KeepLastTwo {
    interrupter: Option<Interrupter>,
}

impl KeepLastTwo {
    /// Saves nothing once `interrupter` (the Learner's) has stopped the run.
    pub fn with_interrupter(mut self, interrupter: Interrupter) -> Self {
        self.interrupter = Some(interrupter);
        self
    }
}

impl std::fmt::Debug for KeepLastTwo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeepLastTwo")
            .field("interrupter", &self.interrupter.is_some())
            .finish()
    }
}

impl CheckpointingStrategy for KeepLastTwo {
    fn checkpointing(
        &mut self,
        epoch: usize,
        store: &EventStoreClient,
    ) -> Vec<CheckpointingAction> {
        // The answer is irrelevant: the query returns once every earlier event is handled.
        let _ = store.find_metric("Loss", epoch, Aggregate::Mean, &Split::Train);
        if self
            .interrupter
            .as_ref()
            .is_some_and(Interrupter::should_stop)
        {
            return Vec::new();
        }
        let mut actions = vec![CheckpointingAction::Save];
        if epoch > 2 {
            actions.push(CheckpointingAction::Delete(epoch - 2));
        }
        actions
    }
}
