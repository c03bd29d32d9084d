//! The two sizes of the loss benches and the work timed at each: forward + backward +
//! enqueue of `ResComLoss`, the enqueue alone, and the queue similarities + hard pair mining
//! alone. Shared by `benches/loss.rs` (criterion) and `examples/gpu_check.rs`, so both time
//! the same code.
//!
//! The loss step calls the loss as a training step does: the caller says which path, the
//! trusted `ResComLoss::forward_trusted` (labels checked from their host copy, the finiteness
//! flag read after the step; what a step on a GPU takes) or the checked `ResComLoss::forward`
//! (what a step on the CPU backends takes).
//!
//! Sizes: CIFAR-100 recipe (2N = 256, D = 32, C = 100, K = 10, k_pos = 1, k_neg = 400) and an
//! ImageNet-LT size (2N = 512, D = 128, C = 1000, K = 4, k_pos = 2, k_neg = 1000).

use burn::tensor::{Device, Int, Tensor, TensorData};
use rescom::{
    ClassBalancedQueue, ClassBalancedQueueConfig, HardPairMiner, HardPairMinerConfig, MinedPairs,
    ResComLoss, ResComLossConfig, ResComLossInput, ResComOutput, Rng, l2_normalize,
};

/// One benchmark size.
pub struct Case {
    pub name: &'static str,
    pub rows: usize,
    pub dim: usize,
    pub classes: usize,
    pub per_class: usize,
    pub hard_positives: usize,
    pub hard_negatives: usize,
}

pub const CASES: [Case; 2] = [
    Case {
        name: "cifar100",
        rows: 256,
        dim: 32,
        classes: 100,
        per_class: 10,
        hard_positives: 1,
        hard_negatives: 400,
    },
    Case {
        name: "imagenet_lt",
        rows: 512,
        dim: 128,
        classes: 1000,
        per_class: 4,
        hard_positives: 2,
        hard_negatives: 1000,
    },
];

/// Exponential long-tailed histogram with imbalance 100 (at least one image per class).
fn class_counts(classes: usize, n_max: f64) -> Vec<usize> {
    (0..classes)
        .map(|c| {
            let exponent = -(c as f64) / (classes - 1) as f64;
            ((n_max * 100f64.powf(exponent)).floor() as usize).max(1)
        })
        .collect()
}

/// The inputs of a loss step.
pub struct Inputs {
    /// Raw projections, `[rows, dim]`.
    pub features: Tensor<2>,
    /// Logits, `[rows, classes]`.
    pub logits: Tensor<2>,
    /// View-major labels, `Int [rows]`.
    pub labels: Tensor<1, Int>,
    /// The labels on the host, as a loader delivers them with the batch.
    pub host_labels: Vec<i64>,
}

/// View-major labels drawn from the long-tailed histogram, and random inputs.
pub fn inputs(case: &Case, device: &Device) -> Inputs {
    let mut rng = Rng::new(1);
    let counts = class_counts(case.classes, 500.0);
    let total: usize = counts.iter().sum();
    let half = case.rows / 2;
    let view1: Vec<i64> = (0..half)
        .map(|_| {
            let mut r = rng.index(total);
            counts
                .iter()
                .position(|&n| {
                    if r < n {
                        true
                    } else {
                        r -= n;
                        false
                    }
                })
                .unwrap_or(0) as i64
        })
        .collect();
    let labels: Vec<i64> = view1.iter().chain(view1.iter()).copied().collect();
    let mut normal = |n: usize| (0..n).map(|_| rng.normal() as f32).collect::<Vec<f32>>();
    let features = Tensor::from_data(
        TensorData::new(normal(case.rows * case.dim), [case.rows, case.dim]),
        device,
    );
    let logits = Tensor::from_data(
        TensorData::new(normal(case.rows * case.classes), [case.rows, case.classes]),
        device,
    );
    let host_labels = labels;
    let labels = Tensor::from_data(TensorData::new(host_labels.clone(), [case.rows]), device);
    Inputs {
        features,
        logits,
        labels,
        host_labels,
    }
}

/// The loss of a case.
pub fn loss(case: &Case, device: &Device) -> ResComLoss {
    ResComLossConfig::new(class_counts(case.classes, 500.0))
        .with_projection_dim(case.dim)
        .with_queue_per_class(case.per_class)
        .with_mining(
            HardPairMinerConfig::new()
                .with_hard_positives(case.hard_positives)
                .with_hard_negatives(case.hard_negatives),
        )
        .init(device)
        .expect("the bench sizes are valid configurations")
}

/// The queue of a case.
pub fn queue(case: &Case, device: &Device) -> ClassBalancedQueue {
    ClassBalancedQueueConfig::new(case.classes, case.per_class, case.dim)
        .init(device)
        .expect("the bench sizes are valid configurations")
}

/// The miner of a case.
pub fn miner(case: &Case) -> HardPairMiner {
    HardPairMinerConfig::new()
        .with_hard_positives(case.hard_positives)
        .with_hard_negatives(case.hard_negatives)
        .init(case.classes, case.per_class)
        .expect("the bench sizes are valid configurations")
}

/// The name of the path of the loss step.
pub fn path(trusted: bool) -> &'static str {
    if trusted {
        "trusted (forward_trusted)"
    } else {
        "checked (forward)"
    }
}

/// One loss step: forward (trusted or checked), backward, enqueue, and both input gradients
/// materialised (as an optimiser step would), then a device sync and, on the trusted path,
/// the read of the finiteness flag.
pub fn loss_step(
    loss: &ResComLoss,
    inputs: &Inputs,
    trusted: bool,
    device: &Device,
) -> (Tensor<2>, Tensor<2>) {
    let features = inputs.features.clone().require_grad();
    let logits = inputs.logits.clone().require_grad();
    let output = ResComLossInput {
        logits: logits.clone(),
        projections: features.clone(),
    };
    let out: ResComOutput = if trusted {
        loss.forward_trusted(output, inputs.labels.clone(), &inputs.host_labels)
    } else {
        loss.forward(output, inputs.labels.clone())
    }
    .expect("valid inputs");
    let grads = out.total.backward();
    let gf = features.grad(&grads).expect("gradient");
    let gl = logits.grad(&grads).expect("gradient");
    device.sync().expect("device");
    if trusted {
        assert!(
            out.inputs_finite.into_scalar::<bool>(),
            "finite bench inputs"
        );
    }
    (gf, gl)
}

/// The enqueue inputs of a case: the normalised view-1 rows and their labels.
pub fn enqueue_inputs(
    features: Tensor<2>,
    labels: Tensor<1, Int>,
    case: &Case,
) -> (Tensor<2>, Tensor<1, Int>) {
    let half = case.rows / 2;
    (
        l2_normalize(features.narrow(0, 0, half)),
        labels.narrow(0, 0, half),
    )
}

/// One enqueue of the view-1 keys, then a device sync.
pub fn enqueue_step(
    queue: &mut ClassBalancedQueue,
    keys: &Tensor<2>,
    labels: &Tensor<1, Int>,
    device: &Device,
) {
    queue
        .enqueue(keys.clone(), labels.clone())
        .expect("valid inputs");
    device.sync().expect("device");
}

/// Queue similarities of the normalised rows and hard pair mining, then a device sync.
pub fn mining_step(
    miner: &HardPairMiner,
    queue: &ClassBalancedQueue,
    queries: &Tensor<2>,
    labels: &Tensor<1, Int>,
    device: &Device,
) -> MinedPairs {
    let mined = miner
        .mine(queue.similarities(queries.clone()), labels.clone())
        .expect("valid inputs");
    device.sync().expect("device");
    mined
}
