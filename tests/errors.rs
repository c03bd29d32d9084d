//! Every invalid input gives its `Error`, never a panic or a NaN.

mod common;

use burn::tensor::{Device, Int, Tensor};
use rescom::{
    BalancedSoftmaxLossConfig, ClassBalancedContrastiveLossConfig, ClassStats, EmptyClassPolicy,
    Error, HardPairMinerConfig, ResComLoss, ResComLossConfig, ResComLossInput,
};

use common::{ints, to_vec};

const COUNTS: [usize; 4] = [40, 20, 10, 5];

fn config() -> ResComLossConfig {
    ResComLossConfig::new(COUNTS.to_vec())
        .with_projection_dim(3)
        .with_queue_per_class(2)
        .with_mining(
            HardPairMinerConfig::new()
                .with_hard_positives(1)
                .with_hard_negatives(4),
        )
}

fn loss() -> ResComLoss {
    config().init(&Device::flex()).unwrap()
}

fn ones(rows: usize, cols: usize) -> Tensor<2> {
    Tensor::ones([rows, cols], &Device::flex())
}

fn labels(values: &[i64]) -> Tensor<1, Int> {
    ints(values, &Device::flex())
}

/// Runs `forward` and checks the queue did not move.
fn forward_err(projections: Tensor<2>, logits: Tensor<2>, labels: Tensor<1, Int>) -> Error {
    let loss = loss();
    let before = to_vec(loss.queue().keys());
    let err = loss
        .forward(
            ResComLossInput {
                logits,
                projections,
            },
            labels,
        )
        .expect_err("invalid input must be rejected");
    assert_eq!(
        to_vec(loss.queue().keys()),
        before,
        "queue changed on error"
    );
    err
}

#[test]
fn feature_dimension_must_match_the_queue() {
    let err = forward_err(ones(4, 5), ones(4, 4), labels(&[0, 1, 0, 1]));
    assert!(
        matches!(
            err,
            Error::Shape {
                name: "projections",
                ..
            }
        ),
        "{err}"
    );
}

#[test]
fn logits_must_match_rows_and_classes() {
    let err = forward_err(ones(4, 3), ones(4, 3), labels(&[0, 1, 0, 1]));
    assert!(matches!(err, Error::Shape { name: "logits", .. }), "{err}");
    let err = forward_err(ones(4, 3), ones(6, 4), labels(&[0, 1, 0, 1]));
    assert!(matches!(err, Error::Shape { name: "logits", .. }), "{err}");
}

#[test]
fn labels_must_have_one_entry_per_row() {
    let err = forward_err(ones(4, 3), ones(4, 4), labels(&[0, 1, 0]));
    assert!(matches!(err, Error::Shape { name: "labels", .. }), "{err}");
}

#[test]
fn odd_row_count_is_rejected() {
    let err = forward_err(ones(3, 3), ones(3, 4), labels(&[0, 1, 0]));
    assert!(matches!(err, Error::OddRows { rows: 3 }), "{err}");
}

#[test]
fn views_with_different_labels_are_rejected() {
    let err = forward_err(ones(4, 3), ones(4, 4), labels(&[0, 1, 0, 2]));
    assert!(
        matches!(
            err,
            Error::ViewLabelMismatch {
                row: 1,
                second_row: 3,
                first: 1,
                second: 2
            }
        ),
        "{err}"
    );
}

#[test]
fn labels_out_of_range_are_rejected() {
    let err = forward_err(ones(4, 3), ones(4, 4), labels(&[0, 4, 0, 4]));
    assert!(
        matches!(
            err,
            Error::LabelOutOfRange {
                row: 1,
                label: 4,
                num_classes: 4
            }
        ),
        "{err}"
    );
    let err = forward_err(ones(4, 3), ones(4, 4), labels(&[-1, 0, -1, 0]));
    assert!(
        matches!(err, Error::LabelOutOfRange { label: -1, .. }),
        "{err}"
    );
}

#[test]
fn non_finite_inputs_are_rejected() {
    let device = Device::flex();
    let nan_features = Tensor::<2>::from_floats([[1.0, f32::NAN, 0.0], [1.0, 0.0, 0.0]], &device);
    let nan_features = Tensor::cat(vec![nan_features.clone(), nan_features], 0);
    let err = forward_err(nan_features, ones(4, 4), labels(&[0, 1, 0, 1]));
    assert!(
        matches!(
            err,
            Error::NonFinite {
                name: "projections"
            }
        ),
        "{err}"
    );
    let inf_logits = ones(4, 4).mask_fill(
        Tensor::<2, burn::tensor::Bool>::diag_mask([4, 4], 0, &device).bool_not(),
        f32::INFINITY,
    );
    let err = forward_err(ones(4, 3), inf_logits, labels(&[0, 1, 0, 1]));
    assert!(matches!(err, Error::NonFinite { name: "logits" }), "{err}");
}

#[test]
fn impossible_mining_counts_are_rejected_at_init() {
    let device = Device::flex();
    let err = config()
        .with_mining(config().mining.with_hard_positives(0))
        .init(&device)
        .unwrap_err();
    assert!(
        matches!(
            err,
            Error::InvalidHardPositives {
                hard_positives: 0,
                ..
            }
        ),
        "{err}"
    );
    let err = config()
        .with_mining(config().mining.with_hard_positives(3))
        .init(&device)
        .unwrap_err();
    assert!(
        matches!(
            err,
            Error::InvalidHardPositives {
                hard_positives: 3,
                queue_per_class: 2
            }
        ),
        "{err}"
    );
    // (C - 1) * K = 3 * 2 = 6 negatives exist.
    assert!(
        config()
            .with_mining(config().mining.with_hard_negatives(6))
            .init(&device)
            .is_ok()
    );
    let err = config()
        .with_mining(config().mining.with_hard_negatives(7))
        .init(&device)
        .unwrap_err();
    assert!(
        matches!(
            err,
            Error::InvalidHardNegatives {
                hard_negatives: 7,
                available: 6,
                ..
            }
        ),
        "{err}"
    );
    let err = HardPairMinerConfig::new().init(0, 2).unwrap_err();
    assert!(matches!(err, Error::NoClasses), "{err}");
}

#[test]
fn invalid_hyper_parameters_are_rejected_at_init() {
    let device = Device::flex();
    for (config, field) in [
        (
            config()
                .with_contrastive(ClassBalancedContrastiveLossConfig::new().with_temperature(0.0)),
            "temperature",
        ),
        (
            config().with_contrastive(
                ClassBalancedContrastiveLossConfig::new().with_temperature(f64::NAN),
            ),
            "temperature",
        ),
        (config().with_contrast_weight(-1.0), "contrast_weight"),
        (
            config().with_contrastive(
                ClassBalancedContrastiveLossConfig::new().with_prior_strength(-0.5),
            ),
            "prior_strength",
        ),
        (config().with_projection_dim(0), "projection_dim"),
        (config().with_queue_per_class(0), "queue_per_class"),
    ] {
        let err = config.init(&device).unwrap_err();
        let ok = match &err {
            Error::InvalidConfig { field: f, .. } => *f == field,
            // K = 0 makes every k_pos impossible; either error names the problem.
            Error::InvalidHardPositives { .. } => field == "queue_per_class",
            _ => false,
        };
        assert!(ok, "{field}: {err}");
    }
    for beta in [1.0, -0.1] {
        let err = config()
            .with_contrastive(
                ClassBalancedContrastiveLossConfig::new().with_effective_num_beta(beta),
            )
            .init(&device)
            .unwrap_err();
        assert!(matches!(err, Error::InvalidBeta { .. }), "{err}");
    }
}

#[test]
fn empty_classes_need_an_explicit_policy() {
    let device = Device::flex();
    let err = ResComLossConfig::new(vec![5, 0, 2])
        .with_projection_dim(2)
        .with_queue_per_class(2)
        .with_mining(HardPairMinerConfig::new().with_hard_negatives(2))
        .init(&device)
        .unwrap_err();
    assert!(matches!(err, Error::EmptyClass { class: 1 }), "{err}");
    assert!(matches!(ClassStats::new(&[]), Err(Error::NoClasses)));
    let loss = ResComLossConfig::new(vec![5, 0, 2])
        .with_projection_dim(2)
        .with_queue_per_class(2)
        .with_empty_classes(EmptyClassPolicy::CountAsOne)
        .with_mining(HardPairMinerConfig::new().with_hard_negatives(2))
        .init(&device)
        .unwrap();
    let out = loss
        .loss(
            ResComLossInput {
                logits: ones(4, 3),
                projections: ones(4, 2),
            },
            labels(&[0, 2, 0, 2]),
        )
        .unwrap();
    assert!(common::scalar(out.total).is_finite());
}

#[test]
fn standalone_components_check_their_inputs() {
    let device = Device::flex();
    let softmax = BalancedSoftmaxLossConfig::new(COUNTS.to_vec())
        .init(&device)
        .unwrap();
    assert!(matches!(
        softmax.forward(ones(2, 3), labels(&[0, 1])),
        Err(Error::Shape { name: "logits", .. })
    ));
    assert!(matches!(
        softmax.forward(ones(2, 4), labels(&[0, 9])),
        Err(Error::LabelOutOfRange { label: 9, .. })
    ));
    let contrastive = ClassBalancedContrastiveLossConfig::new()
        .init(&ClassStats::new(&COUNTS).unwrap(), &device)
        .unwrap();
    assert!(matches!(
        contrastive.forward(ones(1, 3), labels(&[0]), None),
        Err(Error::Shape {
            name: "embeddings",
            ..
        })
    ));
    assert!(matches!(
        contrastive.forward(ones(2, 3), labels(&[0, 7]), None),
        Err(Error::LabelOutOfRange { .. })
    ));
    let miner = HardPairMinerConfig::new()
        .with_hard_negatives(2)
        .init(4, 2)
        .unwrap();
    assert!(matches!(
        miner.mine(ones(2, 7), labels(&[0, 1])),
        Err(Error::Shape {
            name: "similarities",
            ..
        })
    ));
    assert!(matches!(
        miner.mine(ones(2, 8), labels(&[0, 4])),
        Err(Error::LabelOutOfRange { .. })
    ));
}

#[test]
fn errors_read_well() {
    let err = forward_err(ones(4, 3), ones(4, 4), labels(&[0, 1, 0, 2]));
    assert_eq!(
        err.to_string(),
        "the two views of image 1 disagree: row 1 has label 1 but row 3 has label 2"
    );
}
