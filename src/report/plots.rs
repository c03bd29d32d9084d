//! SVG plots of a run: training curves and per-class test accuracy.

use std::path::Path;

use plotters::prelude::*;

use crate::error::{Error, Result};
use crate::eval::EvalReport;
use crate::report::history::EpochRecord;
use crate::report::summary::RunIdentity;
use crate::stats::ShotGroup;
use crate::train::write_atomic;

fn plot_error(path: &Path, e: impl std::fmt::Display) -> Error {
    Error::io(path, std::io::Error::other(format!("plot: {e}")))
}

/// A named, coloured curve of `(epoch, value)` points.
type Curve = (&'static str, RGBColor, Vec<(f64, f64)>);

/// A named, coloured curve: how to read its value from a record.
type Series<T> = (&'static str, RGBColor, fn(&T) -> Option<f64>);

/// The plots of a run with history `history` into `dir`: `curves.svg` and, once the run has
/// an evaluation, `per_class.svg`.
pub(crate) fn write_plots(
    dir: &Path,
    identity: &RunIdentity,
    history: &[EpochRecord],
) -> Result<()> {
    plot_curves(&dir.join("curves.svg"), history)?;
    if let Some(eval) = history.iter().rev().find_map(|r| r.eval.as_ref()) {
        plot_per_class(
            &dir.join("per_class.svg"),
            &identity.train_counts,
            &eval.per_class,
        )?;
    }
    Ok(())
}

/// Training curves: loss (left) and test top-1 (right) against the epoch, as SVG.
pub fn plot_curves(path: &Path, history: &[EpochRecord]) -> Result<()> {
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (960, 400)).into_drawing_area();
        root.fill(&WHITE).map_err(|e| plot_error(path, e))?;
        let (left, right) = root.split_horizontally(480);
        let epochs = history.len().max(1) as f64;

        let max_loss = history
            .iter()
            .flat_map(|r| {
                [
                    r.train.loss,
                    r.train.classification,
                    r.train.contrastive.unwrap_or(0.0),
                ]
            })
            .filter(|v| v.is_finite())
            .fold(0.0f64, f64::max)
            .max(1e-6)
            * 1.05;
        let points = |value: &dyn Fn(&EpochRecord) -> Option<f64>| -> Vec<(f64, f64)> {
            history
                .iter()
                .filter_map(|r| value(r).map(|v| (r.epoch as f64 + 1.0, v)))
                .collect()
        };
        let losses: [Series<EpochRecord>; 3] = [
            ("total", BLUE, |r| Some(r.train.loss)),
            ("classification", RED, |r| Some(r.train.classification)),
            ("contrastive", GREEN, |r| r.train.contrastive),
        ];
        let curves = losses.map(|(name, color, value)| (name, color, points(&value)));
        line_chart(&left, "training loss", epochs, max_loss, &curves)
            .map_err(|e| plot_error(path, e))?;
        let groups: [Series<EvalReport>; 4] = [
            ("all", BLACK, |e| Some(e.top1)),
            ("many", BLUE, |e| e.many),
            ("medium", MAGENTA, |e| e.medium),
            ("few", RED, |e| e.few),
        ];
        let curves = groups.map(|(name, color, value)| {
            (name, color, points(&|r| r.eval.as_ref().and_then(value)))
        });
        line_chart(&right, "test top-1", epochs, 1.0, &curves).map_err(|e| plot_error(path, e))?;
        root.present().map_err(|e| plot_error(path, e))?;
    }
    write_atomic(path, svg.as_bytes())
}

/// Draws named curves against the epoch on `area`, with a legend; empty curves are skipped.
fn line_chart<DB: DrawingBackend>(
    area: &DrawingArea<DB, plotters::coord::Shift>,
    title: &str,
    epochs: f64,
    y_max: f64,
    curves: &[Curve],
) -> std::result::Result<(), DrawingAreaErrorKind<DB::ErrorType>> {
    let mut chart = ChartBuilder::on(area)
        .caption(title, ("sans-serif", 18))
        .margin(10)
        .x_label_area_size(35)
        .y_label_area_size(50)
        .build_cartesian_2d(0f64..epochs, 0f64..y_max)?;
    chart.configure_mesh().x_desc("epoch").draw()?;
    for (name, color, points) in curves.iter().filter(|(_, _, p)| !p.is_empty()) {
        let color = *color;
        chart
            .draw_series(LineSeries::new(points.clone(), color.stroke_width(2)))?
            .label(*name)
            .legend(move |(x, y)| PathElement::new([(x, y), (x + 15, y)], color));
    }
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .draw()
}

/// Per-class test accuracy against the class's training count (log scale), coloured by
/// shot group, as SVG.
pub fn plot_per_class(
    path: &Path,
    train_counts: &[usize],
    per_class: &[Option<f64>],
) -> Result<()> {
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (640, 420)).into_drawing_area();
        root.fill(&WHITE).map_err(|e| plot_error(path, e))?;
        let max_count = train_counts.iter().copied().max().unwrap_or(1).max(2) as f64;
        let mut chart = ChartBuilder::on(&root)
            .caption("per-class test accuracy", ("sans-serif", 18))
            .margin(10)
            .x_label_area_size(40)
            .y_label_area_size(50)
            .build_cartesian_2d((1f64..max_count * 1.5).log_scale(), 0f64..1.02f64)
            .map_err(|e| plot_error(path, e))?;
        chart
            .configure_mesh()
            .x_desc("training images of the class")
            .y_desc("top-1")
            .draw()
            .map_err(|e| plot_error(path, e))?;
        for (group, color) in [
            (ShotGroup::Many, BLUE),
            (ShotGroup::Medium, MAGENTA),
            (ShotGroup::Few, RED),
        ] {
            let points: Vec<(f64, f64)> = train_counts
                .iter()
                .zip(per_class)
                .filter(|(n, _)| ShotGroup::of(**n) == group)
                .filter_map(|(n, a)| a.map(|a| ((*n).max(1) as f64, a)))
                .collect();
            if points.is_empty() {
                continue;
            }
            chart
                .draw_series(
                    points
                        .into_iter()
                        .map(|p| Circle::new(p, 4, color.filled())),
                )
                .map_err(|e| plot_error(path, e))?
                .label(format!("{group:?}").to_lowercase())
                .legend(move |(x, y)| Circle::new((x + 7, y), 4, color.filled()));
        }
        chart
            .configure_series_labels()
            .background_style(WHITE.mix(0.8))
            .border_style(BLACK)
            .draw()
            .map_err(|e| plot_error(path, e))?;
        root.present().map_err(|e| plot_error(path, e))?;
    }
    write_atomic(path, svg.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::history::write_history;

    fn record(epoch: usize) -> EpochRecord {
        EpochRecord {
            epoch,
            lr: 0.1,
            train: crate::train::TrainRecord {
                loss: 2.0 / (epoch + 1) as f64,
                classification: 1.0,
                contrastive: Some(0.5),
                train_top1: 0.3,
                images_per_second: 100.0,
                seconds: 1.0,
            },
            eval: Some(EvalReport {
                top1: 0.5,
                top5: 0.9,
                many: Some(0.7),
                medium: None,
                few: Some(0.2),
                per_class: vec![Some(0.7), Some(0.2)],
                images: 10,
                calibration: None,
                feature_space: None,
                confusion: None,
            }),
        }
    }

    #[test]
    fn writes_history_and_plots() {
        let dir = tempfile::tempdir().unwrap();
        let history: Vec<_> = (0..3).map(record).collect();
        write_history(dir.path(), &history).unwrap();
        let jsonl = std::fs::read_to_string(dir.path().join("metrics.jsonl")).unwrap();
        assert_eq!(jsonl.lines().count(), 3);
        let back: EpochRecord = serde_json::from_str(jsonl.lines().last().unwrap()).unwrap();
        assert_eq!(back, history[2]);
        let csv = std::fs::read_to_string(dir.path().join("metrics.csv")).unwrap();
        assert_eq!(csv.lines().count(), 4);
        assert!(csv.lines().nth(1).unwrap().ends_with(",0.5,0.9,0.7,,0.2"));

        let curves = dir.path().join("curves.svg");
        plot_curves(&curves, &history).unwrap();
        let per_class = dir.path().join("per_class.svg");
        plot_per_class(&per_class, &[500, 5], &[Some(0.7), Some(0.2)]).unwrap();
        for p in [curves, per_class] {
            let svg = std::fs::read_to_string(p).unwrap();
            assert!(svg.starts_with("<svg") && svg.contains("</svg>"));
        }
    }
}
