//! `run.json`: what defines a run and its data, written when it starts and compared on
//! resume; and the probe of the output directory.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::data::{DatasetSpec, Pipeline};
use crate::error::{Error, Result};
use crate::model::ResComModelConfig;
use crate::train::{TrainConfig, write_atomic};

/// What defines a run and its data, stored as `run.json` and compared on resume; with what
/// rebuilds the run for prediction (the network's configuration, the evaluation pipeline, the
/// class names, where the test split comes from).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct RunState {
    pub(crate) config: TrainConfig,
    pub(crate) batch_size: usize,
    pub(crate) drop_last: bool,
    pub(crate) data_seed: u64,
    /// The network's configuration, when it is one of the crate's (`RunOptions::model`).
    #[serde(default)]
    pub(crate) model: Option<ResComModelConfig>,
    /// The pipeline of the evaluation views.
    pub(crate) eval_pipeline: Pipeline,
    /// The name of each class, by label, when known.
    #[serde(default)]
    pub(crate) class_names: Option<Vec<String>>,
    /// Where the test split comes from, when known.
    #[serde(default)]
    pub(crate) test_split: Option<DatasetSpec>,
}

impl RunState {
    pub(crate) fn path(out: &Path) -> PathBuf {
        out.join("run.json")
    }

    /// The parts of `run.json` that define the run in which `self` and `other` differ, by
    /// their names in the file. Where the test split lives (`test_split`) is not one of them:
    /// data moved elsewhere is still the same run.
    pub(crate) fn differences(&self, other: &Self) -> Vec<&'static str> {
        let mut differ = Vec::new();
        let mut check = |name, same: bool| {
            if !same {
                differ.push(name);
            }
        };
        check("config", self.config == other.config);
        check("batch_size", self.batch_size == other.batch_size);
        check("drop_last", self.drop_last == other.drop_last);
        check("data_seed", self.data_seed == other.data_seed);
        check("model", self.model == other.model);
        check("eval_pipeline", self.eval_pipeline == other.eval_pipeline);
        check("class_names", self.class_names == other.class_names);
        differ
    }

    pub(crate) fn write(&self, out: &Path) -> Result<()> {
        write_atomic(
            &Self::path(out),
            serde_json::to_string_pretty(self)?.as_bytes(),
        )
    }

    pub(crate) fn read(out: &Path) -> Result<Self> {
        let path = Self::path(out);
        let bytes = std::fs::read(&path).map_err(|e| Error::Checkpoint {
            path: path.clone(),
            reason: format!("no run to resume: {e}"),
        })?;
        serde_json::from_slice(&bytes).map_err(|e| Error::Checkpoint {
            path,
            reason: format!("does not parse: {e}"),
        })
    }
}

/// Checks that `out` and its `checkpoint/` directory can be created and written, with a
/// probe file written and removed in each, before anything is trained.
///
/// # Errors
/// [`Error::OutputNotWritable`] naming the directory.
pub(crate) fn ensure_writable(out: &Path) -> Result<()> {
    for dir in [out.to_path_buf(), out.join("checkpoint")] {
        let fail = |source| Error::OutputNotWritable {
            path: dir.clone(),
            source,
        };
        std::fs::create_dir_all(&dir).map_err(fail)?;
        let probe = dir.join(format!(".write-probe-{}", std::process::id()));
        let written = std::fs::write(&probe, b"rescom");
        let _ = std::fs::remove_file(&probe);
        written.map_err(fail)?;
    }
    Ok(())
}
