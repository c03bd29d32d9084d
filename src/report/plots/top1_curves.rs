//! Test top-1 curves of several runs or groups of runs, overlaid.

use std::path::Path;

use super::{Curve, PALETTE, line_chart, render, write_svg};
use crate::error::Result;

/// Overlaid test top-1 curves as SVG: `curves` holds, for each curve, its name and its
/// `(epoch, top-1)` points (epochs 1-based, top-1 a fraction); colours are taken in turn.
pub fn top1_curves_svg(curves: &[(String, Vec<(f64, f64)>)]) -> Result<String> {
    let x_max = curves
        .iter()
        .flat_map(|(_, points)| points.iter().map(|p| p.0))
        .fold(1.0f64, f64::max);
    let curves: Vec<Curve> = curves
        .iter()
        .enumerate()
        .map(|(i, (name, points))| Curve {
            name: name.clone(),
            color: PALETTE[i % PALETTE.len()],
            points: points.clone(),
        })
        .collect();
    render("top1_curves.svg", (960, 480), |root| {
        let legend = plotters::chart::SeriesLabelPosition::LowerRight;
        line_chart(root, "test top-1", ("epoch", x_max), 1.0, (&curves, legend))
    })
}

/// Writes [`top1_curves_svg`] to `path`, atomically.
pub fn plot_top1_curves(path: &Path, curves: &[(String, Vec<(f64, f64)>)]) -> Result<()> {
    write_svg(path, &top1_curves_svg(curves)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_legend_entry_per_curve() {
        let curves = vec![
            ("rescom".to_string(), vec![(1.0, 0.3), (2.0, 0.5)]),
            (
                "balanced-softmax".to_string(),
                vec![(1.0, 0.35), (2.0, 0.55)],
            ),
        ];
        let svg = top1_curves_svg(&curves).unwrap();
        assert!(svg.contains("\nrescom\n") && svg.contains("\nbalanced-softmax\n"));
    }
}
