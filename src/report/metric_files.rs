//! burn-train's per-epoch metric logs, written so that a failed write stops the run with an
//! error instead of a panic.
//!
//! [`MetricFiles`] writes the layout of burn-train's `FileMetricLogger`, so that burn-train's
//! readers (early stopping, the learner summary) and a user's scripts find the same files:
//! `<dir>/<split>/epoch-<n>/<metric name, spaces as underscores>.log`, one serialized entry
//! per line. The difference is what happens when the disk is full or the directory goes
//! away: burn-train's logger panics in a thread of its own and takes the process down, while
//! [`MetricFiles`] keeps the first error, stops the run through the Learner's
//! [`Interrupter`] before the epoch's checkpoint is written, and hands the error to the
//! caller through [`MetricFilesFailure`]. The checkpoints of the completed epochs stay as
//! they were, and `--resume` continues from the last one.
//!
//! Lines are buffered and flushed at the end of each split of an epoch, so every log of an
//! epoch is on disk before that epoch's checkpoint. The logs of an epoch that did not
//! complete are rewritten from their start when the epoch runs again.

use std::collections::hash_map::Entry;
use std::collections::{HashMap, HashSet};
use std::fs::{File, OpenOptions};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use burn::train::Interrupter;
use burn::train::logger::MetricLogger;
use burn::train::metric::store::{EpochSummary, MetricsUpdate, Split};
use burn::train::metric::{MetricDefinition, MetricId, NumericEntry};

use crate::error::{Error, Result};

/// The first write failure of a [`MetricFiles`], readable once the run is over.
#[derive(Debug, Clone, Default)]
pub struct MetricFilesFailure {
    error: Arc<Mutex<Option<Error>>>,
}

impl MetricFilesFailure {
    fn lock(&self) -> std::sync::MutexGuard<'_, Option<Error>> {
        self.error.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The first error met while writing the logs, if any (it also stopped the run).
    pub fn take(&self) -> Option<Error> {
        self.lock().take()
    }
}

/// An open log file of the current epoch.
struct OpenLog {
    path: PathBuf,
    writer: BufWriter<File>,
}

/// Writes burn-train's metric logs (see the [module docs](self)).
pub struct MetricFiles {
    dir: PathBuf,
    names: HashMap<MetricId, String>,
    open: HashMap<(String, String), OpenLog>,
    /// Files started in the current epoch: opened again, they are appended to.
    started: HashSet<PathBuf>,
    epoch: Option<usize>,
    failure: MetricFilesFailure,
    failed: bool,
    interrupter: Option<Interrupter>,
}

impl MetricFiles {
    /// Logs into `dir`, the run's output directory.
    pub fn new(dir: &Path) -> Self {
        Self {
            dir: dir.to_path_buf(),
            names: HashMap::new(),
            open: HashMap::new(),
            started: HashSet::new(),
            epoch: None,
            failure: MetricFilesFailure::default(),
            failed: false,
            interrupter: None,
        }
    }

    /// Stops the run through `interrupter` when a log cannot be written.
    pub fn with_interrupter(mut self, interrupter: Interrupter) -> Self {
        self.interrupter = Some(interrupter);
        self
    }

    /// A handle on the first write failure, to read once the run is over.
    pub fn failure(&self) -> MetricFilesFailure {
        self.failure.clone()
    }

    fn write(&mut self, name: &str, line: &str, epoch: usize, split: &Split) -> Result<()> {
        let log = match self.open.entry((name.to_string(), split.to_string())) {
            Entry::Occupied(open) => open.into_mut(),
            Entry::Vacant(vacant) => {
                let path = log_path(&self.dir, name, epoch, split);
                let io = |source| Error::Io {
                    path: path.clone(),
                    source,
                };
                if let Some(parent) = path.parent() {
                    std::fs::create_dir_all(parent).map_err(io)?;
                }
                let append = !self.started.insert(path.clone());
                let file = OpenOptions::new()
                    .write(true)
                    .create(true)
                    .append(append)
                    .truncate(!append)
                    .open(&path)
                    .map_err(io)?;
                vacant.insert(OpenLog {
                    path,
                    writer: BufWriter::new(file),
                })
            }
        };
        writeln!(log.writer, "{line}").map_err(|source| Error::Io {
            path: log.path.clone(),
            source,
        })
    }

    /// Flushes and closes every open log.
    fn close_all(&mut self) -> Result<()> {
        let mut first = Ok(());
        for (_, mut log) in self.open.drain() {
            if let Err(source) = log.writer.flush()
                && first.is_ok()
            {
                first = Err(Error::Io {
                    path: log.path,
                    source,
                });
            }
        }
        first
    }

    /// Keeps the first error and stops the run; later entries are dropped.
    fn fail(&mut self, error: Error) {
        self.failed = true;
        self.open.clear();
        let reason = format!("cannot write a metric log: {error}");
        if let Some(interrupter) = &self.interrupter {
            interrupter.stop(Some(&reason));
        }
        self.failure
            .lock()
            .get_or_insert(Error::Training { reason });
    }
}

impl MetricLogger for MetricFiles {
    fn log(&mut self, update: MetricsUpdate, epoch: usize, split: &Split) {
        if self.failed {
            return;
        }
        if self.epoch != Some(epoch) {
            self.epoch = Some(epoch);
            self.started.clear();
            if let Err(error) = self.close_all() {
                return self.fail(error);
            }
        }
        let entries = update
            .entries
            .iter()
            .chain(update.entries_numeric.iter().map(|numeric| &numeric.entry));
        for entry in entries {
            if entry.serialized_entry.is_not_available() {
                continue;
            }
            let Some(name) = self.names.get(&entry.metric_id).cloned() else {
                continue;
            };
            if let Err(error) = self.write(&name, &entry.serialized_entry.serialized, epoch, split)
            {
                return self.fail(error);
            }
        }
    }

    /// The entries of a metric's log. Never an error: burn-train panics on one, so a log
    /// that cannot be read, a line that cannot be parsed, or a failed run reads as nothing.
    fn read_numeric(
        &mut self,
        name: &str,
        epoch: usize,
        split: &Split,
    ) -> std::result::Result<Vec<NumericEntry>, String> {
        if self.failed {
            return Ok(Vec::new());
        }
        if let Some(log) = self.open.get_mut(&(name.to_string(), split.to_string()))
            && let Err(source) = log.writer.flush()
        {
            let path = log.path.clone();
            self.fail(Error::Io { path, source });
            return Ok(Vec::new());
        }
        let text =
            std::fs::read_to_string(log_path(&self.dir, name, epoch, split)).unwrap_or_default();
        Ok(text
            .lines()
            .filter_map(|line| NumericEntry::deserialize(line).ok())
            .collect())
    }

    fn log_metric_definition(&mut self, definition: MetricDefinition) {
        self.names
            .insert(definition.metric_id.clone(), definition.name.to_string());
    }

    fn log_epoch_summary(&mut self, _summary: EpochSummary) {
        if self.failed {
            return;
        }
        if let Err(error) = self.close_all() {
            self.fail(error);
        }
    }
}

/// The log of metric `name` for `split` in `epoch` under `dir` (burn-train's layout).
fn log_path(dir: &Path, name: &str, epoch: usize, split: &Split) -> PathBuf {
    let split_dir = match split {
        Split::Test(Some(tag)) => dir
            .join(split.to_string())
            .join(tag.trim().replace(' ', "-").to_lowercase()),
        other => dir.join(other.to_string()),
    };
    split_dir
        .join(format!("epoch-{epoch}"))
        .join(format!("{}.log", name.replace(' ', "_")))
}

impl Drop for MetricFiles {
    fn drop(&mut self) {
        // What a run stopped mid-epoch logged; its failure, if any, no longer matters.
        let _ = self.close_all();
    }
}
