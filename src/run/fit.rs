//! [`fit`]: a run on burn-train's Learner, new or resumed.

use std::io::IsTerminal;
use std::path::Path;
use std::sync::Arc;

use burn::module::Module;
use burn::optim::lr_scheduler::LrSchedulerRecord;
use burn::tensor::distributed::{DistributedConfig, ReduceOperation};
use burn::train::metric::{AccuracyMetric, LearningRateMetric, LossMetric};
use burn::train::{
    ExecutionStrategy, Learner, LearningResult, MultiDeviceOptim, SupervisedTraining,
};

use super::options::{Devices, RunData, RunOptions};
use super::state::{RunState, ensure_writable};
use crate::data::{EvalLoader, TwoViewLoader};
use crate::error::{Error, Result};
use crate::report::{
    EpochRecord, MetricFiles, RunHistory, RunIdentity, RunReport, SilentRenderer, Summary,
    read_history,
};
use crate::train::{
    CheckpointDir, ClassAccuracyMetric, EpochLrScheduler, EvalReportMetric, KeepLastTwo,
    LongTailModel, LossTerm, LossTermMetric, Method, Record, ResComNetwork, TrainConfig,
    TrainRecordMetric, remove_stale_temporaries, with_canonical_ids,
};

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

/// The identity of a run for its summary.
pub fn identity(config: &TrainConfig) -> RunIdentity {
    RunIdentity {
        method: config.method_name(),
        dataset: config.dataset.clone(),
        train_counts: config.class_counts().to_vec(),
        seed: config.seed,
    }
}

/// Where a run starts: the epochs already done (0 for a new run), their records, and the
/// model to train from there.
struct Start<N> {
    epoch: usize,
    history: Vec<EpochRecord>,
    model: LongTailModel<N>,
}

/// Trains `network` as `config` says on `data`, writing into `options.out` (see the
/// [module docs](super)).
///
/// # Errors
/// An output directory that cannot be written ([`Error::OutputNotWritable`], before anything
/// is trained); an invalid configuration or device choice; on resume, a missing, damaged or
/// mismatched checkpoint, or one written by a run with another configuration or data
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
    let out = options.out.clone();
    ensure_writable(&out)?;
    let counts = data.train.class_counts();
    if counts != config.class_counts() {
        return Err(Error::config(
            "loss.class_counts",
            format!(
                "the configuration's class histogram {:?} is not the training set's {counts:?}",
                config.class_counts()
            ),
        ));
    }
    let state = run_state(config, &data, &options)?;
    let model = build_model(config, network, &options)?;
    // `batch_size` is the global batch of a step, split across the devices.
    let data = RunData {
        train: data.train.split_across(options.devices.all().len())?,
        test: data.test,
    };
    let steps_per_epoch = data.train.steps_per_epoch();
    let start = if options.resume {
        resume(&out, &state, model, steps_per_epoch)?
    } else {
        start_new(&out, &state, model)?
    };
    let identity = identity(config);
    let stop = config.epochs.min(
        start
            .epoch
            .saturating_add(options.stop_after.unwrap_or(usize::MAX)),
    );
    if stop <= start.epoch {
        let summary = Summary::of(&identity, &start.history);
        return Ok(RunOutcome {
            model: start.model.valid(),
            history: start.history,
            summary,
        });
    }
    train(
        config,
        identity,
        data,
        options,
        start,
        stop,
        steps_per_epoch,
    )
}

/// What `run.json` records of a run: its configuration and data, and what rebuilds it for
/// prediction, checked against the class histogram and the evaluation views.
fn run_state(config: &TrainConfig, data: &RunData, options: &RunOptions) -> Result<RunState> {
    let classes = config.class_counts().len();
    let pipeline = data.test.pipeline();
    if let Some(model) = &options.model {
        if model.num_classes != classes {
            return Err(Error::config(
                "model.num_classes",
                format!("is {}, the run has {classes} classes", model.num_classes),
            ));
        }
        let channels = pipeline.output_shape().0;
        if model.backbone.in_channels() != channels {
            return Err(Error::config(
                "model.backbone",
                format!(
                    "takes {} input channels, the evaluation views have {channels}",
                    model.backbone.in_channels()
                ),
            ));
        }
    }
    if let Some(names) = &options.class_names
        && names.len() != classes
    {
        return Err(Error::config(
            "class_names",
            format!("names {} classes, the run has {classes}", names.len()),
        ));
    }
    if let Some(spec) = &options.test_split
        && spec.num_classes() != classes
    {
        return Err(Error::config(
            "test_split",
            format!(
                "{spec} has {} classes, the run {classes}",
                spec.num_classes()
            ),
        ));
    }
    Ok(RunState {
        config: config.clone(),
        batch_size: data.train.config().batch_size,
        drop_last: data.train.config().drop_last,
        data_seed: data.train.config().seed,
        model: options.model.clone(),
        eval_pipeline: pipeline.clone(),
        class_names: options.class_names.clone(),
        test_split: options.test_split.clone(),
    })
}

/// The model of a run: `network` with the run's objective, replicas and step checks.
fn build_model<N: ResComNetwork>(
    config: &TrainConfig,
    network: N,
    options: &RunOptions,
) -> Result<LongTailModel<N>> {
    let devices = options.devices.all();
    let objective = config.objective(&options.devices.main())?;
    if let Some(loss) = objective.rescom() {
        loss.set_replicas(devices)?;
    }
    let model = LongTailModel::new(network, objective).with_step_checks(options.step_checks);
    Ok(match options.devices {
        // The strategy adds up the replicas' gradients: follow their mean.
        Devices::MultiDevice(_) => model.with_gradient_scale(1.0 / devices.len() as f64),
        _ => model,
    })
}

/// A new run in `out`: earlier checkpoints and temporary files are removed, `run.json` is
/// written, and the model's parameter ids are the ones its checkpoints will hold.
fn start_new<N: ResComNetwork>(
    out: &Path,
    state: &RunState,
    model: LongTailModel<N>,
) -> Result<Start<N>> {
    let checkpoints = CheckpointDir::new(out.join("checkpoint"));
    if checkpoints.path().exists() {
        std::fs::remove_dir_all(checkpoints.path())
            .map_err(|e| Error::io(checkpoints.path(), e))?;
    }
    remove_stale_temporaries(out)?;
    state.write(out)?;
    // Parameter ids as the checkpoints write them, the same in every process.
    Ok(Start {
        epoch: 0,
        history: Vec::new(),
        model: with_canonical_ids(model, out)?,
    })
}

/// The run saved in `out`, at its last complete checkpoint, validated against `state` (the
/// same configuration and data) and `steps_per_epoch` (the same devices); a run stopped
/// before its first complete checkpoint starts again as its `run.json` defines it.
fn resume<N: ResComNetwork>(
    out: &Path,
    state: &RunState,
    model: LongTailModel<N>,
    steps_per_epoch: usize,
) -> Result<Start<N>> {
    let saved = RunState::read(out)?;
    if !saved.differences(state).is_empty() {
        return Err(Error::Checkpoint {
            path: RunState::path(out),
            reason: format!(
                "it was written by a run with another configuration or data (it differs in: \
                 {}); start a new run in another directory",
                saved.differences(state).join(", ")
            ),
        });
    }
    if state.test_split.is_some() && saved.test_split != state.test_split {
        // The same run, its test data found elsewhere: run.json says where it is now.
        state.write(out)?;
    }
    let checkpoints = CheckpointDir::new(out.join("checkpoint"));
    let started = !checkpoints.complete_epochs().is_empty()
        || checkpoints.epochs().iter().any(|&epoch| epoch > 1);
    if !started {
        return start_new(out, state, model);
    }
    let epoch = checkpoints.latest()?;
    let model = checkpoints.load_model(model, epoch)?;
    checkpoints.check_optimizer(state.config.optimizer().init(), &model, epoch)?;
    let schedule: LrSchedulerRecord = checkpoints.read(Record::Scheduler, epoch)?;
    let scheduler_error = |reason: String| Error::Checkpoint {
        path: checkpoints.file(Record::Scheduler, epoch),
        reason,
    };
    let taken =
        EpochLrScheduler::steps_in(&schedule).map_err(|e| scheduler_error(e.to_string()))?;
    if taken != (epoch * steps_per_epoch) as u64 {
        return Err(scheduler_error(format!(
            "the schedule took {taken} steps in {epoch} epochs, this run takes \
             {steps_per_epoch} per epoch (other devices?)"
        )));
    }
    let mut history = read_history(out)?;
    if history.len() < epoch {
        return Err(Error::Checkpoint {
            path: out.join("metrics.jsonl"),
            reason: format!("holds {} epochs, the checkpoint {epoch}", history.len()),
        });
    }
    history.truncate(epoch);
    Summary::restore_confusion(out, &mut history);
    // What a process killed while saving or deleting left behind: the records of other
    // epochs than the two a run keeps, and temporary files.
    checkpoints.retain(&[epoch - 1, epoch])?;
    remove_stale_temporaries(out)?;
    Ok(Start {
        epoch,
        history,
        model,
    })
}

/// Trains from `start` to epoch `stop` on burn-train's Learner, then collects the outcome.
fn train<N: ResComNetwork>(
    config: &TrainConfig,
    identity: RunIdentity,
    data: RunData,
    options: RunOptions,
    start: Start<N>,
    stop: usize,
    steps_per_epoch: usize,
) -> Result<RunOutcome<N>> {
    let out = options.out.clone();
    let scheduler = EpochLrScheduler::new(config.schedule.clone(), steps_per_epoch)?;
    let learner = Learner::new(start.model, config.optimizer().init(), scheduler);
    // burn-train's plain renderer (standard output not a terminal) prints progress per batch
    // and no figures: one line per epoch instead, and a renderer that draws nothing.
    let plain = options.renderer.is_none() && !std::io::stdout().is_terminal();
    let report = RunReport::new(
        &out,
        config.schedule.clone(),
        identity.clone(),
        start.history,
    )
    .with_epoch_lines(plain);
    let history = report.history();
    let metric_files = MetricFiles::new(&out);
    let metric_failure = metric_files.failure();
    let mut training = supervised_training(config, &identity.train_counts, data, start.epoch, &out);
    if !options.experiment_log {
        // burn-train installs its file logger for the whole process by default.
        training = training.with_application_logger(None);
    }
    let interrupter = training.interrupter();
    training = training
        .with_metric_logger(metric_files.with_interrupter(interrupter.clone()))
        .with_metric_logger(report.with_interrupter(interrupter.clone()))
        .with_checkpointing_strategy(KeepLastTwo::default().with_interrupter(interrupter))
        .num_epochs(stop);
    training = with_devices(training, options.devices);
    if start.epoch > 0 {
        training = training.checkpoint(start.epoch);
    }
    if let Some(renderer) = options.renderer {
        training = training.renderer(renderer);
    } else if plain {
        training = training.renderer(Box::new(SilentRenderer));
    }
    let result = training.launch(learner);
    finish(&identity, history, metric_failure.take(), result)
}

type Training<N> = SupervisedTraining<LongTailModel<N>>;

/// burn-train's supervised training of a run, from epoch `start`: its loaders, metrics and
/// checkpointers.
fn supervised_training<N: ResComNetwork>(
    config: &TrainConfig,
    counts: &[usize],
    data: RunData,
    start: usize,
    out: &Path,
) -> Training<N> {
    let RunData { train, test } = data;
    let evaluates = {
        let config = config.clone();
        move |epoch: usize| config.evaluates_after(epoch)
    };
    let train: Arc<TwoViewLoader> = Arc::new(train.starting_at(start));
    let test: Arc<EvalLoader> = Arc::new(test.evaluating(evaluates).starting_at(start));
    let checkpoints = CheckpointDir::new(out.join("checkpoint"));
    let mut training = SupervisedTraining::new(out, train, test)
        .metric_train_numeric(LossMetric::new())
        .metric_train_numeric(LossTermMetric::new(LossTerm::Classification));
    if config.method == Method::ResCom {
        training = training.metric_train_numeric(LossTermMetric::new(LossTerm::Contrastive));
    }
    training = training
        .metric_train_numeric(AccuracyMetric::new())
        .metric_train_numeric(LearningRateMetric::new())
        .metric_train(TrainRecordMetric::new());
    for metric in ClassAccuracyMetric::all(counts) {
        training = training.metric_valid_numeric(metric);
    }
    training
        .metric_valid(EvalReportMetric::new(counts))
        .with_custom_checkpointers(
            checkpoints.checkpointer(Record::Model),
            checkpoints.checkpointer(Record::Optimizer),
            checkpoints.checkpointer(Record::Scheduler),
        )
}

/// `training` with the strategy of `devices`.
fn with_devices<N: ResComNetwork>(training: Training<N>, devices: Devices) -> Training<N> {
    match devices {
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
    }
}

/// The outcome of a launched run: the first error of a report writer or the Learner, or the
/// trained model with its history and summary.
fn finish<N: ResComNetwork>(
    identity: &RunIdentity,
    history: RunHistory,
    metric_failure: Option<Error>,
    result: LearningResult<LongTailModel<N>>,
) -> Result<RunOutcome<N>> {
    if let Some(error) = metric_failure.or_else(|| history.take_error()) {
        return Err(error);
    }
    if let Some(error) = result.error {
        return Err(Error::Training {
            reason: error.to_string(),
        });
    }
    let history = history.records();
    let summary = Summary::of(identity, &history);
    Ok(RunOutcome {
        model: result.model,
        history,
        summary,
    })
}
