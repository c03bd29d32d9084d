//! The statistics of a comparison on hand-made runs.

use std::path::Path;

use super::page::COMPARISON_SECTIONS;
use super::*;
use crate::eval::{
    Calibration, CalibrationFigures, EvalReport, FeatureSpace, GroupSimilarity, SimilarityByGroup,
};
use crate::report::history::write_history;
use crate::report::html::self_contained;
use crate::report::summary::RunIdentity;
use crate::train::TrainRecord;

/// A run's figures: its directory name, method, contrast weight, seed, final top-1, few-shot
/// top-1 and ECE.
struct Run(&'static str, &'static str, f64, u64, f64, Option<f64>, f64);

fn eval(top1: f64, few: Option<f64>, ece: f64) -> EvalReport {
    let figures = CalibrationFigures {
        ece,
        mce: 2.0 * ece,
        nll: 1.0,
    };
    EvalReport {
        top1,
        top5: 0.9,
        many: Some(0.8),
        medium: None,
        few,
        per_class: vec![Some(0.8), few],
        images: 100,
        calibration: Some(Calibration {
            overall: figures,
            many: Some(figures),
            medium: None,
            few: few.map(|few| CalibrationFigures {
                ece: 1.0 - few,
                mce: 1.0,
                nll: 2.0,
            }),
            bins: vec![],
        }),
        // Backbone features whose same-class similarity is the top-1.
        feature_space: Some(FeatureSpace {
            backbone: SimilarityByGroup {
                many: Some(GroupSimilarity {
                    same_class: Some(top1),
                    different_class: Some(0.25),
                    same_class_histogram: vec![],
                }),
                medium: None,
                few: None,
            },
            projection: None,
        }),
        confusion: None,
    }
}

/// Writes a run of two evaluated epochs into `root/NAME`: top-1 `top1 + 0.01` after the first
/// (the best), `top1` after the second (the last).
fn write_run(root: &Path, Run(name, method, weight, seed, top1, few, ece): Run) {
    let dir = root.join(name);
    std::fs::create_dir_all(&dir).unwrap();
    let run = serde_json::json!({
        "config": {"method": method, "epochs": 2, "seed": seed, "dataset": "toy",
                   "loss": {"contrast_weight": weight}},
        "batch_size": 64, "data_seed": seed,
        // Where the data lives is no part of the configuration.
        "test_split": {"source": {"kind": "mnist", "dir": format!("/data/{seed}"), "split": "test"}},
    });
    std::fs::write(dir.join("run.json"), run.to_string()).unwrap();
    let train = TrainRecord {
        loss: 1.0,
        classification: 1.0,
        contrastive: None,
        train_top1: 0.5,
        images_per_second: 10.0,
        seconds: 1.0,
    };
    let history = vec![
        EpochRecord::new(0, 0.1, train.clone(), Some(eval(top1 + 0.01, few, ece))),
        EpochRecord::new(1, 0.1, train, Some(eval(top1, few, ece))),
    ];
    let identity = RunIdentity {
        method: method.into(),
        dataset: "toy".into(),
        train_counts: vec![500, 5],
        seed,
    };
    write_history(&dir, &history).unwrap();
    Summary::of(&identity, &history)
        .unwrap()
        .write(&dir)
        .unwrap();
}

/// rescom on seeds 0, 1, 2; balanced-softmax on seeds 0, 1, 2; rescom with another contrast
/// weight on seed 0 alone; cross-entropy on seeds 5 and 6 (shared with no other group).
fn runs() -> tempfile::TempDir {
    let root = tempfile::tempdir().unwrap();
    for run in [
        Run("rescom-0", "rescom", 0.5, 0, 0.60, Some(0.50), 0.10),
        Run("rescom-1", "rescom", 0.5, 1, 0.62, Some(0.40), 0.20),
        Run("rescom-2", "rescom", 0.5, 2, 0.67, None, 0.30),
        Run("bs-0", "balanced-softmax", 0.5, 0, 0.65, Some(0.45), 0.05),
        Run("bs-1", "balanced-softmax", 0.5, 1, 0.66, Some(0.45), 0.05),
        Run("bs-2", "balanced-softmax", 0.5, 2, 0.70, Some(0.45), 0.05),
        Run("rescom-1.0-0", "rescom", 1.0, 0, 0.58, Some(0.50), 0.10),
        Run("ce-5", "cross-entropy", 0.5, 5, 0.40, Some(0.0), 0.30),
        Run("ce-6", "cross-entropy", 0.5, 6, 0.44, Some(0.1), 0.30),
    ] {
        write_run(root.path(), run);
    }
    root
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() < 1e-12
}

#[test]
fn mean_and_sample_sd_over_seeds() {
    let root = runs();
    let comparison = Comparison::read(&[root.path()]).unwrap();
    let names: Vec<&str> = comparison
        .groups()
        .iter()
        .map(|g| g.name.as_str())
        .collect();
    assert_eq!(
        names,
        [
            "cross-entropy",
            "balanced-softmax",
            "rescom",
            "rescom, contrast_weight 1.0"
        ]
    );
    let rescom = comparison.group("rescom").unwrap();
    assert_eq!(rescom.seeds(), [0, 1, 2]);
    let top1 = rescom.stat(Metric::Top1).unwrap();
    // Mean 0.63; deviations -0.03, -0.01, 0.04: sum of squares 0.0026 over n - 1 = 2.
    assert_eq!(top1.n, 3);
    assert!(close(top1.mean, 0.63) && close(top1.sd.unwrap(), 0.0013f64.sqrt()));
    let best = rescom.stat(Metric::BestTop1).unwrap();
    assert!(close(best.mean, 0.64) && close(best.sd.unwrap(), 0.0013f64.sqrt()));
    let ece = rescom.stat(Metric::Ece).unwrap();
    assert!(close(ece.mean, 0.2) && close(ece.sd.unwrap(), 0.1));
    // Seed 2 has no few-shot figure: two values.
    let few = rescom.stat(Metric::Few).unwrap();
    assert_eq!(few.n, 2);
    assert!(close(few.mean, 0.45) && close(few.sd.unwrap(), 0.005f64.sqrt()));
    assert_eq!(rescom.stat(Metric::Medium), None);
    let curve = rescom.top1_curve();
    assert_eq!(curve.len(), 2);
    assert!(close(curve[0].1, 0.64) && close(curve[1].1, 0.63) && curve[1].0 == 2.0);
    // A group of one run: no standard deviation.
    let single = comparison.group("rescom, contrast_weight 1.0").unwrap();
    let top1 = single.stat(Metric::Top1).unwrap();
    assert_eq!((top1.n, top1.sd), (1, None));
    assert_eq!(top1.format(100.0), "58.00 ± n/a");
}

#[test]
fn paired_differences_on_shared_seeds() {
    let root = runs();
    let comparison = Comparison::read(&[root.path()]).unwrap();
    let paired = comparison.paired(Some("balanced-softmax")).unwrap();
    // cross-entropy shares no seed with balanced-softmax: no pair.
    let names: Vec<String> = paired.iter().map(PairedDifference::name).collect();
    assert_eq!(
        names,
        [
            "rescom − balanced-softmax",
            "rescom, contrast_weight 1.0 − balanced-softmax"
        ]
    );
    let pair = &paired[0];
    let seeds: Vec<u64> = pair.per_seed.iter().map(|p| p.0).collect();
    assert_eq!(seeds, [0, 1, 2]);
    let top1: Vec<f64> = pair.per_seed.iter().map(|p| p.1[0].unwrap()).collect();
    assert!(close(top1[0], -0.05) && close(top1[1], -0.04) && close(top1[2], -0.03));
    let mean = pair.mean[0].unwrap();
    assert!(close(mean.mean, -0.04) && close(mean.sd.unwrap(), 0.01) && mean.n == 3);
    // Few-shot: seed 2 of rescom has none, so two differences.
    assert_eq!(pair.per_seed[2].1[3], None);
    assert_eq!(pair.mean[3].unwrap().n, 2);
    // One shared seed: one difference, no spread.
    assert_eq!(paired[1].per_seed.len(), 1);
    assert_eq!(paired[1].mean[0].unwrap().sd, None);
    // Without a baseline: each group minus those before it, where seeds are shared.
    let all: Vec<String> = comparison
        .paired(None)
        .unwrap()
        .iter()
        .map(|p| p.name())
        .collect();
    assert_eq!(
        all,
        [
            "rescom − balanced-softmax",
            "rescom, contrast_weight 1.0 − balanced-softmax",
            "rescom, contrast_weight 1.0 − rescom"
        ]
    );
    assert!(matches!(
        comparison.paired(Some("sgd")),
        Err(Error::InvalidConfig {
            field: "baseline",
            ..
        })
    ));
}

#[test]
fn markdown_and_page() {
    let root = runs();
    let comparison = Comparison::read(&[root.path()]).unwrap();
    let md = comparison.markdown(Some("balanced-softmax")).unwrap();
    assert!(
        md.contains("| rescom | 3 | 0, 1, 2 | 2 | 63.00 ± 3.61 | 90.00 ± 0.00 | 80.00 ± 0.00 | - | 45.00 ± 7.07 | 20.00 ± 10.00 | 64.00 ± 3.61 |"),
        "{md}"
    );
    assert!(
        md.contains("| rescom, contrast_weight 1.0 | 1 | 0 | 2 | 58.00 ± n/a |"),
        "{md}"
    );
    assert!(md.contains("| 1 | -4.00 | +0.00 | - | -5.00 |"), "{md}");
    assert!(md.contains("| mean ± sd | -4.00 ± 1.00 |"), "{md}");
    assert!(md.contains("toy: training images per class [500, 5]"));
    // By shot group: no medium-shot row, no projection columns; the few-shot row of rescom
    // has the two seeds with few-shot images.
    assert!(
        md.contains(
            "| group | shots | top-1 | ECE | NLL | backbone cos same | backbone cos different |"
        ),
        "{md}"
    );
    assert!(
        md.contains("| rescom | many | 80.00 ± 0.00 | 20.00 ± 10.00 | 1.000 ± 0.000 | 0.630 ± 0.036 | 0.250 ± 0.000 |"),
        "{md}"
    );
    assert!(
        md.contains("| rescom | few | 45.00 ± 7.07 | 55.00 ± 7.07 | 2.000 ± 0.000 | - | - |"),
        "{md}"
    );
    assert!(!md.contains("| rescom | medium |"), "{md}");
    let html = comparison.page(Some("balanced-softmax")).unwrap();
    assert_eq!(self_contained(&html), Ok(()));
    for id in COMPARISON_SECTIONS {
        assert!(html.contains(&format!("<h2 id=\"{id}\">")), "{id}");
    }
    assert!(html.contains("<td>config.loss.contrast_weight</td>"));
    let out = root.path().join("comparison.html");
    comparison.write_page(&out, None).unwrap();
    assert!(std::fs::read_to_string(out).unwrap().contains("test top-1"));
}

#[test]
fn missing_and_damaged_files_are_named() {
    let root = runs();
    // A run directory without summary.json.
    let dir = root.path().join("rescom-0");
    std::fs::remove_file(dir.join("summary.json")).unwrap();
    match Comparison::read(&[&dir]) {
        Err(Error::Io { path, .. }) => assert_eq!(path, dir.join("summary.json")),
        other => panic!("{other:?}"),
    }
    // Scanning a parent skips it (no evaluation yet).
    assert_eq!(
        Comparison::read(&[root.path()]).unwrap().groups()[2]
            .runs
            .len(),
        2
    );
    let damaged = root.path().join("bs-0");
    std::fs::write(damaged.join("summary.json"), "{\"method\": ").unwrap();
    match Comparison::read(&[&damaged]) {
        Err(Error::CorruptData { path, .. }) => assert_eq!(path, damaged.join("summary.json")),
        other => panic!("{other:?}"),
    }
    let bs = root.path().join("bs-1");
    std::fs::write(bs.join("metrics.jsonl"), "not json\n").unwrap();
    match Comparison::read(&[&bs]) {
        Err(Error::CorruptData { path, .. }) => assert_eq!(path, bs.join("metrics.jsonl")),
        other => panic!("{other:?}"),
    }
    let empty = tempfile::tempdir().unwrap();
    match Comparison::read(&[empty.path()]) {
        Err(Error::Io { path, source }) => {
            assert_eq!(path, empty.path());
            assert!(source.to_string().contains("no run under it"));
        }
        other => panic!("{other:?}"),
    }
    let absent = root.path().join("absent");
    assert!(matches!(Comparison::read(&[&absent]), Err(Error::Io { path, .. }) if path == absent));
}
