//! Feature-space diagnostics: how close same-class and different-class test images lie, per
//! shot group, for the backbone features and the projections.
//!
//! Each row is L2-normalised and pairs are compared by cosine similarity. For a shot group `G`
//! (the classes whose training count puts them in it) and the `N` test images with `n_c` of
//! class `c`:
//!
//! ```text
//! same      = sum_{c in G} sum_{i != j, y_i = y_j = c} q_i . q_j  /  sum_{c in G} n_c (n_c - 1)
//! different = sum_{c in G} sum_{y_i = c, y_j != c}     q_i . q_j  /  sum_{c in G} n_c (N - n_c)
//! ```
//!
//! Both are computed exactly from per-class sums of the rows, `s_c = sum_{y_i = c} q_i`:
//! the same-class sum of class `c` is `|s_c|^2 - sum_{y_i = c} |q_i|^2` and its
//! different-class sum is `s_c . (S - s_c)` with `S = sum_c s_c`, so no pair matrix is formed.
//! The distribution of the same-class similarities (each ordered pair `i != j` once, so every
//! unordered pair twice) is a histogram of [`SIMILARITY_BINS`] equal bins over `[-1, 1]`,
//! computed class by class in blocks of at most [`SIMILARITY_BLOCK`] similarities.
//! Everything runs on the device with tensor operations; only per-class sums and the
//! histograms are read back.

use burn::tensor::{Device, IndexingUpdateOp, Int, Tensor, TensorData};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::loss::l2_normalize;
use crate::stats::ShotGroup;

/// Bins of the same-class similarity histograms, equal widths over `[-1, 1]` (bin `b` holds
/// `[-1 + b / 20, -1 + (b + 1) / 20)`, the last one also 1).
pub const SIMILARITY_BINS: usize = 40;

/// The most similarities computed at once while binning (a block of rows of one class
/// against the class).
pub const SIMILARITY_BLOCK: usize = 1 << 20;

/// Pair similarities of one shot group.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GroupSimilarity {
    /// Mean cosine similarity of same-class pairs; `None` when no class of the group has two
    /// test images.
    pub same_class: Option<f64>,
    /// Mean cosine similarity of a group image with the test images of every other class;
    /// `None` when there are none.
    pub different_class: Option<f64>,
    /// Counts of the same-class similarities (ordered pairs) in [`SIMILARITY_BINS`] bins over
    /// `[-1, 1]`.
    pub same_class_histogram: Vec<u64>,
}

/// Pair similarities of one representation by shot group (`None`: no test image of the group).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SimilarityByGroup {
    /// Many-shot classes.
    pub many: Option<GroupSimilarity>,
    /// Medium-shot classes.
    pub medium: Option<GroupSimilarity>,
    /// Few-shot classes.
    pub few: Option<GroupSimilarity>,
}

impl SimilarityByGroup {
    /// The figures of `group`.
    pub fn group(&self, group: ShotGroup) -> Option<&GroupSimilarity> {
        match group {
            ShotGroup::Many => self.many.as_ref(),
            ShotGroup::Medium => self.medium.as_ref(),
            ShotGroup::Few => self.few.as_ref(),
        }
    }
}

/// The feature-space diagnostics of one evaluation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FeatureSpace {
    /// The backbone's pooled features.
    pub backbone: SimilarityByGroup,
    /// The projection head's outputs, for models trained with a contrastive branch.
    pub projection: Option<SimilarityByGroup>,
}

/// The normalised rows of one representation, batch by batch, kept on their device.
#[derive(Debug, Clone, Default)]
pub(crate) struct FeatureRows {
    rows: Vec<Tensor<2>>,
}

impl FeatureRows {
    /// Keeps the rows of a batch, normalised and detached.
    pub(crate) fn push(&mut self, rows: Tensor<2>) {
        self.rows.push(l2_normalize(rows.detach()));
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    /// The diagnostics of the rows kept, labelled `labels` (the batches' labels in order),
    /// with shot groups from `train_counts`.
    pub(crate) fn similarities(
        &self,
        labels: &[i64],
        train_counts: &[usize],
    ) -> Result<SimilarityByGroup> {
        let q = Tensor::cat(self.rows.clone(), 0);
        let [n, dim] = q.dims();
        if n != labels.len() {
            return Err(Error::Shape {
                name: "feature rows",
                actual: vec![n, dim],
                expected: format!("[{}, {dim}] (one row per label)", labels.len()),
            });
        }
        let classes = train_counts.len();
        let (device, dtype) = (q.device(), q.dtype());
        let labels_t = int_tensor(labels, &device);

        // Per-class sums of the rows and of their squared norms.
        let sums = Tensor::<2>::zeros([classes, dim], (&device, dtype)).select_assign(
            0,
            labels_t.clone(),
            q.clone(),
            IndexingUpdateOp::Add,
        );
        let norms = Tensor::<2>::zeros([classes, 1], (&device, dtype)).select_assign(
            0,
            labels_t,
            q.clone().square().sum_dim(1),
            IndexingUpdateOp::Add,
        );
        let total = sums.clone().sum_dim(0).expand([classes, dim]);
        let same = sums.clone().square().sum_dim(1) - norms;
        let different = (sums.clone() * (total - sums)).sum_dim(1);
        let same = read_f64(same, "same-class sums")?;
        let different = read_f64(different, "different-class sums")?;

        let mut members = vec![Vec::new(); classes];
        for (i, &y) in labels.iter().enumerate() {
            members[y as usize].push(i as i64);
        }
        let group = |g: ShotGroup| -> Result<Option<GroupSimilarity>> {
            let in_group: Vec<usize> = (0..classes)
                .filter(|&c| ShotGroup::of(train_counts[c]) == g && !members[c].is_empty())
                .collect();
            if in_group.is_empty() {
                return Ok(None);
            }
            let (mut same_sum, mut same_pairs, mut diff_sum, mut diff_pairs) = (0.0, 0.0, 0.0, 0.0);
            let mut histogram = Tensor::<1, Int>::zeros([SIMILARITY_BINS + 1], &device);
            for &c in &in_group {
                let nc = members[c].len() as f64;
                same_sum += same[c];
                same_pairs += nc * (nc - 1.0);
                diff_sum += different[c];
                diff_pairs += nc * (n as f64 - nc);
                if members[c].len() >= 2 {
                    let rows = q.clone().select(0, int_tensor(&members[c], &device));
                    histogram = add_same_class_histogram(histogram, rows, SIMILARITY_BLOCK);
                }
            }
            let histogram = histogram.slice(0..SIMILARITY_BINS);
            let histogram = histogram
                .try_into_vec_as::<i64>()
                .map_err(|e| Error::DeviceRead {
                    name: "similarity histogram",
                    reason: format!("{e:?}"),
                })?;
            Ok(Some(GroupSimilarity {
                same_class: (same_pairs > 0.0).then(|| same_sum / same_pairs),
                different_class: (diff_pairs > 0.0).then(|| diff_sum / diff_pairs),
                same_class_histogram: histogram.into_iter().map(|v| v as u64).collect(),
            }))
        };
        Ok(SimilarityByGroup {
            many: group(ShotGroup::Many)?,
            medium: group(ShotGroup::Medium)?,
            few: group(ShotGroup::Few)?,
        })
    }
}

/// Adds the similarities of every ordered pair `i != j` of `rows` (one class, `[n, D]`) to
/// `histogram` (`[SIMILARITY_BINS + 1]`, the last entry collecting the self pairs), a block of
/// at most `block_values` similarities (but at least one row) at a time.
fn add_same_class_histogram(
    mut histogram: Tensor<1, Int>,
    rows: Tensor<2>,
    block_values: usize,
) -> Tensor<1, Int> {
    let [n, _] = rows.dims();
    let device = rows.device();
    let block = (block_values / n).max(1);
    let keys = rows.clone().transpose();
    let columns = Tensor::<1, Int>::arange(0..n as i64, &device).reshape([1, n]);
    for start in (0..n).step_by(block) {
        let end = (start + block).min(n);
        let b = end - start;
        let sims = rows.clone().slice(start..end).matmul(keys.clone());
        let bins = sims
            .add_scalar(1.0)
            .mul_scalar(SIMILARITY_BINS as f64 / 2.0)
            .floor()
            .clamp(0.0, (SIMILARITY_BINS - 1) as f64)
            .int();
        let own = Tensor::<1, Int>::arange(start as i64..end as i64, &device)
            .reshape([b, 1])
            .expand([b, n])
            .equal(columns.clone().expand([b, n]));
        let bins = bins.mask_fill(own, SIMILARITY_BINS as i64).reshape([b * n]);
        histogram = histogram.select_assign(
            0,
            bins,
            Tensor::<1, Int>::ones([b * n], &device),
            IndexingUpdateOp::Add,
        );
    }
    histogram
}

fn int_tensor(values: &[i64], device: &Device) -> Tensor<1, Int> {
    Tensor::<1, Int>::from_data(TensorData::new(values.to_vec(), [values.len()]), device)
}

fn read_f64(values: Tensor<2>, name: &'static str) -> Result<Vec<f64>> {
    values
        .try_into_vec_as::<f64>()
        .map_err(|e| Error::DeviceRead {
            name,
            reason: format!("{e:?}"),
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every pair by brute force, in f64.
    fn brute_force(rows: &[Vec<f64>], labels: &[i64], keep: impl Fn(i64) -> bool) -> (f64, f64) {
        let unit: Vec<Vec<f64>> = rows
            .iter()
            .map(|r| {
                let norm = r.iter().map(|v| v * v).sum::<f64>().sqrt().max(1e-12);
                r.iter().map(|v| v / norm).collect()
            })
            .collect();
        let dot = |a: &[f64], b: &[f64]| a.iter().zip(b).map(|(x, y)| x * y).sum::<f64>();
        let (mut s, mut sn, mut d, mut dn) = (0.0, 0.0, 0.0, 0.0);
        for i in 0..rows.len() {
            if !keep(labels[i]) {
                continue;
            }
            for j in 0..rows.len() {
                if i == j {
                    continue;
                }
                if labels[i] == labels[j] {
                    s += dot(&unit[i], &unit[j]);
                    sn += 1.0;
                } else {
                    d += dot(&unit[i], &unit[j]);
                    dn += 1.0;
                }
            }
        }
        (s / sn, d / dn)
    }

    #[test]
    fn means_and_histograms_equal_brute_force() {
        let device = Device::flex();
        let f64 = burn::tensor::DType::F64;
        let mut rng = crate::Rng::new(3);
        let labels: Vec<i64> = vec![0, 1, 0, 2, 2, 0, 1, 3, 0, 2, 1, 1, 0];
        let rows: Vec<Vec<f64>> = labels
            .iter()
            .map(|_| (0..5).map(|_| rng.normal()).collect())
            .collect();
        let mut kept = FeatureRows::default();
        for chunk in (0..labels.len()).collect::<Vec<_>>().chunks(4) {
            let flat: Vec<f64> = chunk.iter().flat_map(|&i| rows[i].clone()).collect();
            kept.push(Tensor::from_data(
                TensorData::new(flat, [chunk.len(), 5]),
                (&device, f64),
            ));
        }
        // Classes 0, 1 many-shot; 2 medium; 3 few (one test image: no same-class pair).
        let counts = [500, 200, 50, 5];
        let by_group = kept.similarities(&labels, &counts).unwrap();
        let many = by_group.many.as_ref().unwrap();
        let (s, d) = brute_force(&rows, &labels, |y| y <= 1);
        assert!((many.same_class.unwrap() - s).abs() < 1e-12);
        assert!((many.different_class.unwrap() - d).abs() < 1e-12);
        let medium = by_group.medium.as_ref().unwrap();
        let (s, d) = brute_force(&rows, &labels, |y| y == 2);
        assert!((medium.same_class.unwrap() - s).abs() < 1e-12);
        assert!((medium.different_class.unwrap() - d).abs() < 1e-12);
        let few = by_group.few.as_ref().unwrap();
        assert_eq!(few.same_class, None);
        assert!(few.different_class.is_some());
        assert_eq!(few.same_class_histogram.iter().sum::<u64>(), 0);
        // Ordered same-class pairs: class 0 has 5 images, class 1 has 4.
        assert_eq!(many.same_class_histogram.iter().sum::<u64>(), 5 * 4 + 4 * 3);
        assert_eq!(medium.same_class_histogram.iter().sum::<u64>(), 3 * 2);
    }

    #[test]
    fn identical_rows_fill_the_top_bin_and_blocks_agree() {
        let device = Device::flex();
        // 3 identical rows of class 0 and 2 opposite rows of class 1.
        let rows = Tensor::<2>::from_floats(
            [[1.0, 0.0], [2.0, 0.0], [3.0, 0.0], [0.0, 1.0], [0.0, -1.0]],
            &device,
        );
        let mut kept = FeatureRows::default();
        kept.push(rows.clone());
        let labels = [0, 0, 0, 1, 1];
        let g = kept.similarities(&labels, &[200, 150]).unwrap();
        let many = g.many.unwrap();
        assert_eq!(many.same_class_histogram[SIMILARITY_BINS - 1], 6);
        assert_eq!(many.same_class_histogram[0], 2);
        assert!((many.same_class.unwrap() - 0.5).abs() < 1e-6); // (6 * 1 + 2 * -1) / 8
        assert!(many.different_class.unwrap().abs() < 1e-6);
        // Blocks of one row, of two rows and of the whole class give the same histogram.
        let unit = l2_normalize(Tensor::<2>::random(
            [7, 3],
            burn::tensor::Distribution::Normal(0.0, 1.0),
            &device,
        ));
        let histogram = |block| {
            let empty = Tensor::<1, Int>::zeros([SIMILARITY_BINS + 1], &device);
            add_same_class_histogram(empty, unit.clone(), block)
                .try_into_vec_as::<i64>()
                .unwrap()
        };
        let whole = histogram(SIMILARITY_BLOCK);
        assert_eq!(whole[SIMILARITY_BINS], 7);
        assert_eq!(whole.iter().sum::<i64>(), 49);
        assert_eq!(histogram(1), whole);
        assert_eq!(histogram(14), whole);
    }
}
