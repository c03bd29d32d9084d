//! The confusion matrix of an evaluation, rows normalised, classes ordered by training count
//! with the shot groups marked; between shot groups for many classes.

use std::path::Path;

use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use super::{Area, Drawn, GROUPS, render, write_svg};
use crate::error::{Error, Result};
use crate::stats::ShotGroup;

/// Above this many classes the confusion figure is the 3 x 3 matrix between shot groups.
pub const CONFUSION_CLASSES_SHOWN: usize = 100;

/// Side of the figure, in pixels.
const SIZE: i32 = 720;
/// Margins around the matrix: left, top, right, bottom.
const MARGIN: (i32, i32, i32, i32) = (110, 80, 90, 30);

/// A row-normalised matrix to draw: what each row and column is, and the fraction of the
/// row's test images in each cell (`None`: the row has no test image).
struct Matrix {
    title: String,
    labels: Vec<String>,
    groups: Vec<ShotGroup>,
    values: Vec<Vec<Option<f64>>>,
}

/// The confusion matrix `confusion` (`confusion[label][prediction]`, one row and column per
/// class of `train_counts`) as SVG: each row divided by its test images, the classes ordered by
/// training count (most first, ties by index) with the many/medium/few groups marked. Above
/// [`CONFUSION_CLASSES_SHOWN`] classes it draws the 3 x 3 matrix between shot groups instead
/// (row group: the label's, column group: the prediction's).
///
/// # Errors
/// [`Error::Shape`] when `confusion` is not `C x C` for the `C` classes of `train_counts`.
pub fn confusion_svg(train_counts: &[usize], confusion: &[Vec<u64>]) -> Result<String> {
    let c = train_counts.len();
    if confusion.len() != c || confusion.iter().any(|row| row.len() != c) {
        return Err(Error::Shape {
            name: "confusion",
            actual: vec![confusion.len(), confusion.first().map_or(0, Vec::len)],
            expected: format!("[{c}, {c}] (one row and column per class)"),
        });
    }
    let matrix = if c > CONFUSION_CLASSES_SHOWN {
        group_matrix(train_counts, confusion)
    } else {
        class_matrix(train_counts, confusion)
    };
    render("confusion.svg", (SIZE as u32, SIZE as u32), |root| {
        draw_matrix(root, &matrix)
    })
}

/// Writes [`confusion_svg`] to `path`, atomically.
pub fn plot_confusion(path: &Path, train_counts: &[usize], confusion: &[Vec<u64>]) -> Result<()> {
    write_svg(path, &confusion_svg(train_counts, confusion)?)
}

/// `counts` divided by their sum; `None` for an empty row.
fn normalised(counts: impl Iterator<Item = u64> + Clone) -> Vec<Option<f64>> {
    let total: u64 = counts.clone().sum();
    counts
        .map(|n| (total > 0).then(|| n as f64 / total as f64))
        .collect()
}

/// The matrix between classes, ordered by training count.
fn class_matrix(train_counts: &[usize], confusion: &[Vec<u64>]) -> Matrix {
    let mut order: Vec<usize> = (0..train_counts.len()).collect();
    order.sort_by_key(|&c| (std::cmp::Reverse(train_counts[c]), c));
    Matrix {
        title: "confusion matrix (rows normalised, classes by training count)".into(),
        labels: order.iter().map(|c| c.to_string()).collect(),
        groups: order
            .iter()
            .map(|&c| ShotGroup::of(train_counts[c]))
            .collect(),
        values: order
            .iter()
            .map(|&row| normalised(order.iter().map(|&col| confusion[row][col])))
            .collect(),
    }
}

/// The matrix between the shot groups that have classes.
fn group_matrix(train_counts: &[usize], confusion: &[Vec<u64>]) -> Matrix {
    let groups: Vec<(ShotGroup, &str)> = GROUPS
        .iter()
        .filter(|(g, _, _)| train_counts.iter().any(|&n| ShotGroup::of(n) == *g))
        .map(|&(g, _, name)| (g, name))
        .collect();
    let sum = |from: ShotGroup, to: ShotGroup| -> u64 {
        let of = |c: usize| ShotGroup::of(train_counts[c]);
        (0..train_counts.len())
            .filter(|&r| of(r) == from)
            .flat_map(|r| {
                (0..train_counts.len())
                    .filter(move |&c| of(c) == to)
                    .map(move |c| (r, c))
            })
            .map(|(r, c)| confusion[r][c])
            .sum()
    };
    Matrix {
        title: format!(
            "confusion between shot groups ({} classes, rows normalised)",
            train_counts.len()
        ),
        labels: groups.iter().map(|(_, name)| name.to_string()).collect(),
        groups: groups.iter().map(|(g, _)| *g).collect(),
        values: groups
            .iter()
            .map(|&(from, _)| normalised(groups.iter().map(|&(to, _)| sum(from, to))))
            .collect(),
    }
}

/// White to dark blue as a fraction goes from 0 to 1.
fn shade(v: f64) -> RGBColor {
    let v = v.clamp(0.0, 1.0);
    let mix = |white: f64, dark: f64| (white + (dark - white) * v).round() as u8;
    RGBColor(mix(255.0, 8.0), mix(255.0, 48.0), mix(255.0, 107.0))
}

/// The pixel edge before row or column `i` of `n`.
fn edge(i: usize, n: usize, start: i32, span: i32) -> i32 {
    start + (i as f64 * span as f64 / n as f64).round() as i32
}

/// Draws the title, the cells, the shot groups, the labels and the colour scale.
fn draw_matrix(root: &Area, m: &Matrix) -> Drawn {
    let (left, top, right, bottom) = MARGIN;
    let (w, h) = (SIZE - left - right, SIZE - top - bottom);
    let n = m.labels.len().max(1);
    let font = |size: f64, h: HPos, v: VPos| {
        TextStyle::from(("sans-serif", size).into_font()).pos(Pos::new(h, v))
    };
    let centre = font(12.0, HPos::Center, VPos::Center);
    root.draw(&Text::new(
        m.title.clone(),
        (SIZE / 2, 8),
        font(16.0, HPos::Center, VPos::Top),
    ))?;
    root.draw(&Text::new(
        "rows: true class; columns: predicted class",
        (SIZE / 2, 30),
        font(12.0, HPos::Center, VPos::Top),
    ))?;
    let x = |i| edge(i, n, left, w);
    let y = |i| edge(i, n, top, h);
    for (i, row) in m.values.iter().enumerate() {
        for (j, v) in row.iter().enumerate() {
            let Some(v) = v.filter(|v| *v > 0.0) else {
                continue;
            };
            root.draw(&Rectangle::new(
                [(x(j), y(i)), (x(j + 1), y(i + 1))],
                shade(v).filled(),
            ))?;
            if n <= 12 {
                let text = if v >= 0.5 { WHITE } else { BLACK };
                let style = centre.color(&text);
                let at = ((x(j) + x(j + 1)) / 2, (y(i) + y(i + 1)) / 2);
                root.draw(&Text::new(format!("{:.0}", 100.0 * v), at, style))?;
            }
        }
    }
    root.draw(&Rectangle::new(
        [(left, top), (left + w, top + h)],
        BLACK.stroke_width(1),
    ))?;
    draw_groups(root, m, (x(0), y(0)), (&x, &y))?;
    if n <= 30 {
        for (i, label) in m.labels.iter().enumerate() {
            let mid = (y(i) + y(i + 1)) / 2;
            root.draw(&Text::new(
                label.clone(),
                (left - 6, mid),
                font(11.0, HPos::Right, VPos::Center),
            ))?;
            let mid = (x(i) + x(i + 1)) / 2;
            root.draw(&Text::new(
                label.clone(),
                (mid, top - 6),
                font(11.0, HPos::Center, VPos::Bottom),
            ))?;
        }
    }
    draw_scale(root, (left + w + 30, top), h)
}

/// Lines between the shot groups across the matrix, and their names left of the rows and
/// above the columns.
fn draw_groups(
    root: &Area,
    m: &Matrix,
    (left, top): (i32, i32),
    (x, y): (&dyn Fn(usize) -> i32, &dyn Fn(usize) -> i32),
) -> Drawn {
    let n = m.groups.len();
    let mut start = 0;
    while start < n {
        let group = m.groups[start];
        let end = (start..n).find(|&i| m.groups[i] != group).unwrap_or(n);
        let (_, color, name) = GROUPS
            .iter()
            .find(|(g, _, _)| *g == group)
            .copied()
            .unwrap_or(GROUPS[0]);
        let style = TextStyle::from(("sans-serif", 13).into_font()).color(&color);
        let mid = (y(start) + y(end)) / 2;
        root.draw(&Text::new(
            name,
            (8, mid),
            style.pos(Pos::new(HPos::Left, VPos::Center)),
        ))?;
        let mid = (x(start) + x(end)) / 2;
        root.draw(&Text::new(
            name,
            (mid, top - 24),
            style.pos(Pos::new(HPos::Center, VPos::Bottom)),
        ))?;
        root.draw(&PathElement::new(
            [(left - 4, y(start)), (left - 4, y(end))],
            color.stroke_width(3),
        ))?;
        root.draw(&PathElement::new(
            [(x(start), top - 4), (x(end), top - 4)],
            color.stroke_width(3),
        ))?;
        if end < n {
            let (bottom, right) = (y(n), x(n));
            root.draw(&PathElement::new(
                [(left, y(end)), (right, y(end))],
                BLACK.stroke_width(2),
            ))?;
            root.draw(&PathElement::new(
                [(x(end), top), (x(end), bottom)],
                BLACK.stroke_width(2),
            ))?;
        }
        start = end;
    }
    Ok(())
}

/// The colour scale: 0 % to 100 % of the row, top to bottom.
fn draw_scale(root: &Area, (x, top): (i32, i32), height: i32) -> Drawn {
    let steps = 20;
    for s in 0..steps {
        let y0 = top + s * height / steps;
        let y1 = top + (s + 1) * height / steps;
        let v = (s as f64 + 0.5) / steps as f64;
        root.draw(&Rectangle::new([(x, y0), (x + 16, y1)], shade(v).filled()))?;
    }
    root.draw(&Rectangle::new(
        [(x, top), (x + 16, top + height)],
        BLACK.stroke_width(1),
    ))?;
    let label =
        TextStyle::from(("sans-serif", 11).into_font()).pos(Pos::new(HPos::Left, VPos::Center));
    for (v, text) in [(0, "0 %"), (1, "50 %"), (2, "100 %")] {
        root.draw(&Text::new(
            text,
            (x + 20, top + v * height / 2),
            label.clone(),
        ))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_are_normalised_and_ordered_by_training_count() {
        // Class 1 has the most training images: it comes first.
        let m = class_matrix(
            &[50, 500, 5],
            &[vec![1, 1, 0], vec![0, 4, 0], vec![0, 0, 0]],
        );
        assert_eq!(m.labels, ["1", "0", "2"]);
        assert_eq!(
            m.groups,
            [ShotGroup::Many, ShotGroup::Medium, ShotGroup::Few]
        );
        assert_eq!(m.values[0], [Some(1.0), Some(0.0), Some(0.0)]);
        assert_eq!(m.values[1], [Some(0.5), Some(0.5), Some(0.0)]);
        assert_eq!(m.values[2], [None, None, None]);
        let svg = confusion_svg(
            &[50, 500, 5],
            &[vec![1, 1, 0], vec![0, 4, 0], vec![0, 0, 0]],
        );
        assert!(svg.unwrap().contains(">\n50\n<"));
    }

    #[test]
    fn many_classes_give_the_matrix_between_shot_groups() {
        let counts: Vec<usize> = (0..120).map(|c| if c < 60 { 200 } else { 5 }).collect();
        let mut confusion = vec![vec![0u64; 120]; 120];
        confusion[0][0] = 3; // many -> many
        confusion[1][100] = 1; // many -> few
        confusion[100][100] = 2; // few -> few
        let m = group_matrix(&counts, &confusion);
        assert_eq!(m.labels, ["many", "few"]);
        assert_eq!(m.values, [[Some(0.75), Some(0.25)], [Some(0.0), Some(1.0)]]);
        let svg = confusion_svg(&counts, &confusion).unwrap();
        assert!(svg.contains("confusion between shot groups (120 classes"));
        assert!(matches!(
            confusion_svg(&counts[..3], &confusion),
            Err(Error::Shape { .. })
        ));
    }
}
