//! Finite-difference checks of every differentiable component, in float64 on flex.
//!
//! The checks themselves are in `tests/common/gradients.rs` (shared with
//! `examples/gpu_check.rs`): each compares the autodiff gradient of a scalar function of the
//! input with central differences `(f(x + h e_i) - f(x - h e_i)) / 2h`, `h = 1e-6`, element by
//! element.

mod common;

use burn::tensor::{DType, Device};
use rescom::{KeyMemory, MemoryKind, ResComLossConfig};

use common::gradients::{F64, FifoSetup, case, heads, labels, random, tensor};
use common::{scalar, to_vec};
use rescom::HardPairMinerConfig;

/// Runs the shared check `name` on flex in float64.
fn check(name: &str) {
    if let Err(e) = case(name).check(&Device::flex().autodiff(), DType::F64, F64) {
        panic!("{e}");
    }
}

#[test]
fn l2_normalize_gradient() {
    check("l2_normalize");
}

#[test]
fn balanced_softmax_gradient() {
    check("balanced softmax");
}

#[test]
fn contrastive_in_batch_gradient() {
    check("contrastive (in-batch)");
}

#[test]
fn contrastive_with_mined_pairs_gradient() {
    check("contrastive (mined)");
}

/// The composed loss, with respect to the raw features and to the logits.
#[test]
fn rescom_loss_gradients() {
    check("rescom (features)");
    check("rescom (logits)");
}

/// The check can fail: a wrong gradient (here, half the true one) is caught.
#[test]
fn a_wrong_gradient_fails_the_check() {
    use burn::tensor::Tensor;
    let device = Device::flex().autodiff();
    let original = case("l2_normalize");
    // f(x) = sum(x^2) / 2 + stop_gradient(sum(x^2) / 2) has gradient x, but finite
    // differences see 2x.
    let broken = common::gradients::GradientCase::from_fn(
        "half gradient",
        random(6, 3),
        [2, 3],
        |x: Tensor<2>| {
            let half = x.clone().powi_scalar(2).sum().mul_scalar(0.5);
            half.clone() + half.detach()
        },
    );
    assert!(original.check(&device, DType::F64, F64).is_ok());
    let err = broken.check(&device, DType::F64, F64).unwrap_err();
    assert!(err.contains("finite difference"), "{err}");
}

/// `forward` and `loss` agree on the values; only `forward` moves the queue.
#[test]
fn forward_reads_the_queue_before_updating_it() {
    let device = Device::flex();
    let loss = ResComLossConfig::new(vec![10, 10, 10])
        .with_projection_dim(4)
        .with_queue_per_class(2)
        .with_mining(HardPairMinerConfig::new().with_hard_negatives(3))
        .init(&device)
        .unwrap();
    let f = tensor(&random(8 * 4, 10), [8, 4], &device, DType::F64);
    let z = tensor(&random(8 * 3, 11), [8, 3], &device, DType::F64);
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
    let setup = FifoSetup::new();
    let device = Device::flex();
    let value = |kind| {
        let loss = setup.build(&device, DType::F64, kind);
        if kind == MemoryKind::Fifo {
            assert!(matches!(loss.memory(), KeyMemory::Fifo(_)));
        }
        let out = loss
            .loss(
                heads(
                    tensor(
                        &setup.features,
                        [setup.rows, setup.dim],
                        &device,
                        DType::F64,
                    ),
                    tensor(
                        &setup.logits,
                        [setup.rows, setup.classes],
                        &device,
                        DType::F64,
                    ),
                ),
                labels(&setup.y, &device),
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
    check("rescom with FIFO memory");
}

/// With `balanced_softmax = false` the classification term is plain cross-entropy.
#[test]
fn balanced_softmax_switch_gives_cross_entropy() {
    let device = Device::flex();
    let z = random(4 * 3, 15);
    let y = [0, 2, 0, 2];
    let loss = ResComLossConfig::new(vec![90, 9, 1])
        .with_projection_dim(2)
        .with_queue_per_class(2)
        .with_balanced_softmax(false)
        .with_mining(HardPairMinerConfig::new().with_hard_negatives(2))
        .init(&device)
        .unwrap();
    let out = loss
        .loss(
            heads(
                tensor(&random(8, 16), [4, 2], &device, DType::F64),
                tensor(&z, [4, 3], &device, DType::F64),
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
