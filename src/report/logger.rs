//! The report plug-in of a run.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use burn::train::Interrupter;
use burn::train::logger::MetricLogger;
use burn::train::metric::store::{EpochSummary, MetricsUpdate, Split};
use burn::train::metric::{MetricDefinition, MetricId, NumericEntry};

use crate::error::{Error, Result};
use crate::eval::EvalReport;
use crate::report::history::{EpochRecord, write_history};
use crate::report::summary::{RunIdentity, Summary};
use crate::train::{EVAL_REPORT, LrSchedule, TRAIN_RECORD, TrainRecord};

#[derive(Debug, Default)]
struct Shared {
    history: Vec<EpochRecord>,
    error: Option<Error>,
}

/// The history a [`RunReport`] builds, readable while and after the run.
#[derive(Debug, Clone, Default)]
pub struct RunHistory {
    shared: Arc<Mutex<Shared>>,
}

impl RunHistory {
    fn lock(&self) -> std::sync::MutexGuard<'_, Shared> {
        self.shared.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The records of the completed epochs.
    pub fn records(&self) -> Vec<EpochRecord> {
        self.lock().history.clone()
    }

    /// The first error met while writing the reports, if any (it also stopped the run).
    pub fn take_error(&self) -> Option<Error> {
        self.lock().error.take()
    }
}

/// The report plug-in of a run: a burn-train [`MetricLogger`] that turns each epoch's final
/// records into the run's files.
///
/// At the end of every epoch burn-train computes its metrics and hands the final entries to
/// the registered loggers. [`RunReport`] reads the epoch's
/// [`TrainRecordMetric`](crate::train::TrainRecordMetric) and
/// [`EvalReportMetric`](crate::train::EvalReportMetric) entries, appends an [`EpochRecord`]
/// to the history and rewrites, atomically: `metrics.jsonl`, `metrics.csv`, `summary.json`
/// (once the run has an evaluation) and, with the feature `report`, the figures
/// (`RUN_FIGURES`: `curves.svg` every epoch, the others from the last evaluation) and, after
/// each evaluation, the run's page `report.html` (`run_page`). With the
/// [`KeepLastTwo`](crate::train::KeepLastTwo) strategy these files are written before the
/// epoch's checkpoint.
pub struct RunReport {
    dir: PathBuf,
    schedule: LrSchedule,
    identity: RunIdentity,
    names: HashMap<MetricId, String>,
    train: HashMap<usize, TrainRecord>,
    eval: HashMap<usize, EvalReport>,
    history: RunHistory,
    interrupter: Option<Interrupter>,
    epoch_lines: bool,
}

impl RunReport {
    /// A report into `dir` for a run with learning-rate `schedule`, continuing `history` (the
    /// records of the epochs already done, empty for a new run).
    pub fn new(
        dir: &Path,
        schedule: LrSchedule,
        identity: RunIdentity,
        history: Vec<EpochRecord>,
    ) -> Self {
        let shared = RunHistory::default();
        shared.lock().history = history;
        Self {
            dir: dir.to_path_buf(),
            schedule,
            identity,
            names: HashMap::new(),
            train: HashMap::new(),
            eval: HashMap::new(),
            history: shared,
            interrupter: None,
            epoch_lines: false,
        }
    }

    /// Prints one line per finished epoch (losses, training accuracy, throughput and, after an
    /// evaluation, test accuracy by shot group) on standard error: the figures burn-train's
    /// plain renderer does not show.
    pub fn with_epoch_lines(mut self, on: bool) -> Self {
        self.epoch_lines = on;
        self
    }

    /// Stops the run through `interrupter` when a report cannot be written.
    pub fn with_interrupter(mut self, interrupter: Interrupter) -> Self {
        self.interrupter = Some(interrupter);
        self
    }

    /// A handle on the history, to read once the run is over.
    pub fn history(&self) -> RunHistory {
        self.history.clone()
    }

    /// Appends epoch `epoch` (1-based, as burn-train counts) and rewrites the files.
    fn finish_epoch(&mut self, epoch: usize) -> Result<()> {
        let Some(train) = self.train.remove(&epoch) else {
            // Training of the epoch did not complete: nothing to record.
            return Ok(());
        };
        let eval = self.eval.remove(&epoch);
        let index = epoch.saturating_sub(1);
        let record = EpochRecord::new(index, self.schedule.lr(index), train, eval);
        let history = {
            let mut shared = self.history.lock();
            shared.history.truncate(index);
            if record.eval.is_some() {
                // Only the last evaluation keeps its confusion matrix.
                for eval in shared.history.iter_mut().filter_map(|r| r.eval.as_mut()) {
                    eval.confusion = None;
                }
            }
            shared.history.push(record);
            shared.history.clone()
        };
        write_history(&self.dir, &history)?;
        #[cfg(feature = "report")]
        super::plots::write_plots(&self.dir, &self.identity, &history)?;
        if let Some(summary) = Summary::of(&self.identity, &history) {
            summary.write(&self.dir)?;
            #[cfg(feature = "report")]
            if history.last().is_some_and(|r| r.eval.is_some()) {
                super::html::write_run_page(&self.dir, &summary, &history)?;
            }
        }
        if self.epoch_lines
            && let Some(record) = history.last()
        {
            eprintln!("{}", record.line());
        }
        Ok(())
    }
}

impl MetricLogger for RunReport {
    fn log(&mut self, update: MetricsUpdate, epoch: usize, split: &Split) {
        for entry in &update.entries {
            let serialized = &entry.serialized_entry.serialized;
            if !serialized.starts_with('{') {
                continue;
            }
            match (self.names.get(&entry.metric_id).map(String::as_str), split) {
                (Some(TRAIN_RECORD), Split::Train) => {
                    if let Ok(record) = serde_json::from_str::<TrainRecord>(serialized) {
                        self.train.insert(epoch, record);
                    }
                }
                (Some(EVAL_REPORT), Split::Valid) => {
                    if let Ok(report) = serde_json::from_str::<EvalReport>(serialized)
                        && report.images > 0
                    {
                        self.eval.insert(epoch, report);
                    }
                }
                _ => {}
            }
        }
    }

    fn read_numeric(
        &mut self,
        _name: &str,
        _epoch: usize,
        _split: &Split,
    ) -> std::result::Result<Vec<NumericEntry>, String> {
        Err("the run report keeps records, not metric values".into())
    }

    fn log_metric_definition(&mut self, definition: MetricDefinition) {
        self.names
            .insert(definition.metric_id.clone(), definition.name.to_string());
    }

    fn log_epoch_summary(&mut self, summary: EpochSummary) {
        if summary.split != Split::Valid {
            return;
        }
        if let Err(error) = self.finish_epoch(summary.epoch_number) {
            let message = format!("cannot write the run's reports: {error}");
            if let Some(interrupter) = &self.interrupter {
                interrupter.stop(Some(&message));
            }
            self.history.lock().error.get_or_insert(error);
        }
    }
}
