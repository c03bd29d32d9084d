//! A bundled long-tailed run on burn-train's Learner: the crate's plug-ins put together.
//!
//! [`fit`] trains a [`ResComNetwork`] with the method of a [`TrainConfig`] through
//! [`SupervisedTraining`]: the Learner's loop, its strategies for one or several devices, its
//! metrics, renderers (the dashboard on a terminal, plain lines otherwise) and checkpoints.
//! The crate adds the deterministic loaders, the epoch schedule, the long-tail metrics, atomic
//! checkpoints with validation on resume, and the reports ([`RunReport`]).
//!
//! The output directory holds `run.json` (what defines the run, compared on resume),
//! `checkpoint/` (the Learner's records of the last two epochs), `metrics.jsonl`,
//! `metrics.csv`, `curves.svg`, `per_class.svg`, `summary.json`, the metric logs `train/`,
//! `valid/` in burn-train's layout ([`MetricFiles`]), and burn-train's `experiment.log`.
//!
//! The output directory is probed before anything is trained: one that cannot be written is
//! an [`Error::OutputNotWritable`]. A write that fails during the run (a full disk) stops it
//! with an [`Error::Training`] naming the file, before the epoch's checkpoint. Checkpoint
//! records are the same bytes in every process for the same seed (see
//! [`AtomicFileCheckpointer`](crate::train::AtomicFileCheckpointer)).
//!
//! A run stopped at any moment ([`RunOptions::stop_after`], a crash, a kill, even inside a
//! write) continues with [`RunOptions::resume`] from its last complete checkpoint exactly as
//! if it had not stopped: model, batch-norm statistics and the ResCom queue (the model's
//! record), optimiser state, the schedule's position, and the data order and augmentations
//! (pure functions of the seed and the epoch) are restored. What a killed process leaves
//! behind, records of other epochs than the two kept and temporary files, is removed; a run
//! killed before its first complete checkpoint starts again from its `run.json`.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use burn::module::Module;
use burn::optim::lr_scheduler::LrSchedulerRecord;
use burn::tensor::Device;
use burn::tensor::distributed::{DistributedConfig, ReduceOperation};
use burn::train::metric::{AccuracyMetric, LearningRateMetric, LossMetric};
use burn::train::renderer::MetricsRenderer;
use burn::train::{ExecutionStrategy, Learner, MultiDeviceOptim, SupervisedTraining};
use serde::{Deserialize, Serialize};

use crate::data::{EvalLoader, TwoViewLoader};
use crate::error::{Error, Result};
use crate::report::history::{EpochRecord, read_history};
use crate::report::logger::RunReport;
use crate::report::metric_files::MetricFiles;
use crate::report::renderer::SilentRenderer;
use crate::report::summary::{RunIdentity, Summary};
use crate::train::{
    AccuracyFigure, CheckpointDir, ClassAccuracyMetric, EpochLrScheduler, EvalReportMetric,
    KeepLastTwo, LongTailModel, LossTerm, LossTermMetric, Method, ResComNetwork, StepChecks,
    TrainConfig, TrainRecordMetric, remove_stale_temporaries, with_canonical_ids, write_atomic,
};

/// Where a run trains.
#[derive(Debug, Clone)]
pub enum Devices {
    /// One device.
    Single(Device),
    /// burn-train's multi-device strategy: the model is forked to each device every step,
    /// each replica takes its share of the batches, and the gradients are gathered and applied
    /// on the first device. The ResCom queue is shared: each replica contrasts its own batch
    /// with it, and the replicas' keys are enqueued in device order.
    MultiDevice(Vec<Device>),
    /// burn-train's distributed data parallel strategy: one worker per device, gradients
    /// averaged by an all-reduce. Needs a backend with collective operations, which Burn
    /// 0.22.1 implements for CUDA only; other backends are refused.
    Ddp(Vec<Device>),
}

impl Devices {
    fn all(&self) -> &[Device] {
        match self {
            Devices::Single(device) => std::slice::from_ref(device),
            Devices::MultiDevice(devices) | Devices::Ddp(devices) => devices,
        }
    }

    /// The first device: the model lives and is evaluated there.
    pub fn main(&self) -> Device {
        self.all()[0].clone().autodiff()
    }

    fn validate(&self) -> Result<()> {
        let devices = self.all();
        if devices.is_empty() {
            return Err(Error::config("devices", "at least one device is needed"));
        }
        for (i, d) in devices.iter().enumerate() {
            if devices[..i].contains(d) {
                return Err(Error::config(
                    "devices",
                    format!("{d:?} is listed twice; each replica needs its own device"),
                ));
            }
        }
        if let Devices::Ddp(devices) = self
            && let Some(d) = devices.iter().find(|d| !format!("{d:?}").contains("Cuda"))
        {
            return Err(Error::config(
                "devices",
                format!(
                    "distributed data parallel training needs all-reduce collectives, which \
                     Burn 0.22.1 implements for CUDA devices only, not for {d:?}; use the \
                     multi-device strategy instead"
                ),
            ));
        }
        Ok(())
    }
}

/// How to run.
pub struct RunOptions {
    /// Output directory.
    pub out: PathBuf,
    /// Continue the run saved in `out` from its last complete checkpoint.
    pub resume: bool,
    /// Stop after this many epochs of this call (continue later with `resume`).
    pub stop_after: Option<usize>,
    /// Where to train.
    pub devices: Devices,
    /// The renderer; `None` for burn-train's default (its dashboard when standard output is
    /// a terminal, plain lines otherwise).
    pub renderer: Option<Box<dyn MetricsRenderer>>,
    /// Where a training step validates its batch and the network's outputs (default
    /// [`StepChecks::Auto`]: on the host on GPUs, so that a step reads nothing from the
    /// device; on the device on the CPU backends).
    pub step_checks: StepChecks,
}

impl RunOptions {
    /// A new run into `out` on one device, with the default renderer.
    pub fn new(out: impl Into<PathBuf>, device: Device) -> Self {
        Self {
            out: out.into(),
            resume: false,
            stop_after: None,
            devices: Devices::Single(device),
            renderer: None,
            step_checks: StepChecks::Auto,
        }
    }
}

/// The data of a run: two-view training batches and the evaluation set.
pub struct RunData {
    /// Training batches.
    pub train: TwoViewLoader,
    /// Evaluation batches.
    pub test: EvalLoader,
}

/// What defines a run and its data, stored as `run.json` and compared on resume.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct RunState {
    config: TrainConfig,
    train_counts: Vec<usize>,
    batch_size: usize,
    drop_last: bool,
    data_seed: u64,
}

impl RunState {
    fn path(out: &Path) -> PathBuf {
        out.join("run.json")
    }

    fn write(&self, out: &Path) -> Result<()> {
        write_atomic(
            &Self::path(out),
            serde_json::to_string_pretty(self)?.as_bytes(),
        )
    }

    fn read(out: &Path) -> Result<Self> {
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
fn ensure_writable(out: &Path) -> Result<()> {
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

/// The outcome of [`fit`].
pub struct RunOutcome<N> {
    /// The trained model, in inference mode.
    pub model: LongTailModel<N>,
    /// One record per completed epoch (from the start of the run, also after a resume).
    pub history: Vec<EpochRecord>,
    /// The summary, once an evaluation has run.
    pub summary: Option<Summary>,
}

impl<N> RunOutcome<N> {
    /// Epochs completed so far.
    pub fn epochs_done(&self) -> usize {
        self.history.len()
    }
}

/// Loads the model of the latest checkpoint in `out` (validated: a damaged or mismatched
/// file is an error, not a panic), with the epochs it completed.
///
/// # Errors
/// [`Error::Checkpoint`] when there is no complete checkpoint or its model record does not
/// fit `model`.
pub fn load_checkpoint<N: ResComNetwork>(
    model: LongTailModel<N>,
    out: &Path,
) -> Result<(LongTailModel<N>, usize)> {
    let checkpoints = CheckpointDir::new(out.join("checkpoint"));
    let epoch = checkpoints.latest()?;
    Ok((checkpoints.load_model(model, epoch)?, epoch))
}

/// The identity of a run for its summary.
pub fn identity(config: &TrainConfig, train_counts: &[usize]) -> RunIdentity {
    RunIdentity {
        method: config.method_name(),
        dataset: config.dataset.clone(),
        train_counts: train_counts.to_vec(),
        seed: config.seed,
    }
}

/// Trains `network` as `config` says on `data`, writing into `options.out` (see the
/// [module docs](self)).
///
/// # Errors
/// An output directory that cannot be written ([`Error::OutputNotWritable`], before anything
/// is trained); an invalid configuration or device choice; on resume, a missing, damaged or mismatched
/// checkpoint, or one written by a run with another configuration or data
/// ([`Error::Checkpoint`]); a report that cannot be written; a training step that fails
/// (a loss that is no longer finite, above all: [`Error::Training`]). The last complete
/// checkpoint is kept in every case.
pub fn fit<N: ResComNetwork>(
    config: &TrainConfig,
    network: N,
    data: RunData,
    options: RunOptions,
) -> Result<RunOutcome<N>> {
    config.validate()?;
    options.devices.validate()?;
    let RunData { train, test } = data;
    let out = options.out.clone();
    ensure_writable(&out)?;
    let counts = train.class_counts();
    let devices = options.devices.all().to_vec();
    let replicas = devices.len();
    let steps_per_epoch = train.steps_per_epoch(replicas);
    let state = RunState {
        config: config.clone(),
        train_counts: counts.clone(),
        batch_size: train.config().batch_size,
        drop_last: train.config().drop_last,
        data_seed: train.config().seed,
    };
    let main = options.devices.main();
    let objective = config.objective(&counts, &main)?;
    if let Some(loss) = objective.rescom() {
        loss.set_replicas(&devices)?;
    }
    let mut model = LongTailModel::new(network, objective).with_step_checks(options.step_checks);
    if let Devices::MultiDevice(_) = options.devices {
        // The strategy adds up the replicas' gradients: follow their mean.
        model = model.with_gradient_scale(1.0 / replicas as f64);
    }
    let checkpoints = CheckpointDir::new(out.join("checkpoint"));

    let resume_at = if options.resume {
        let saved = RunState::read(&out)?;
        if saved != state {
            return Err(Error::Checkpoint {
                path: RunState::path(&out),
                reason: "it was written by a run with another configuration or data; start a \
                         new run in another directory"
                    .into(),
            });
        }
        // A run stopped before its first checkpoint was complete (no record of a later epoch)
        // starts again, as its run.json defines it.
        let started = !checkpoints.complete_epochs().is_empty()
            || checkpoints.epochs().iter().any(|&epoch| epoch > 1);
        if started {
            Some(checkpoints.latest()?)
        } else {
            None
        }
    } else {
        None
    };

    let (start, history, model) = match resume_at {
        Some(epoch) => {
            let model = checkpoints.load_model(model, epoch)?;
            checkpoints.check_optimizer(config.optimizer().init(), &model, epoch)?;
            let schedule: LrSchedulerRecord = checkpoints.read("scheduler", epoch)?;
            let taken = EpochLrScheduler::steps_in(&schedule).map_err(|e| Error::Checkpoint {
                path: checkpoints.file("scheduler", epoch),
                reason: e.to_string(),
            })?;
            if taken != (epoch * steps_per_epoch) as u64 {
                return Err(Error::Checkpoint {
                    path: checkpoints.file("scheduler", epoch),
                    reason: format!(
                        "the schedule took {taken} steps in {epoch} epochs, this run takes \
                         {steps_per_epoch} per epoch (other devices?)"
                    ),
                });
            }
            let mut history = read_history(&out)?;
            if history.len() < epoch {
                return Err(Error::Checkpoint {
                    path: out.join("metrics.jsonl"),
                    reason: format!("holds {} epochs, the checkpoint {epoch}", history.len()),
                });
            }
            history.truncate(epoch);
            Summary::restore_confusion(&out, &mut history);
            // What a process killed while saving or deleting left behind: the records of
            // other epochs than the two a run keeps, and temporary files.
            checkpoints.retain(&[epoch - 1, epoch])?;
            remove_stale_temporaries(&out)?;
            (epoch, history, model)
        }
        None => {
            if checkpoints.path().exists() {
                std::fs::remove_dir_all(checkpoints.path())
                    .map_err(|e| Error::io(checkpoints.path(), e))?;
            }
            remove_stale_temporaries(&out)?;
            state.write(&out)?;
            // Parameter ids as the checkpoints write them, the same in every process.
            (0, Vec::new(), with_canonical_ids(model, &out)?)
        }
    };

    let identity = identity(config, &counts);
    let stop = config
        .epochs
        .min(start.saturating_add(options.stop_after.unwrap_or(usize::MAX)));
    if stop <= start {
        let summary = Summary::of(&identity, &history);
        return Ok(RunOutcome {
            model: model.valid(),
            history,
            summary,
        });
    }

    let rescom = config.method == Method::Rescom;
    let scheduler = EpochLrScheduler::new(config.schedule.clone(), steps_per_epoch)?;
    let learner = Learner::new(model, config.optimizer().init(), scheduler);
    let evaluates = {
        let config = config.clone();
        move |epoch: usize| config.evaluates_after(epoch)
    };
    let train = Arc::new(train.starting_at(start));
    let test = Arc::new(test.evaluating(evaluates).starting_at(start));
    // burn-train's plain renderer (standard output not a terminal) prints progress per batch and
    // no figures: one line per epoch instead, and a renderer that draws nothing.
    let plain = options.renderer.is_none() && !std::io::stdout().is_terminal();
    let report = RunReport::new(&out, config.schedule.clone(), identity.clone(), history)
        .with_epoch_lines(plain);
    let history = report.history();
    let metric_files = MetricFiles::new(&out);
    let metric_failure = metric_files.failure();

    let mut training = SupervisedTraining::new(&out, train, test)
        .metric_train_numeric(LossMetric::new())
        .metric_train_numeric(LossTermMetric::new(LossTerm::Classification));
    if rescom {
        training = training.metric_train_numeric(LossTermMetric::new(LossTerm::Contrastive));
    }
    training = training
        .metric_train_numeric(AccuracyMetric::new())
        .metric_train_numeric(LearningRateMetric::new())
        .metric_train(TrainRecordMetric::new());
    for metric in ClassAccuracyMetric::all(&counts) {
        training = training.metric_valid_numeric(metric);
    }
    let interrupter = training.interrupter();
    training = training
        .metric_valid(EvalReportMetric::new(&counts))
        .with_metric_logger(metric_files.with_interrupter(interrupter.clone()))
        .with_metric_logger(report.with_interrupter(interrupter.clone()))
        .with_custom_checkpointers(
            checkpoints.checkpointer("model"),
            checkpoints.checkpointer("optim"),
            checkpoints.checkpointer("scheduler"),
        )
        .with_checkpointing_strategy(KeepLastTwo::default().with_interrupter(interrupter.clone()))
        .num_epochs(stop);
    training = match options.devices {
        Devices::Single(_) => training,
        Devices::MultiDevice(devices) => training.with_training_strategy(
            ExecutionStrategy::multi(devices, MultiDeviceOptim::OptimMainDevice).into(),
        ),
        Devices::Ddp(devices) => training.with_training_strategy(
            ExecutionStrategy::ddp(
                devices,
                DistributedConfig {
                    all_reduce_op: ReduceOperation::Mean,
                },
            )
            .into(),
        ),
    };
    if start > 0 {
        training = training.checkpoint(start);
    }
    if let Some(renderer) = options.renderer {
        training = training.renderer(renderer);
    } else if plain {
        training = training.renderer(Box::new(SilentRenderer));
    }
    let result = training.launch(learner);

    if let Some(error) = metric_failure.take().or_else(|| history.take_error()) {
        return Err(error);
    }
    if let Some(error) = result.error {
        return Err(Error::Training {
            reason: error.to_string(),
        });
    }
    let history = history.records();
    let summary = Summary::of(&identity, &history);
    Ok(RunOutcome {
        model: result.model,
        history,
        summary,
    })
}

/// Evaluates the model of the latest checkpoint in `out` on `test` with burn-train's
/// evaluator; returns the report and the epochs the checkpoint completed.
///
/// # Errors
/// As [`load_checkpoint`]; [`Error::Checkpoint`] naming `run.json` when it is missing or
/// damaged, or its training class counts do not fit the test set (another number of classes)
/// or `config` (a class without samples); [`Error::OutputNotWritable`] when `out` cannot be
/// written (the evaluator logs there); an invalid `config`; or a failure of the evaluation.
pub fn evaluate_checkpoint<N: ResComNetwork>(
    config: &TrainConfig,
    network: N,
    test: EvalLoader,
    out: &Path,
    renderer: Option<Box<dyn MetricsRenderer>>,
) -> Result<(crate::eval::EvalReport, usize)> {
    config.validate()?;
    let counts = RunState::read(out)?.train_counts;
    let damaged = |reason: String| Error::Checkpoint {
        path: RunState::path(out),
        reason,
    };
    if counts.len() != test.num_classes() {
        return Err(damaged(format!(
            "its class counts list {} classes, the test set has {}",
            counts.len(),
            test.num_classes()
        )));
    }
    // burn-train's evaluator writes its metric logs into `out`.
    ensure_writable(out)?;
    let device = network.devices().first().cloned().unwrap_or_default();
    let objective = config.objective(&counts, &device).map_err(|e| {
        damaged(format!(
            "its class counts do not fit the configuration: {e}"
        ))
    })?;
    let (model, epoch) = load_checkpoint(LongTailModel::new(network, objective), out)?;
    let report = EvalReportMetric::new(&counts);
    let latest = report.latest();
    let mut evaluator = burn::train::EvaluatorBuilder::new(out)
        .metric_numeric(ClassAccuracyMetric::new(AccuracyFigure::Top1, &counts))
        .metric(report);
    if let Some(renderer) = renderer {
        evaluator = evaluator.renderer(renderer);
    } else if !std::io::stdout().is_terminal() {
        evaluator = evaluator.renderer(Box::new(SilentRenderer));
    }
    let result = evaluator.build(model.valid()).eval("test", Arc::new(test));
    if let Some(error) = result.error {
        return Err(Error::Training {
            reason: error.to_string(),
        });
    }
    let report = latest.get().ok_or_else(|| Error::Training {
        reason: "the evaluation saw no batch".into(),
    })?;
    Ok((report, epoch))
}
