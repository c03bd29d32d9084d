//! A first-in-first-out key queue with labels (MoCo-style memory), the ablation of the
//! class-balanced queue.
//!
//! It holds the most recent `size` keys whatever their class, so its class histogram follows
//! the long-tailed data: this is the memory ResCom's class-balanced queue replaces. Slots start
//! empty (label `-1`) and are never mined until written.

use burn::config::Config;
use burn::module::{Content, DisplaySettings, Module, ModuleDisplay, Param, ParamId};
use burn::tensor::{Device, Int, Tensor};

use super::Update;
use crate::check;
use crate::error::{Error, Result};
use crate::ops::{on_device, overwrite_rows};

/// Configuration of a [`FifoQueue`].
#[derive(Config, Debug)]
pub struct FifoQueueConfig {
    /// Number of slots.
    pub size: usize,
    /// Key dimension `D`.
    pub dim: usize,
}

impl FifoQueueConfig {
    /// Builds an empty queue (zero keys, every label `-1`, pointer 0).
    pub fn init(&self, device: &Device) -> Result<FifoQueue> {
        if self.size == 0 || self.dim == 0 {
            return Err(Error::config("size/dim", "must both be at least 1"));
        }
        let (size, dim) = (self.size, self.dim);
        if size.checked_mul(dim).is_none() {
            return Err(Error::config("size/dim", "size * dim overflows"));
        }
        // Made when first read (see `ClassBalancedQueueConfig::init`).
        Ok(FifoQueue {
            keys: Param::uninitialized(
                ParamId::new(),
                move |device: &Device, _| Tensor::<2>::zeros([size, dim], device),
                device.clone(),
                false,
                [size, dim].into(),
            ),
            labels: Param::uninitialized(
                ParamId::new(),
                move |device: &Device, _| Tensor::<1, Int>::full([size], -1, device),
                device.clone(),
                false,
                [size].into(),
            ),
            pointer: Param::initialized(ParamId::new(), Tensor::<1, Int>::zeros([1], device)),
        })
    }
}

/// A ring buffer of the most recent keys and their labels.
///
/// ```
/// use burn::tensor::{Device, Int, Tensor};
/// use rescom::FifoQueueConfig;
///
/// let device = Device::flex();
/// let mut queue = FifoQueueConfig::new(3, 2).init(&device)?;
/// queue.enqueue(Tensor::<2>::ones([2, 2], &device), Tensor::<1, Int>::from_ints([4, 1], &device))?;
/// assert_eq!(queue.labels().try_into_vec_as::<i64>().unwrap(), vec![4, 1, -1]);
/// # Ok::<(), rescom::Error>(())
/// ```
#[derive(Module, Debug)]
#[module(custom_display)]
pub struct FifoQueue {
    keys: Param<Tensor<2>>,
    labels: Param<Tensor<1, Int>>,
    pointer: Param<Tensor<1, Int>>,
}

impl ModuleDisplay for FifoQueue {
    fn custom_settings(&self) -> Option<DisplaySettings> {
        DisplaySettings::new()
            .with_new_line_after_attribute(false)
            .optional()
    }

    fn custom_content(&self, content: Content) -> Option<Content> {
        content
            .add("size", &self.len())
            .add("dim", &self.dim())
            .optional()
    }
}

impl FifoQueue {
    /// Number of slots.
    pub fn len(&self) -> usize {
        self.keys.lazy_shape().dims::<2>()[0]
    }

    /// Always `false`: a queue has at least one slot.
    pub fn is_empty(&self) -> bool {
        false
    }

    /// Key dimension.
    pub fn dim(&self) -> usize {
        self.keys.lazy_shape().dims::<2>()[1]
    }

    /// The keys, detached, `[size, D]`.
    pub fn keys(&self) -> Tensor<2> {
        self.keys.val().detach()
    }

    /// The label of every slot, `Int [size]`; `-1` marks an empty slot.
    pub fn labels(&self) -> Tensor<1, Int> {
        self.labels.val()
    }

    /// Similarities of queries with every slot, `[rows, size]`.
    pub fn similarities(&self, queries: Tensor<2>) -> Tensor<2> {
        let keys = on_device(self.keys(), &queries.device()).cast(queries.dtype());
        queries.matmul(keys.transpose())
    }

    /// Writes `keys` in row order at the pointer, wrapping around; labels are checked to be
    /// non-negative.
    ///
    /// # Shapes
    /// - `keys`: `[N, D]`
    /// - `labels`: `Int [N]`
    pub fn enqueue(&mut self, keys: Tensor<2>, labels: Tensor<1, Int>) -> Result<()> {
        let [rows, _] = check::shape("keys", &keys, [None, Some(self.dim())])?;
        check::shape("labels", &labels, [Some(rows)])?;
        check::labels(&labels, usize::MAX)?;
        self.enqueue_unchecked(keys, labels);
        Ok(())
    }

    /// [`FifoQueue::enqueue`] for validated inputs: row `i` goes to slot `(ptr + i) % size`;
    /// when a step brings more than `size` rows, only the last `size` survive, as writing them
    /// one by one would leave.
    pub(crate) fn enqueue_unchecked(&mut self, keys: Tensor<2>, labels: Tensor<1, Int>) {
        let rows = keys.dims()[0];
        if rows == 0 {
            return;
        }
        let size = self.len();
        let update = Update::new(self.keys.val(), keys, labels);
        let (queue, keys, labels) = (
            update.queue.clone(),
            update.keys.clone(),
            update.labels.clone(),
        );
        let device = queue.device();
        let slot_labels = self.labels.val().without_autodiff().cast(update.int);
        let pointer = self.pointer.val().without_autodiff().cast(update.int);

        let offsets = Tensor::<1, Int>::arange(0..rows as i64, &device);
        let slots = offsets
            .clone()
            .add(pointer.clone().expand([rows]))
            .remainder_scalar(size as i64);
        let survives = offsets.greater_equal_elem(rows as i64 - size as i64);
        let queue = overwrite_rows(queue, slots.clone(), survives.clone(), keys);
        let slot_labels = overwrite_rows(
            slot_labels.reshape([size, 1]),
            slots,
            survives,
            labels.reshape([rows, 1]),
        )
        .reshape([size]);
        let pointer = pointer
            .add_scalar(rows as i64)
            .remainder_scalar(size as i64);

        let (queue, slot_labels, pointer) = (
            update.restore(queue),
            update.restore(slot_labels),
            update.restore(pointer),
        );
        self.keys = Param::initialized(self.keys.id, queue).set_require_grad(false);
        self.labels = Param::initialized(self.labels.id, slot_labels);
        self.pointer = Param::initialized(self.pointer.id, pointer);
    }
}
