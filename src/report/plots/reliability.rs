//! The reliability diagram of an evaluation: accuracy per confidence bin against the diagonal,
//! with the number of test images in each bin.

use std::path::Path;

use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use super::{Area, Drawn, render, write_svg};
use crate::error::Result;
use crate::eval::{Calibration, ReliabilityBin};

/// The reliability diagram of `calibration` as SVG: above, the accuracy of each non-empty
/// confidence bin (bars), its gap to the bin's mean confidence and the diagonal of perfect
/// calibration; below, the number of test images in each bin. ECE and MCE are in the title.
pub fn reliability_svg(calibration: &Calibration) -> Result<String> {
    let title = format!(
        "reliability: ECE {:.2} %, MCE {:.2} %",
        100.0 * calibration.overall.ece,
        100.0 * calibration.overall.mce
    );
    let bins = &calibration.bins;
    render("reliability.svg", (640, 600), |root| {
        let area = root.titled(&title, ("sans-serif", 18))?;
        let (top, bottom) = area.split_vertically(390);
        accuracy_chart(&top, bins)?;
        count_chart(&bottom, bins)
    })
}

/// Writes [`reliability_svg`] to `path`, atomically.
pub fn plot_reliability(path: &Path, calibration: &Calibration) -> Result<()> {
    write_svg(path, &reliability_svg(calibration)?)
}

/// The edges of bin `b` of `bins`.
fn edges(b: usize, bins: usize) -> (f64, f64) {
    (b as f64 / bins as f64, (b + 1) as f64 / bins as f64)
}

/// Accuracy bars, gaps to the mean confidence, and the diagonal.
fn accuracy_chart(area: &Area, bins: &[ReliabilityBin]) -> Drawn {
    let mut chart = ChartBuilder::on(area)
        .margin(10)
        .x_label_area_size(35)
        .y_label_area_size(50)
        .build_cartesian_2d(0f64..1f64, 0f64..1f64)?;
    chart
        .configure_mesh()
        .x_desc("confidence")
        .y_desc("accuracy")
        .draw()?;
    let filled: Vec<(usize, &ReliabilityBin)> = bins
        .iter()
        .enumerate()
        .filter(|(_, b)| b.count > 0)
        .collect();
    let n = bins.len();
    let bar = BLUE.mix(0.55);
    chart
        .draw_series(filled.iter().map(|&(b, bin)| {
            let (lo, hi) = edges(b, n);
            Rectangle::new([(lo, 0.0), (hi, bin.accuracy)], bar.filled())
        }))?
        .label("accuracy of the bin")
        .legend(move |(x, y)| Rectangle::new([(x, y - 5), (x + 12, y + 5)], bar.filled()));
    let gap = RED.mix(0.3);
    chart
        .draw_series(filled.iter().map(|&(b, bin)| {
            let (lo, hi) = edges(b, n);
            Rectangle::new([(lo, bin.accuracy), (hi, bin.confidence)], gap.filled())
        }))?
        .label("gap to its mean confidence")
        .legend(move |(x, y)| Rectangle::new([(x, y - 5), (x + 12, y + 5)], gap.filled()));
    let grey = RGBColor(90, 90, 90);
    chart
        .draw_series(DashedLineSeries::new(
            [(0.0, 0.0), (1.0, 1.0)],
            6,
            4,
            grey.stroke_width(1),
        ))?
        .label("perfect calibration")
        .legend(move |(x, y)| PathElement::new([(x, y), (x + 15, y)], grey));
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperLeft)
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .draw()
}

/// The number of test images in each bin, as bars with their count above.
fn count_chart(area: &Area, bins: &[ReliabilityBin]) -> Drawn {
    let max = bins.iter().map(|b| b.count).max().unwrap_or(0).max(1) as f64;
    let mut chart = ChartBuilder::on(area)
        .margin(10)
        .x_label_area_size(35)
        .y_label_area_size(50)
        .build_cartesian_2d(0f64..1f64, 0f64..max * 1.2)?;
    chart
        .configure_mesh()
        .x_desc("confidence")
        .y_desc("test images")
        .y_labels(4)
        .draw()?;
    let n = bins.len();
    chart.draw_series(
        bins.iter()
            .enumerate()
            .filter(|(_, b)| b.count > 0)
            .map(|(b, bin)| {
                let (lo, hi) = edges(b, n);
                Rectangle::new([(lo, 0.0), (hi, bin.count as f64)], BLUE.mix(0.35).filled())
            }),
    )?;
    let label =
        TextStyle::from(("sans-serif", 11).into_font()).pos(Pos::new(HPos::Center, VPos::Bottom));
    chart.draw_series(
        bins.iter()
            .enumerate()
            .filter(|(_, b)| b.count > 0)
            .map(|(b, bin)| {
                let (lo, hi) = edges(b, n);
                Text::new(
                    bin.count.to_string(),
                    ((lo + hi) / 2.0, bin.count as f64),
                    label.clone(),
                )
            }),
    )?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::plots::tests::full_eval;

    #[test]
    fn bars_for_the_filled_bins_and_their_counts() {
        let calibration = full_eval(0.5).calibration.unwrap();
        let svg = reliability_svg(&calibration).unwrap();
        assert!(svg.contains("ECE 10.00 %, MCE 30.00 %"));
        for count in [">\n7\n<", ">\n3\n<"] {
            assert!(svg.contains(count), "{count}");
        }
    }
}
