//! Supervised hard pair mining from the class-balanced queue
//! ([method](crate::method#hard-pair-mining)).
//!
//! With `S = q · queue^T` (`[rows, C*K]`, the queue as it was before the step), each row keeps
//! the `k_pos` **least** similar keys of its own class (hard positives) and the `k_neg` **most**
//! similar keys of all other classes (hard negatives). Selection is a top-k over a masked
//! `[rows, C, K]` view of `S`: no per-class index tables, so memory stays `O(rows * C * K)`.
//! The miner returns slot indices and the gathered similarities, which carry the gradient
//! of `S`.

use burn::config::Config;
use burn::module::{Content, DisplaySettings, Module, ModuleDisplay};
use burn::tensor::{Bool, Int, Tensor};

use super::select::top_negatives;
use crate::check;
use crate::device::is_host_device;
use crate::error::{Error, Result};
use crate::ops::class_mask;

/// Configuration of a [`HardPairMiner`]. The defaults are the published CIFAR-100-LT recipe.
#[derive(Config, Debug, PartialEq)]
pub struct HardPairMinerConfig {
    /// Hard positives per row, `1 <= k_pos <= K`.
    #[config(default = 1)]
    pub hard_positives: usize,
    /// Hard negatives per row, `0 <= k_neg <= (C - 1) * K`.
    #[config(default = 400)]
    pub hard_negatives: usize,
}

impl HardPairMinerConfig {
    /// The recipe's mining scaled to `num_classes` classes with `queue_per_class` keys each:
    /// its hard positives, and its hard negatives (400 for 100 classes with `K = 10`) capped at
    /// half of a row's `(C - 1) * K` queue negatives, so that with few classes mining still
    /// selects the hardest half instead of every key (or an impossible count).
    ///
    /// ```
    /// use rescom::HardPairMinerConfig;
    /// assert_eq!(HardPairMinerConfig::scaled(100, 10).hard_negatives, 400); // CIFAR-100-LT
    /// assert_eq!(HardPairMinerConfig::scaled(10, 10).hard_negatives, 45); // 10 classes
    /// assert_eq!(HardPairMinerConfig::scaled(1, 10).hard_negatives, 0);
    /// ```
    pub fn scaled(num_classes: usize, queue_per_class: usize) -> Self {
        let recipe = Self::new();
        let half = num_classes.saturating_sub(1) * queue_per_class / 2;
        let hard_negatives = recipe.hard_negatives.min(half);
        recipe.with_hard_negatives(hard_negatives)
    }

    /// Builds a miner for a queue of `num_classes` classes with `queue_per_class` slots each,
    /// rejecting impossible counts.
    pub fn init(&self, num_classes: usize, queue_per_class: usize) -> Result<HardPairMiner> {
        if num_classes == 0 {
            return Err(Error::NoClasses);
        }
        if self.hard_positives == 0 || self.hard_positives > queue_per_class {
            return Err(Error::InvalidHardPositives {
                hard_positives: self.hard_positives,
                queue_per_class,
            });
        }
        let available = (num_classes - 1) * queue_per_class;
        if self.hard_negatives > available {
            return Err(Error::InvalidHardNegatives {
                hard_negatives: self.hard_negatives,
                available,
                num_classes,
                queue_per_class,
            });
        }
        Ok(HardPairMiner {
            num_classes,
            queue_per_class,
            hard_positives: self.hard_positives,
            hard_negatives: self.hard_negatives,
        })
    }
}

/// A set of mined queue entries, one fixed-size list per row.
#[derive(Debug, Clone)]
pub struct MinedSet {
    /// Similarity of the row with each mined key (differentiable w.r.t. the queries).
    ///
    /// # Shapes
    /// `[rows, k]`
    pub similarities: Tensor<2>,
    /// Queue slot of each mined key; its class is `slot / K`.
    ///
    /// # Shapes
    /// `Int [rows, k]`
    pub slots: Tensor<2, Int>,
    /// Class of each mined key (`slot / K` for the class-balanced queue).
    ///
    /// # Shapes
    /// `Int [rows, k]`
    pub classes: Tensor<2, Int>,
    /// Which entries are real pairs; `None` when all are. Only a memory whose classes may
    /// hold fewer than `k` keys (e.g. a FIFO queue) produces invalid entries, which the
    /// contrastive loss ignores.
    ///
    /// # Shapes
    /// `Bool [rows, k]`
    pub valid: Option<Tensor<2, Bool>>,
}

/// The output of [`HardPairMiner::mine`].
#[derive(Debug, Clone)]
pub struct MinedPairs {
    /// The `k_pos` hardest (least similar) keys of each row's own class.
    pub positives: MinedSet,
    /// The `k_neg` hardest (most similar) keys of other classes; `None` when `k_neg == 0`.
    pub negatives: Option<MinedSet>,
}

/// Selects hard positives and negatives from queue similarities.
///
/// ```
/// use burn::tensor::{Device, Int, Tensor};
/// use rescom::HardPairMinerConfig;
///
/// let device = Device::flex();
/// // 2 classes, 2 slots each; one query row of class 0.
/// let miner = HardPairMinerConfig::new()
///     .with_hard_positives(1)
///     .with_hard_negatives(1)
///     .init(2, 2)?;
/// let sims = Tensor::<2>::from_floats([[0.9, 0.2, 0.5, 0.7]], &device);
/// let labels = Tensor::<1, Int>::from_ints([0], &device);
/// let mined = miner.mine(sims, labels)?;
/// assert_eq!(mined.positives.slots.try_into_vec_as::<i64>().unwrap(), vec![1]);
/// let negatives = mined.negatives.unwrap();
/// assert_eq!(negatives.slots.try_into_vec_as::<i64>().unwrap(), vec![3]);
/// # Ok::<(), rescom::Error>(())
/// ```
#[derive(Module, Debug)]
#[module(custom_display)]
pub struct HardPairMiner {
    num_classes: usize,
    queue_per_class: usize,
    hard_positives: usize,
    hard_negatives: usize,
}

impl ModuleDisplay for HardPairMiner {
    fn custom_settings(&self) -> Option<DisplaySettings> {
        DisplaySettings::new()
            .with_new_line_after_attribute(false)
            .optional()
    }

    fn custom_content(&self, content: Content) -> Option<Content> {
        content
            .add("num_classes", &self.num_classes)
            .add("queue_per_class", &self.queue_per_class)
            .add("hard_positives", &self.hard_positives)
            .add("hard_negatives", &self.hard_negatives)
            .optional()
    }
}

impl HardPairMiner {
    /// Slots of the `k_neg` most similar keys of other classes, `Int [rows, k_neg]`.
    fn hardest_negatives(&self, similarities: Tensor<2>, labels: Tensor<1, Int>) -> Tensor<2, Int> {
        let similarities = similarities.detach();
        if is_host_device(&similarities.device())
            && let Some(slots) = top_negatives(
                similarities.clone(),
                labels.clone(),
                self.queue_per_class,
                self.hard_negatives,
            )
        {
            return slots;
        }
        self.hardest_negatives_on_device(similarities, labels)
    }

    /// The tensor path of [`HardPairMiner::hardest_negatives`]: a top-k over the similarities
    /// with the own class masked out, for any device.
    fn hardest_negatives_on_device(
        &self,
        similarities: Tensor<2>,
        labels: Tensor<1, Int>,
    ) -> Tensor<2, Int> {
        let [rows, columns] = similarities.dims();
        let (classes, per_class) = (self.num_classes, self.queue_per_class);
        let own_class = class_mask(labels, classes)
            .reshape([rows, classes, 1])
            .expand([rows, classes, per_class])
            .reshape([rows, columns]);
        let (_, slots) = similarities
            .mask_fill(own_class, f32::NEG_INFINITY)
            .topk_with_indices(self.hard_negatives, 1);
        slots
    }

    /// Mines from a memory whose slots carry arbitrary labels (`-1` marks an empty slot),
    /// such as a FIFO queue: per row, the `k_pos` least similar slots of its class and the
    /// `k_neg` most similar slots of other classes (both capped at the memory size). Entries
    /// beyond the candidates a row has are flagged invalid in [`MinedSet::valid`].
    ///
    /// # Shapes
    /// - `similarities`: `[rows, S]`
    /// - `slot_labels`: `Int [S]`
    /// - `labels`: `Int [rows]`
    pub(crate) fn mine_labelled_unchecked(
        &self,
        similarities: Tensor<2>,
        slot_labels: Tensor<1, Int>,
        labels: Tensor<1, Int>,
    ) -> MinedPairs {
        let [rows, slots] = similarities.dims();
        let row_labels = labels.reshape([rows, 1]).expand([rows, slots]);
        let column_labels = slot_labels
            .clone()
            .reshape([1, slots])
            .expand([rows, slots]);
        let positive = row_labels.equal(column_labels.clone());
        let negative = positive
            .clone()
            .bool_not()
            .bool_and(column_labels.greater_equal_elem(0));
        let detached = similarities.clone().detach();
        let pick = |candidates: Tensor<2, Bool>, k: usize, hardest_is_largest: bool| {
            let k = k.min(slots);
            let scores = if hardest_is_largest {
                detached.clone()
            } else {
                detached.clone().neg()
            };
            let (_, index) = scores
                .mask_fill(candidates.clone().bool_not(), f32::NEG_INFINITY)
                .topk_with_indices(k, 1);
            let valid = candidates.int().gather(1, index.clone()).greater_elem(0);
            let classes = slot_labels
                .clone()
                .select(0, index.clone().reshape([rows * k]))
                .reshape([rows, k])
                .clamp_min(0);
            MinedSet {
                similarities: similarities.clone().gather(1, index.clone()),
                slots: index,
                classes,
                valid: Some(valid),
            }
        };
        MinedPairs {
            positives: pick(positive, self.hard_positives, false),
            negatives: (self.hard_negatives > 0).then(|| pick(negative, self.hard_negatives, true)),
        }
    }

    /// Hard positives per row.
    pub fn hard_positives(&self) -> usize {
        self.hard_positives
    }

    /// Hard negatives per row.
    pub fn hard_negatives(&self) -> usize {
        self.hard_negatives
    }

    /// Mines hard pairs for every row.
    ///
    /// # Shapes
    /// - `similarities`: `[rows, C * K]`, column `j` is queue slot `j` (class `j / K`)
    /// - `labels`: `Int [rows]`, in `0..C` (checked)
    pub fn mine(&self, similarities: Tensor<2>, labels: Tensor<1, Int>) -> Result<MinedPairs> {
        let [rows, _] = check::shape(
            "similarities",
            &similarities,
            [None, Some(self.num_classes * self.queue_per_class)],
        )?;
        check::shape("labels", &labels, [Some(rows)])?;
        check::labels(&labels, self.num_classes)?;
        Ok(self.mine_unchecked(similarities, labels))
    }

    /// [`HardPairMiner::mine`] for inputs already validated by the caller.
    ///
    /// Slots are chosen on the detached similarities; the mined similarities are then read
    /// with one gather, so the backward pass scatters into a single `[rows, C * K]` gradient.
    pub(crate) fn mine_unchecked(
        &self,
        similarities: Tensor<2>,
        labels: Tensor<1, Int>,
    ) -> MinedPairs {
        let [rows, _] = similarities.dims();
        let k_pos = self.hard_positives;
        let positive_slots = self.hardest_positives(similarities.clone().detach(), labels.clone());
        let negative_slots = (self.hard_negatives > 0)
            .then(|| self.hardest_negatives(similarities.clone(), labels.clone()));
        let slots = match &negative_slots {
            Some(negative_slots) => {
                Tensor::cat(vec![positive_slots.clone(), negative_slots.clone()], 1)
            }
            None => positive_slots.clone(),
        };
        let width = slots.dims()[1];
        let mined = similarities.gather(1, slots);

        let positives = MinedSet {
            similarities: contiguous(mined.clone().slice([0..rows, 0..k_pos])),
            slots: positive_slots,
            classes: labels.reshape([rows, 1]).expand([rows, k_pos]),
            valid: None,
        };
        let negatives = negative_slots.map(|slots| MinedSet {
            similarities: contiguous(mined.slice([0..rows, k_pos..width])),
            classes: slots.clone().div_scalar(self.queue_per_class as i64),
            slots,
            valid: None,
        });
        MinedPairs {
            positives,
            negatives,
        }
    }

    /// Slots of the `k_pos` least similar keys of each row's own class, `Int [rows, k_pos]`,
    /// read through the `[rows, C, K]` class view instead of an index table.
    fn hardest_positives(&self, similarities: Tensor<2>, labels: Tensor<1, Int>) -> Tensor<2, Int> {
        let [rows, _] = similarities.dims();
        let (classes, per_class) = (self.num_classes, self.queue_per_class);
        let own_slot_base = labels
            .clone()
            .mul_scalar(per_class as i64)
            .reshape([rows, 1]);
        let offsets = if self.hard_positives == per_class {
            Tensor::<1, Int>::arange(0..per_class as i64, &similarities.device())
                .reshape([1, per_class])
                .expand([rows, per_class])
        } else {
            let own_index = labels.reshape([rows, 1, 1]).expand([rows, 1, per_class]);
            let (_, offsets) = similarities
                .reshape([rows, classes, per_class])
                .gather(1, own_index)
                .reshape([rows, per_class])
                .neg()
                .topk_with_indices(self.hard_positives, 1);
            offsets
        };
        own_slot_base.expand([rows, self.hard_positives]) + offsets
    }
}

/// `columns` (a column range of a wider tensor) as a tensor of its own, copied row by row:
/// element-wise work on a column range walks it element by element on the CPU backends, on
/// a tensor of its own it runs over contiguous memory. (A reshape to one dimension cannot be a
/// view of a column range, so the backend copies it; the second reshape is a view.)
fn contiguous(columns: Tensor<2>) -> Tensor<2> {
    let [rows, width] = columns.dims();
    columns.reshape([rows * width]).reshape([rows, width])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::Rng;
    use burn::tensor::{Device, TensorData};

    /// The host selection and the device top-k pick the same set of slots per row.
    #[test]
    fn host_and_device_negative_selection_agree() {
        let device = Device::flex();
        let (rows, classes, per_class, k) = (37, 9, 4, 13);
        let mut rng = Rng::new(4);
        let values: Vec<f32> = (0..rows * classes * per_class)
            .map(|_| rng.normal() as f32)
            .collect();
        let labels: Vec<i64> = (0..rows).map(|_| rng.index(classes) as i64).collect();
        let sims = Tensor::<2>::from_data(
            TensorData::new(values, [rows, classes * per_class]),
            &device,
        );
        let labels = Tensor::<1, Int>::from_data(TensorData::new(labels, [rows]), &device);
        let miner = HardPairMinerConfig::new()
            .with_hard_negatives(k)
            .init(classes, per_class)
            .unwrap();
        let sorted_rows = |t: Tensor<2, Int>| -> Vec<Vec<i64>> {
            t.try_into_vec_as::<i64>()
                .unwrap()
                .chunks(k)
                .map(|r| {
                    let mut r = r.to_vec();
                    r.sort();
                    r
                })
                .collect()
        };
        let host = miner.hardest_negatives(sims.clone(), labels.clone());
        let tensor = miner.hardest_negatives_on_device(sims, labels);
        assert_eq!(sorted_rows(host), sorted_rows(tensor));
    }
}
