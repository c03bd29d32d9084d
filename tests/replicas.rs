//! The loss used through a shared reference: the queue update is kept across clones and
//! forks, replicas on several devices enqueue in replica order, and the queue travels with a
//! model's record while an optimiser never changes it.

mod common;

use burn::module::Module;
use burn::optim::{GradientsParams, SgdConfig, decay::WeightDecayConfig, momentum::MomentumConfig};
use burn::tensor::{Device, Int, Tensor, TensorData};
use rescom::{Error, ResComLoss, ResComLossConfig, ResComLossInput, Rng};

use common::{to_ints, to_vec};
use rescom::HardPairMinerConfig;

const CLASSES: usize = 4;
const DIM: usize = 5;

fn loss(device: &Device) -> ResComLoss {
    ResComLossConfig::new(vec![40, 20, 10, 5])
        .with_projection_dim(DIM)
        .with_queue_per_class(3)
        .with_seed(11)
        .with_mining(
            HardPairMinerConfig::new()
                .with_hard_positives(2)
                .with_hard_negatives(5),
        )
        .init(device)
        .unwrap()
}

#[allow(deprecated)]
fn ndarray() -> Device {
    Device::ndarray().autodiff()
}

fn flex() -> Device {
    Device::flex().autodiff()
}

/// A two-view batch of `labels.len()` images: random projections and logits, labels repeated.
struct Batch {
    projections: Vec<f32>,
    logits: Vec<f32>,
    labels: Vec<i64>,
}

impl Batch {
    fn new(labels: &[i64], seed: u64) -> Self {
        let mut rng = Rng::new(seed);
        let rows = 2 * labels.len();
        let mut draw = |n: usize| (0..n).map(|_| rng.normal() as f32).collect::<Vec<_>>();
        Self {
            projections: draw(rows * DIM),
            logits: draw(rows * CLASSES),
            labels: labels.iter().chain(labels).copied().collect(),
        }
    }

    fn rows(&self) -> usize {
        self.labels.len()
    }

    /// Rows `range` of view 1 and the same rows of view 2: a replica's share of the batch.
    fn share(&self, images: std::ops::Range<usize>) -> Self {
        let n = self.rows() / 2;
        let rows: Vec<usize> = images.clone().chain(images.map(|i| i + n)).collect();
        Self {
            projections: rows
                .iter()
                .flat_map(|&r| self.projections[r * DIM..(r + 1) * DIM].to_vec())
                .collect(),
            logits: rows
                .iter()
                .flat_map(|&r| self.logits[r * CLASSES..(r + 1) * CLASSES].to_vec())
                .collect(),
            labels: rows.iter().map(|&r| self.labels[r]).collect(),
        }
    }

    fn on(&self, device: &Device) -> (ResComLossInput, Tensor<1, Int>) {
        let rows = self.rows();
        (
            ResComLossInput {
                logits: Tensor::from_data(
                    TensorData::new(self.logits.clone(), [rows, CLASSES]),
                    device,
                )
                .require_grad(),
                projections: Tensor::from_data(
                    TensorData::new(self.projections.clone(), [rows, DIM]),
                    device,
                )
                .require_grad(),
            },
            common::ints(&self.labels, device),
        )
    }
}

fn queue_of(loss: &ResComLoss) -> (Vec<f64>, Vec<i64>) {
    let queue = loss.queue();
    (to_vec(queue.keys()), to_ints(queue.pointers()))
}

fn forward(loss: &ResComLoss, batch: &Batch, device: &Device) -> f64 {
    let (output, labels) = batch.on(device);
    common::scalar(loss.forward(output, labels).unwrap().total)
}

/// Ten images with a class occurring more often than `K = 3`, so the ring wraps.
const LABELS: [i64; 10] = [0, 1, 1, 3, 1, 2, 1, 1, 0, 3];

#[test]
fn clones_share_the_queue_update() {
    let device = flex();
    let loss = loss(&device);
    let before = queue_of(&loss);
    let clone = loss.clone();
    forward(&clone, &Batch::new(&LABELS, 1), &device);
    let after = queue_of(&loss);
    assert_ne!(after, before, "the update of a clone is kept");
    assert_eq!(after, queue_of(&clone));
    // A fork to the same device shares it too.
    let fork = loss.clone().fork(&device);
    forward(&fork, &Batch::new(&LABELS, 2), &device);
    assert_ne!(queue_of(&loss), after);
}

/// Two replicas of five images each (flex, then ndarray) leave the queue one device leaves
/// after the ten images; both replicas hold it.
#[test]
fn two_replicas_enqueue_like_one_device_with_the_whole_batch() {
    let batch = Batch::new(&LABELS, 3);
    let single = loss(&flex());
    forward(&single, &batch, &flex());
    let expected = queue_of(&single);

    let (main, other) = (flex(), ndarray());
    let replicated = loss(&main);
    replicated
        .set_replicas(&[main.clone(), other.clone()])
        .unwrap();
    let replica0 = replicated.clone().fork(&main);
    let replica1 = replicated.clone().fork(&other);
    let before = queue_of(&replicated);
    // The second replica computes first: the order of the devices, not of the calls, counts.
    forward(&replica1, &batch.share(5..10), &other);
    assert_eq!(queue_of(&replicated), before, "waits for replica 0");
    forward(&replica0, &batch.share(0..5), &main);
    for loss in [&replicated, &replica0, &replica1] {
        let (keys, pointers) = queue_of(loss);
        assert_eq!(pointers, expected.1);
        for (a, e) in keys.iter().zip(&expected.0) {
            assert!((a - e).abs() < 1e-6, "{a} vs {e}");
        }
    }
}

/// Each replica reads the queue as it stood before the step: its loss equals the loss of its
/// share computed alone on the queue before the step.
#[test]
fn replicas_contrast_their_own_batch_with_the_queue_before_the_step() {
    let batch = Batch::new(&LABELS, 4);
    let (main, other) = (flex(), ndarray());
    let reference = loss(&main);
    let alone: Vec<f64> = [0..5, 5..10]
        .into_iter()
        .map(|images| {
            let (output, labels) = batch.share(images).on(&main);
            common::scalar(reference.loss(output, labels).unwrap().total)
        })
        .collect();

    let replicated = loss(&main);
    replicated
        .set_replicas(&[main.clone(), other.clone()])
        .unwrap();
    let first = forward(&replicated, &batch.share(0..5), &main);
    let second = forward(
        &replicated.clone().fork(&other),
        &batch.share(5..10),
        &other,
    );
    assert!((first - alone[0]).abs() < 1e-6, "{first} vs {}", alone[0]);
    assert!((second - alone[1]).abs() < 1e-5, "{second} vs {}", alone[1]);
}

/// A barrier that fails instead of waiting forever when another thread has died.
struct Rendezvous {
    parties: usize,
    state: std::sync::Mutex<(usize, usize)>, // (arrived, generation)
    changed: std::sync::Condvar,
}

impl Rendezvous {
    fn new(parties: usize) -> Self {
        Self {
            parties,
            state: std::sync::Mutex::new((0, 0)),
            changed: std::sync::Condvar::new(),
        }
    }

    fn wait(&self) {
        let mut state = self.state.lock().unwrap();
        let generation = state.1;
        state.0 += 1;
        if state.0 == self.parties {
            *state = (0, generation + 1);
            self.changed.notify_all();
            return;
        }
        let (state, timeout) = self
            .changed
            .wait_timeout_while(state, std::time::Duration::from_secs(60), |s| {
                s.1 == generation
            })
            .unwrap();
        assert!(
            !timeout.timed_out() || state.1 != generation,
            "the other replica died"
        );
    }
}

/// Replicas on their own threads (as with one worker per device) give the same queue.
#[test]
fn concurrent_replicas_are_ordered_by_device() {
    let batch = Batch::new(&LABELS, 5);
    let single = loss(&flex());
    let mut expected = Vec::new();
    for step in 0..3 {
        forward(&single, &Batch::new(&LABELS, 10 + step), &flex());
        expected.push(queue_of(&single));
    }
    drop(batch);

    let devices = [flex(), ndarray()];
    let replicated = loss(&devices[0]);
    replicated.set_replicas(&devices).unwrap();
    let barrier = std::sync::Arc::new(Rendezvous::new(2));
    let handles: Vec<_> = devices
        .iter()
        .enumerate()
        .map(|(r, device)| {
            let (loss, device, barrier) = (
                replicated.clone().fork(device),
                device.clone(),
                barrier.clone(),
            );
            std::thread::spawn(move || {
                let mut seen = Vec::new();
                for step in 0..3 {
                    let share = Batch::new(&LABELS, 10 + step).share(5 * r..5 * (r + 1));
                    forward(&loss, &share, &device);
                    // The next step starts once both replicas have taken this one (the
                    // gradient exchange does this in data-parallel training).
                    barrier.wait();
                    seen.push(queue_of(&loss));
                    barrier.wait();
                }
                seen
            })
        })
        .collect();
    for handle in handles {
        let seen = handle.join().unwrap();
        for (step, ((keys, pointers), (e_keys, e_pointers))) in
            seen.iter().zip(&expected).enumerate()
        {
            assert_eq!(pointers, e_pointers, "step {step}");
            for (a, e) in keys.iter().zip(e_keys) {
                assert!((a - e).abs() < 1e-6, "step {step}: {a} vs {e}");
            }
        }
    }
}

/// A retried step replaces the keys it staged; a step only one replica took is written by
/// `flush_staged_keys`.
#[test]
fn retried_and_partial_steps_lose_and_duplicate_nothing() {
    let (main, other) = (flex(), ndarray());
    let batch = Batch::new(&LABELS, 6);

    let single = loss(&main);
    forward(&single, &batch, &main);
    let expected = queue_of(&single);
    let replicated = loss(&main);
    replicated
        .set_replicas(&[main.clone(), other.clone()])
        .unwrap();
    let replica1 = replicated.clone().fork(&other);
    forward(&replicated, &batch.share(0..5), &main);
    forward(&replicated, &batch.share(0..5), &main); // retried
    forward(&replica1, &batch.share(5..10), &other);
    assert_eq!(queue_of(&replicated).1, expected.1);

    // The last, shorter step of an epoch reaches only replica 0.
    let tail = Batch::new(&[2, 2, 0], 7);
    let single = loss(&main);
    forward(&single, &tail, &main);
    let expected = queue_of(&single);
    let replicated = loss(&main);
    replicated.set_replicas(&[main.clone(), other]).unwrap();
    let before = queue_of(&replicated);
    forward(&replicated, &tail, &main);
    assert_eq!(queue_of(&replicated), before);
    assert_eq!(replicated.flush_staged_keys(), 3);
    assert_eq!(queue_of(&replicated), expected);
    assert_eq!(replicated.flush_staged_keys(), 0);
}

#[test]
fn a_device_outside_the_replicas_is_an_error() {
    let (main, other) = (flex(), ndarray());
    let batch = Batch::new(&[0, 1], 8);
    // Undeclared: a second device is refused rather than silently racing.
    let undeclared = loss(&main);
    forward(&undeclared, &batch, &main);
    let before = queue_of(&undeclared);
    let (output, labels) = batch.on(&other);
    let err = undeclared.forward(output, labels).unwrap_err();
    assert!(
        matches!(
            err,
            Error::InvalidConfig {
                field: "replicas",
                ..
            }
        ),
        "{err}"
    );
    assert_eq!(queue_of(&undeclared), before);
    // Moving the whole loss is fine.
    let moved = undeclared.to_device(&other);
    forward(&moved, &batch, &other);

    let declared = loss(&main);
    declared.set_replicas(std::slice::from_ref(&main)).unwrap();
    let (output, labels) = batch.on(&other);
    assert!(declared.forward(output, labels).is_err());
    assert!(declared.set_replicas(&[main.clone(), main]).is_err());
}

/// The queue is part of the record (save, load), and an optimiser step leaves it untouched.
#[test]
fn the_queue_travels_in_the_record_and_the_optimiser_never_touches_it() {
    let device = flex();
    let trained = loss(&device);
    forward(&trained, &Batch::new(&LABELS, 9), &device);
    let state = queue_of(&trained);

    let fresh = loss(&device);
    assert_ne!(queue_of(&fresh), state);
    let bytes = trained.clone().into_record().into_bytes().unwrap();
    let record = burn::store::ModuleRecord::from_bytes(bytes).unwrap();
    let loaded = fresh.load_record(record);
    assert_eq!(queue_of(&loaded), state);

    // SGD with momentum and weight decay over a step whose gradients reach every parameter
    // that has one: the queue has none.
    let (output, labels) = Batch::new(&LABELS, 10).on(&device);
    let out = loaded.loss(output, labels).unwrap();
    let grads = GradientsParams::from_grads(out.total.backward(), &loaded);
    let mut optimizer = SgdConfig::new()
        .with_momentum(Some(MomentumConfig::new().with_dampening(0.0)))
        .with_weight_decay(Some(WeightDecayConfig::new(0.1)))
        .init();
    let stepped = optimizer.step(0.5, loaded, grads);
    assert_eq!(queue_of(&stepped), state);
}
