//! Training runs stop and resume exactly, checkpoints are atomic, and a non-finite loss stops
//! the run while keeping the last good checkpoint.

mod common;

use std::path::Path;

use burn::module::{Module, Param, ParamId};
use burn::nn::{BatchNorm, BatchNormConfig, Linear, Relu};
use burn::tensor::{Device, Int, Tensor, TensorData};
use rescom::train::{
    Batch, EvalData, LossSettings, LrSchedule, Method, Network, Parts, Silent, TrainConfig,
    TrainData, Trainer,
};
use rescom::{Error, Rng};

const CLASSES: usize = 3;
const INPUT: usize = 6;
const COUNTS: [usize; CLASSES] = [24, 12, 6];

/// A small network with every kind of state a real one has: weights, batch-norm running
/// statistics, and a projection head.
#[derive(Module, Debug)]
struct Tiny {
    body: Linear,
    norm: BatchNorm,
    relu: Relu,
    classifier: Linear,
    projection: Linear,
}

impl Tiny {
    /// Deterministic initialisation from the crate's generator (the device generator is
    /// shared by the test threads and draws lazily).
    fn new(device: &Device) -> Self {
        let mut rng = Rng::new(7);
        let mut linear = |input: usize, output: usize| {
            let values: Vec<f32> = (0..input * output)
                .map(|_| (rng.normal() / (input as f64).sqrt()) as f32)
                .collect();
            Linear {
                weight: Param::initialized(
                    ParamId::new(),
                    Tensor::from_data(TensorData::new(values, [input, output]), device),
                ),
                bias: Some(Param::initialized(
                    ParamId::new(),
                    Tensor::zeros([output], device),
                )),
            }
        };
        Self {
            body: linear(INPUT, 8),
            norm: BatchNormConfig::new(8).init(device),
            relu: Relu::new(),
            classifier: linear(8, CLASSES),
            projection: linear(8, 4),
        }
    }

    fn features(&self, images: Tensor<4>) -> Tensor<2> {
        let [b, ..] = images.dims();
        let x = self.body.forward(images.reshape([b, INPUT]));
        let x = self.norm.forward(x.reshape([b, 8, 1])).reshape([b, 8]);
        self.relu.forward(x)
    }
}

impl Network for Tiny {
    fn forward_train(&self, images: Tensor<4>) -> (Tensor<2>, Tensor<2>) {
        let f = self.features(images);
        (
            self.classifier.forward(f.clone()),
            self.projection.forward(f),
        )
    }

    fn forward_logits(&self, images: Tensor<4>) -> Tensor<2> {
        self.classifier.forward(self.features(images))
    }
}

/// Deterministic two-view data: class `c` is a noisy prototype; noise is a pure function of
/// `(epoch, sample, view)`.
struct Synthetic {
    device: Device,
    labels: Vec<i64>,
    poison_epoch: Option<usize>,
}

impl Synthetic {
    fn new(device: &Device) -> Self {
        let labels = COUNTS
            .iter()
            .enumerate()
            .flat_map(|(c, &n)| std::iter::repeat_n(c as i64, n))
            .collect();
        Self {
            device: device.clone(),
            labels,
            poison_epoch: None,
        }
    }

    fn image(label: i64, key: &[u64]) -> Vec<f32> {
        let mut rng = Rng::from_key(key);
        (0..INPUT)
            .map(|i| if i as i64 == label { 2.0 } else { 0.0 } + 0.5 * rng.normal() as f32)
            .collect()
    }
}

impl TrainData for Synthetic {
    fn steps_per_epoch(&self) -> usize {
        self.labels.len().div_ceil(12)
    }

    fn epoch(
        &mut self,
        epoch: usize,
    ) -> rescom::Result<Box<dyn Iterator<Item = rescom::Result<Batch>> + '_>> {
        let mut order: Vec<usize> = (0..self.labels.len()).collect();
        Rng::from_key(&[1, epoch as u64]).shuffle(&mut order);
        let poison = self.poison_epoch == Some(epoch);
        let batches: Vec<Vec<usize>> = order.chunks(12).map(<[usize]>::to_vec).collect();
        Ok(Box::new(batches.into_iter().map(move |chunk| {
            let n = chunk.len();
            let mut pixels = Vec::with_capacity(2 * n * INPUT);
            for view in 0..2u64 {
                for &i in &chunk {
                    pixels.extend(Self::image(self.labels[i], &[epoch as u64, i as u64, view]));
                }
            }
            if poison {
                pixels[0] = f32::NAN;
            }
            let labels: Vec<i64> = chunk
                .iter()
                .chain(&chunk)
                .map(|&i| self.labels[i])
                .collect();
            Ok(Batch {
                images: Tensor::from_data(
                    TensorData::new(pixels, [2 * n, 1, 1, INPUT]),
                    &self.device,
                ),
                labels: Tensor::<1, Int>::from_data(
                    TensorData::new(labels.clone(), [2 * n]),
                    &self.device,
                ),
                host_labels: labels,
                images_in_batch: n,
            })
        })))
    }
}

impl EvalData for Synthetic {
    fn len(&self) -> usize {
        30
    }

    fn batches(&mut self) -> rescom::Result<Box<dyn Iterator<Item = rescom::Result<Batch>> + '_>> {
        let device = self.device.clone();
        Ok(Box::new((0..3).map(move |b| {
            let labels: Vec<i64> = (0..10).map(|i| ((b * 10 + i) % CLASSES) as i64).collect();
            let pixels: Vec<f32> = labels
                .iter()
                .enumerate()
                .flat_map(|(i, &l)| Self::image(l, &[99, b as u64, i as u64]))
                .collect();
            Ok(Batch {
                images: Tensor::from_data(TensorData::new(pixels, [10, 1, 1, INPUT]), &device),
                labels: Tensor::<1, Int>::from_data(TensorData::new(labels.clone(), [10]), &device),
                host_labels: labels,
                images_in_batch: 10,
            })
        })))
    }
}

fn config(method: Method, epochs: usize) -> TrainConfig {
    TrainConfig {
        method,
        parts: Parts::default(),
        loss: LossSettings {
            dim: 4,
            queue_per_class: 3,
            hard_positives: 2,
            hard_negatives: 4,
            temperature: 0.2,
            contrast_weight: 0.5,
            effective_num_beta: 0.99,
            prior_strength: 0.0,
        },
        epochs,
        schedule: LrSchedule::cifar_recipe(0.05, epochs),
        momentum: 0.9,
        weight_decay: 5e-4,
        seed: 3,
        // Checkpoints after epochs without an evaluation must hold fresh batch-norm statistics.
        eval_every: 3,
        dataset: "synthetic".into(),
    }
}

fn weights(model: &Tiny) -> Vec<f64> {
    let mut out = Vec::new();
    for t in [
        model.body.weight.val(),
        model.classifier.weight.val(),
        model.projection.weight.val(),
    ] {
        out.extend(common::to_vec(t));
    }
    out.extend(common::to_vec(model.norm.running_mean.value()));
    out.extend(common::to_vec(model.norm.running_var.value()));
    out
}

fn run(config: TrainConfig, out: &Path, resume: bool) -> Trainer<Tiny> {
    run_for(config, out, resume, usize::MAX)
}

fn run_for(config: TrainConfig, out: &Path, resume: bool, epochs: usize) -> Trainer<Tiny> {
    let device = Device::flex().autodiff();
    let model = Tiny::new(&device);
    let mut trainer = if resume {
        Trainer::resume(config, model, &COUNTS, &device, out).unwrap()
    } else {
        Trainer::new(config, model, &COUNTS, &device, out).unwrap()
    };
    let mut data = Synthetic::new(&device);
    let mut test = Synthetic::new(&device);
    trainer
        .fit_epochs(&mut data, &mut test, &mut Silent, epochs)
        .unwrap();
    trainer
}

#[test]
fn resumed_runs_are_bit_identical() {
    for method in [Method::Rescom, Method::BalancedSoftmax] {
        let straight_dir = tempfile::tempdir().unwrap();
        let split_dir = tempfile::tempdir().unwrap();
        let straight = run(config(method, 4), straight_dir.path(), false);

        let first = run_for(config(method, 4), split_dir.path(), false, 2);
        assert_eq!(first.epochs_done(), 2);
        let resumed = run(config(method, 4), split_dir.path(), true);
        assert_eq!(resumed.epochs_done(), 4);

        assert_eq!(
            weights(straight.model()),
            weights(resumed.model()),
            "{method:?}"
        );
        if let (Some(a), Some(b)) = (straight.rescom_loss(), resumed.rescom_loss()) {
            assert_eq!(
                common::to_vec(a.queue().keys()),
                common::to_vec(b.queue().keys())
            );
            assert_eq!(
                common::to_ints(a.queue().pointers()),
                common::to_ints(b.queue().pointers())
            );
        }
        let untimed = |t: &Trainer<Tiny>| {
            t.history()
                .iter()
                .cloned()
                .map(|mut r| {
                    r.seconds = 0.0;
                    r.images_per_second = 0.0;
                    r
                })
                .collect::<Vec<_>>()
        };
        assert_eq!(untimed(&straight), untimed(&resumed));
        for file in [
            "summary.json",
            "metrics.csv",
            "metrics.jsonl",
            "curves.svg",
            "per_class.svg",
        ] {
            let a = std::fs::read(straight_dir.path().join(file)).unwrap();
            let b = std::fs::read(split_dir.path().join(file)).unwrap();
            if file != "metrics.csv" && file != "metrics.jsonl" && !file.ends_with(".svg") {
                // Timings differ between runs; everything else must agree.
                let a: serde_json::Value = serde_json::from_slice(&a).unwrap();
                let b: serde_json::Value = serde_json::from_slice(&b).unwrap();
                assert_eq!(a, b);
            } else {
                assert!(!a.is_empty() && !b.is_empty());
            }
        }
    }
}

#[test]
fn the_trainer_learns_and_writes_its_summary() {
    let dir = tempfile::tempdir().unwrap();
    let mut learning = config(Method::Rescom, 12);
    learning.schedule = LrSchedule::Constant { lr: 0.2 };
    let trainer = run(learning, dir.path(), false);
    let summary: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("summary.json")).unwrap()).unwrap();
    for key in [
        "method",
        "dataset",
        "epochs",
        "top1",
        "top5",
        "many",
        "medium",
        "few",
        "per_class",
    ] {
        assert!(summary.get(key).is_some(), "summary.json lacks {key}");
    }
    assert_eq!(summary["method"], "rescom");
    let top1 = summary["top1"].as_f64().unwrap();
    assert!((0.0..=1.0).contains(&top1));
    assert!(
        top1 > 0.6,
        "the separable synthetic task should be learnt: top-1 {top1}"
    );
    let history = trainer.history();
    assert!(history.last().unwrap().loss < history[0].loss);
}

#[test]
fn a_non_finite_loss_stops_the_run_and_keeps_the_last_checkpoint() {
    let dir = tempfile::tempdir().unwrap();
    let device = Device::flex().autodiff();
    let mut trainer = Trainer::new(
        config(Method::CrossEntropy, 3),
        Tiny::new(&device),
        &COUNTS,
        &device,
        dir.path(),
    )
    .unwrap();
    let mut data = Synthetic::new(&device);
    data.poison_epoch = Some(1);
    let mut test = Synthetic::new(&device);
    let err = trainer.fit(&mut data, &mut test, &mut Silent).unwrap_err();
    // The NaN image reaches the loss as a non-finite logit, which the loss rejects.
    assert!(
        matches!(
            err,
            Error::NonFinite { .. } | Error::NonFiniteLoss { epoch: 1, .. }
        ),
        "{err}"
    );
    // The checkpoint of epoch 0 is intact and resumable.
    let resumed = Trainer::resume(
        config(Method::CrossEntropy, 3),
        Tiny::new(&device),
        &COUNTS,
        &device,
        dir.path(),
    )
    .unwrap();
    assert_eq!(resumed.epochs_done(), 1);
}

#[test]
fn resuming_with_another_configuration_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    run(config(Method::CrossEntropy, 1), dir.path(), false);
    let device = Device::flex().autodiff();
    let err = Trainer::resume(
        config(Method::Rescom, 2),
        Tiny::new(&device),
        &COUNTS,
        &device,
        dir.path(),
    )
    .err()
    .expect("must refuse");
    assert!(matches!(err, Error::Checkpoint { .. }), "{err}");
    let missing = tempfile::tempdir().unwrap();
    let err = Trainer::resume(
        config(Method::Rescom, 2),
        Tiny::new(&device),
        &COUNTS,
        &device,
        missing.path(),
    )
    .err()
    .expect("no checkpoint");
    assert!(err.to_string().contains("checkpoint.bin"), "{err}");
}
