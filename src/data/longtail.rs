//! Long-tailed subsets of balanced datasets and the many/medium/few grouping
//! ([method](crate::method#long-tailed-splits-and-shot-groups)).
//!
//! Class `c` of `C` keeps `n_c` images:
//!
//! - exponential profile (Cui et al., "Class-Balanced Loss Based on Effective Number of
//!   Samples", CVPR 2019; the CIFAR-LT benchmark): `n_c = floor(n_max * (1 / IF)^(c / (C - 1)))`,
//!   evaluated in `f64` exactly as the reference `int(img_max * imb_factor**(cls_idx /
//!   (cls_num - 1.0)))` with `imb_factor = 1 / IF`, so CIFAR-100-LT keeps 10,847 images at
//!   `IF = 100` (12,608 at 50, 19,573 at 10) and CIFAR-10-LT 12,406 at 100;
//! - step profile (Buda et al., 2018): the first `floor(C / 2)` classes keep `n_max`, the
//!   others `floor(n_max * (1 / IF))` (with an odd `C` the middle class is a minority class).
//!
//! Which images are kept is a seeded, deterministic choice: for each class, its image
//! indices (in dataset order) are shuffled (Fisher-Yates) with
//! `Rng::from_key(&[seed, class, SUBSAMPLE_STREAM])` and the first `n_c` are kept; the subset
//! lists the kept indices in ascending order, so it does not depend on anything but the
//! labels, the counts and the seed.

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::data::dataset::{Dataset, Subset};
use crate::error::{Error, Result};
use crate::rng::Rng;
use crate::stats::ShotGroup;

/// Last element of the subsampling generator keys, separating them from other streams.
pub(crate) const SUBSAMPLE_STREAM: u64 = 0x5355_4253_414d_504c; // "SUBSAMPL"

/// How the class sizes decay.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ImbalanceProfile {
    /// `n_max * (1 / IF)^(c / (C - 1))` (Cui et al., 2019).
    Exponential,
    /// Half the classes at `n_max`, the other half at `n_max / IF` (Buda et al., 2018).
    Step,
}

/// Target images per class, head class first (rules in the module docs). Errors when there
/// are no classes or the imbalance factor is not a finite number `>= 1`.
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
    // The reference passes `imb_factor = 1 / IF` (e.g. the literal 0.01, the same double as
    // 1.0 / 100.0).
    let ratio = 1.0 / imbalance_factor;
    let counts = (0..num_classes)
        .map(|c| match profile {
            ImbalanceProfile::Exponential if num_classes == 1 => n_max,
            ImbalanceProfile::Exponential => {
                let exponent = c as f64 / (num_classes - 1) as f64;
                (n_max as f64 * ratio.powf(exponent)).floor() as usize
            }
            ImbalanceProfile::Step if c < num_classes / 2 => n_max,
            ImbalanceProfile::Step => (n_max as f64 * ratio).floor() as usize,
        })
        .collect();
    Ok(counts)
}

/// Images per class of a label list (labels `>= num_classes` are not counted).
pub fn class_counts(labels: &[usize], num_classes: usize) -> Vec<usize> {
    let mut counts = vec![0; num_classes];
    for &l in labels {
        if let Some(n) = counts.get_mut(l) {
            *n += 1;
        }
    }
    counts
}

/// Indices of a seeded subset with `counts[c]` images of class `c` (rule in the module
/// docs), ascending.
///
/// Errors when a label is out of range, a class has fewer images than asked, or a class would
/// end up empty (a zero count).
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
        let Some(members) = by_class.get_mut(l) else {
            return Err(Error::InvalidDataset(format!(
                "label {l} of image {i} is out of range for {num_classes} classes"
            )));
        };
        members.push(i);
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
        Rng::from_key(&[seed, class as u64, SUBSAMPLE_STREAM]).shuffle(&mut members);
        kept.extend_from_slice(&members[..want]);
    }
    kept.sort_unstable();
    Ok(kept)
}

/// The shot group of each class (many `n_c > 100`, medium `20 <= n_c <= 100`, few
/// `n_c < 20` training images).
pub fn shot_groups(counts: &[usize]) -> Vec<ShotGroup> {
    counts.iter().map(|&n| ShotGroup::of(n)).collect()
}

/// A long-tailed subset of a dataset with its class histogram.
#[derive(Debug, Clone)]
pub struct LongTailed {
    /// The kept images, in ascending order of their index in the full dataset.
    pub subset: Subset,
    /// Images per class of the subset (the `n_c` that `ClassStats` / the loss take).
    pub counts: Vec<usize>,
}

impl LongTailed {
    /// Builds the long-tailed version of `full` (rules in the module docs). `n_max` defaults
    /// to the size of the smallest class of `full` (500 for CIFAR-100, 5,000 for CIFAR-10),
    /// so every class can supply its share.
    ///
    /// ```
    /// use std::sync::Arc;
    /// use rescom::data::{Dataset, ImbalanceProfile, InMemoryDataset, LongTailed};
    /// use rescom::ShotGroup;
    ///
    /// // A balanced toy set: 4 classes of 50 one-pixel images.
    /// let labels: Vec<usize> = (0..200).map(|i| i % 4).collect();
    /// let full = InMemoryDataset::new(1, 1, 1, vec![0; 200], labels, 4)?;
    /// let lt = LongTailed::new(Arc::new(full), ImbalanceProfile::Exponential, 10.0, None, 0)?;
    /// assert_eq!(lt.counts, vec![50, 23, 10, 5]);
    /// assert_eq!(lt.subset.len(), 88);
    /// assert_eq!(lt.groups()[0], ShotGroup::Medium);
    /// # Ok::<(), rescom::Error>(())
    /// ```
    pub fn new(
        full: Arc<dyn Dataset>,
        profile: ImbalanceProfile,
        imbalance_factor: f64,
        n_max: Option<usize>,
        seed: u64,
    ) -> Result<Self> {
        let classes = full.num_classes();
        let labels = full.labels();
        let n_max = match n_max {
            Some(n) => n,
            None => class_counts(&labels, classes)
                .into_iter()
                .min()
                .ok_or(Error::NoClasses)?,
        };
        let counts = long_tail_counts(n_max, classes, profile, imbalance_factor)?;
        let indices = subsample(&labels, classes, &counts, seed)?;
        Ok(Self {
            subset: Subset::new(full, indices)?,
            counts,
        })
    }

    /// The shot group of each class.
    pub fn groups(&self) -> Vec<ShotGroup> {
        shot_groups(&self.counts)
    }
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
        // The equivalent form `IF^(-c / (C - 1))` floors to the same counts here.
        for (n, c, f) in [
            (500, 100, 100.0),
            (500, 100, 50.0),
            (500, 100, 10.0),
            (5000, 10, 100.0),
        ] {
            let other: Vec<usize> = (0..c)
                .map(|k| (n as f64 * f64::powf(f, -(k as f64) / (c - 1) as f64)).floor() as usize)
                .collect();
            assert_eq!(
                long_tail_counts(n, c, ImbalanceProfile::Exponential, f).unwrap(),
                other
            );
        }
        let step = long_tail_counts(500, 10, ImbalanceProfile::Step, 10.0).unwrap();
        assert_eq!(step, vec![500, 500, 500, 500, 500, 50, 50, 50, 50, 50]);
        let odd = long_tail_counts(100, 3, ImbalanceProfile::Step, 4.0).unwrap();
        assert_eq!(odd, vec![100, 25, 25]);
        assert_eq!(
            long_tail_counts(7, 1, ImbalanceProfile::Exponential, 100.0).unwrap(),
            vec![7]
        );
        assert!(long_tail_counts(10, 3, ImbalanceProfile::Step, 0.5).is_err());
        assert!(long_tail_counts(10, 3, ImbalanceProfile::Step, f64::NAN).is_err());
        assert!(long_tail_counts(10, 0, ImbalanceProfile::Step, 2.0).is_err());
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
        assert!(subsample(&labels, 3, &[1, 1], 0).is_err());
        assert!(subsample(&[0, 3], 3, &[1, 1, 1], 0).is_err());
        let err = subsample(&labels, 3, &[5, 0, 1], 0).unwrap_err();
        assert!(err.to_string().contains("class 1 would be empty"), "{err}");
        assert_eq!(
            shot_groups(&[500, 101, 100, 20, 19]),
            vec![
                ShotGroup::Many,
                ShotGroup::Many,
                ShotGroup::Medium,
                ShotGroup::Medium,
                ShotGroup::Few
            ]
        );
    }
}
