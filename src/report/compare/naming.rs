//! Readable names of groups of runs: the method, and what sets a group apart from the other
//! groups of that method.

use std::collections::HashMap;

use serde_json::Value;

use crate::report::html::{leaf_text, leaves};

/// The most fields a name shows (the last one says how many more there are).
const MAX_PARTS: usize = 4;

/// The leaves of `value` by path, and the paths in document order.
fn leaf_map(value: &Value) -> (HashMap<String, &Value>, Vec<String>) {
    let list = leaves(value);
    let order = list.iter().map(|(k, _)| k.clone()).collect();
    (list.into_iter().collect(), order)
}

/// The number of fields (leaves) in which the configurations `a` and `b` differ, the method
/// left out.
pub(crate) fn differences(a: &Value, b: &Value) -> usize {
    let ((a, order_a), (b, order_b)) = (leaf_map(a), leaf_map(b));
    let mut keys: Vec<&String> = order_a.iter().chain(&order_b).collect();
    keys.sort();
    keys.dedup();
    keys.into_iter()
        .filter(|k| k.as_str() != "config.method" && a.get(*k) != b.get(*k))
        .count()
}

/// How a field reads in a name: `200 epochs`, `constant lr`, `contrast_weight 1.0`.
fn label(key: &str, value: &Value) -> String {
    let short = key
        .rsplit('.')
        .find(|p| p.parse::<usize>().is_err())
        .unwrap_or(key);
    match key {
        "config.epochs" => format!("{} epochs", leaf_text(value)),
        "config.schedule.kind" => format!("{} lr", leaf_text(value)),
        _ => format!("{short} {}", leaf_text(value)),
    }
}

/// Names of groups given as `(method, configuration)`: the method alone when it has one
/// group; otherwise the method followed by the fields in which the group departs from the
/// most common value among that method's groups (ties: the first group's), and always its
/// epochs when they differ (the epochs first, then the schedule's kind, then the rest in the
/// order of the configuration; at most four, the last saying how many more there are).
/// Fields that some of the method's groups lack are not named: they come from
/// configurations written in another layout (another version of `run.json`), where a renamed
/// field is not a different setting. Schedule fields other than its kind and `lr` are left
/// out when the epochs or the schedule kind differ (they follow from them). Names that would
/// still clash get ` (2)`, ` (3)`, ...
pub(crate) fn group_names(groups: &[(String, &Value)]) -> Vec<String> {
    let maps: Vec<_> = groups.iter().map(|(_, c)| leaf_map(c)).collect();
    let mut names: Vec<String> = Vec::with_capacity(groups.len());
    for (i, (method, _)) in groups.iter().enumerate() {
        let same: Vec<usize> = (0..groups.len())
            .filter(|&j| groups[j].0 == *method)
            .collect();
        let mut keys: Vec<&String> = Vec::new();
        for &j in &same {
            for k in &maps[j].1 {
                if !keys.contains(&k) {
                    keys.push(k);
                }
            }
        }
        let value = |j: usize, k: &str| maps[j].0.get(k).copied();
        let mut differing: Vec<&String> = keys
            .into_iter()
            .filter(|k| same.iter().all(|&j| value(j, k).is_some()))
            .filter(|k| same.iter().any(|&j| value(j, k) != value(same[0], k)))
            .collect();
        // The budget first, then the schedule, then the rest in document order.
        differing.sort_by_key(|k| match k.as_str() {
            "config.epochs" => 0,
            "config.schedule.kind" => 1,
            _ => 2,
        });
        let has = |key: &str| differing.iter().any(|k| k.as_str() == key);
        let derived = has("config.epochs") || has("config.schedule.kind");
        let mut parts = Vec::new();
        for key in &differing {
            let key = key.as_str();
            let schedule_detail = key.starts_with("config.schedule.")
                && !matches!(key, "config.schedule.kind" | "config.schedule.lr");
            if (derived && schedule_detail) || key == "config.method" {
                continue;
            }
            let Some(mine) = value(i, key) else {
                continue;
            };
            let mut counts: Vec<(Option<&Value>, usize)> = Vec::new();
            for &j in &same {
                let v = value(j, key);
                match counts.iter_mut().find(|(c, _)| *c == v) {
                    Some((_, n)) => *n += 1,
                    None => counts.push((v, 1)),
                }
            }
            let top = counts.iter().map(|c| c.1).max().unwrap_or(0);
            let mode = counts.iter().find(|c| c.1 == top).and_then(|c| c.0);
            if Some(mine) != mode || key == "config.epochs" {
                parts.push(label(key, mine));
            }
        }
        if parts.len() > MAX_PARTS {
            let more = parts.len() - MAX_PARTS + 1;
            parts.truncate(MAX_PARTS - 1);
            parts.push(format!("{more} more fields"));
        }
        let mut name = std::iter::once(method.clone())
            .chain(parts)
            .collect::<Vec<_>>()
            .join(", ");
        let base = name.clone();
        let mut k = 2;
        while names.contains(&name) {
            name = format!("{base} ({k})");
            k += 1;
        }
        names.push(name);
    }
    names
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn config(epochs: u64, kind: &str, weight: f64, eval_every: u64) -> Value {
        let schedule = match kind {
            "constant" => json!({"kind": "constant", "lr": 0.1}),
            _ => json!({"kind": kind, "lr": 0.1, "milestones": [epochs * 8 / 10]}),
        };
        json!({"config": {"method": "rescom", "epochs": epochs, "schedule": schedule,
            "loss": {"contrast_weight": weight}, "eval_every": eval_every}, "batch_size": 64})
    }

    #[test]
    fn names_say_what_sets_a_group_apart() {
        let configs = [
            config(100, "warmup_multi_step", 0.5, 10),
            config(100, "warmup_multi_step", 1.0, 10),
            config(200, "warmup_multi_step", 0.5, 10),
            config(200, "constant", 0.5, 1),
            config(20, "warmup_multi_step", 0.5, 10),
        ];
        let mut groups: Vec<(String, &Value)> =
            configs.iter().map(|c| ("rescom".to_string(), c)).collect();
        groups.push(("balanced-softmax".into(), &configs[0]));
        assert_eq!(
            group_names(&groups),
            [
                "rescom, 100 epochs",
                "rescom, 100 epochs, contrast_weight 1.0",
                "rescom, 200 epochs",
                "rescom, 200 epochs, constant lr, eval_every 1",
                "rescom, 20 epochs",
                "balanced-softmax",
            ]
        );
        // Two groups: the first is the reference.
        let two = [
            ("rescom".to_string(), &configs[0]),
            ("rescom".to_string(), &configs[1]),
        ];
        assert_eq!(group_names(&two), ["rescom", "rescom, contrast_weight 1.0"]);
        // Same name for different configurations that no field tells apart by name.
        let same = [
            ("a".to_string(), &configs[0]),
            ("a".to_string(), &configs[0]),
        ];
        assert_eq!(group_names(&same), ["a", "a (2)"]);
        assert_eq!(differences(&configs[0], &configs[1]), 1);
        // Configurations of another layout: only the fields they share are named, at most
        // four.
        let mut old = config(30, "constant", 0.5, 10);
        for (k, v) in [("a", 1), ("b", 2), ("c", 3)] {
            old["config"][k] = json!(v);
        }
        let two = [
            ("rescom".to_string(), &configs[4]),
            ("rescom".to_string(), &old),
        ];
        assert_eq!(
            group_names(&two),
            ["rescom, 20 epochs", "rescom, 30 epochs, constant lr"]
        );
        let mut many = config(30, "constant", 0.9, 1);
        many["config"]["loss"]["temperature"] = json!(0.1);
        many["batch_size"] = json!(128);
        let two = [
            ("rescom".to_string(), &configs[4]),
            ("rescom".to_string(), &many),
        ];
        assert_eq!(
            group_names(&two),
            [
                "rescom, 20 epochs",
                "rescom, 30 epochs, constant lr, batch_size 128, 2 more fields"
            ]
        );
        assert_eq!(differences(&configs[0], &configs[3]), 4);
    }
}
