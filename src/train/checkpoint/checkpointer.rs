//! The Learner's checkpoint files: a burn-train [`Checkpointer`] that writes atomically, and
//! the checkpoint directory of a run with validated reading for resume.

use std::path::{Path, PathBuf};

use burn::module::Module;
use burn::store::ModuleRecord;
use burn::tensor::Bytes;
use burn::train::checkpoint::{Checkpoint, Checkpointer, CheckpointerError};

use super::atomic::{remove_stale_temporaries, write_atomic};
use super::sections::SectionFile;
use crate::error::{Error, Result};

/// The three records of a Learner checkpoint, each a file `NAME-EPOCH.bpk`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Record {
    /// The model (network, objective and, for ResCom, its queue): `model-E.bpk`.
    Model,
    /// The optimiser's state: `optim-E.bpk`.
    Optimizer,
    /// The learning-rate scheduler's position: `scheduler-E.bpk`.
    Scheduler,
}

impl Record {
    /// All three, in the order burn-train saves them.
    pub const ALL: [Record; 3] = [Record::Model, Record::Optimizer, Record::Scheduler];

    /// The record's file name stem.
    pub fn name(self) -> &'static str {
        match self {
            Record::Model => "model",
            Record::Optimizer => "optim",
            Record::Scheduler => "scheduler",
        }
    }
}

/// The checkpoint directory of a run: `model-E.bpk`, `optim-E.bpk` and `scheduler-E.bpk` for
/// each saved epoch `E` (1-based, as burn-train counts).
#[derive(Debug, Clone)]
pub struct CheckpointDir {
    dir: PathBuf,
}

impl CheckpointDir {
    /// The checkpoints under `dir`.
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self { dir: dir.into() }
    }

    /// The directory.
    pub fn path(&self) -> &Path {
        &self.dir
    }

    /// The file of `record` at `epoch`.
    pub fn file(&self, record: Record, epoch: usize) -> PathBuf {
        self.dir.join(format!("{}-{epoch}.bpk", record.name()))
    }

    /// A checkpointer of `record` in this directory. The model's record is written with
    /// canonical parameter ids (see [`AtomicFileCheckpointer`]).
    pub fn checkpointer(&self, record: Record) -> AtomicFileCheckpointer {
        AtomicFileCheckpointer {
            dir: self.dir.clone(),
            record,
        }
    }

    /// The record files in the directory, as `(record, epoch, path)`.
    fn records(&self) -> Vec<(Record, usize, PathBuf)> {
        let Ok(entries) = std::fs::read_dir(&self.dir) else {
            return Vec::new();
        };
        entries
            .filter_map(|e| e.ok())
            .filter_map(|e| {
                let name = e.file_name().to_string_lossy().into_owned();
                let stem = name.strip_suffix(".bpk")?;
                Record::ALL.iter().find_map(|&record| {
                    let epoch = stem
                        .strip_prefix(record.name())?
                        .strip_prefix('-')?
                        .parse()
                        .ok()?;
                    Some((record, epoch, e.path()))
                })
            })
            .collect()
    }

    /// The epochs with at least one record file, complete or not, in increasing order.
    pub fn epochs(&self) -> Vec<usize> {
        let mut epochs: Vec<usize> = self.records().into_iter().map(|(_, e, _)| e).collect();
        epochs.sort_unstable();
        epochs.dedup();
        epochs
    }

    /// The epochs whose three records are all present, in increasing order.
    pub fn complete_epochs(&self) -> Vec<usize> {
        self.epochs()
            .into_iter()
            .filter(|&epoch| Record::ALL.iter().all(|&r| self.file(r, epoch).is_file()))
            .collect()
    }

    /// Removes every record file of an epoch not in `keep`, and the temporary files of writes
    /// that a killed process left behind .
    ///
    /// A run resumed from epoch `E` keeps `E - 1` and `E`, as [`KeepLastTwo`](super::KeepLastTwo) would have:
    /// a process killed while saving epoch `E + 1` leaves some of its records, and one killed
    /// while deleting epoch `E - 2` leaves the others, which no later deletion would reach.
    ///
    /// # Errors
    /// [`Error::Io`] when a file cannot be removed.
    pub fn retain(&self, keep: &[usize]) -> Result<()> {
        for (_, epoch, path) in self.records() {
            if !keep.contains(&epoch) {
                std::fs::remove_file(&path).map_err(|e| Error::io(&path, e))?;
            }
        }
        remove_stale_temporaries(&self.dir)
    }

    /// The latest epoch with a complete checkpoint.
    ///
    /// # Errors
    /// [`Error::Checkpoint`] when there is none.
    pub fn latest(&self) -> Result<usize> {
        self.complete_epochs()
            .last()
            .copied()
            .ok_or_else(|| Error::Checkpoint {
                path: self.dir.clone(),
                reason: "no complete checkpoint (model, optim and scheduler records of one epoch) \
                     to resume from"
                    .into(),
            })
    }

    /// The module record of `epoch` applied to `module`, checked first (every parameter with
    /// its shape and type, distinct ids, finite values): a damaged or foreign record is an
    /// [`Error::Checkpoint`] naming the file, never a panic of the Learner.
    pub fn load_model<T: Module>(&self, module: T, epoch: usize) -> Result<T> {
        let (path, records) = self.sections(Record::Model, epoch)?;
        records.load_module(Record::Model.name(), module, &path)
    }

    /// Checks the optimiser record of `epoch` against `model`'s parameters (each state
    /// belongs to one of them, with its shape, type and finite values).
    pub fn check_optimizer<T: Module>(
        &self,
        optimizer: burn::optim::ModuleOptimizer,
        model: &T,
        epoch: usize,
    ) -> Result<burn::optim::ModuleOptimizer> {
        let (path, records) = self.sections(Record::Optimizer, epoch)?;
        records.load_optimizer(Record::Optimizer.name(), optimizer, model, &path)
    }

    /// `record` of `epoch` as the single section of a [`SectionFile`], to check it before use.
    fn sections(&self, record: Record, epoch: usize) -> Result<(PathBuf, SectionFile<()>)> {
        let path = self.file(record, epoch);
        let bytes = std::fs::read(&path).map_err(|e| Error::Checkpoint {
            path: path.clone(),
            reason: e.to_string(),
        })?;
        Ok((
            path,
            SectionFile {
                meta: (),
                sections: vec![(record.name().to_string(), bytes)],
            },
        ))
    }

    /// Reads `record` of `epoch`.
    ///
    /// # Errors
    /// [`Error::Checkpoint`] naming the file when it is missing or damaged.
    pub fn read<R: Checkpoint>(&self, record: Record, epoch: usize) -> Result<R> {
        self.checkpointer(record)
            .restore(epoch)
            .map_err(|e| Error::Checkpoint {
                path: self.file(record, epoch),
                reason: e.to_string(),
            })
    }
}

/// A burn-train [`Checkpointer`] that writes each record atomically as `NAME-EPOCH.bpk`
/// (burnpack), and reports every I/O or decoding failure as an error.
///
/// Records are written in a canonical layout, so that the same state gives the same bytes in
/// every process: tensors in name order (Burn lists them in the order of a hash map) and, for
/// the model, each parameter id replaced by the tensor's position in that order, as
/// [`with_canonical_ids`] numbers a model's parameters. (Burn draws ids at random, and a
/// batch-norm statistic keeps a fresh one when a record is loaded.)
#[derive(Debug, Clone)]
pub struct AtomicFileCheckpointer {
    dir: PathBuf,
    record: Record,
}

impl AtomicFileCheckpointer {
    fn path(&self, epoch: usize) -> PathBuf {
        self.dir.join(format!("{}-{epoch}.bpk", self.record.name()))
    }
}

impl<R: Checkpoint> Checkpointer<R> for AtomicFileCheckpointer {
    fn save(&self, epoch: usize, record: R) -> std::result::Result<(), CheckpointerError> {
        let bytes = record
            .checkpoint_into_bytes()
            .map_err(CheckpointerError::Record)?;
        let bytes = canonical(bytes, self.record == Record::Model).map_err(|e| {
            CheckpointerError::IOError(std::io::Error::other(format!(
                "{}: {e}",
                self.path(epoch).display()
            )))
        })?;
        write_atomic(&self.path(epoch), &bytes)
            .map_err(|e| CheckpointerError::IOError(std::io::Error::other(e.to_string())))
    }

    fn delete(&self, epoch: usize) -> std::result::Result<(), CheckpointerError> {
        match std::fs::remove_file(self.path(epoch)) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                Err(CheckpointerError::IOError(e))
            }
            _ => Ok(()),
        }
    }

    fn restore(&self, epoch: usize) -> std::result::Result<R, CheckpointerError> {
        let bytes = std::fs::read(self.path(epoch)).map_err(CheckpointerError::IOError)?;
        R::checkpoint_from_bytes(Bytes::from_bytes_vec(bytes)).map_err(CheckpointerError::Record)
    }
}

/// A burnpack record rewritten with its tensors in name order and, with `ids`, each tensor's
/// parameter id replaced by its position in that order plus one.
fn canonical(bytes: Bytes, ids: bool) -> std::result::Result<Vec<u8>, burn_pack::Error> {
    let reader = burn_pack::Reader::from_bytes(bytes)?;
    let scalars = reader.scalars().clone();
    let metadata = reader.metadata().clone();
    let mut tensors = reader.into_tensors()?;
    tensors.sort_by(|a, b| a.name.cmp(&b.name));
    if ids {
        for (i, tensor) in tensors.iter_mut().enumerate() {
            tensor.param_id = Some(i as u64 + 1);
        }
    }
    let mut writer = burn_pack::Writer::new(tensors);
    for (key, value) in &scalars {
        writer = writer.with_scalar(key, *value);
    }
    for (key, value) in &metadata {
        writer = writer.with_metadata(key, value);
    }
    Ok(writer.into_bytes()?.to_vec())
}

/// `module` with the parameter ids its checkpoints are written with: each parameter numbered
/// by the position of its path among the module's record entries in name order, from 1.
///
/// Burn draws parameter ids at random, and the optimiser files its state under them. A run
/// that starts from a module numbered this way writes the same checkpoint bytes, given the
/// same seed, in every process, whether it ran straight through or was stopped and resumed.
///
/// # Errors
/// [`Error::Checkpoint`] (naming `what`) if the module's record cannot be written or read back.
pub fn with_canonical_ids<T: Module>(module: T, what: &Path) -> Result<T> {
    let bad = |reason: String| Error::Checkpoint {
        path: what.to_path_buf(),
        reason: format!("numbering the parameters: {reason}"),
    };
    let bytes = module
        .clone()
        .into_record()
        .into_bytes()
        .map_err(|e| bad(e.to_string()))?;
    let bytes = canonical(bytes, true).map_err(|e| bad(e.to_string()))?;
    let record =
        ModuleRecord::from_bytes(Bytes::from_bytes_vec(bytes)).map_err(|e| bad(e.to_string()))?;
    module
        .try_load_record(record)
        .map_err(|e| bad(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::optim::lr_scheduler::LrSchedulerRecord;

    #[test]
    fn records_are_written_atomically_and_damage_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let checkpoints = CheckpointDir::new(dir.path().join("checkpoint"));
        let scheduler = LrSchedulerRecord::new().with_scalar("steps_taken", 12u64);
        for record in Record::ALL {
            checkpoints
                .checkpointer(record)
                .save(3, scheduler.clone())
                .unwrap();
        }
        assert_eq!(checkpoints.complete_epochs(), vec![3]);
        assert_eq!(checkpoints.latest().unwrap(), 3);
        let back: LrSchedulerRecord = checkpoints.read(Record::Scheduler, 3).unwrap();
        assert_eq!(back.scalar::<u64>("steps_taken"), Some(12));
        // No temporary file is left behind.
        let names: Vec<_> = std::fs::read_dir(checkpoints.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        assert!(names.iter().all(|n| n.ends_with("-3.bpk")), "{names:?}");

        // A damaged file is an error naming it, never a panic.
        std::fs::write(checkpoints.file(Record::Optimizer, 3), b"not a record").unwrap();
        let err = checkpoints
            .read::<burn::optim::OptimizerRecord>(Record::Optimizer, 3)
            .unwrap_err();
        assert!(err.to_string().contains("optim-3.bpk"), "{err}");
        // An incomplete epoch is not resumable.
        std::fs::remove_file(checkpoints.file(Record::Scheduler, 3)).unwrap();
        assert!(checkpoints.latest().is_err());
        // Deleting a missing file is fine.
        let checkpointer = checkpoints.checkpointer(Record::Scheduler);
        Checkpointer::<LrSchedulerRecord>::delete(&checkpointer, 3).unwrap();
    }

    #[test]
    fn a_failed_write_is_reported_and_keeps_the_old_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("model-1.bpk");
        write_atomic(&path, b"good").unwrap();
        // A directory in the way of the temporary file makes the write fail.
        let tmp = dir
            .path()
            .join(format!(".model-1.bpk.tmp-{}", std::process::id()));
        std::fs::create_dir(&tmp).unwrap();
        assert!(write_atomic(&path, b"new").is_err());
        assert_eq!(std::fs::read(&path).unwrap(), b"good");
    }
}
