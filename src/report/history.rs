//! The history of a run: one record per epoch, written as JSON lines and CSV.
//!
//! The files are rewritten atomically from the full history after every epoch, before the
//! epoch's checkpoint, so they are never behind it, also after `--resume`.

use std::fmt::Write as _;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::eval::EvalReport;
use crate::train::{TrainRecord, write_atomic};

/// What one epoch produced.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EpochRecord {
    /// Epoch index (0-based).
    pub epoch: usize,
    /// Learning rate of the epoch.
    pub lr: f64,
    /// The epoch's training (its fields appear at the top level of each line of
    /// `metrics.jsonl`: `loss`, `classification`, `contrastive`, `train_top1`,
    /// `images_per_second`, `seconds`).
    #[serde(flatten)]
    pub train: TrainRecord,
    /// Evaluation on the test set after the epoch, if one was run.
    pub eval: Option<EvalReport>,
}

impl EpochRecord {
    /// A one-line account of the epoch, e.g. `epoch 3: loss 1.2345 (cls 0.9876, con 0.4938),
    /// train top-1 41.2 %, 950 img/s, lr 0.1 | test top-1 52.10 % (many 80.1, medium 40.2,
    /// few 20.3)`.
    pub fn line(&self) -> String {
        let mut line = format!(
            "epoch {}: loss {:.4} (cls {:.4}",
            self.epoch + 1,
            self.train.loss,
            self.train.classification
        );
        if let Some(con) = self.train.contrastive {
            line.push_str(&format!(", con {con:.4}"));
        }
        line.push_str(&format!(
            "), train top-1 {:.1} %, {:.0} img/s, lr {:.4}",
            100.0 * self.train.train_top1,
            self.train.images_per_second,
            self.lr
        ));
        if let Some(eval) = &self.eval {
            let pct = |v: Option<f64>| v.map_or("-".into(), |v| format!("{:.1}", 100.0 * v));
            line.push_str(&format!(
                " | test top-1 {:.2} % (many {}, medium {}, few {})",
                100.0 * eval.top1,
                pct(eval.many),
                pct(eval.medium),
                pct(eval.few)
            ));
        }
        line
    }

    /// The record of epoch `epoch` (0-based) trained at rate `lr`.
    pub fn new(epoch: usize, lr: f64, train: TrainRecord, eval: Option<EvalReport>) -> Self {
        Self {
            epoch,
            lr,
            train,
            eval,
        }
    }
}

/// Writes `metrics.jsonl` and `metrics.csv` under `dir`. The evaluations' confusion matrices
/// are left out (`summary.json` holds the last one).
pub fn write_history(dir: &Path, history: &[EpochRecord]) -> Result<()> {
    let mut jsonl = String::new();
    for record in history {
        if record.eval.as_ref().is_some_and(|e| e.confusion.is_some()) {
            let mut record = record.clone();
            if let Some(eval) = &mut record.eval {
                eval.confusion = None;
            }
            jsonl.push_str(&serde_json::to_string(&record)?);
        } else {
            jsonl.push_str(&serde_json::to_string(record)?);
        }
        jsonl.push('\n');
    }
    write_atomic(&dir.join("metrics.jsonl"), jsonl.as_bytes())?;

    let mut csv = String::from(
        "epoch,lr,loss,classification,contrastive,train_top1,images_per_second,seconds,\
         top1,top5,many,medium,few\n",
    );
    let opt = |v: Option<f64>| v.map(|v| format!("{v}")).unwrap_or_default();
    for r in history {
        let e = r.eval.as_ref();
        let _ = writeln!(
            csv,
            "{},{},{},{},{},{},{},{},{},{},{},{},{}",
            r.epoch,
            r.lr,
            r.train.loss,
            r.train.classification,
            opt(r.train.contrastive),
            r.train.train_top1,
            r.train.images_per_second,
            r.train.seconds,
            opt(e.map(|e| e.top1)),
            opt(e.map(|e| e.top5)),
            opt(e.and_then(|e| e.many)),
            opt(e.and_then(|e| e.medium)),
            opt(e.and_then(|e| e.few))
        );
    }
    write_atomic(&dir.join("metrics.csv"), csv.as_bytes())
}

/// Reads the records written by [`write_history`] (`metrics.jsonl` under `dir`).
///
/// # Errors
/// [`Error::Io`] when the file cannot be read, [`Error::Checkpoint`] naming it when a line
/// does not parse or the epochs are not `0, 1, 2, ...`.
pub fn read_history(dir: &Path) -> Result<Vec<EpochRecord>> {
    let path = dir.join("metrics.jsonl");
    let text = std::fs::read_to_string(&path).map_err(|e| Error::io(&path, e))?;
    let corrupt = |reason: String| Error::Checkpoint {
        path: path.clone(),
        reason,
    };
    let records = text
        .lines()
        .enumerate()
        .map(|(i, line)| {
            serde_json::from_str::<EpochRecord>(line)
                .map_err(|e| corrupt(format!("line {}: {e}", i + 1)))
        })
        .collect::<Result<Vec<_>>>()?;
    if let Some((i, r)) = records.iter().enumerate().find(|(i, r)| r.epoch != *i) {
        return Err(corrupt(format!("line {} holds epoch {}", i + 1, r.epoch)));
    }
    Ok(records)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_epoch_line_states_the_losses_and_the_test_figures() {
        let mut record = EpochRecord {
            epoch: 2,
            lr: 0.1,
            train: TrainRecord {
                loss: 1.25,
                classification: 1.0,
                contrastive: Some(0.5),
                train_top1: 0.412,
                images_per_second: 950.0,
                seconds: 2.0,
            },
            eval: None,
        };
        assert_eq!(
            record.line(),
            "epoch 3: loss 1.2500 (cls 1.0000, con 0.5000), train top-1 41.2 %, 950 img/s, lr 0.1000"
        );
        record.eval = Some(EvalReport {
            top1: 0.521,
            top5: 0.9,
            many: Some(0.801),
            medium: None,
            few: Some(0.203),
            per_class: vec![],
            images: 10,
            calibration: None,
            feature_space: None,
            confusion: None,
        });
        assert!(
            record
                .line()
                .ends_with("| test top-1 52.10 % (many 80.1, medium -, few 20.3)"),
            "{}",
            record.line()
        );
    }
}
