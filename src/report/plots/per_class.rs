//! Per-class test accuracy against the training count of the class.

use std::path::Path;

use plotters::prelude::*;

use super::{GROUPS, render, write_svg};
use crate::error::Result;
use crate::stats::ShotGroup;

/// Per-class test accuracy against the class's training count (log scale), coloured by shot
/// group, as SVG. `train_counts` and `per_class` have one entry per class.
pub fn per_class_svg(train_counts: &[usize], per_class: &[Option<f64>]) -> Result<String> {
    let max_count = train_counts.iter().copied().max().unwrap_or(1).max(2) as f64;
    render("per_class.svg", (640, 420), |root| {
        let mut chart = ChartBuilder::on(root)
            .caption("per-class test accuracy", ("sans-serif", 18))
            .margin(10)
            .x_label_area_size(40)
            .y_label_area_size(50)
            .build_cartesian_2d((1f64..max_count * 1.5).log_scale(), 0f64..1.02f64)?;
        chart
            .configure_mesh()
            .x_desc("training images of the class")
            .y_desc("top-1")
            .draw()?;
        for (group, color, name) in GROUPS {
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
                )?
                .label(name)
                .legend(move |(x, y)| Circle::new((x + 7, y), 4, color.filled()));
        }
        chart
            .configure_series_labels()
            .background_style(WHITE.mix(0.8))
            .border_style(BLACK)
            .draw()
    })
}

/// Writes [`per_class_svg`] to `path`, atomically.
pub fn plot_per_class(
    path: &Path,
    train_counts: &[usize],
    per_class: &[Option<f64>],
) -> Result<()> {
    write_svg(path, &per_class_svg(train_counts, per_class)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_point_per_class_with_a_test_image() {
        let svg = per_class_svg(&[500, 50, 5], &[Some(0.7), None, Some(0.2)]).unwrap();
        // Two points and two legend marks.
        assert_eq!(svg.matches("<circle").count(), 4, "{svg}");
    }
}
