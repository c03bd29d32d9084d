//! `summary.json`: the figures of a run, from its history.

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::error::Result;
use crate::eval::EvalReport;
use crate::report::history::EpochRecord;
use crate::train::write_atomic;

/// The figures of a run, written as `summary.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    /// Method name (with ablations).
    pub method: String,
    /// Dataset description.
    pub dataset: String,
    /// Epochs trained.
    pub epochs: usize,
    /// The last epoch's evaluation (its fields appear at the top level of `summary.json`:
    /// `top1`, `top5`, `many`, `medium`, `few`, `per_class`, `images`, `calibration`,
    /// `feature_space` and `confusion`).
    #[serde(flatten)]
    pub last: EvalReport,
    /// The epoch (0-based) of the last evaluation.
    #[serde(default)]
    pub last_epoch: usize,
    /// The epoch (0-based) with the best top-1, and its figures.
    pub best_epoch: usize,
    /// The best epoch's evaluation (without its confusion matrix).
    pub best: EvalReport,
    /// Training histogram.
    pub train_counts: Vec<usize>,
    /// Seed.
    pub seed: u64,
}

/// What a summary says about the run besides its history.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunIdentity {
    /// Method name (with ablations).
    pub method: String,
    /// Dataset description.
    pub dataset: String,
    /// Training histogram.
    pub train_counts: Vec<usize>,
    /// Seed.
    pub seed: u64,
}

impl Summary {
    /// The summary of `history`: its last and best (first highest top-1) evaluations;
    /// `None` before the first evaluation.
    pub fn of(identity: &RunIdentity, history: &[EpochRecord]) -> Option<Self> {
        let evaluated: Vec<(usize, &EvalReport)> = history
            .iter()
            .filter_map(|r| r.eval.as_ref().map(|e| (r.epoch, e)))
            .collect();
        let (last_epoch, last) = *evaluated.last()?;
        let (best_epoch, best) = evaluated
            .iter()
            .copied()
            .fold(evaluated[0], |a, b| if b.1.top1 > a.1.top1 { b } else { a });
        let mut best = best.clone();
        best.confusion = None;
        Some(Self {
            method: identity.method.clone(),
            dataset: identity.dataset.clone(),
            epochs: history.len(),
            last: last.clone(),
            last_epoch,
            best_epoch,
            best,
            train_counts: identity.train_counts.clone(),
            seed: identity.seed,
        })
    }

    /// Gives the last evaluation of `history` (records read back from `metrics.jsonl`, which
    /// leaves the confusion matrices out) the confusion matrix that `summary.json` under
    /// `dir` holds for that same evaluation, if it does; otherwise changes nothing.
    pub fn restore_confusion(dir: &Path, history: &mut [EpochRecord]) {
        let Some(record) = history.iter_mut().rev().find(|r| r.eval.is_some()) else {
            return;
        };
        let Ok(bytes) = std::fs::read(dir.join("summary.json")) else {
            return;
        };
        let Ok(mut saved) = serde_json::from_slice::<Summary>(&bytes) else {
            return;
        };
        let confusion = saved.last.confusion.take();
        if saved.last_epoch == record.epoch
            && record.eval.as_ref() == Some(&saved.last)
            && let Some(eval) = &mut record.eval
        {
            eval.confusion = confusion;
        }
    }

    /// Writes the summary as `summary.json` under `dir`, atomically.
    pub fn write(&self, dir: &Path) -> Result<()> {
        write_atomic(
            &dir.join("summary.json"),
            serde_json::to_string_pretty(self)?.as_bytes(),
        )
    }

    /// Prints the summary as a Markdown table on standard output; `fresh`, when given, is an
    /// evaluation of the checkpoint shown first.
    pub fn print_table(&self, fresh: Option<&EvalReport>) {
        let pct = |v: Option<f64>| v.map_or("   -".into(), |v| format!("{:5.2}", 100.0 * v));
        let row = |name: &str, r: &EvalReport| {
            println!(
                "| {name} | {} | {} | {} | {} | {} |",
                pct(Some(r.top1)),
                pct(Some(r.top5)),
                pct(r.many),
                pct(r.medium),
                pct(r.few)
            )
        };
        println!();
        println!(
            "{} on {}, {} epochs",
            self.method, self.dataset, self.epochs
        );
        println!("| evaluation | top-1 | top-5 | many | medium | few |");
        println!("| --- | --- | --- | --- | --- | --- |");
        if let Some(r) = fresh {
            row("checkpoint", r);
        }
        row("last epoch", &self.last);
        row(&format!("best epoch ({})", self.best_epoch + 1), &self.best);
    }
}
