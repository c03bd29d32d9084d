//! The tables of a comparison, as rows of text cells, and their Markdown.

use std::fmt::Write as _;

use super::{Comparison, Metric, PairedDifference, ShotMetric};
use crate::stats::ShotGroup;

/// What the group table shows, for its caption.
pub(crate) const GROUP_CAPTION: &str = "Last evaluation of each run: mean ± sample standard \
    deviation over seeds, in % (n/a: a single run). ECE: expected calibration error over 15 \
    confidence bins; best top-1: the highest top-1 of each run's evaluations.";

/// What the table by shot group shows, for its caption.
pub(crate) const SHOT_CAPTION: &str = "By shot group (many: more than 100 training images, \
    medium: 20-100, few: fewer than 20), last evaluation, mean ± sample standard deviation \
    over seeds: top-1 and ECE in %, NLL in nats, and the mean cosine similarity of \
    L2-normalised backbone features and projections between test images of the same class \
    (same) and between the group's images and those of other classes (different).";

/// What a paired table shows, for its caption.
pub(crate) fn paired_caption(pair: &PairedDifference) -> String {
    format!(
        "Paired differences, {} (percentage points, runs of the same seed):",
        pair.name()
    )
}

/// The header and rows of the table of groups.
pub(crate) fn group_rows(comparison: &Comparison) -> (Vec<&'static str>, Vec<Vec<String>>) {
    let mut header = vec!["group", "runs", "seeds", "epochs"];
    header.extend(Metric::ALL.iter().map(|m| m.name()));
    let rows = comparison
        .groups()
        .iter()
        .map(|g| {
            let seeds: Vec<String> = g.seeds().iter().map(u64::to_string).collect();
            let mut row = vec![
                g.name.clone(),
                g.runs.len().to_string(),
                seeds.join(", "),
                g.epochs(),
            ];
            row.extend(
                Metric::ALL
                    .iter()
                    .map(|&m| g.stat(m).map_or("-".into(), |s| s.format(100.0))),
            );
            row
        })
        .collect();
    (header, rows)
}

/// The header and rows of the table by shot group: one row per group of runs and shot
/// group that has figures; columns no run has are left out.
pub(crate) fn shot_rows(comparison: &Comparison) -> (Vec<&'static str>, Vec<Vec<String>>) {
    const SHOTS: [(ShotGroup, &str); 3] = [
        (ShotGroup::Many, "many"),
        (ShotGroup::Medium, "medium"),
        (ShotGroup::Few, "few"),
    ];
    let cells = |g: &super::RunGroup, shots: ShotGroup| -> Vec<Option<String>> {
        ShotMetric::ALL
            .iter()
            .map(|&m| {
                let (scale, places) = m.display();
                g.shot_stat(m, shots)
                    .map(|s| s.format_places(scale, places))
            })
            .collect()
    };
    let mut table: Vec<(String, &str, Vec<Option<String>>)> = Vec::new();
    for g in comparison.groups() {
        for (shots, name) in SHOTS {
            let row = cells(g, shots);
            if row.iter().any(Option::is_some) {
                table.push((g.name.clone(), name, row));
            }
        }
    }
    let kept: Vec<usize> = (0..ShotMetric::ALL.len())
        .filter(|&i| table.iter().any(|(_, _, row)| row[i].is_some()))
        .collect();
    let mut header = vec!["group", "shots"];
    header.extend(kept.iter().map(|&i| ShotMetric::ALL[i].name()));
    let rows = table
        .into_iter()
        .map(|(group, shots, row)| {
            let mut out = vec![group, shots.to_string()];
            out.extend(kept.iter().map(|&i| row[i].clone().unwrap_or("-".into())));
            out
        })
        .collect();
    (header, rows)
}

/// A difference in percentage points with its sign, e.g. `+1.23` or `-3.62`.
fn points(v: Option<f64>) -> String {
    v.map_or("-".into(), |v| format!("{:+.2}", 100.0 * v))
}

/// The header and rows of one table of paired differences: one row per seed, then the mean.
pub(crate) fn paired_rows(pair: &PairedDifference) -> (Vec<&'static str>, Vec<Vec<String>>) {
    let mut header = vec!["seed"];
    header.extend(Metric::PAIRED.iter().map(|m| m.name()));
    let mut rows: Vec<Vec<String>> = pair
        .per_seed
        .iter()
        .map(|(seed, diffs)| {
            std::iter::once(seed.to_string())
                .chain(diffs.iter().map(|&d| points(d)))
                .collect()
        })
        .collect();
    let mean = pair.mean.iter().map(|m| {
        m.map_or("-".into(), |m| {
            let sd = m.sd.map_or("n/a".into(), |sd| format!("{:.2}", 100.0 * sd));
            format!("{} ± {sd}", points(Some(m.mean)))
        })
    });
    rows.push(
        std::iter::once("mean ± sd".to_string())
            .chain(mean)
            .collect(),
    );
    (header, rows)
}

/// The datasets of the comparison with their training histograms, one line each.
pub(crate) fn dataset_lines(comparison: &Comparison) -> Vec<String> {
    let mut lines: Vec<String> = Vec::new();
    for group in comparison.groups() {
        let Some(run) = group.runs.first() else {
            continue;
        };
        let line = format!(
            "{}: training images per class {:?}",
            run.summary.dataset, run.summary.train_counts
        );
        if !lines.contains(&line) {
            lines.push(line);
        }
    }
    lines
}

/// A Markdown table.
pub(crate) fn markdown_table(header: &[&str], rows: &[Vec<String>]) -> String {
    let mut out = format!("| {} |\n", header.join(" | "));
    let _ = writeln!(out, "|{}", " --- |".repeat(header.len()));
    for row in rows {
        let _ = writeln!(out, "| {} |", row.join(" | "));
    }
    out
}

/// Every table of `comparison` as Markdown, with the paired differences `paired`.
pub(crate) fn markdown(comparison: &Comparison, paired: &[PairedDifference]) -> String {
    let (header, rows) = group_rows(comparison);
    let mut out = format!("{GROUP_CAPTION}\n\n{}", markdown_table(&header, &rows));
    let (header, rows) = shot_rows(comparison);
    if !rows.is_empty() {
        let _ = write!(
            out,
            "\n{SHOT_CAPTION}\n\n{}",
            markdown_table(&header, &rows)
        );
    }
    for pair in paired {
        let (header, rows) = paired_rows(pair);
        let _ = write!(
            out,
            "\n{}\n\n{}",
            paired_caption(pair),
            markdown_table(&header, &rows)
        );
    }
    out.push('\n');
    for line in dataset_lines(comparison) {
        let _ = writeln!(out, "{line}");
    }
    out
}
