//! The distribution of same-class cosine similarities by shot group, for the backbone
//! features and the projections: the figure the ResCom paper uses to motivate the method
//! (tail classes are less compact than head classes).

use std::path::Path;

use plotters::prelude::*;

use super::{Area, Drawn, GROUPS, render, write_svg};
use crate::error::Result;
use crate::eval::{FeatureSpace, SimilarityByGroup};

/// The same-class cosine-similarity distributions of `space` as SVG: for each shot group, the
/// fraction of its same-class pairs in each of the histogram's bins over `[-1, 1]`, with the
/// group's mean as a dashed line; backbone features on the left and, where the run has
/// them, projections on the right.
pub fn similarity_svg(space: &FeatureSpace) -> Result<String> {
    let mut panels = vec![("backbone features", &space.backbone)];
    if let Some(projection) = &space.projection {
        panels.push(("projections", projection));
    }
    let width = 500 * panels.len() as u32;
    render("similarity.svg", (width, 440), |root| {
        let area = root.titled(
            "same-class cosine similarity of test images, by shot group",
            ("sans-serif", 18),
        )?;
        let areas = area.split_evenly((1, panels.len()));
        for (area, (name, groups)) in areas.iter().zip(&panels) {
            similarity_chart(area, name, groups)?;
        }
        Ok(())
    })
}

/// Writes [`similarity_svg`] to `path`, atomically.
pub fn plot_similarity(path: &Path, space: &FeatureSpace) -> Result<()> {
    write_svg(path, &similarity_svg(space)?)
}

/// The fraction of each bin of `histogram` at the bin's centre in `[-1, 1]`; empty when the
/// histogram holds no pair.
fn fractions(histogram: &[u64]) -> Vec<(f64, f64)> {
    let total: u64 = histogram.iter().sum();
    if total == 0 {
        return Vec::new();
    }
    let width = 2.0 / histogram.len() as f64;
    histogram
        .iter()
        .enumerate()
        .map(|(b, &n)| (-1.0 + (b as f64 + 0.5) * width, n as f64 / total as f64))
        .collect()
}

/// One panel: the distribution of each group of `groups`.
fn similarity_chart(area: &Area, title: &str, groups: &SimilarityByGroup) -> Drawn {
    let curves: Vec<_> = GROUPS
        .iter()
        .filter_map(|&(group, color, name)| {
            let figures = groups.group(group)?;
            let points = fractions(&figures.same_class_histogram);
            (!points.is_empty()).then_some((name, color, figures, points))
        })
        .collect();
    let y_max = curves
        .iter()
        .flat_map(|c| c.3.iter().map(|p| p.1))
        .fold(0.05f64, f64::max)
        * 1.1;
    let mut chart = ChartBuilder::on(area)
        .caption(title, ("sans-serif", 16))
        .margin(10)
        .x_label_area_size(35)
        .y_label_area_size(50)
        .build_cartesian_2d(-1f64..1f64, 0f64..y_max)?;
    chart
        .configure_mesh()
        .x_desc("cosine similarity")
        .y_desc("fraction of same-class pairs")
        .draw()?;
    for (name, color, figures, points) in curves {
        let mean = figures.same_class.map_or("-".into(), |m| format!("{m:.2}"));
        let other = figures
            .different_class
            .map_or("-".into(), |m| format!("{m:.2}"));
        chart
            .draw_series(LineSeries::new(points, color.stroke_width(2)))?
            .label(format!("{name}: mean {mean} (other classes {other})"))
            .legend(move |(x, y)| PathElement::new([(x, y), (x + 15, y)], color.stroke_width(2)));
        if let Some(m) = figures.same_class {
            let line = [(m, 0.0), (m, y_max * 0.95)];
            chart.draw_series(DashedLineSeries::new(line, 5, 4, color.stroke_width(1)))?;
        }
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperLeft)
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .draw()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::plots::tests::full_eval;

    #[test]
    fn fractions_sum_to_one_at_the_bin_centres() {
        let f = fractions(&[1, 0, 3, 0]);
        assert_eq!(f, [(-0.75, 0.25), (-0.25, 0.0), (0.25, 0.75), (0.75, 0.0)]);
        assert!(fractions(&[0, 0]).is_empty());
    }

    #[test]
    fn both_representations_side_by_side() {
        let mut space = full_eval(0.5).feature_space.unwrap();
        let svg = similarity_svg(&space).unwrap();
        assert!(svg.contains("projections") && svg.contains("backbone features"));
        assert!(svg.contains("many: mean 0.80 (other classes 0.30)"));
        assert!(svg.starts_with("<svg width=\"1000\""));
        space.projection = None;
        let svg = similarity_svg(&space).unwrap();
        assert!(!svg.contains("projections") && svg.starts_with("<svg width=\"500\""));
    }
}
