//! The comparison page: one self-contained HTML document.

use std::collections::HashMap;

use serde_json::Value;

use super::tables::{
    GROUP_CAPTION, SHOT_CAPTION, dataset_lines, group_rows, paired_caption, paired_rows, shot_rows,
};
use super::{Comparison, PairedDifference};
use crate::error::Result;
use crate::report::html::{Page, leaf_text, leaves, percent};
use crate::report::plots::top1_curves_svg;

/// The sections of the comparison page, by id, in order (`paired` when there are pairs).
#[cfg(test)]
pub(crate) const COMPARISON_SECTIONS: [&str; 6] =
    ["groups", "shots", "paired", "curves", "differences", "runs"];

/// The page of `comparison` with the paired differences `paired`.
pub(crate) fn page(comparison: &Comparison, paired: &[PairedDifference]) -> Result<String> {
    let groups = comparison.groups();
    let runs: usize = groups.iter().map(|g| g.runs.len()).sum();
    let mut page = Page::new(&format!(
        "Comparison of {runs} runs in {} groups",
        groups.len()
    ));
    for line in dataset_lines(comparison) {
        page.paragraph(&line);
    }
    page.section("groups", "Groups");
    page.note(GROUP_CAPTION);
    let (header, rows) = group_rows(comparison);
    page.table(&header, &rows, &[]);
    let (header, rows) = shot_rows(comparison);
    if !rows.is_empty() {
        page.section("shots", "By shot group");
        page.note(SHOT_CAPTION);
        page.table(&header, &rows, &[]);
    }
    if !paired.is_empty() {
        page.section("paired", "Paired differences");
        for pair in paired {
            page.paragraph(&paired_caption(pair));
            let (header, rows) = paired_rows(pair);
            page.table(&header, &rows, &[]);
        }
    }
    page.section("curves", "Test top-1");
    let curves: Vec<(String, Vec<(f64, f64)>)> = groups
        .iter()
        .map(|g| (g.name.clone(), g.top1_curve()))
        .collect();
    page.figure(
        &top1_curves_svg(&curves)?,
        "Mean test top-1 of each group against the epoch (over the runs evaluated at it).",
    );
    differences(&mut page, comparison);
    page.section("runs", "Runs");
    let rows: Vec<Vec<String>> = groups
        .iter()
        .flat_map(|g| {
            g.runs.iter().map(move |r| {
                vec![
                    r.dir.display().to_string(),
                    g.name.clone(),
                    r.seed().to_string(),
                    r.summary.epochs.to_string(),
                    percent(Some(r.summary.last.top1)),
                    percent(Some(r.summary.best.top1)),
                ]
            })
        })
        .collect();
    let header = [
        "directory",
        "group",
        "seed",
        "epochs",
        "top-1 %",
        "best top-1 %",
    ];
    page.table(&header, &rows, &[0]);
    Ok(page.finish())
}

/// The fields of the configurations that differ between groups, one column per group.
fn differences(page: &mut Page, comparison: &Comparison) {
    page.section("differences", "What differs between the groups");
    let groups = comparison.groups();
    let maps: Vec<HashMap<String, &Value>> = groups
        .iter()
        .map(|g| leaves(&g.configuration).into_iter().collect())
        .collect();
    let mut keys: Vec<String> = Vec::new();
    for g in groups {
        for (k, _) in leaves(&g.configuration) {
            if !keys.contains(&k) && maps.iter().any(|m| m.get(&k) != maps[0].get(&k)) {
                keys.push(k);
            }
        }
    }
    if keys.is_empty() {
        page.note("The groups have the same configuration.");
        return;
    }
    page.note(
        "Fields of run.json (without the seeds) whose values are not the same in every group.",
    );
    let mut header = vec!["field"];
    header.extend(groups.iter().map(|g| g.name.as_str()));
    let rows: Vec<Vec<String>> = keys
        .iter()
        .map(|k| {
            std::iter::once(k.clone())
                .chain(
                    maps.iter()
                        .map(|m| m.get(k).map_or("-".into(), |v| leaf_text(v))),
                )
                .collect()
        })
        .collect();
    let text: Vec<usize> = (1..header.len()).collect();
    page.table(&header, &rows, &text);
}
