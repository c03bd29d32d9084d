//! SVG figures of a run, one file per figure: training curves, per-class accuracy, the
//! reliability diagram, the confusion matrix, the same-class similarity distributions, and the
//! test top-1 curves of several runs.
//!
//! Each figure has a function that renders it as an SVG string (`*_svg`, what the HTML pages
//! embed) and one that writes it to a file atomically (`plot_*`).

mod confusion;
mod curves;
mod per_class;
mod reliability;
mod similarity;
mod top1_curves;

pub use confusion::*;
pub use curves::*;
pub use per_class::*;
pub use reliability::*;
pub use similarity::*;
pub use top1_curves::*;

use std::path::Path;

use plotters::coord::Shift;
use plotters::prelude::*;

use crate::error::{Error, Result};
use crate::report::history::EpochRecord;
use crate::report::summary::RunIdentity;
use crate::stats::ShotGroup;
use crate::train::write_atomic;

/// The file names of the figures a run writes beside its files
/// ([`RunReport`](crate::report::RunReport)), in the order it writes them: `curves.svg`
/// every epoch, the others from the last evaluation once the run has one that gives them
/// (calibration, confusion matrix, feature-space diagnostics).
pub const RUN_FIGURES: [&str; 5] = [
    "curves.svg",
    "per_class.svg",
    "reliability.svg",
    "confusion.svg",
    "similarity.svg",
];

/// A drawing area of an SVG figure.
pub(crate) type Area<'a> = DrawingArea<SVGBackend<'a>, Shift>;

/// What drawing on an [`Area`] gives.
pub(crate) type Drawn = std::result::Result<(), DrawingAreaErrorKind<std::io::Error>>;

/// The shot groups with their colour and name, as every figure shows them.
pub(crate) const GROUPS: [(ShotGroup, RGBColor, &str); 3] = [
    (ShotGroup::Many, BLUE, "many"),
    (ShotGroup::Medium, MAGENTA, "medium"),
    (ShotGroup::Few, RED, "few"),
];

/// Colours of curves that are not shot groups (matplotlib's ten), in turn.
pub(crate) const PALETTE: [RGBColor; 10] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
    RGBColor(127, 127, 127),
    RGBColor(188, 189, 34),
    RGBColor(23, 190, 207),
];

/// A named, coloured curve of `(x, y)` points.
#[derive(Debug, Clone)]
pub(crate) struct Curve {
    pub(crate) name: String,
    pub(crate) color: RGBColor,
    pub(crate) points: Vec<(f64, f64)>,
}

/// The error of a figure that could not be drawn, naming its file.
fn plot_error(figure: &str, e: impl std::fmt::Display) -> Error {
    Error::io(figure, std::io::Error::other(format!("plot: {e}")))
}

/// Renders figure `figure` (its file name, for errors) of `size` pixels on a white ground
/// with `draw`, as an SVG string.
pub(crate) fn render(
    figure: &'static str,
    size: (u32, u32),
    draw: impl for<'a> FnOnce(&Area<'a>) -> Drawn,
) -> Result<String> {
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, size).into_drawing_area();
        root.fill(&WHITE).map_err(|e| plot_error(figure, e))?;
        draw(&root).map_err(|e| plot_error(figure, e))?;
        root.present().map_err(|e| plot_error(figure, e))?;
    }
    Ok(svg)
}

/// Writes the figure `svg` to `path`, atomically.
pub(crate) fn write_svg(path: &Path, svg: &str) -> Result<()> {
    write_atomic(path, svg.as_bytes())
}

/// The figures of a run with history `history` into `dir` ([`RUN_FIGURES`]): `curves.svg`
/// and, from the last evaluation, `per_class.svg`, `reliability.svg` (with its calibration),
/// `confusion.svg` (with its confusion matrix) and `similarity.svg` (with its feature-space
/// diagnostics).
pub(crate) fn write_plots(
    dir: &Path,
    identity: &RunIdentity,
    history: &[EpochRecord],
) -> Result<()> {
    plot_curves(&dir.join("curves.svg"), history)?;
    let Some(eval) = history.iter().rev().find_map(|r| r.eval.as_ref()) else {
        return Ok(());
    };
    let counts = &identity.train_counts;
    plot_per_class(&dir.join("per_class.svg"), counts, &eval.per_class)?;
    if let Some(calibration) = &eval.calibration {
        plot_reliability(&dir.join("reliability.svg"), calibration)?;
    }
    if let Some(confusion) = &eval.confusion {
        plot_confusion(&dir.join("confusion.svg"), counts, confusion)?;
    }
    if let Some(space) = &eval.feature_space {
        plot_similarity(&dir.join("similarity.svg"), space)?;
    }
    Ok(())
}

/// Draws `curves` against `x` on `area` with a legend at `legend`; empty curves are skipped.
pub(crate) fn line_chart(
    area: &Area,
    title: &str,
    (x_desc, x_max): (&str, f64),
    y_max: f64,
    (curves, legend): (&[Curve], SeriesLabelPosition),
) -> Drawn {
    let mut chart = ChartBuilder::on(area)
        .caption(title, ("sans-serif", 18))
        .margin(10)
        .x_label_area_size(35)
        .y_label_area_size(50)
        .build_cartesian_2d(0f64..x_max, 0f64..y_max)?;
    chart.configure_mesh().x_desc(x_desc).draw()?;
    for curve in curves.iter().filter(|c| !c.points.is_empty()) {
        let color = curve.color;
        chart
            .draw_series(LineSeries::new(curve.points.clone(), color.stroke_width(2)))?
            .label(curve.name.as_str())
            .legend(move |(x, y)| PathElement::new([(x, y), (x + 15, y)], color.stroke_width(2)));
        if curve.points.len() == 1 {
            chart.draw_series(
                curve
                    .points
                    .iter()
                    .map(|&p| Circle::new(p, 3, color.filled())),
            )?;
        }
    }
    chart
        .configure_series_labels()
        .position(legend)
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .draw()
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::eval::{
        CALIBRATION_BINS, Calibration, CalibrationFigures, EvalReport, FeatureSpace,
        GroupSimilarity, ReliabilityBin, SIMILARITY_BINS, SimilarityByGroup,
    };
    use crate::train::TrainRecord;

    /// An evaluation with every figure: 3 classes (many, medium, few).
    pub(crate) fn full_eval(top1: f64) -> EvalReport {
        let figures = CalibrationFigures {
            ece: 0.1,
            mce: 0.3,
            nll: 0.9,
        };
        let mut bins = vec![ReliabilityBin::default(); CALIBRATION_BINS];
        bins[10] = ReliabilityBin {
            count: 7,
            confidence: 0.7,
            accuracy: 0.6,
        };
        bins[14] = ReliabilityBin {
            count: 3,
            confidence: 0.98,
            accuracy: 1.0,
        };
        let mut histogram = vec![0; SIMILARITY_BINS];
        histogram[35] = 10;
        histogram[39] = 4;
        let group = GroupSimilarity {
            same_class: Some(0.8),
            different_class: Some(0.3),
            same_class_histogram: histogram,
        };
        let space = SimilarityByGroup {
            many: Some(group.clone()),
            medium: None,
            few: Some(group),
        };
        EvalReport {
            top1,
            top5: 0.9,
            many: Some(0.8),
            medium: Some(0.5),
            few: Some(0.2),
            per_class: vec![Some(0.8), Some(0.5), Some(0.2)],
            images: 10,
            calibration: Some(Calibration {
                overall: figures,
                many: Some(figures),
                medium: None,
                few: Some(figures),
                bins,
            }),
            feature_space: Some(FeatureSpace {
                backbone: space.clone(),
                projection: Some(space),
            }),
            confusion: Some(vec![vec![3, 1, 0], vec![1, 2, 1], vec![0, 3, 1]]),
        }
    }

    /// Epoch `epoch` of a run evaluated after every epoch.
    pub(crate) fn record(epoch: usize) -> EpochRecord {
        EpochRecord {
            epoch,
            lr: 0.1,
            train: TrainRecord {
                loss: 2.0 / (epoch + 1) as f64,
                classification: 1.0,
                contrastive: Some(0.5),
                train_top1: 0.3,
                images_per_second: 100.0,
                seconds: 1.0,
            },
            eval: Some(full_eval(0.5 + 0.1 * epoch as f64)),
        }
    }

    #[test]
    fn a_run_writes_every_figure() {
        let dir = tempfile::tempdir().unwrap();
        let identity = RunIdentity {
            method: "rescom".into(),
            dataset: "toy".into(),
            train_counts: vec![500, 50, 5],
            seed: 0,
        };
        let history: Vec<_> = (0..3).map(record).collect();
        write_plots(dir.path(), &identity, &history).unwrap();
        for figure in RUN_FIGURES {
            let svg = std::fs::read_to_string(dir.path().join(figure)).unwrap();
            assert!(svg.starts_with("<svg") && svg.trim_end().ends_with("</svg>"));
        }
        let reliability = std::fs::read_to_string(dir.path().join("reliability.svg")).unwrap();
        assert!(reliability.contains("ECE 10.00 %, MCE 30.00 %"));
    }
}
