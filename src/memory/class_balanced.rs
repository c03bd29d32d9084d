//! The class-balanced queue ([method](crate::method#class-balanced-queue)).
//!
//! A memory of `K` past keys per class: `C * K` rows of dimension `D`, class `c` owning the
//! contiguous rows `c*K .. (c+1)*K`, each class with its own ring pointer. The queue takes no
//! gradient. [`ClassBalancedQueue::enqueue`] is vectorised on the device (no per-sample loop,
//! no read back to the host) and yields exactly the queue and pointers of the sequential rule,
//! including when one class occurs more than `K` times in a step.

use burn::config::Config;
use burn::module::{Content, DisplaySettings, Module, ModuleDisplay, Param, ParamId};
use burn::tensor::{Device, Int, Tensor, TensorData};

use super::Update;
use crate::check;
use crate::error::{Error, Result};
use crate::ops::{class_mask, on_device, overwrite_rows};
use crate::rng::Rng;

/// Configuration of a [`ClassBalancedQueue`].
#[derive(Config, Debug)]
pub struct ClassBalancedQueueConfig {
    /// Number of classes `C`.
    pub num_classes: usize,
    /// Keys kept per class `K`.
    pub queue_per_class: usize,
    /// Key dimension `D`.
    pub dim: usize,
    /// Seed of the random unit-norm initial keys.
    #[config(default = 0)]
    pub seed: u64,
}

impl ClassBalancedQueueConfig {
    /// Builds the queue: `C * K` independent standard-normal keys, each L2-normalised, drawn on
    /// the host from `seed` (so every backend starts from the same queue), and all pointers 0.
    ///
    /// Errors when `C`, `K` or `D` is zero.
    pub fn init(&self, device: &Device) -> Result<ClassBalancedQueue> {
        for (field, value) in [
            ("num_classes", self.num_classes),
            ("queue_per_class", self.queue_per_class),
            ("dim", self.dim),
        ] {
            if value == 0 {
                return Err(Error::config(field, "must be at least 1"));
            }
        }
        let (dim, seed) = (self.dim, self.seed);
        let rows = self
            .num_classes
            .checked_mul(self.queue_per_class)
            .filter(|rows| rows.checked_mul(dim).is_some())
            .ok_or_else(|| Error::config("queue_per_class", "C * K * D overflows"))?;
        // Drawn when first read, so that a queue whose record is loaded next (a resumed or
        // evaluated run) is never drawn, and a damaged configuration is caught by the record's
        // shapes before anything that large is allocated.
        let keys = Param::uninitialized(
            ParamId::new(),
            move |device: &Device, _| {
                let keys = random_unit_rows(rows, dim, seed);
                Tensor::<2>::from_data(TensorData::new(keys, [rows, dim]), device)
            },
            device.clone(),
            false,
            [rows, dim].into(),
        );
        let pointers = Tensor::<1, Int>::zeros([self.num_classes], device);
        Ok(ClassBalancedQueue {
            keys,
            pointers: Param::initialized(ParamId::new(), pointers),
            num_classes: self.num_classes,
            queue_per_class: self.queue_per_class,
        })
    }
}

/// `rows` standard-normal vectors of length `dim`, each scaled to unit L2 norm.
fn random_unit_rows(rows: usize, dim: usize, seed: u64) -> Vec<f32> {
    let mut rng = Rng::new(seed);
    let mut out = Vec::with_capacity(rows * dim);
    let mut row = vec![0f64; dim];
    for _ in 0..rows {
        for v in row.iter_mut() {
            *v = rng.normal();
        }
        let norm = row.iter().map(|v| v * v).sum::<f64>().sqrt().max(1e-12);
        out.extend(row.iter().map(|v| (v / norm) as f32));
    }
    out
}

/// A per-class ring buffer of detached keys.
///
/// Keys and pointers are parameters of the module (the keys never require a gradient), so
/// they are saved and restored with the record of any model that holds the queue, and a
/// resumed run continues from exactly the same memory.
///
/// ```
/// use burn::tensor::{Device, Int, Tensor};
/// use rescom::ClassBalancedQueueConfig;
///
/// let device = Device::flex();
/// let mut queue = ClassBalancedQueueConfig::new(3, 2, 4).init(&device)?;
/// let keys = Tensor::<2>::ones([3, 4], &device);
/// let labels = Tensor::<1, Int>::from_ints([2, 2, 2], &device);
/// queue.enqueue(keys, labels)?;
/// // Class 2 received three keys in a ring of two: its pointer wrapped to 1.
/// let pointers = queue.pointers().try_into_vec_as::<i64>().unwrap();
/// assert_eq!(pointers, vec![0, 0, 1]);
/// # Ok::<(), rescom::Error>(())
/// ```
#[derive(Module, Debug)]
#[module(custom_display)]
pub struct ClassBalancedQueue {
    keys: Param<Tensor<2>>,
    pointers: Param<Tensor<1, Int>>,
    num_classes: usize,
    queue_per_class: usize,
}

impl ModuleDisplay for ClassBalancedQueue {
    fn custom_settings(&self) -> Option<DisplaySettings> {
        DisplaySettings::new()
            .with_new_line_after_attribute(false)
            .optional()
    }

    fn custom_content(&self, content: Content) -> Option<Content> {
        content
            .add("num_classes", &self.num_classes)
            .add("queue_per_class", &self.queue_per_class)
            .add("dim", &self.dim())
            .optional()
    }
}

impl ClassBalancedQueue {
    /// Number of classes `C`.
    pub fn num_classes(&self) -> usize {
        self.num_classes
    }

    /// Keys per class `K`.
    pub fn queue_per_class(&self) -> usize {
        self.queue_per_class
    }

    /// Key dimension `D`.
    pub fn dim(&self) -> usize {
        self.keys.lazy_shape().dims::<2>()[1]
    }

    /// Total number of slots `C * K`.
    pub fn len(&self) -> usize {
        self.num_classes * self.queue_per_class
    }

    /// Always `false`: a queue has at least one slot.
    pub fn is_empty(&self) -> bool {
        false
    }

    /// The keys, detached.
    ///
    /// # Shapes
    /// - output: `[C * K, D]`; row `j` belongs to class `j / K`.
    pub fn keys(&self) -> Tensor<2> {
        self.keys.val().detach()
    }

    /// The ring pointers.
    ///
    /// # Shapes
    /// - output: `Int [C]`, each in `0..K`: the slot of class `c` written next.
    pub fn pointers(&self) -> Tensor<1, Int> {
        self.pointers.val()
    }

    /// The label of every slot, `j / K`.
    ///
    /// # Shapes
    /// - output: `Int [C * K]`
    pub fn slot_labels(&self) -> Tensor<1, Int> {
        Tensor::<1, Int>::arange(0..self.len() as i64, &self.keys.val().device())
            .div_scalar(self.queue_per_class as i64)
    }

    /// Similarities of (normalised) queries with every key: `queries · keys^T`. The queue
    /// side carries no gradient.
    ///
    /// # Shapes
    /// - `queries`: `[rows, D]`
    /// - output: `[rows, C * K]`
    pub fn similarities(&self, queries: Tensor<2>) -> Tensor<2> {
        let keys = on_device(self.keys(), &queries.device()).cast(queries.dtype());
        queries.matmul(keys.transpose())
    }

    /// Replaces the whole state, e.g. to continue from a known queue.
    ///
    /// # Shapes
    /// - `keys`: `[C * K, D]`
    /// - `pointers`: `Int [C]`, each in `0..K` (checked)
    pub fn with_state(mut self, keys: Tensor<2>, pointers: Tensor<1, Int>) -> Result<Self> {
        let [_, dim] = check::shape("keys", &keys, [Some(self.len()), None])?;
        if dim == 0 {
            return Err(Error::Shape {
                name: "keys",
                actual: keys.dims().to_vec(),
                expected: "[C * K, D] with D >= 1".into(),
            });
        }
        check::shape("pointers", &pointers, [Some(self.num_classes)])?;
        let values = check::labels(&pointers, self.queue_per_class).map_err(|e| match e {
            Error::LabelOutOfRange { row, label, .. } => Error::config(
                "pointers",
                format!(
                    "entry {row} is {label}, outside 0..{} (queue_per_class)",
                    self.queue_per_class
                ),
            ),
            other => other,
        })?;
        drop(values);
        self.keys = Param::initialized(self.keys.id, keys.detach()).set_require_grad(false);
        self.pointers = Param::initialized(self.pointers.id, pointers);
        Ok(self)
    }

    /// Writes `keys` into the queue in row order: for each row `i` of class `c`,
    /// `queue[c*K + ptr[c]] = keys[i]; ptr[c] = (ptr[c] + 1) % K`. The keys
    /// are detached. Labels are checked to lie in `0..C` (one read of the label vector).
    /// The rule, overflow included: [method](crate::method#class-balanced-queue).
    ///
    /// # Shapes
    /// - `keys`: `[N, D]`
    /// - `labels`: `Int [N]`
    pub fn enqueue(&mut self, keys: Tensor<2>, labels: Tensor<1, Int>) -> Result<()> {
        let [rows, _] = check::shape("keys", &keys, [None, Some(self.dim())])?;
        check::shape("labels", &labels, [Some(rows)])?;
        check::labels(&labels, self.num_classes)?;
        self.enqueue_unchecked(keys, labels);
        Ok(())
    }

    /// [`ClassBalancedQueue::enqueue`] for inputs already validated by the caller.
    ///
    /// The sequential rule is evaluated in closed form. Row `i` of class `c` has rank
    /// `r_i` among the rows of its class (a cumulative sum over one-hot labels), and
    /// the class occurs `n_c` times in the step. The row lands in slot
    /// `c*K + (ptr[c] + r_i) % K`, and survives iff `r_i >= n_c - K` (a later row of the same
    /// class overwrites it otherwise). The `K` (or fewer) survivors of a class hit distinct
    /// slots; overwritten rows are zeroed and land on a survivor's slot, so one scatter-add into
    /// the cleared slots gives the sequential result exactly. Finally
    /// `ptr[c] = (ptr[c] + n_c) % K`.
    pub(crate) fn enqueue_unchecked(&mut self, keys: Tensor<2>, labels: Tensor<1, Int>) {
        let rows = keys.dims()[0];
        if rows == 0 {
            return;
        }
        let (classes, queue_per_class) = (self.num_classes, self.queue_per_class as i64);
        let update = Update::new(self.keys.val(), keys, labels);
        let pointers = self.pointers.val().without_autodiff().cast(update.int);
        let (queue, keys, labels) = (
            update.queue.clone(),
            update.keys.clone(),
            update.labels.clone(),
        );

        let one_hot = class_mask(labels.clone(), classes).int(); // [N, C]
        let counts = one_hot.clone().sum_dim(0).reshape([classes]); // [C]
        let rank = one_hot
            .cumsum(0)
            .gather(1, labels.clone().reshape([rows, 1]))
            .reshape([rows])
            .sub_scalar(1); // [N]
        let count_of_row = counts.clone().select(0, labels.clone());
        let survives = rank
            .clone()
            .greater_equal(count_of_row.sub_scalar(queue_per_class)); // [N]
        let slot = labels.clone().mul_scalar(queue_per_class).add(
            pointers
                .clone()
                .select(0, labels)
                .add(rank)
                .remainder_scalar(queue_per_class),
        ); // [N]

        let queue = overwrite_rows(queue, slot, survives, keys);
        let pointers = pointers.add(counts).remainder_scalar(queue_per_class);

        let (queue, pointers) = (update.restore(queue), update.restore(pointers));
        self.keys = Param::initialized(self.keys.id, queue).set_require_grad(false);
        self.pointers = Param::initialized(self.pointers.id, pointers);
    }
}
