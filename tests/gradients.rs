//! Finite-difference checks of every differentiable component, in float64.
//!
//! Each check compares the autodiff gradient of a scalar function of the input with central
//! differences `(f(x + h e_i) - f(x - h e_i)) / 2h`, `h = 1e-6`, element by element.

mod common;

use burn::tensor::{DType, Device, Int, Tensor, TensorData};
use rescom::{
    BalancedSoftmaxLossConfig, ClassBalancedContrastiveLossConfig, ClassBalancedQueueConfig,
    HardPairMinerConfig, ResComLossConfig, ResComModelOutput, Rng, l2_normalize,
};

use common::{scalar, to_vec};

const H: f64 = 1e-6;
const REL: f64 = 1e-6;
const ABS: f64 = 1e-8;

/// The loss input of a step from its projections and logits.
fn heads(projections: Tensor<2>, logits: Tensor<2>) -> ResComModelOutput {
    ResComModelOutput {
        logits,
        projections,
    }
}

fn tensor(values: &[f64], shape: [usize; 2], device: &Device) -> Tensor<2> {
    Tensor::from_data(
        TensorData::new(values.to_vec(), shape),
        (device, DType::F64),
    )
}

fn labels(values: &[i64], device: &Device) -> Tensor<1, Int> {
    Tensor::from_data(TensorData::new(values.to_vec(), [values.len()]), device)
}

fn random(len: usize, seed: u64) -> Vec<f64> {
    let mut rng = Rng::new(seed);
    (0..len).map(|_| rng.normal()).collect()
}

/// Checks the gradient of `f` at `x` (shape `shape`) against central differences.
fn check_gradient(name: &str, x: &[f64], shape: [usize; 2], f: impl Fn(Tensor<2>) -> Tensor<1>) {
    let device = Device::flex().autodiff();
    let input = tensor(x, shape, &device).require_grad();
    let output = f(input.clone());
    let analytic = to_vec(
        input
            .grad(&output.backward())
            .expect("input has a gradient"),
    );

    let plain = Device::flex();
    let eval = |values: &[f64]| scalar(f(tensor(values, shape, &plain)));
    let mut worst = (0.0f64, 0usize, 0.0, 0.0);
    for i in 0..x.len() {
        let mut plus = x.to_vec();
        let mut minus = x.to_vec();
        plus[i] += H;
        minus[i] -= H;
        let numeric = (eval(&plus) - eval(&minus)) / (2.0 * H);
        let err = (analytic[i] - numeric).abs() / (ABS + REL * numeric.abs());
        if err > worst.0 {
            worst = (err, i, analytic[i], numeric);
        }
    }
    let (err, i, a, n) = worst;
    assert!(
        err <= 1.0,
        "{name}: d/dx[{i}] autodiff {a:e} vs finite difference {n:e}"
    );
    // The check must be sensitive: the gradient is not identically zero.
    assert!(
        analytic.iter().any(|g| g.abs() > 1e-6),
        "{name}: gradient vanishes"
    );
}

#[test]
fn l2_normalize_gradient() {
    let x = random(5 * 3, 1);
    let weights = random(5 * 3, 2);
    check_gradient("l2_normalize", &x, [5, 3], |input| {
        let w = tensor(&weights, [5, 3], &input.device());
        (l2_normalize(input) * w).sum()
    });
}

#[test]
fn balanced_softmax_gradient() {
    let x = random(6 * 4, 3);
    let y = [0, 1, 2, 3, 3, 0];
    check_gradient("balanced softmax", &x, [6, 4], |logits| {
        let loss = BalancedSoftmaxLossConfig::new(vec![100, 30, 9, 2])
            .init(&logits.device())
            .unwrap();
        loss.forward(logits.clone(), labels(&y, &logits.device()))
            .unwrap()
    });
}

#[test]
fn contrastive_in_batch_gradient() {
    let x = random(8 * 5, 4);
    // Row 3's class has no other row: its positive set is empty and l_3 = 0.
    let y = [0, 1, 2, 3, 0, 1, 2, 1];
    check_gradient("contrastive (in-batch)", &x, [8, 5], |raw| {
        let device = raw.device();
        let loss = ClassBalancedContrastiveLossConfig::new(vec![50, 20, 10, 5])
            .with_temperature(0.3)
            .with_effective_num_beta(0.99)
            .with_prior_strength(0.7)
            .init(&device)
            .unwrap();
        loss.forward(l2_normalize(raw), labels(&y, &device), None)
            .unwrap()
    });
}

#[test]
fn contrastive_with_mined_pairs_gradient() {
    let (classes, per_class, dim) = (4, 3, 5);
    let x = random(8 * dim, 5);
    let y = [0, 1, 2, 3, 0, 1, 2, 3];
    let keys = random(classes * per_class * dim, 6);
    check_gradient("contrastive (mined)", &x, [8, dim], |raw| {
        let device = raw.device();
        let queue = ClassBalancedQueueConfig::new(classes, per_class, dim)
            .init(&device)
            .unwrap()
            .with_state(
                l2_normalize(tensor(&keys, [classes * per_class, dim], &device)),
                Tensor::<1, Int>::zeros([classes], &device),
            )
            .unwrap();
        let miner = HardPairMinerConfig::new()
            .with_hard_positives(2)
            .with_hard_negatives(5)
            .init(classes, per_class)
            .unwrap();
        let loss = ClassBalancedContrastiveLossConfig::new(vec![40, 20, 10, 5])
            .with_temperature(0.25)
            .with_effective_num_beta(0.999)
            .with_prior_strength(0.5)
            .init(&device)
            .unwrap();
        let q = l2_normalize(raw);
        let mined = miner
            .mine(queue.similarities(q.clone()), labels(&y, &device))
            .unwrap();
        loss.forward(q, labels(&y, &device), Some(&mined)).unwrap()
    });
}

/// The composed loss, with respect to the raw features and to the logits.
#[test]
fn rescom_loss_gradients() {
    let (classes, dim, rows) = (5, 6, 10);
    let y = [0, 1, 2, 4, 4, 0, 1, 2, 4, 4];
    let features = random(rows * dim, 7);
    let logits = random(rows * classes, 8);
    let build = |device: &Device| {
        ResComLossConfig::new(vec![60, 30, 15, 8, 4])
            .with_dim(dim)
            .with_queue_per_class(3)
            .with_hard_positives(2)
            .with_hard_negatives(7)
            .with_temperature(0.2)
            .with_contrast_weight(0.8)
            .with_effective_num_beta(0.999)
            .with_prior_strength(0.3)
            .with_seed(9)
            .init(device)
            .unwrap()
    };
    check_gradient("rescom (features)", &features, [rows, dim], |f| {
        let device = f.device();
        let z = tensor(&logits, [rows, classes], &device);
        build(&device)
            .loss(heads(f, z), labels(&y, &device))
            .unwrap()
            .total
    });
    check_gradient("rescom (logits)", &logits, [rows, classes], |z| {
        let device = z.device();
        let f = tensor(&features, [rows, dim], &device);
        build(&device)
            .loss(heads(f, z), labels(&y, &device))
            .unwrap()
            .total
    });
}

/// `forward` and `loss` agree on the values; only `forward` moves the queue.
#[test]
fn forward_reads_the_queue_before_updating_it() {
    let device = Device::flex();
    let loss = ResComLossConfig::new(vec![10, 10, 10])
        .with_dim(4)
        .with_queue_per_class(2)
        .with_hard_negatives(3)
        .init(&device)
        .unwrap();
    let f = tensor(&random(8 * 4, 10), [8, 4], &device);
    let z = tensor(&random(8 * 3, 11), [8, 3], &device);
    let y = [0, 1, 2, 0, 0, 1, 2, 0];
    let before = to_vec(loss.queue().keys());
    let evaluated = loss
        .loss(heads(f.clone(), z.clone()), labels(&y, &device))
        .unwrap();
    assert_eq!(to_vec(loss.queue().keys()), before);
    let trained = loss.forward(heads(f, z), labels(&y, &device)).unwrap();
    assert_eq!(scalar(evaluated.total), scalar(trained.total));
    assert_ne!(to_vec(loss.queue().keys()), before);
}

/// A FIFO memory holding exactly the class-balanced layout mines the same pairs, so both
/// memories give the same loss; its masked mining also passes the gradient check.
#[test]
fn fifo_memory_matches_the_class_balanced_queue_on_the_same_keys() {
    use rescom::{KeyMemory, MemoryKind};
    let (classes, per_class, dim, rows) = (4, 3, 5, 8);
    let keys = random(classes * per_class * dim, 12);
    let slot_labels: Vec<i64> = (0..classes * per_class)
        .map(|j| (j / per_class) as i64)
        .collect();
    let y = [0, 1, 2, 3, 0, 1, 2, 3];
    let features = random(rows * dim, 13);
    let logits = random(rows * classes, 14);
    let config = ResComLossConfig::new(vec![40, 20, 10, 5])
        .with_dim(dim)
        .with_queue_per_class(per_class)
        .with_hard_positives(2)
        .with_hard_negatives(5)
        .with_prior_strength(0.4)
        .with_effective_num_beta(0.99);
    let build = |device: &Device, kind: MemoryKind| {
        let normalized = l2_normalize(tensor(&keys, [classes * per_class, dim], device));
        match kind {
            MemoryKind::ClassBalanced => config
                .clone()
                .init(device)
                .unwrap()
                .with_queue_state(normalized, Tensor::<1, Int>::zeros([classes], device))
                .unwrap(),
            MemoryKind::Fifo => {
                let loss = config
                    .clone()
                    .with_memory(MemoryKind::Fifo)
                    .init(device)
                    .unwrap();
                // Fill the FIFO through the public path: a forward whose view-1 rows are the
                // keys in slot order. Its own loss value is irrelevant.
                let n = classes * per_class;
                let both = Tensor::cat(vec![normalized.clone(), normalized], 0);
                let both_labels: Vec<i64> =
                    slot_labels.iter().chain(&slot_labels).copied().collect();
                let z = Tensor::<2>::zeros([2 * n, classes], (device, DType::F64));
                loss.forward(heads(both, z), labels(&both_labels, device))
                    .unwrap();
                assert!(matches!(loss.memory(), KeyMemory::Fifo(_)));
                loss
            }
        }
    };
    let device = Device::flex();
    let value = |kind| {
        let out = build(&device, kind)
            .loss(
                heads(
                    tensor(&features, [rows, dim], &device),
                    tensor(&logits, [rows, classes], &device),
                ),
                labels(&y, &device),
            )
            .unwrap();
        (scalar(out.total), scalar(out.contrastive))
    };
    // The FIFO stores its keys in float32 (its default), hence the tolerance.
    let (a, b) = (value(MemoryKind::ClassBalanced), value(MemoryKind::Fifo));
    assert!(
        (a.0 - b.0).abs() < 1e-6 && (a.1 - b.1).abs() < 1e-6,
        "{a:?} vs {b:?}"
    );

    check_gradient("rescom with FIFO memory", &features, [rows, dim], |f| {
        let device = f.device();
        build(&device, MemoryKind::Fifo)
            .loss(
                heads(f, tensor(&logits, [rows, classes], &device)),
                labels(&y, &device),
            )
            .unwrap()
            .total
    });
}

/// With `balanced_softmax = false` the classification term is plain cross-entropy.
#[test]
fn balanced_softmax_switch_gives_cross_entropy() {
    let device = Device::flex();
    let z = random(4 * 3, 15);
    let y = [0, 2, 0, 2];
    let loss = ResComLossConfig::new(vec![90, 9, 1])
        .with_dim(2)
        .with_queue_per_class(2)
        .with_hard_negatives(2)
        .with_balanced_softmax(false)
        .init(&device)
        .unwrap();
    let out = loss
        .loss(
            heads(
                tensor(&random(8, 16), [4, 2], &device),
                tensor(&z, [4, 3], &device),
            ),
            labels(&y, &device),
        )
        .unwrap();
    let expected: f64 = z
        .chunks(3)
        .zip(y)
        .map(|(row, label)| {
            let lse = row.iter().map(|v| v.exp()).sum::<f64>().ln();
            lse - row[label as usize]
        })
        .sum::<f64>()
        / 4.0;
    assert!((scalar(out.classification) - expected).abs() < 1e-12);
}
