//! Finite-difference checks of every differentiable component. Shared by `tests/gradients.rs`
//! (flex, float64) and `examples/gpu_check.rs` (any device).
//!
//! Each check compares the autodiff gradient of a scalar function of one input, computed on
//! the device under test, with central differences `(f(x + h e_i) - f(x - h e_i)) / 2h`,
//! `h = 1e-6`, computed on flex in float64, element by element.

use burn::tensor::{DType, Device, Int, Tensor, TensorData};
use rescom::{
    BalancedSoftmaxLossConfig, ClassBalancedContrastiveLossConfig, ClassBalancedQueueConfig,
    HardPairMinerConfig, MemoryKind, ResComLoss, ResComLossConfig, ResComLossInput, Rng,
    l2_normalize,
};

use crate::tensors::{scalar, to_vec};
use rescom::ClassStats;

const H: f64 = 1e-6;

/// `|autodiff - finite difference| <= abs + rel * |finite difference|` for every element.
#[derive(Clone, Copy, Debug)]
pub struct Tolerance {
    pub rel: f64,
    pub abs: f64,
}

/// A float64 gradient against float64 differences.
pub const F64: Tolerance = Tolerance {
    rel: 1e-6,
    abs: 1e-8,
};

/// A float32 gradient against float64 differences (the golden cases' float32 tolerance).
pub const F32: Tolerance = Tolerance {
    rel: 1e-4,
    abs: 1e-5,
};

/// The loss input of a step from its projections and logits.
pub fn heads(projections: Tensor<2>, logits: Tensor<2>) -> ResComLossInput {
    ResComLossInput {
        logits,
        projections,
    }
}

/// A `[rows, cols]` tensor of `values` on `device` in `dtype`.
pub fn tensor(values: &[f64], shape: [usize; 2], device: &Device, dtype: DType) -> Tensor<2> {
    Tensor::from_data(TensorData::new(values.to_vec(), shape), (device, dtype))
}

pub fn labels(values: &[i64], device: &Device) -> Tensor<1, Int> {
    Tensor::from_data(TensorData::new(values.to_vec(), [values.len()]), device)
}

pub fn random(len: usize, seed: u64) -> Vec<f64> {
    let mut rng = Rng::new(seed);
    (0..len).map(|_| rng.normal()).collect()
}

/// A scalar function of a `[rows, cols]` input, evaluated at `x`. The function builds every
/// other tensor on the input's device and in its float type.
pub struct GradientCase {
    pub name: &'static str,
    x: Vec<f64>,
    shape: [usize; 2],
    f: Box<dyn Fn(Tensor<2>) -> Tensor<1>>,
}

impl GradientCase {
    /// A check of `f` at `x`.
    pub fn from_fn(
        name: &'static str,
        x: Vec<f64>,
        shape: [usize; 2],
        f: impl Fn(Tensor<2>) -> Tensor<1> + 'static,
    ) -> Self {
        Self {
            name,
            x,
            shape,
            f: Box::new(f),
        }
    }

    /// Checks the gradient on `device` (an autodiff device) in `dtype` against central
    /// differences on flex in float64. Returns the worst element's error as a fraction of
    /// `tolerance` (at most 1), or why the check failed: an element out of tolerance, or a
    /// gradient that vanishes (the check would then prove nothing).
    pub fn check(
        &self,
        device: &Device,
        dtype: DType,
        tolerance: Tolerance,
    ) -> Result<f64, String> {
        let input = tensor(&self.x, self.shape, device, dtype).require_grad();
        let output = (self.f)(input.clone());
        let analytic = to_vec(
            input
                .grad(&output.backward())
                .ok_or_else(|| format!("{}: the input has no gradient", self.name))?,
        );

        let plain = Device::flex();
        let eval =
            |values: &[f64]| scalar((self.f)(tensor(values, self.shape, &plain, DType::F64)));
        let mut worst = (0.0f64, 0usize, 0.0, 0.0);
        for i in 0..self.x.len() {
            let mut plus = self.x.clone();
            let mut minus = self.x.clone();
            plus[i] += H;
            minus[i] -= H;
            let numeric = (eval(&plus) - eval(&minus)) / (2.0 * H);
            let err =
                (analytic[i] - numeric).abs() / (tolerance.abs + tolerance.rel * numeric.abs());
            if err.is_nan() || err > worst.0 {
                worst = (err, i, analytic[i], numeric);
            }
        }
        let (err, i, a, n) = worst;
        if err.is_nan() || err > 1.0 {
            return Err(format!(
                "{}: d/dx[{i}] autodiff {a:e} vs finite difference {n:e}",
                self.name
            ));
        }
        if !analytic.iter().any(|g| g.abs() > 1e-6) {
            return Err(format!("{}: gradient vanishes", self.name));
        }
        Ok(err)
    }
}

/// The data of the FIFO-memory case: a FIFO filled with exactly the class-balanced layout.
pub struct FifoSetup {
    pub classes: usize,
    pub dim: usize,
    pub rows: usize,
    per_class: usize,
    keys: Vec<f64>,
    pub y: [i64; 8],
    pub features: Vec<f64>,
    pub logits: Vec<f64>,
}

impl FifoSetup {
    pub fn new() -> Self {
        let (classes, per_class, dim, rows) = (4, 3, 5, 8);
        Self {
            classes,
            dim,
            rows,
            per_class,
            keys: random(classes * per_class * dim, 12),
            y: [0, 1, 2, 3, 0, 1, 2, 3],
            features: random(rows * dim, 13),
            logits: random(rows * classes, 14),
        }
    }

    /// The loss mining from `kind`, whose memory holds the same keys in the same slots.
    pub fn build(&self, device: &Device, dtype: DType, kind: MemoryKind) -> ResComLoss {
        let (classes, per_class, dim) = (self.classes, self.per_class, self.dim);
        let config = ResComLossConfig::new(vec![40, 20, 10, 5])
            .with_projection_dim(dim)
            .with_queue_per_class(per_class)
            .with_mining(
                HardPairMinerConfig::new()
                    .with_hard_positives(2)
                    .with_hard_negatives(5),
            )
            .with_contrastive(
                ClassBalancedContrastiveLossConfig::new()
                    .with_prior_strength(0.4)
                    .with_effective_num_beta(0.99),
            );
        let normalized = l2_normalize(tensor(
            &self.keys,
            [classes * per_class, dim],
            device,
            dtype,
        ));
        match kind {
            MemoryKind::Fifo => {
                let loss = config.with_memory(MemoryKind::Fifo).init(device).unwrap();
                // Fill the FIFO through the public path: a forward whose view-1 rows are the
                // keys in slot order. Its own loss value is irrelevant.
                let n = classes * per_class;
                let slot_labels: Vec<i64> = (0..n).map(|j| (j / per_class) as i64).collect();
                let both = Tensor::cat(vec![normalized.clone(), normalized], 0);
                let both_labels: Vec<i64> =
                    slot_labels.iter().chain(&slot_labels).copied().collect();
                let z = Tensor::<2>::zeros([2 * n, classes], (device, dtype));
                loss.forward(heads(both, z), labels(&both_labels, device))
                    .unwrap();
                loss
            }
            _ => config
                .init(device)
                .unwrap()
                .with_queue_state(normalized, Tensor::<1, Int>::zeros([classes], device))
                .unwrap(),
        }
    }
}

impl Default for FifoSetup {
    fn default() -> Self {
        Self::new()
    }
}

/// Every gradient check, in a fixed order.
pub fn cases() -> Vec<GradientCase> {
    let mut cases = Vec::new();

    let weights = random(5 * 3, 2);
    cases.push(GradientCase::from_fn(
        "l2_normalize",
        random(5 * 3, 1),
        [5, 3],
        move |input| {
            let w = tensor(&weights, [5, 3], &input.device(), input.dtype());
            (l2_normalize(input) * w).sum()
        },
    ));

    let y = [0, 1, 2, 3, 3, 0];
    cases.push(GradientCase::from_fn(
        "balanced softmax",
        random(6 * 4, 3),
        [6, 4],
        move |logits| {
            let loss = BalancedSoftmaxLossConfig::new(vec![100, 30, 9, 2])
                .init(&logits.device())
                .unwrap();
            loss.forward(logits.clone(), labels(&y, &logits.device()))
                .unwrap()
        },
    ));

    // Row 3's class has no other row: its positive set is empty and l_3 = 0.
    let y = [0, 1, 2, 3, 0, 1, 2, 1];
    cases.push(GradientCase::from_fn(
        "contrastive (in-batch)",
        random(8 * 5, 4),
        [8, 5],
        move |raw| {
            let device = raw.device();
            let loss = ClassBalancedContrastiveLossConfig::new()
                .with_temperature(0.3)
                .with_effective_num_beta(0.99)
                .with_prior_strength(0.7)
                .init(&ClassStats::new(&[50, 20, 10, 5]).unwrap(), &device)
                .unwrap();
            loss.forward(l2_normalize(raw), labels(&y, &device), None)
                .unwrap()
        },
    ));

    let (classes, per_class, dim) = (4, 3, 5);
    let y = [0, 1, 2, 3, 0, 1, 2, 3];
    let keys = random(classes * per_class * dim, 6);
    cases.push(GradientCase::from_fn(
        "contrastive (mined)",
        random(8 * dim, 5),
        [8, dim],
        move |raw| {
            let device = raw.device();
            let queue = ClassBalancedQueueConfig::new(classes, per_class, dim)
                .init(&device)
                .unwrap()
                .with_state(
                    l2_normalize(tensor(
                        &keys,
                        [classes * per_class, dim],
                        &device,
                        raw.dtype(),
                    )),
                    Tensor::<1, Int>::zeros([classes], &device),
                )
                .unwrap();
            let miner = HardPairMinerConfig::new()
                .with_hard_positives(2)
                .with_hard_negatives(5)
                .init(classes, per_class)
                .unwrap();
            let loss = ClassBalancedContrastiveLossConfig::new()
                .with_temperature(0.25)
                .with_effective_num_beta(0.999)
                .with_prior_strength(0.5)
                .init(&ClassStats::new(&[40, 20, 10, 5]).unwrap(), &device)
                .unwrap();
            let q = l2_normalize(raw);
            let mined = miner
                .mine(queue.similarities(q.clone()), labels(&y, &device))
                .unwrap();
            loss.forward(q, labels(&y, &device), Some(&mined)).unwrap()
        },
    ));

    // The composed loss, with respect to the raw features and to the logits.
    let (classes, dim, rows) = (5, 6, 10);
    let y = [0, 1, 2, 4, 4, 0, 1, 2, 4, 4];
    let features = random(rows * dim, 7);
    let logits = random(rows * classes, 8);
    let build = move |device: &Device| {
        ResComLossConfig::new(vec![60, 30, 15, 8, 4])
            .with_projection_dim(dim)
            .with_queue_per_class(3)
            .with_contrast_weight(0.8)
            .with_seed(9)
            .with_mining(
                HardPairMinerConfig::new()
                    .with_hard_positives(2)
                    .with_hard_negatives(7),
            )
            .with_contrastive(
                ClassBalancedContrastiveLossConfig::new()
                    .with_temperature(0.2)
                    .with_effective_num_beta(0.999)
                    .with_prior_strength(0.3),
            )
            .init(device)
            .unwrap()
    };
    let fixed_logits = logits.clone();
    cases.push(GradientCase::from_fn(
        "rescom (features)",
        features.clone(),
        [rows, dim],
        move |f| {
            let device = f.device();
            let z = tensor(&fixed_logits, [rows, classes], &device, f.dtype());
            build(&device)
                .loss(heads(f, z), labels(&y, &device))
                .unwrap()
                .total
        },
    ));
    cases.push(GradientCase::from_fn(
        "rescom (logits)",
        logits,
        [rows, classes],
        move |z| {
            let device = z.device();
            let f = tensor(&features, [rows, dim], &device, z.dtype());
            build(&device)
                .loss(heads(f, z), labels(&y, &device))
                .unwrap()
                .total
        },
    ));

    // The FIFO memory's masked mining.
    let setup = FifoSetup::new();
    cases.push(GradientCase::from_fn(
        "rescom with FIFO memory",
        setup.features.clone(),
        [setup.rows, setup.dim],
        move |f| {
            let device = f.device();
            let z = tensor(
                &setup.logits,
                [setup.rows, setup.classes],
                &device,
                f.dtype(),
            );
            setup
                .build(&device, f.dtype(), MemoryKind::Fifo)
                .loss(heads(f, z), labels(&setup.y, &device))
                .unwrap()
                .total
        },
    ));

    cases
}

/// The case called `name`.
pub fn case(name: &str) -> GradientCase {
    cases()
        .into_iter()
        .find(|c| c.name == name)
        .unwrap_or_else(|| panic!("no gradient case called {name}"))
}
