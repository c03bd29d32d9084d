//! The trusted path of a training step (`ResComLoss::forward_trusted`,
//! `BalancedSoftmaxLoss::forward_trusted`): the same values, gradients and queue as the checked
//! path, labels checked from the host copy, and non-finite inputs reported by a flag instead of
//! an error.

mod common;

use burn::tensor::{DType, Device, Int, Tensor, TensorData};
use rescom::{
    BalancedSoftmaxLossConfig, Error, MemoryKind, ResComLoss, ResComLossConfig, ResComLossInput,
    ResComOutput, Rng,
};

use common::{ints, to_ints, to_vec};
use rescom::ClassBalancedContrastiveLossConfig;
use rescom::HardPairMinerConfig;

const COUNTS: [usize; 4] = [40, 20, 10, 5];
const DIM: usize = 6;

fn config(memory: MemoryKind) -> ResComLossConfig {
    ResComLossConfig::new(COUNTS.to_vec())
        .with_projection_dim(DIM)
        .with_queue_per_class(3)
        .with_seed(7)
        .with_memory(memory)
        .with_mining(
            HardPairMinerConfig::new()
                .with_hard_positives(2)
                .with_hard_negatives(5),
        )
        .with_contrastive(
            ClassBalancedContrastiveLossConfig::new()
                .with_prior_strength(0.3)
                .with_effective_num_beta(0.99),
        )
}

fn random(rows: usize, cols: usize, rng: &mut Rng, device: &Device) -> Tensor<2> {
    let values: Vec<f32> = (0..rows * cols).map(|_| rng.normal() as f32).collect();
    Tensor::from_data(TensorData::new(values, [rows, cols]), device)
}

/// View-major labels of `n` images drawn at random.
fn labels(n: usize, rng: &mut Rng) -> Vec<i64> {
    let view1: Vec<i64> = (0..n).map(|_| rng.index(COUNTS.len()) as i64).collect();
    view1.iter().chain(&view1).copied().collect()
}

fn memory_state(loss: &ResComLoss) -> Vec<f64> {
    match loss.memory() {
        rescom::KeyMemory::ClassBalanced(queue) => {
            let mut state = to_vec(queue.keys());
            state.extend(to_ints(queue.pointers()).iter().map(|&p| p as f64));
            state
        }
        rescom::KeyMemory::Fifo(queue) => {
            let mut state = to_vec(queue.keys());
            state.extend(to_ints(queue.labels()).iter().map(|&l| l as f64));
            state
        }
    }
}

/// The three values, both input gradients, and the finiteness flag of one step.
fn step(
    loss: &ResComLoss,
    projections: &Tensor<2>,
    logits: &Tensor<2>,
    host_labels: &[i64],
    trusted: bool,
) -> (Vec<f64>, Vec<f64>, Vec<f64>, bool) {
    let device = projections.device();
    let projections = projections.clone().require_grad();
    let logits = logits.clone().require_grad();
    let output = ResComLossInput {
        logits: logits.clone(),
        projections: projections.clone(),
    };
    let labels = ints(host_labels, &device);
    let out: ResComOutput = if trusted {
        loss.forward_trusted(output, labels, host_labels).unwrap()
    } else {
        loss.forward(output, labels).unwrap()
    };
    let values = [&out.total, &out.classification, &out.contrastive]
        .iter()
        .flat_map(|t| to_vec((*t).clone()))
        .collect();
    let finite = out.inputs_finite.clone().into_scalar::<bool>();
    let grads = out.total.backward();
    (
        values,
        to_vec(projections.grad(&grads).unwrap()),
        to_vec(logits.grad(&grads).unwrap()),
        finite,
    )
}

/// Several steps on two copies of a loss, one through each path: every value, gradient and
/// queue state is the same, bit for bit, for both memories.
#[test]
fn the_trusted_path_gives_the_values_of_the_checked_path() {
    let device = Device::flex().autodiff();
    for memory in [MemoryKind::ClassBalanced, MemoryKind::Fifo] {
        let checked = config(memory).init(&device).unwrap();
        let trusted = config(memory).init(&device).unwrap();
        let mut rng = Rng::new(11);
        for s in 0..4 {
            let host_labels = labels(5, &mut rng);
            let projections = random(10, DIM, &mut rng, &device);
            let logits = random(10, COUNTS.len(), &mut rng, &device);
            let a = step(&checked, &projections, &logits, &host_labels, false);
            let b = step(&trusted, &projections, &logits, &host_labels, true);
            assert_eq!(
                a, b,
                "{memory:?}, step {s}: values, gradients or flag differ"
            );
            assert!(b.3, "finite inputs are flagged finite");
            assert_eq!(
                memory_state(&checked),
                memory_state(&trusted),
                "{memory:?}, step {s}: the queues differ"
            );
        }
    }
}

/// The labels are checked from the host copy: every error of the checked path, and the queue
/// unchanged after each.
#[test]
fn the_trusted_path_checks_the_host_labels() {
    let device = Device::flex();
    let loss = config(MemoryKind::ClassBalanced).init(&device).unwrap();
    let before = memory_state(&loss);
    let mut rng = Rng::new(3);
    let output = |rows: usize, rng: &mut Rng| ResComLossInput {
        logits: random(rows, COUNTS.len(), rng, &device),
        projections: random(rows, DIM, rng, &device),
    };
    let run = |host: &[i64], device_labels: &[i64], rng: &mut Rng| {
        loss.forward_trusted(
            output(device_labels.len(), rng),
            ints(device_labels, &device),
            host,
        )
        .unwrap_err()
    };
    let out_of_range = [0, 4, 1, 0, 4, 1];
    assert!(matches!(
        run(&out_of_range, &out_of_range, &mut rng),
        Error::LabelOutOfRange {
            row: 1,
            label: 4,
            ..
        }
    ));
    let negative = [0, -1, 0, -1];
    assert!(matches!(
        run(&negative, &negative, &mut rng),
        Error::LabelOutOfRange { label: -1, .. }
    ));
    let views_differ = [0, 1, 2, 0, 2, 2];
    assert!(matches!(
        run(&views_differ, &views_differ, &mut rng),
        Error::ViewLabelMismatch { row: 1, .. }
    ));
    // A host copy of another length than the labels on the device.
    assert!(matches!(
        run(&[0, 1, 0, 1], &[0, 1, 2, 0, 1, 2], &mut rng),
        Error::Shape {
            name: "host_labels",
            ..
        }
    ));
    let odd = [0, 1, 2];
    assert!(matches!(
        run(&odd, &odd, &mut rng),
        Error::OddRows { rows: 3 }
    ));
    assert_eq!(memory_state(&loss), before);
}

/// NaN or infinite inputs: the checked path refuses them, the trusted path computes and flags
/// them.
#[test]
fn the_trusted_path_flags_non_finite_inputs() {
    let device = Device::flex().autodiff();
    let host_labels = [0, 1, 2, 0, 1, 2];
    let mut rng = Rng::new(5);
    for (what, row, value) in [("logits", 2, f32::NAN), ("projections", 4, f32::INFINITY)] {
        let mut projections = random(6, DIM, &mut rng, &device);
        let mut logits = random(6, COUNTS.len(), &mut rng, &device);
        let bad = Tensor::<2>::full([1, 1], value, &device);
        if what == "logits" {
            logits = logits.slice_assign([row..row + 1, 0..1], bad);
        } else {
            projections = projections.slice_assign([row..row + 1, 0..1], bad);
        }
        let output = || ResComLossInput {
            logits: logits.clone(),
            projections: projections.clone(),
        };
        let checked = config(MemoryKind::ClassBalanced).init(&device).unwrap();
        let err = checked
            .forward(output(), ints(&host_labels, &device))
            .unwrap_err();
        assert!(
            matches!(err, Error::NonFinite { name } if name == what),
            "{err}"
        );
        let trusted = config(MemoryKind::ClassBalanced).init(&device).unwrap();
        let out = trusted
            .forward_trusted(output(), ints(&host_labels, &device), &host_labels)
            .unwrap();
        assert!(!out.inputs_finite.into_scalar::<bool>(), "{what}");
    }
}

/// Balanced Softmax: the same value and gradient through both paths, its labels checked from
/// the host copy, and a NaN logit flagged.
#[test]
fn balanced_softmax_trusted_path() {
    let device = Device::flex().autodiff();
    let loss = BalancedSoftmaxLossConfig::new(COUNTS.to_vec())
        .init(&device)
        .unwrap();
    let mut rng = Rng::new(9);
    let host_labels = [3, 0, 1, 1, 2, 0, 3];
    let logits = random(7, COUNTS.len(), &mut rng, &device).cast(DType::F32);
    let value_and_grad = |trusted: bool| {
        let z = logits.clone().require_grad();
        let labels = ints(&host_labels, &device);
        let (value, finite) = if trusted {
            let out = loss
                .forward_trusted(z.clone(), labels, &host_labels)
                .unwrap();
            (out.loss, out.inputs_finite)
        } else {
            let value = loss.forward(z.clone(), labels).unwrap();
            (
                value,
                Tensor::<1, burn::tensor::Bool>::from_bool(TensorData::from([true]), &device),
            )
        };
        let grad = to_vec(z.grad(&value.backward()).unwrap());
        (to_vec(value), grad, finite.into_scalar::<bool>())
    };
    assert_eq!(value_and_grad(true), value_and_grad(false));

    let err = loss
        .forward_trusted(
            logits.clone(),
            ints(&host_labels, &device),
            &[3, 0, 1, 1, 2, 0, 4],
        )
        .unwrap_err();
    assert!(
        matches!(err, Error::LabelOutOfRange { row: 6, .. }),
        "{err}"
    );

    let nan = logits.slice_assign([0..1, 0..1], Tensor::full([1, 1], f32::NAN, &device));
    let out = loss
        .forward_trusted(nan, ints(&host_labels, &device), &host_labels)
        .unwrap();
    assert!(!out.inputs_finite.into_scalar::<bool>());
}

/// The metric that reads a step's results stops the run on a `false` flag.
#[test]
fn a_false_flag_stops_the_run_at_the_metrics() {
    use burn::data::dataloader::Progress;
    use burn::train::metric::{Metric, MetricMetadata};
    use rescom::train::{TrainRecordMetric, TrainStepOutput};

    let device = Device::flex();
    let metadata = || MetricMetadata {
        progress: Progress {
            items_processed: 1,
            items_total: 1,
            unit: None,
        },
        iteration: Some(0),
        lr: None,
    };
    let output = |finite: Option<bool>| TrainStepOutput {
        total: Tensor::<1>::from_floats([1.5], &device),
        classification: Tensor::<1>::from_floats([1.0], &device),
        contrastive: Some(Tensor::<1>::from_floats([1.0], &device)),
        logits: Tensor::<2>::from_floats([[1.0, 0.0], [0.0, 1.0]], &device),
        targets: Tensor::<1, Int>::from_ints([0, 1], &device),
        images: 1,
        started: std::time::Instant::now(),
        failure: None,
        inputs_finite: finite
            .map(|f| Tensor::<1, burn::tensor::Bool>::from_bool(TensorData::from([f]), &device)),
    };
    for finite in [None, Some(true)] {
        let mut metric = TrainRecordMetric::new();
        assert!(
            metric.update(&output(finite), &metadata()).is_ok(),
            "{finite:?}"
        );
        assert_eq!(metric.record().loss, 1.5);
    }
    let mut metric = TrainRecordMetric::new();
    let err = metric
        .update(&output(Some(false)), &metadata())
        .unwrap_err();
    assert!(format!("{err:?}").contains("NaN or infinity"), "{err:?}");
}
