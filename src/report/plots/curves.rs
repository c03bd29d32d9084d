//! Training curves: the losses and test top-1 by shot group against the epoch.

use std::path::Path;

use plotters::prelude::*;

use super::{Curve, GROUPS, line_chart, render, write_svg};
use crate::error::Result;
use crate::eval::EvalReport;
use crate::report::history::EpochRecord;
use crate::stats::ShotGroup;

/// Training curves as SVG: the losses (left) and test top-1, overall and by shot group
/// (right), against the epoch.
pub fn curves_svg(history: &[EpochRecord]) -> Result<String> {
    let epochs = history.len().max(1) as f64;
    let points = |value: &dyn Fn(&EpochRecord) -> Option<f64>| -> Vec<(f64, f64)> {
        history
            .iter()
            .filter_map(|r| value(r).map(|v| (r.epoch as f64 + 1.0, v)))
            .collect()
    };
    let curve = |name: &str, color, points| Curve {
        name: name.into(),
        color,
        points,
    };
    let losses = [
        curve("total", BLUE, points(&|r| Some(r.train.loss))),
        curve(
            "classification",
            RED,
            points(&|r| Some(r.train.classification)),
        ),
        curve("contrastive", GREEN, points(&|r| r.train.contrastive)),
    ];
    let max_loss = losses
        .iter()
        .flat_map(|c| c.points.iter().map(|p| p.1))
        .filter(|v| v.is_finite())
        .fold(0.0f64, f64::max)
        .max(1e-6)
        * 1.05;
    let top1 = |value: fn(&EvalReport) -> Option<f64>| points(&|r| r.eval.as_ref().and_then(value));
    let mut accuracy = vec![curve("all", BLACK, top1(|e| Some(e.top1)))];
    for (group, color, name) in GROUPS {
        let value = match group {
            ShotGroup::Many => top1(|e| e.many),
            ShotGroup::Medium => top1(|e| e.medium),
            ShotGroup::Few => top1(|e| e.few),
        };
        accuracy.push(curve(name, color, value));
    }
    render("curves.svg", (960, 400), |root| {
        let (left, right) = root.split_horizontally(480);
        let (upper, lower) = (
            SeriesLabelPosition::UpperRight,
            SeriesLabelPosition::LowerRight,
        );
        line_chart(
            &left,
            "training loss",
            ("epoch", epochs),
            max_loss,
            (&losses, upper),
        )?;
        line_chart(
            &right,
            "test top-1",
            ("epoch", epochs),
            1.0,
            (&accuracy, lower),
        )
    })
}

/// Writes [`curves_svg`] to `path`, atomically.
pub fn plot_curves(path: &Path, history: &[EpochRecord]) -> Result<()> {
    write_svg(path, &curves_svg(history)?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::history::write_history;
    use crate::report::plots::tests::record;

    #[test]
    fn writes_history_and_curves() {
        let dir = tempfile::tempdir().unwrap();
        let mut history: Vec<_> = (0..3).map(record).collect();
        for r in &mut history {
            r.eval.as_mut().unwrap().confusion = None;
        }
        write_history(dir.path(), &history).unwrap();
        let jsonl = std::fs::read_to_string(dir.path().join("metrics.jsonl")).unwrap();
        assert_eq!(jsonl.lines().count(), 3);
        let back: EpochRecord = serde_json::from_str(jsonl.lines().last().unwrap()).unwrap();
        assert_eq!(back, history[2]);
        let csv = std::fs::read_to_string(dir.path().join("metrics.csv")).unwrap();
        assert_eq!(csv.lines().count(), 4);
        assert!(
            csv.lines()
                .nth(1)
                .unwrap()
                .ends_with(",0.5,0.9,0.8,0.5,0.2")
        );

        let curves = dir.path().join("curves.svg");
        plot_curves(&curves, &history).unwrap();
        let svg = std::fs::read_to_string(curves).unwrap();
        assert!(svg.starts_with("<svg") && svg.contains("test top-1"));
        // One epoch: a curve of one point still shows.
        assert!(curves_svg(&history[..1]).unwrap().contains("<circle"));
    }
}
