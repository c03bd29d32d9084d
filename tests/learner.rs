//! The crate on burn-train's Learner: a run through the public API, the queue after a Learner
//! step, replicas (the gradient mean and the gathered queue), the multi-device strategy on two
//! CPU backends, and the loaders as Burn data loaders.

mod common;

use std::sync::Arc;

use burn::data::dataloader::DataLoader;
use burn::module::Module;
use burn::optim::lr_scheduler::LrSchedulerRecord;
use burn::optim::{GradientsAccumulator, GradientsParams, SgdConfig};
use burn::tensor::{Device, Tensor};
use burn::train::{Learner, TrainStep};
use rescom::data::{
    Batch, Dataset, EvalLoader, InMemoryDataset, LoaderConfig, Pipeline, Step, TwoViewLoader,
};
use rescom::model::{BackboneConfig, CifarResNetConfig, ResComModel, ResComModelConfig};
use rescom::run::{Devices, RunData, RunOptions, fit};
use rescom::train::{
    CheckpointDir, EpochLrScheduler, LongTailModel, LrSchedule, Method, Record, ResComNetwork,
    StepChecks, TrainConfig,
};
use rescom::{
    ClassBalancedContrastiveLossConfig, HardPairMinerConfig, ResComLoss, ResComLossConfig, Rng,
};

const CLASSES: usize = 3;
const SIDE: usize = 8;
const COUNTS: [usize; CLASSES] = [30, 14, 6];

fn flex() -> Device {
    Device::flex().autodiff()
}

#[allow(deprecated)]
fn ndarray() -> Device {
    Device::ndarray().autodiff()
}

/// Class `c` is a bright band of rows on a noisy 8x8 image.
fn dataset(counts: &[usize], seed: u64) -> Arc<dyn Dataset> {
    let mut rng = Rng::new(seed);
    let (mut pixels, mut labels) = (Vec::new(), Vec::new());
    for (c, &n) in counts.iter().enumerate() {
        for _ in 0..n {
            for p in 0..SIDE * SIDE {
                let band = p / SIDE / 3 == c;
                let base = if band { 210.0 } else { 50.0 };
                pixels.push((base + 20.0 * rng.normal()).clamp(0.0, 255.0) as u8);
            }
            labels.push(c);
        }
    }
    Arc::new(InMemoryDataset::new(1, SIDE, SIDE, pixels, labels, CLASSES).unwrap())
}

fn pipelines() -> (Pipeline, Pipeline) {
    let train = Pipeline::new(
        vec![Step::HorizontalFlip { p: 0.5 }],
        None,
        &[0.3],
        &[0.3],
        (1, SIDE, SIDE),
    )
    .unwrap();
    let eval = Pipeline::normalize_only((1, SIDE, SIDE), &[0.3], &[0.3]).unwrap();
    (train, eval)
}

fn loader(batch: usize, device: &Device) -> TwoViewLoader {
    let mut config = LoaderConfig::new(batch, 5);
    config.workers = 1;
    TwoViewLoader::new(dataset(&COUNTS, 1), pipelines().0, config, device).unwrap()
}

fn data(batch: usize) -> RunData {
    let mut config = LoaderConfig::new(16, 5);
    config.workers = 1;
    RunData {
        train: loader(batch, &flex()),
        test: EvalLoader::new(
            dataset(&[8, 8, 8], 2),
            pipelines().1,
            config,
            &Device::flex(),
        )
        .unwrap(),
    }
}

fn network(device: &Device) -> ResComModel {
    device.seed(4);
    let backbone = CifarResNetConfig::new(8).with_in_channels(1).with_width(4);
    ResComModelConfig::new(BackboneConfig::Cifar(backbone), CLASSES)
        .with_projection_dim(4)
        .init(device)
        .unwrap()
}

fn config(epochs: usize) -> TrainConfig {
    TrainConfig {
        method: Method::ResCom,
        loss: ResComLossConfig::new(COUNTS.to_vec())
            .with_projection_dim(4)
            .with_queue_per_class(4)
            .with_mining(
                HardPairMinerConfig::new()
                    .with_hard_positives(2)
                    .with_hard_negatives(4),
            )
            .with_contrastive(
                ClassBalancedContrastiveLossConfig::new().with_effective_num_beta(0.99),
            ),
        epochs,
        schedule: LrSchedule::Constant { lr: 0.05 },
        momentum: 0.9,
        weight_decay: 5e-4,
        seed: 3,
        eval_every: 1,
        dataset: "synthetic".into(),
    }
}

fn quiet(out: &std::path::Path, devices: Devices) -> RunOptions {
    let mut options = RunOptions::new(out, flex());
    options.devices = devices;
    options.renderer = Some(Box::new(burn::train::renderer::CliMetricsRenderer::new()));
    options
}

/// `network` with a ResCom objective of its own (a fresh queue).
fn model(network: &ResComModel, device: &Device) -> LongTailModel<ResComModel> {
    let objective = config(1).objective(device).unwrap();
    LongTailModel::new(network.clone(), objective)
}

/// Every gradient of `model`'s parameters in `grads`, in the module's order.
fn gradients(model: &LongTailModel<ResComModel>, grads: &GradientsParams) -> Vec<f64> {
    struct Collect<'a> {
        grads: &'a GradientsParams,
        out: Vec<f64>,
    }
    impl burn::module::ModuleVisitor for Collect<'_> {
        fn visit_float<const D: usize>(&mut self, param: &burn::module::Param<Tensor<D>>) {
            if let Some(grad) = self.grads.get::<D>(param.id) {
                self.out.extend(common::to_vec(grad));
            }
        }
    }
    let mut collect = Collect {
        grads,
        out: Vec::new(),
    };
    model.visit(&mut collect);
    collect.out
}

fn loss_of(model: &LongTailModel<ResComModel>) -> &ResComLoss {
    model.objective.rescom().expect("a ResCom model")
}

fn queue(loss: &ResComLoss) -> (Vec<f64>, Vec<i64>) {
    let q = loss.queue();
    (common::to_vec(q.keys()), common::to_ints(q.pointers()))
}

/// The first batch of epoch 0.
fn first_batch(batch: usize, device: &Device) -> Batch {
    loader(batch, device)
        .epoch(0)
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
}

#[test]
fn a_learner_run_of_two_epochs_through_the_public_api() {
    let dir = tempfile::tempdir().unwrap();
    let outcome = fit(
        &config(2),
        network(&flex()),
        data(10),
        quiet(dir.path(), Devices::Single(flex())),
    )
    .unwrap();
    assert_eq!(outcome.epochs_done(), 2);
    let summary = outcome.summary.expect("both epochs are evaluated");
    assert_eq!(summary.epochs, 2);
    assert_eq!(summary.last.images, 24);
    assert!(outcome.history.iter().all(|r| r.train.loss.is_finite()));
    for file in ["summary.json", "metrics.csv", "curves.svg", "run.json"] {
        assert!(dir.path().join(file).is_file(), "{file}");
    }
    // Every view-1 key of both epochs reached the queue: 2 x n_c keys per class.
    let pointers = queue(loss_of(&outcome.model)).1;
    let expected: Vec<i64> = COUNTS.iter().map(|&n| (2 * n % 4) as i64).collect();
    assert_eq!(pointers, expected);
}

#[test]
fn burn_trains_log_is_installed_only_when_asked() {
    // The logger is process-wide: the first run of a process that installs it keeps it, so a
    // library run must not take it unasked (a second run's lines would land in the first
    // run's directory). Only this test of the binary asks.
    let run = |experiment_log: bool| {
        let dir = tempfile::tempdir().unwrap();
        let mut options = quiet(dir.path(), Devices::Single(flex()));
        options.experiment_log = experiment_log;
        fit(&config(1), network(&flex()), data(10), options).unwrap();
        let log = std::fs::read_to_string(dir.path().join("experiment.log")).ok();
        (dir, log)
    };
    assert_eq!(run(false).1, None);
    let (_dir, log) = run(true);
    let log = log.expect("asked for, experiment.log is written");
    assert!(log.contains("burn_train"), "{log}");
}

#[test]
fn the_queue_after_a_learner_step_equals_the_plain_api_step() {
    let device = flex();
    let batch = first_batch(10, &device);

    let net = network(&device);
    // The plain API: network, then the loss.
    let plain = model(&net, &device);
    let output = plain.network.heads(batch.images.clone());
    let expected = loss_of(&plain)
        .forward(output, batch.labels.clone())
        .unwrap();

    // The Learner: its train step, its scheduler step and its optimiser step.
    let mut learner = Learner::new(model(&net, &device), SgdConfig::new().init(), 0.1);
    let out = learner.train_step(batch);
    learner.lr_step();
    learner.optimizer_step(out.grads);
    assert_eq!(
        common::scalar(out.item.total.clone()),
        common::scalar(expected.total)
    );
    assert_eq!(queue(loss_of(&learner.model())), queue(loss_of(&plain)));
    assert_ne!(
        queue(loss_of(&learner.model())),
        queue(loss_of(&model(&net, &device)))
    );
}

/// A step that checks on the host (nothing read from the device, as on a GPU) and one that
/// reads its checks from the device give the same loss values, gradients and queue; only the
/// first leaves the finiteness flag for the metrics to read.
#[test]
fn a_host_checked_step_equals_a_device_checked_step() {
    let device = flex();
    let net = network(&device);
    for method in [Method::ResCom, Method::BalancedSoftmax] {
        let build = |checks: StepChecks| {
            let mut config = config(1);
            config.method = method;
            let objective = config.objective(&device).unwrap();
            LongTailModel::new(net.clone(), objective).with_step_checks(checks)
        };
        let (host, on_device) = (build(StepChecks::Host), build(StepChecks::Device));
        assert!(
            !StepChecks::Auto.on_host(&device),
            "flex keeps the device checks"
        );
        let a = host.step(first_batch(10, &device));
        let b = on_device.step(first_batch(10, &device));
        let values = |item: &rescom::train::TrainStepOutput| {
            let mut v = common::to_vec(item.total.clone());
            v.extend(common::to_vec(item.classification.clone()));
            v.extend(
                item.contrastive
                    .clone()
                    .map(common::to_vec)
                    .unwrap_or_default(),
            );
            v
        };
        assert_eq!(values(&a.item), values(&b.item), "{method:?}");
        assert_eq!(
            gradients(&host, &a.grads),
            gradients(&on_device, &b.grads),
            "{method:?}"
        );
        let flag = a
            .item
            .inputs_finite
            .clone()
            .expect("the host-checked step has a flag");
        assert!(flag.into_scalar::<bool>());
        assert!(b.item.inputs_finite.is_none());
        if method == Method::ResCom {
            assert_eq!(queue(loss_of(&host)), queue(loss_of(&on_device)));
        }
    }
}

/// Two replicas of five images (flex and ndarray): the gathered queue is the queue one device
/// holds after enqueueing the replicas' keys as one batch (replica 0, then replica 1; each
/// replica's projections use its own batch-norm statistics, as in data-parallel training),
/// and the gradients the strategy adds up (each replica's scaled by 1/2) are the mean of the
/// replicas' own gradients.
#[test]
fn replicas_gather_the_queue_and_average_the_gradients() {
    let (main, other) = (flex(), ndarray());
    let batch = first_batch(10, &main);
    let half = |b: &Batch, r: usize, device: &Device| {
        let n = b.images_in_batch / 2;
        let rows: Vec<i64> = (r * n..(r + 1) * n)
            .chain(2 * n + r * n..2 * n + (r + 1) * n)
            .map(|i| i as i64)
            .collect();
        let index = Tensor::<1, burn::tensor::Int>::from_ints(rows.as_slice(), &b.images.device());
        // Labels in the device's own integer type, as its loader would make them.
        let labels = common::to_ints(b.labels.clone().select(0, index.clone()));
        Batch {
            images: b.images.clone().select(0, index).to_device(device),
            labels: common::ints(&labels, device),
            host_labels: Vec::new(),
            images_in_batch: n,
        }
    };

    let net = network(&main);
    let single = model(&net, &main);

    let replicated = model(&net, &main).with_gradient_scale(0.5);
    // The same parameters (ids included), used through the plain API.
    let reference = replicated.clone();
    loss_of(&replicated)
        .set_replicas(&[main.clone(), other.clone()])
        .unwrap();
    let mut summed = GradientsAccumulator::new();
    let mut own = Vec::new();
    let mut outputs = Vec::new();
    for (r, device) in [main.clone(), other.clone()].iter().enumerate() {
        let share = half(&batch, r, device);
        // The replica's own gradient, from the plain API on the queue before the step.
        let replica = reference.clone().fork(device);
        let output = replica.network.heads(share.images.clone());
        outputs.push((
            output.logits.clone().detach().to_device(&main),
            output.projections.clone().detach().to_device(&main),
            common::to_ints(share.labels.clone()),
        ));
        let value = loss_of(&replica)
            .loss(output, share.labels.clone())
            .unwrap();
        let grads = GradientsParams::from_grads(value.total.backward(), &replica);
        own.push(gradients(&reference, &grads.to_device(&main, &reference)));
        // The replica's step as the multi-device strategy runs it.
        let step = TrainStep::step(&replicated.clone().fork(device), share);
        summed.accumulate(&replicated, step.grads.to_device(&main, &replicated));
    }
    // One device, the same keys as one batch: [view 1 of both replicas; view 2 of both].
    let n = batch.images_in_batch / 2;
    let views = |t: &Tensor<2>, v: usize| t.clone().narrow(0, v * n, n);
    let (logits, projections): (Vec<_>, Vec<_>) = (0..2)
        .flat_map(|v| {
            outputs
                .iter()
                .map(move |o| (views(&o.0, v), views(&o.1, v)))
        })
        .unzip();
    let labels: Vec<i64> = (0..2)
        .flat_map(|v| {
            outputs
                .iter()
                .flat_map(move |o| o.2[v * n..(v + 1) * n].to_vec())
        })
        .collect();
    loss_of(&single)
        .forward(
            rescom::ResComLossInput {
                logits: Tensor::cat(logits, 0),
                projections: Tensor::cat(projections, 0),
            },
            common::ints(&labels, &main),
        )
        .unwrap();
    let (gathered, expected) = (queue(loss_of(&replicated)), queue(loss_of(&single)));
    assert_eq!(gathered.1, expected.1);
    for (a, e) in gathered.0.iter().zip(&expected.0) {
        assert!((a - e).abs() < 1e-6, "{a} vs {e}");
    }
    assert_ne!(gathered.0, queue(loss_of(&model(&net, &main))).0);

    let summed = gradients(&replicated, &summed.grads());
    assert_eq!(summed.len(), own[0].len());
    assert!(!summed.is_empty());
    for (i, total) in summed.iter().enumerate() {
        let mean = (own[0][i] + own[1][i]) / 2.0;
        assert!(
            (total - mean).abs() <= 1e-5 + 1e-4 * mean.abs(),
            "gradient {i}: {total} vs mean {mean}"
        );
    }
}

/// burn-train's multi-device strategy itself, with flex and ndarray as the two devices.
#[test]
fn the_multi_device_strategy_runs_on_two_cpu_backends() {
    let dir = tempfile::tempdir().unwrap();
    let outcome = fit(
        &config(2),
        network(&flex()),
        data(10),
        quiet(dir.path(), Devices::MultiDevice(vec![flex(), ndarray()])),
    )
    .unwrap();
    assert_eq!(outcome.epochs_done(), 2);
    assert!(outcome.history.iter().all(|r| r.train.loss.is_finite()));
    // Every image's view-1 key reached the queue once per epoch, from either replica.
    let pointers = queue(loss_of(&outcome.model)).1;
    let expected: Vec<i64> = COUNTS.iter().map(|&n| (2 * n % 4) as i64).collect();
    assert_eq!(pointers, expected);
    // The batch of 10 is the global batch of a step: 5 images per device, so each device's
    // 25 images take 5 steps an epoch (10 in all), not the 3 of a batch of 10 per device.
    let checkpoints = CheckpointDir::new(dir.path().join("checkpoint"));
    let schedule: LrSchedulerRecord = checkpoints.read(Record::Scheduler, 2).unwrap();
    assert_eq!(EpochLrScheduler::steps_in(&schedule).unwrap(), 10);
    // A global batch that does not split evenly across the devices is refused.
    let err = fit(
        &config(2),
        network(&flex()),
        data(9),
        quiet(dir.path(), Devices::MultiDevice(vec![flex(), ndarray()])),
    )
    .err()
    .unwrap();
    assert!(
        matches!(
            err,
            rescom::Error::InvalidConfig {
                field: "batch_size",
                ..
            }
        ),
        "{err}"
    );
}

#[test]
fn loaders_are_burn_data_loaders_epoch_by_epoch() {
    let device = Device::flex();
    let labels = |b: &Batch| common::to_ints(b.labels.clone());
    let whole = loader(8, &device);
    let epochs: Vec<Vec<Vec<i64>>> = (0..2)
        .map(|_| whole.iter().map(|b| labels(&b.unwrap())).collect())
        .collect();
    // Each `iter` is the next epoch, as the inherent API gives it.
    for (e, epoch) in epochs.iter().enumerate() {
        let direct: Vec<Vec<i64>> = whole
            .epoch(e)
            .unwrap()
            .map(|b| labels(&b.unwrap()))
            .collect();
        assert_eq!(epoch, &direct);
    }
    assert_ne!(epochs[0], epochs[1]);
    // A resumed loader starts where it is told.
    let resumed = loader(8, &device).starting_at(1);
    let again: Vec<Vec<i64>> = resumed.iter().map(|b| labels(&b.unwrap())).collect();
    assert_eq!(again, epochs[1]);
    // Slices split the epoch's order into contiguous shares.
    let n = whole.num_items();
    let first = loader(8, &device).slice(0, n / 2);
    let second = loader(8, &device).slice(n / 2, n);
    assert_eq!(first.num_items() + second.num_items(), n);
    let mut shares: Vec<i64> = Vec::new();
    for share in [first, second] {
        let mut it = share.iter();
        for b in it.by_ref() {
            let rows = labels(&b.unwrap());
            shares.extend(&rows[..rows.len() / 2]);
        }
        assert_eq!(it.progress().items_processed, share.num_items());
    }
    let whole_order: Vec<i64> = epochs[0]
        .iter()
        .flat_map(|rows| rows[..rows.len() / 2].to_vec())
        .collect();
    assert_eq!(shares, whole_order);
    // Split across two devices: 25 images each, in batches of 4.
    let split = loader(8, &device).split_across(2).unwrap();
    assert_eq!(split.steps_per_epoch(), 7);
}
