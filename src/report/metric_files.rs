//! burn-train's per-epoch metric logs, with failed writes as errors.

use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::fs::File;
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

/// burn-train's per-epoch metric logs, written so that a failed write stops the run with an
/// error instead of a panic.
///
/// [`MetricFiles`] writes the layout of burn-train's `FileMetricLogger`, so that burn-train's
/// readers (early stopping, the learner summary) and a user's scripts find the same files:
/// `<dir>/<split>/epoch-<n>/<metric name, spaces as underscores>.log`, one serialized entry
/// per line. The difference is what happens when the disk is full or the directory goes
/// away: burn-train's logger panics in a thread of its own and takes the process down, while
/// [`MetricFiles`] keeps the first error, stops the run through the Learner's
/// [`Interrupter`] before the epoch's checkpoint is written, and hands the error to the
/// caller through [`MetricFilesFailure`]. The checkpoints of the completed epochs stay as
/// they were, and `--resume` continues from the last one.
///
/// Lines are buffered and flushed at the end of each split of an epoch, so every log of an
/// epoch is on disk before that epoch's checkpoint; the files are closed when the next epoch
/// starts. The logs of an epoch that did not complete are rewritten from their start when the
/// epoch runs again.
pub struct MetricFiles {
    dir: PathBuf,
    names: HashMap<MetricId, String>,
    /// The logs of the current epoch, by metric name and split.
    open: HashMap<(String, String), OpenLog>,
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
                let file = File::create(&path).map_err(io)?;
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

    /// Flushes every open log.
    fn flush_all(&mut self) -> Result<()> {
        for log in self.open.values_mut() {
            log.writer.flush().map_err(|source| Error::Io {
                path: log.path.clone(),
                source,
            })?;
        }
        Ok(())
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
            let flushed = self.flush_all();
            self.open.clear();
            if let Err(error) = flushed {
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
        if let Err(error) = self.flush_all() {
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
        let _ = self.flush_all();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::train::logger::FileMetricLogger;
    use burn::train::metric::store::NumericMetricUpdate;
    use burn::train::metric::{MetricAttributes, MetricEntry, SerializedEntry};

    const METRICS: [&str; 2] = ["Loss", "Top 1"];

    fn definition(name: &str) -> MetricDefinition {
        MetricDefinition {
            metric_id: MetricId::new(Arc::new(name.to_string())),
            name: Arc::new(name.to_string()),
            description: None,
            attributes: MetricAttributes::None,
        }
    }

    /// One batch's entries: `Loss` numeric, `Top 1` as a plain entry.
    fn update(value: f64, last: bool) -> MetricsUpdate {
        let entry = |name: &str, serialized: String| {
            MetricEntry::new(
                MetricId::new(Arc::new(name.to_string())),
                SerializedEntry::new(serialized.clone(), serialized),
            )
        };
        let loss = if last {
            format!("{value},final")
        } else {
            value.to_string()
        };
        MetricsUpdate::new(
            vec![entry("Top 1", format!("{}", value * 10.0))],
            vec![NumericMetricUpdate::new(entry("Loss", loss), None, None)],
        )
    }

    /// Two epochs of training and evaluation, as burn-train's event store hands them out.
    fn feed(logger: &mut dyn MetricLogger) {
        for name in METRICS {
            logger.log_metric_definition(definition(name));
        }
        for epoch in 1..=2 {
            for (batch, last) in [(0.5, false), (0.25, false), (0.375, true)] {
                logger.log(update(batch * epoch as f64, last), epoch, &Split::Train);
            }
            logger.log_epoch_summary(EpochSummary::new(epoch, Split::Train));
            logger.log(update(0.125, false), epoch, &Split::Valid);
            logger.log_epoch_summary(EpochSummary::new(epoch, Split::Valid));
        }
    }

    /// Every file under `dir`, relative path and bytes, in path order.
    fn files(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
        let mut found = Vec::new();
        let mut stack = vec![dir.to_path_buf()];
        while let Some(at) = stack.pop() {
            for entry in std::fs::read_dir(&at).unwrap() {
                let path = entry.unwrap().path();
                if path.is_dir() {
                    stack.push(path);
                } else {
                    let bytes = std::fs::read(&path).unwrap();
                    found.push((path.strip_prefix(dir).unwrap().to_path_buf(), bytes));
                }
            }
        }
        found.sort();
        found
    }

    #[test]
    fn the_logs_are_burn_trains_files_byte_for_byte() {
        let (ours, theirs) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let mut files_logger = MetricFiles::new(ours.path());
        let mut burn_logger = FileMetricLogger::new(theirs.path());
        feed(&mut files_logger);
        feed(&mut burn_logger);
        // Flushed at the end of each split, before the files are closed.
        let read = |logger: &mut dyn MetricLogger| {
            format!(
                "{:?}",
                logger.read_numeric("Loss", 2, &Split::Train).unwrap()
            )
        };
        let loss = read(&mut files_logger);
        assert_eq!(loss, read(&mut burn_logger));
        assert_eq!(
            loss.matches("Value").count() + loss.matches("Final").count(),
            3,
            "{loss}"
        );
        drop((files_logger, burn_logger));
        let written = files(ours.path());
        assert_eq!(written.len(), 8, "{written:?}");
        assert_eq!(written, files(theirs.path()));
        assert!(
            written[0].0.ends_with("train/epoch-1/Loss.log"),
            "{written:?}"
        );
    }

    #[test]
    fn a_failed_write_stops_the_run_with_an_error_naming_the_file() {
        let full = Path::new("/dev/full");
        if !full.exists() {
            eprintln!("skipped: this system has no /dev/full");
            return;
        }
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("train/epoch-2/Top_1.log");
        std::fs::create_dir_all(log.parent().unwrap()).unwrap();
        std::os::unix::fs::symlink(full, &log).unwrap();
        let interrupter = Interrupter::new();
        let mut logger = MetricFiles::new(dir.path()).with_interrupter(interrupter.clone());
        let failure = logger.failure();
        feed(&mut logger);
        assert!(interrupter.should_stop());
        let error = failure.take().expect("the failed write is kept");
        assert!(matches!(error, Error::Training { .. }), "{error}");
        assert!(error.to_string().contains("Top_1.log"), "{error}");
        assert!(error.to_string().contains("No space left"), "{error}");
        // Epoch 1 is whole; a failed logger answers reads with nothing, never an error.
        assert_eq!(
            std::fs::read_to_string(dir.path().join("train/epoch-1/Top_1.log")).unwrap(),
            "5\n2.5\n3.75\n"
        );
        assert!(
            logger
                .read_numeric("Loss", 1, &Split::Train)
                .unwrap()
                .is_empty()
        );
    }
}
