//! Comparing runs: groups of runs with the same configuration over seeds, their mean and
//! spread, paired differences between groups on shared seeds, and a page with overlaid
//! curves.

mod naming;
mod page;
mod stats;
mod tables;
#[cfg(test)]
mod tests;

pub use stats::*;

use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::error::{Error, Result};
use crate::report::history::{EpochRecord, read_history};
use crate::report::summary::Summary;
use crate::stats::ShotGroup;

/// The files of one finished or running run, as a comparison reads them.
#[derive(Debug, Clone)]
pub struct RunFiles {
    /// The run's directory.
    pub dir: PathBuf,
    /// `run.json`, as written (read generically, whatever fields it has).
    pub run: Value,
    /// `summary.json`.
    pub summary: Summary,
    /// `metrics.jsonl`.
    pub history: Vec<EpochRecord>,
}

/// `path` read, or [`Error::Io`] naming it.
fn read_file(path: &Path) -> Result<Vec<u8>> {
    std::fs::read(path).map_err(|e| Error::io(path, e))
}

/// [`Error::CorruptData`] naming `path`.
fn damaged(path: &Path, reason: impl std::fmt::Display) -> Error {
    Error::CorruptData {
        path: path.to_path_buf(),
        reason: reason.to_string(),
    }
}

impl RunFiles {
    /// Reads `run.json`, `summary.json` and `metrics.jsonl` under `dir`.
    ///
    /// # Errors
    /// [`Error::Io`] naming the file that is missing or unreadable; [`Error::CorruptData`]
    /// naming the file that does not parse (`run.json` must hold a `config` object).
    pub fn read(dir: &Path) -> Result<Self> {
        let path = dir.join("summary.json");
        let summary: Summary =
            serde_json::from_slice(&read_file(&path)?).map_err(|e| damaged(&path, e))?;
        let path = dir.join("run.json");
        let run: Value =
            serde_json::from_slice(&read_file(&path)?).map_err(|e| damaged(&path, e))?;
        if !run.get("config").is_some_and(Value::is_object) {
            return Err(damaged(&path, "it holds no `config` object"));
        }
        let history = read_history(dir).map_err(|e| match e {
            Error::Checkpoint { path, reason } => Error::CorruptData { path, reason },
            e => e,
        })?;
        Ok(Self {
            dir: dir.to_path_buf(),
            run,
            summary,
            history,
        })
    }

    /// The run's seed.
    pub fn seed(&self) -> u64 {
        self.summary.seed
    }

    /// What defines the run but its seed and where its data lives: `run.json` without
    /// `config.seed` and `data_seed`, and with only the `kind` and `split` of
    /// `test_split.source` (not the directories and files it names). Runs with equal
    /// configurations form a [`RunGroup`]; another dataset, epoch budget, method, network or
    /// hyper-parameter makes another group.
    pub fn configuration(&self) -> Value {
        let mut run = self.run.clone();
        if let Some(map) = run.as_object_mut() {
            map.remove("data_seed");
            if let Some(config) = map.get_mut("config").and_then(Value::as_object_mut) {
                config.remove("seed");
            }
            if let Some(source) = map
                .get_mut("test_split")
                .and_then(|split| split.get_mut("source"))
                .and_then(Value::as_object_mut)
            {
                source.retain(|key, _| key == "kind" || key == "split");
            }
        }
        run
    }

    /// The epochs the run was set to train (`config.epochs` of `run.json`).
    pub fn planned_epochs(&self) -> Option<u64> {
        self.run.pointer("/config/epochs").and_then(Value::as_u64)
    }
}

/// The runs of one configuration, over seeds.
#[derive(Debug, Clone)]
pub struct RunGroup {
    /// A readable name, unique in its [`Comparison`]: the method (from the summaries), and,
    /// where several groups have that method, what sets this one apart (e.g.
    /// `rescom, contrast_weight 1.0` or `rescom, 200 epochs, constant lr`).
    pub name: String,
    /// The method, as the summaries name it (with ablations, e.g. `rescom-no-queue`).
    pub method: String,
    /// The configuration the runs share ([`RunFiles::configuration`]).
    pub configuration: Value,
    /// The runs, by seed.
    pub runs: Vec<RunFiles>,
}

impl RunGroup {
    /// The seeds of the runs, ascending.
    pub fn seeds(&self) -> Vec<u64> {
        self.runs.iter().map(RunFiles::seed).collect()
    }

    /// The mean and sample standard deviation of `metric` over the runs that have it.
    pub fn stat(&self, metric: Metric) -> Option<MeanSd> {
        let values: Vec<f64> = self
            .runs
            .iter()
            .filter_map(|r| metric.of(&r.summary))
            .collect();
        MeanSd::of(&values)
    }

    /// The mean and sample standard deviation of `metric` of shot group `shots` over the
    /// runs that have it.
    pub fn shot_stat(&self, metric: ShotMetric, shots: ShotGroup) -> Option<MeanSd> {
        let values: Vec<f64> = self
            .runs
            .iter()
            .filter_map(|r| metric.of(&r.summary, shots))
            .collect();
        MeanSd::of(&values)
    }

    /// The dataset, as the summaries describe it.
    pub fn dataset(&self) -> &str {
        self.runs.first().map_or("", |r| r.summary.dataset.as_str())
    }

    /// The epochs the runs trained: `20`, or `12-20` when they are not all as far.
    pub fn epochs(&self) -> String {
        let done = self.runs.iter().map(|r| r.summary.epochs);
        let (min, max) = (done.clone().min().unwrap_or(0), done.max().unwrap_or(0));
        if min == max {
            min.to_string()
        } else {
            format!("{min}-{max}")
        }
    }

    /// Mean test top-1 against the epoch: for each epoch (1-based) at which a run evaluated,
    /// the mean over the runs that did.
    pub fn top1_curve(&self) -> Vec<(f64, f64)> {
        let mut sums: std::collections::BTreeMap<usize, (f64, usize)> = Default::default();
        for record in self.runs.iter().flat_map(|r| &r.history) {
            if let Some(eval) = &record.eval {
                let sum = sums.entry(record.epoch).or_default();
                *sum = (sum.0 + eval.top1, sum.1 + 1);
            }
        }
        sums.into_iter()
            .map(|(epoch, (sum, n))| (epoch as f64 + 1.0, sum / n as f64))
            .collect()
    }

    /// The seeds of the runs with their summaries.
    fn by_seed(&self) -> Vec<(u64, &Summary)> {
        self.runs.iter().map(|r| (r.seed(), &r.summary)).collect()
    }
}

/// Runs grouped by configuration, compared over seeds.
///
/// ```
/// use rescom::report::{Comparison, Metric};
/// # use rescom::report::{EpochRecord, RunIdentity, Summary, write_history};
/// # use rescom::eval::EvalReport;
/// # use rescom::train::TrainRecord;
/// # let root = tempfile::tempdir().unwrap();
/// # let write_run = |method: &str, seed: u64, top1: f64| -> rescom::Result<()> {
/// #     let dir = root.path().join(format!("{method}-seed{seed}"));
/// #     std::fs::create_dir_all(&dir).unwrap();
/// #     let config = serde_json::json!({"config": {"method": method, "epochs": 1, "seed": seed}});
/// #     std::fs::write(dir.join("run.json"), config.to_string()).unwrap();
/// #     let eval = EvalReport { top1, top5: 0.9, many: Some(0.8), medium: None, few: Some(top1 / 2.0),
/// #         per_class: vec![], images: 10, calibration: None, feature_space: None, confusion: None };
/// #     let train = TrainRecord { loss: 1.0, classification: 1.0, contrastive: None,
/// #         train_top1: 0.5, images_per_second: 1.0, seconds: 1.0 };
/// #     let history = vec![EpochRecord::new(0, 0.1, train, Some(eval))];
/// #     let identity = RunIdentity { method: method.into(), dataset: "toy".into(),
/// #         train_counts: vec![500, 5], seed };
/// #     write_history(&dir, &history)?;
/// #     Summary::of(&identity, &history).unwrap().write(&dir)
/// # };
/// // Runs under `root`: rescom and balanced-softmax with seeds 0 and 1 (each a directory
/// // with run.json, summary.json and metrics.jsonl, as a run writes them).
/// # write_run("rescom", 0, 0.60)?; write_run("rescom", 1, 0.64)?;
/// # write_run("balanced-softmax", 0, 0.65)?; write_run("balanced-softmax", 1, 0.66)?;
/// let comparison = Comparison::read(&[root.path()])?;
/// let rescom = comparison.group("rescom").unwrap();
/// assert_eq!(rescom.seeds(), [0, 1]);
/// let top1 = rescom.stat(Metric::Top1).unwrap();
/// assert!((top1.mean - 0.62).abs() < 1e-12 && (top1.sd.unwrap() - 0.02 * 2f64.sqrt()).abs() < 1e-12);
///
/// // rescom minus balanced-softmax, seed by seed: -5 and -2 points of top-1.
/// let paired = comparison.paired(Some("balanced-softmax"))?;
/// assert_eq!(paired[0].name(), "rescom − balanced-softmax");
/// assert_eq!(paired[0].per_seed.len(), 2);
/// assert!((paired[0].mean[0].unwrap().mean + 0.035).abs() < 1e-12);
///
/// println!("{}", comparison.markdown(Some("balanced-softmax"))?); // the tables
/// let html = comparison.page(Some("balanced-softmax"))?; // self-contained, with curves
/// # assert!(html.contains("rescom − balanced-softmax"));
/// # Ok::<(), rescom::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct Comparison {
    groups: Vec<RunGroup>,
}

impl Comparison {
    /// Reads the runs at `paths` and groups them. A path is a run directory when it holds
    /// `run.json` or `summary.json`; any other directory stands for the run directories under
    /// it (those holding `summary.json`, at any depth, so a run without an evaluation yet is
    /// left out).
    ///
    /// # Errors
    /// [`Error::Io`] naming a path that does not exist, a directory with no run under it, or
    /// a run's missing file; [`Error::CorruptData`] naming a file that does not parse.
    pub fn read<P: AsRef<Path>>(paths: &[P]) -> Result<Self> {
        let mut runs = Vec::new();
        for path in paths {
            for dir in run_dirs(path.as_ref())? {
                runs.push(RunFiles::read(&dir)?);
            }
        }
        Ok(Self::new(runs))
    }

    /// Groups `runs` by [`RunFiles::configuration`]; groups are ordered by dataset, planned
    /// epochs, method (cross-entropy, balanced-softmax, rescom, its ablations, others) and
    /// name, runs by seed.
    pub fn new(runs: Vec<RunFiles>) -> Self {
        let mut grouped: Vec<(Value, Vec<RunFiles>)> = Vec::new();
        for run in runs {
            let key = run.configuration();
            match grouped.iter_mut().find(|(k, _)| *k == key) {
                Some((_, list)) => list.push(run),
                None => grouped.push((key, vec![run])),
            }
        }
        let methods: Vec<(String, &Value)> = grouped
            .iter()
            .map(|(key, runs)| (runs[0].summary.method.clone(), key))
            .collect();
        let names = naming::group_names(&methods);
        let mut groups: Vec<RunGroup> = grouped
            .into_iter()
            .zip(names)
            .map(|((configuration, mut runs), name)| {
                runs.sort_by(|a, b| (a.seed(), &a.dir).cmp(&(b.seed(), &b.dir)));
                RunGroup {
                    name,
                    method: runs[0].summary.method.clone(),
                    configuration,
                    runs,
                }
            })
            .collect();
        groups.sort_by_cached_key(|g| {
            let epochs = g.runs[0]
                .planned_epochs()
                .unwrap_or(g.runs[0].summary.epochs as u64);
            (
                g.dataset().to_string(),
                epochs,
                method_rank(&g.method),
                g.name.clone(),
            )
        });
        Self { groups }
    }

    /// The groups.
    pub fn groups(&self) -> &[RunGroup] {
        &self.groups
    }

    /// The group named `name`.
    pub fn group(&self, name: &str) -> Option<&RunGroup> {
        self.groups.iter().find(|g| g.name == name)
    }

    /// Paired differences on shared seeds. With a `baseline` (a group's name, or a method
    /// naming every group of it): each other group minus the baseline group of the same
    /// dataset whose configuration is closest to it. Without: each group minus each group
    /// before it with the same dataset and planned epochs. Pairs without a shared seed are
    /// left out.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] when `baseline` names no group.
    pub fn paired(&self, baseline: Option<&str>) -> Result<Vec<PairedDifference>> {
        let pair = |g: &RunGroup, b: &RunGroup| {
            PairedDifference::of((&g.name, &g.by_seed()), (&b.name, &b.by_seed()))
        };
        let Some(baseline) = baseline else {
            let setting = |g: &RunGroup| (g.dataset().to_string(), g.runs[0].planned_epochs());
            let mut pairs = Vec::new();
            for (j, g) in self.groups.iter().enumerate() {
                for b in self.groups[..j].iter().filter(|b| setting(b) == setting(g)) {
                    pairs.extend(pair(g, b));
                }
            }
            return Ok(pairs);
        };
        let bases: Vec<&RunGroup> = self
            .groups
            .iter()
            .filter(|g| g.name == baseline || g.method == baseline)
            .collect();
        if bases.is_empty() {
            let names: Vec<&str> = self.groups.iter().map(|g| g.name.as_str()).collect();
            return Err(Error::config(
                "baseline",
                format!(
                    "`{baseline}` names no group; the groups are: {}",
                    names.join("; ")
                ),
            ));
        }
        let shares = |g: &RunGroup, b: &RunGroup| g.seeds().iter().any(|s| b.seeds().contains(s));
        Ok(self
            .groups
            .iter()
            .filter(|g| !bases.iter().any(|b| std::ptr::eq(*b, *g)))
            .filter_map(|g| {
                let closest = bases
                    .iter()
                    .filter(|b| b.dataset() == g.dataset() && shares(g, b))
                    .min_by_key(|b| naming::differences(&g.configuration, &b.configuration))?;
                pair(g, closest)
            })
            .collect())
    }

    /// The tables as Markdown: each group's mean ± sample standard deviation over seeds of
    /// every [`Metric`] and, by shot group, of every [`ShotMetric`], the paired differences ([`Comparison::paired`]) and the datasets.
    ///
    /// # Errors
    /// As [`Comparison::paired`].
    pub fn markdown(&self, baseline: Option<&str>) -> Result<String> {
        Ok(tables::markdown(self, &self.paired(baseline)?))
    }

    /// The comparison as one self-contained HTML page: the tables, the mean test top-1 of
    /// each group against the epoch, what differs between the groups, and the runs.
    ///
    /// # Errors
    /// As [`Comparison::paired`]; a figure that cannot be drawn.
    pub fn page(&self, baseline: Option<&str>) -> Result<String> {
        page::page(self, &self.paired(baseline)?)
    }

    /// Writes [`Comparison::page`] to `path`, atomically.
    ///
    /// # Errors
    /// As [`Comparison::page`]; [`Error::Io`] naming the file that cannot be written.
    pub fn write_page(&self, path: &Path, baseline: Option<&str>) -> Result<()> {
        crate::train::write_atomic(path, self.page(baseline)?.as_bytes())
    }
}

/// The order of methods in the tables.
fn method_rank(method: &str) -> u8 {
    match method {
        "cross-entropy" => 0,
        "balanced-softmax" => 1,
        "rescom" => 2,
        m if m.starts_with("rescom") => 3,
        _ => 4,
    }
}

/// The run directories `path` stands for ([`Comparison::read`]), sorted.
fn run_dirs(path: &Path) -> Result<Vec<PathBuf>> {
    let is_run = |dir: &Path| dir.join("run.json").exists() || dir.join("summary.json").exists();
    if is_run(path) {
        return Ok(vec![path.to_path_buf()]);
    }
    fn walk(dir: &Path, depth: usize, out: &mut Vec<PathBuf>) -> Result<()> {
        let entries = std::fs::read_dir(dir).map_err(|e| Error::io(dir, e))?;
        let mut dirs: Vec<PathBuf> = entries
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.is_dir())
            .collect();
        dirs.sort();
        for sub in dirs {
            if sub.join("summary.json").is_file() {
                out.push(sub);
            } else if depth > 0 && !sub.join("run.json").exists() {
                walk(&sub, depth - 1, out)?;
            }
        }
        Ok(())
    }
    let mut out = Vec::new();
    walk(path, 8, &mut out)?;
    if out.is_empty() {
        let reason = "no run under it (no directory holding summary.json)";
        return Err(Error::io(
            path,
            std::io::Error::new(std::io::ErrorKind::NotFound, reason),
        ));
    }
    Ok(out)
}
