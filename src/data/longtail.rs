//! Long-tailed subsets of balanced datasets (SPEC section 8).
//!
//! Class `c` of `C` keeps `n_c` images: with the exponential profile
//! `n_c = floor(n_max * IF^(-c / (C - 1)))`; with the step profile the first half of the classes
//! keep `n_max` and the rest `floor(n_max / IF)`. Which images are kept is a seeded choice:
//! for each class, its image indices (in dataset order) are shuffled with
//! `Rng::from_key(&[seed, class])` and the first `n_c` are kept; the subset lists the kept
//! indices in ascending order.

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::rng::Rng;
use crate::train::metrics::ShotGroup;

/// How the class sizes decay.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ImbalanceProfile {
    /// `n_max * IF^(-c / (C - 1))` (Cui et al., 2019).
    Exponential,
    /// Half the classes at `n_max`, the other half at `n_max / IF` (Buda et al., 2018).
    Step,
}

/// Target images per class.
///
/// ```
/// use rescom::data::{ImbalanceProfile, long_tail_counts};
/// let counts = long_tail_counts(500, 100, ImbalanceProfile::Exponential, 100.0)?;
/// assert_eq!((counts[0], counts[99]), (500, 5));
/// assert_eq!(counts.iter().sum::<usize>(), 10_847); // CIFAR-100-LT
/// # Ok::<(), rescom::Error>(())
/// ```
pub fn long_tail_counts(
    n_max: usize,
    num_classes: usize,
    profile: ImbalanceProfile,
    imbalance_factor: f64,
) -> Result<Vec<usize>> {
    if num_classes == 0 {
        return Err(Error::NoClasses);
    }
    if !(imbalance_factor.is_finite() && imbalance_factor >= 1.0) {
        return Err(Error::config(
            "imbalance_factor",
            format!("must be finite and >= 1, got {imbalance_factor}"),
        ));
    }
    let counts = (0..num_classes)
        .map(|c| match profile {
            ImbalanceProfile::Exponential if num_classes == 1 => n_max,
            ImbalanceProfile::Exponential => {
                let exponent = c as f64 / (num_classes - 1) as f64;
                (n_max as f64 * (1.0 / imbalance_factor).powf(exponent)).floor() as usize
            }
            ImbalanceProfile::Step if c < num_classes / 2 => n_max,
            ImbalanceProfile::Step => (n_max as f64 / imbalance_factor).floor() as usize,
        })
        .collect();
    Ok(counts)
}

/// Images per class of a label list.
pub fn class_counts(labels: &[usize], num_classes: usize) -> Vec<usize> {
    let mut counts = vec![0; num_classes];
    for &l in labels {
        if l < num_classes {
            counts[l] += 1;
        }
    }
    counts
}

/// Indices of a seeded subset with `counts[c]` images of class `c` (rule in the module docs).
///
/// Errors when a class has fewer images than asked, or a class would end up empty.
pub fn subsample(
    labels: &[usize],
    num_classes: usize,
    counts: &[usize],
    seed: u64,
) -> Result<Vec<usize>> {
    if counts.len() != num_classes {
        return Err(Error::InvalidDataset(format!(
            "{} target counts for {num_classes} classes",
            counts.len()
        )));
    }
    let mut by_class: Vec<Vec<usize>> = vec![Vec::new(); num_classes];
    for (i, &l) in labels.iter().enumerate() {
        if l >= num_classes {
            return Err(Error::InvalidDataset(format!(
                "label {l} of image {i} is out of range for {num_classes} classes"
            )));
        }
        by_class[l].push(i);
    }
    let mut kept = Vec::with_capacity(counts.iter().sum());
    for (class, (mut members, &want)) in by_class.into_iter().zip(counts).enumerate() {
        if want == 0 {
            return Err(Error::InvalidDataset(format!(
                "class {class} would be empty after subsampling; lower the imbalance factor or \
                 raise n_max"
            )));
        }
        if members.len() < want {
            return Err(Error::InvalidDataset(format!(
                "class {class} has {} images, {want} were asked for",
                members.len()
            )));
        }
        Rng::from_key(&[seed, class as u64]).shuffle(&mut members);
        kept.extend_from_slice(&members[..want]);
    }
    kept.sort_unstable();
    Ok(kept)
}

/// The shot group of each class (many > 100, medium 20..=100, few < 20 training images).
pub fn shot_groups(counts: &[usize]) -> Vec<ShotGroup> {
    counts.iter().map(|&n| ShotGroup::of(n)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn published_long_tailed_sizes() {
        let total = |n, c, f| {
            long_tail_counts(n, c, ImbalanceProfile::Exponential, f)
                .unwrap()
                .iter()
                .sum::<usize>()
        };
        assert_eq!(total(500, 100, 100.0), 10_847);
        assert_eq!(total(500, 100, 50.0), 12_608);
        assert_eq!(total(500, 100, 10.0), 19_573);
        assert_eq!(total(5000, 10, 100.0), 12_406);
        let step = long_tail_counts(500, 10, ImbalanceProfile::Step, 10.0).unwrap();
        assert_eq!(step, vec![500, 500, 500, 500, 500, 50, 50, 50, 50, 50]);
        assert!(long_tail_counts(10, 3, ImbalanceProfile::Step, 0.5).is_err());
    }

    #[test]
    fn subsample_is_seeded_and_exact() {
        let labels: Vec<usize> = (0..300).map(|i| i % 3).collect();
        let counts = [100, 20, 5];
        let a = subsample(&labels, 3, &counts, 1).unwrap();
        let b = subsample(&labels, 3, &counts, 1).unwrap();
        let c = subsample(&labels, 3, &counts, 2).unwrap();
        assert_eq!(a, b);
        assert_ne!(a, c);
        let kept: Vec<usize> = a.iter().map(|&i| labels[i]).collect();
        assert_eq!(class_counts(&kept, 3), counts);
        assert!(a.windows(2).all(|w| w[0] < w[1]));
        assert!(subsample(&labels, 3, &[101, 1, 1], 0).is_err());
        let err = subsample(&labels, 3, &[5, 0, 1], 0).unwrap_err();
        assert!(err.to_string().contains("class 1 would be empty"), "{err}");
        assert_eq!(
            shot_groups(&[500, 100, 19]),
            vec![ShotGroup::Many, ShotGroup::Medium, ShotGroup::Few]
        );
    }
}
