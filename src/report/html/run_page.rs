//! `report.html`: one self-contained page of a run.

use std::path::Path;

use serde_json::Value;

use super::{Page, leaf_text, leaves, percent};
use crate::error::Result;
use crate::eval::{CalibrationFigures, EvalReport, FeatureSpace, SimilarityByGroup};
use crate::report::history::EpochRecord;
use crate::report::plots::{
    GROUPS, confusion_svg, curves_svg, per_class_svg, reliability_svg, similarity_svg,
};
use crate::report::summary::Summary;
use crate::stats::ShotGroup;
use crate::train::write_atomic;

/// The sections of a run's page, by id, in order (those after `results` only when the
/// last evaluation has what they show).
pub const RUN_PAGE_SECTIONS: [&str; 8] = [
    "configuration",
    "results",
    "curves",
    "per-class",
    "calibration",
    "confusion",
    "feature-space",
    "files",
];

/// The page of a run as one self-contained HTML document (inline CSS and SVG, no script,
/// nothing loaded): the run's configuration (`run`, the contents of its `run.json`, shown
/// generically as a table of its fields, when given), the last and best evaluations of
/// `summary` (top-1, top-5, many/medium/few, ECE, MCE, NLL), the training curves of
/// `history`, per-class accuracy against training count, and, from the last evaluation, the
/// reliability diagram with the calibration by shot group, the confusion matrix, and the
/// same-class similarity distributions with the mean similarities by shot group (each where
/// the evaluation has it). Nothing on it depends on measured time, so two runs that
/// compute the same give the same page.
pub fn run_page(run: Option<&Value>, summary: &Summary, history: &[EpochRecord]) -> Result<String> {
    let total = run
        .and_then(|r| r.pointer("/config/epochs"))
        .and_then(Value::as_u64);
    let mut page = Page::new(&format!("{} on {}", summary.method, summary.dataset));
    page.paragraph(&format!(
        "Epoch {} of {}, seed {}; last evaluation after epoch {} on {} test images; {} classes \
         ({} to {} training images).",
        summary.epochs,
        total.map_or("?".into(), |t| t.to_string()),
        summary.seed,
        summary.last_epoch + 1,
        summary.last.images,
        summary.train_counts.len(),
        summary.train_counts.iter().max().unwrap_or(&0),
        summary.train_counts.iter().min().unwrap_or(&0),
    ));
    configuration(&mut page, run);
    results(&mut page, summary);
    page.section("curves", "Training curves");
    page.figure(
        &curves_svg(history)?,
        "Training losses and test top-1 by shot group.",
    );
    page.section("per-class", "Per-class accuracy");
    page.figure(
        &per_class_svg(&summary.train_counts, &summary.last.per_class)?,
        "Test top-1 of each class (last evaluation) against its training images.",
    );
    evaluation_figures(&mut page, summary)?;
    page.section("files", "Files");
    page.note(
        "Beside this page: run.json, summary.json, metrics.jsonl, metrics.csv, the figures as \
         SVG files (curves, per_class, reliability, confusion, similarity) and checkpoint/.",
    );
    Ok(page.finish())
}

/// Writes [`run_page`] of the run in `dir` as `dir/report.html`, atomically; its
/// configuration is read from `dir/run.json` (the page says so when that file is missing or
/// does not parse).
pub fn write_run_page(dir: &Path, summary: &Summary, history: &[EpochRecord]) -> Result<()> {
    let run = std::fs::read(dir.join("run.json"))
        .ok()
        .and_then(|bytes| serde_json::from_slice::<Value>(&bytes).ok());
    let html = run_page(run.as_ref(), summary, history)?;
    write_atomic(&dir.join("report.html"), html.as_bytes())
}

/// The configuration section: every field of `run.json`.
fn configuration(page: &mut Page, run: Option<&Value>) {
    page.section("configuration", "Configuration");
    let Some(run) = run else {
        page.note("run.json is missing or does not parse.");
        return;
    };
    let rows: Vec<Vec<String>> = leaves(run)
        .into_iter()
        .map(|(key, value)| vec![key, leaf_text(value)])
        .collect();
    page.details(&format!(
        "run.json, what defines the run: {} fields",
        rows.len()
    ));
    page.table(&["field", "value"], &rows, &[1]);
    page.end_details();
}

/// The calibration figures of `figures` as three cells (percent, percent, nats).
fn calibration_cells(figures: Option<&CalibrationFigures>) -> [String; 3] {
    match figures {
        Some(f) => [
            percent(Some(f.ece)),
            percent(Some(f.mce)),
            format!("{:.4}", f.nll),
        ],
        None => ["-".into(), "-".into(), "-".into()],
    }
}

/// The table of the last and best evaluations.
fn results(page: &mut Page, summary: &Summary) {
    page.section("results", "Results");
    let row = |name: &str, epoch: usize, e: &EvalReport| {
        let mut cells = vec![
            name.to_string(),
            (epoch + 1).to_string(),
            percent(Some(e.top1)),
            percent(Some(e.top5)),
            percent(e.many),
            percent(e.medium),
            percent(e.few),
        ];
        cells.extend(calibration_cells(
            e.calibration.as_ref().map(|c| &c.overall),
        ));
        cells
    };
    let header = [
        "evaluation",
        "epoch",
        "top-1 %",
        "top-5 %",
        "many %",
        "medium %",
        "few %",
        "ECE %",
        "MCE %",
        "NLL",
    ];
    let rows = [
        row("last", summary.last_epoch, &summary.last),
        row("best top-1", summary.best_epoch, &summary.best),
    ];
    page.table(&header, &rows, &[]);
    page.note(
        "Many-shot classes have more than 100 training images, few-shot fewer than 20. ECE and \
         MCE over 15 confidence bins; NLL in nats.",
    );
}

/// The figures of the last evaluation: reliability, confusion, feature space.
fn evaluation_figures(page: &mut Page, summary: &Summary) -> Result<()> {
    let last = &summary.last;
    if let Some(calibration) = &last.calibration {
        page.section("calibration", "Calibration");
        page.figure(
            &reliability_svg(calibration)?,
            "Reliability diagram of the last evaluation: accuracy per confidence bin.",
        );
        let mut rows = vec![row_of("all", calibration_cells(Some(&calibration.overall)))];
        for (group, _, name) in GROUPS {
            let figures = match group {
                ShotGroup::Many => calibration.many.as_ref(),
                ShotGroup::Medium => calibration.medium.as_ref(),
                ShotGroup::Few => calibration.few.as_ref(),
            };
            rows.push(row_of(name, calibration_cells(figures)));
        }
        page.table(&["test images of", "ECE %", "MCE %", "NLL"], &rows, &[]);
    }
    if let Some(confusion) = &last.confusion {
        page.section("confusion", "Confusion matrix");
        page.figure(
            &confusion_svg(&summary.train_counts, confusion)?,
            "Confusion matrix of the last evaluation, each row divided by its test images.",
        );
    }
    if let Some(space) = &last.feature_space {
        page.section("feature-space", "Feature space");
        page.figure(
            &similarity_svg(space)?,
            "Distribution of the cosine similarity between test images of the same class.",
        );
        feature_table(page, space);
    }
    Ok(())
}

/// `name` followed by `cells`.
fn row_of<const N: usize>(name: &str, cells: [String; N]) -> Vec<String> {
    std::iter::once(name.to_string()).chain(cells).collect()
}

/// Mean same-class and different-class similarity by representation and shot group.
fn feature_table(page: &mut Page, space: &FeatureSpace) {
    let mut rows = Vec::new();
    let mut add = |representation: &str, groups: &SimilarityByGroup| {
        for (group, _, name) in GROUPS {
            let Some(g) = groups.group(group) else {
                continue;
            };
            let two = |v: Option<f64>| v.map_or("-".into(), |v| format!("{v:.3}"));
            let gap = g.same_class.zip(g.different_class).map(|(s, d)| s - d);
            rows.push(vec![
                representation.to_string(),
                name.to_string(),
                two(g.same_class),
                two(g.different_class),
                two(gap),
            ]);
        }
    };
    add("backbone", &space.backbone);
    if let Some(projection) = &space.projection {
        add("projection", projection);
    }
    let header = [
        "representation",
        "group",
        "same class",
        "other classes",
        "difference",
    ];
    page.table(&header, &rows, &[]);
    page.note("Mean cosine similarity of a test image with the others of its class and with those of other classes.");
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::html::self_contained;
    use crate::report::plots::tests::record;
    use crate::report::summary::RunIdentity;

    fn run() -> (Vec<EpochRecord>, Summary) {
        let identity = RunIdentity {
            method: "rescom".into(),
            dataset: "toy <LT>".into(),
            train_counts: vec![500, 50, 5],
            seed: 3,
        };
        let history: Vec<_> = (0..3).map(record).collect();
        let summary = Summary::of(&identity, &history).unwrap();
        (history, summary)
    }

    #[test]
    fn the_page_stands_alone_and_holds_every_section() {
        let dir = tempfile::tempdir().unwrap();
        let (history, summary) = run();
        let config = serde_json::json!({"config": {"epochs": 5, "seed": 3, "dataset": "toy"}});
        std::fs::write(dir.path().join("run.json"), config.to_string()).unwrap();
        write_run_page(dir.path(), &summary, &history).unwrap();
        let html = std::fs::read_to_string(dir.path().join("report.html")).unwrap();
        assert_eq!(self_contained(&html), Ok(()));
        assert!(!html.contains("<script") && !html.contains("src=") && !html.contains("http:"));
        for id in RUN_PAGE_SECTIONS {
            assert!(html.contains(&format!("<h2 id=\"{id}\">")), "{id}");
        }
        // Configuration, the table and each figure.
        assert!(html.contains("<td>config.epochs</td><td class=\"text\">5</td>"));
        assert!(html.contains("<h1>rescom on toy &lt;LT&gt;</h1>"));
        assert!(html.contains("Epoch 3 of 5, seed 3"));
        assert!(html.contains("<td>best top-1</td><td>3</td><td>70.00</td>"));
        assert!(html.contains("<td>10.00</td><td>30.00</td><td>0.9000</td>"));
        for figure in [
            "training loss",
            "per-class test accuracy",
            "reliability: ECE",
            "confusion matrix",
            "same-class cosine similarity",
            "projections",
        ] {
            assert!(html.contains(figure), "{figure}");
        }
        assert_eq!(html.matches("<svg").count(), 5);
    }

    #[test]
    fn a_page_without_run_json_or_figures() {
        let (mut history, _) = run();
        for record in &mut history {
            let eval = record.eval.as_mut().unwrap();
            (eval.calibration, eval.confusion, eval.feature_space) = (None, None, None);
        }
        let identity = RunIdentity {
            method: "cross-entropy".into(),
            dataset: "toy".into(),
            train_counts: vec![500, 50, 5],
            seed: 0,
        };
        let summary = Summary::of(&identity, &history).unwrap();
        let html = run_page(None, &summary, &history).unwrap();
        assert!(html.contains("run.json is missing"));
        assert!(html.contains("Epoch 3 of ?"));
        for absent in ["calibration", "confusion", "feature-space"] {
            assert!(!html.contains(&format!("id=\"{absent}\"")), "{absent}");
        }
        assert_eq!(self_contained(&html), Ok(()));
    }
}
