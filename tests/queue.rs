//! Exact semantics of the class-balanced queue (`docs/method.md`, section Class-balanced queue).

mod common;

use burn::module::Module;
use burn::tensor::{Device, Int, Tensor, TensorData};
use proptest::prelude::*;
use rescom::{ClassBalancedQueue, ClassBalancedQueueConfig, Error, Rng};

use common::{ints, to_ints, to_vec};

/// The sequential rule of `docs/method.md` (Class-balanced queue), on the host.
struct SequentialQueue {
    keys: Vec<Vec<f32>>,
    pointers: Vec<usize>,
    per_class: usize,
}

impl SequentialQueue {
    fn enqueue(&mut self, rows: &[Vec<f32>], labels: &[usize]) {
        for (row, &c) in rows.iter().zip(labels) {
            self.keys[c * self.per_class + self.pointers[c]] = row.clone();
            self.pointers[c] = (self.pointers[c] + 1) % self.per_class;
        }
    }
}

fn rows_tensor(rows: &[Vec<f32>], device: &Device) -> Tensor<2> {
    let flat: Vec<f32> = rows.iter().flatten().copied().collect();
    Tensor::from_data(TensorData::new(flat, [rows.len(), rows[0].len()]), device)
}

fn key_rows(queue: &ClassBalancedQueue) -> Vec<Vec<f32>> {
    let dim = queue.dim();
    to_vec(queue.keys())
        .chunks(dim)
        .map(|r| r.iter().map(|&v| v as f32).collect())
        .collect()
}

/// Runs `steps` (rows, labels) through the vectorised queue and the sequential model.
fn assert_matches_sequential(
    classes: usize,
    per_class: usize,
    dim: usize,
    steps: &[(Vec<Vec<f32>>, Vec<usize>)],
    device: &Device,
) {
    let mut queue = ClassBalancedQueueConfig::new(classes, per_class, dim)
        .with_seed(3)
        .init(device)
        .unwrap();
    let mut model = SequentialQueue {
        keys: key_rows(&queue),
        pointers: vec![0; classes],
        per_class,
    };
    for (rows, labels) in steps {
        let label_ints: Vec<i64> = labels.iter().map(|&l| l as i64).collect();
        queue
            .enqueue(rows_tensor(rows, device), ints(&label_ints, device))
            .unwrap();
        model.enqueue(rows, labels);
        // Bit for bit: compare the f32 bit patterns (up to the sign of zero).
        let got = key_rows(&queue);
        for (slot, (a, b)) in got.iter().zip(&model.keys).enumerate() {
            let same = a.iter().zip(b).all(|(x, y)| x == y);
            assert!(same, "slot {slot}: {a:?} != {b:?}");
        }
        let pointers: Vec<usize> = to_ints(queue.pointers())
            .into_iter()
            .map(|p| p as usize)
            .collect();
        assert_eq!(pointers, model.pointers);
    }
}

fn random_step(
    rng: &mut Rng,
    classes: usize,
    rows: usize,
    dim: usize,
) -> (Vec<Vec<f32>>, Vec<usize>) {
    // Skew towards a few classes so that many steps hold more than K rows of one class.
    let labels: Vec<usize> = (0..rows)
        .map(|_| {
            if rng.bernoulli(0.5) {
                rng.index(classes.min(2))
            } else {
                rng.index(classes)
            }
        })
        .collect();
    let rows = (0..rows)
        .map(|_| (0..dim).map(|_| rng.normal() as f32).collect())
        .collect();
    (rows, labels)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    #[test]
    fn vectorised_enqueue_equals_sequential_rule(
        classes in 1usize..7,
        per_class in 1usize..5,
        dim in 1usize..4,
        rows in prop::collection::vec(1usize..30, 1..5),
        seed in any::<u64>(),
    ) {
        let mut rng = Rng::new(seed);
        let steps: Vec<_> = rows
            .iter()
            .map(|&n| random_step(&mut rng, classes, n, dim))
            .collect();
        assert_matches_sequential(classes, per_class, dim, &steps, &Device::flex());
    }
}

#[test]
#[allow(deprecated)]
fn vectorised_enqueue_on_ndarray_and_autodiff() {
    let mut rng = Rng::new(99);
    let steps: Vec<_> = [7, 25, 1, 12]
        .iter()
        .map(|&n| random_step(&mut rng, 4, n, 3))
        .collect();
    for device in [
        Device::ndarray(),
        Device::ndarray().autodiff(),
        Device::flex().autodiff(),
    ] {
        assert_matches_sequential(4, 3, 3, &steps, &device);
    }
}

#[test]
fn more_than_k_rows_of_one_class_keep_the_last_k() {
    let device = Device::flex();
    let mut queue = ClassBalancedQueueConfig::new(2, 2, 1)
        .init(&device)
        .unwrap();
    // Five rows of class 1 into a ring of 2: rows 3 and 4 survive; the pointer moves by 5.
    let rows: Vec<Vec<f32>> = (0..5).map(|i| vec![i as f32 + 1.0]).collect();
    queue
        .enqueue(rows_tensor(&rows, &device), ints(&[1, 1, 1, 1, 1], &device))
        .unwrap();
    let keys = to_vec(queue.keys());
    // Sequential: slot0 <- 1, slot1 <- 2, slot0 <- 3, slot1 <- 4, slot0 <- 5.
    assert_eq!(&keys[2..], &[5.0, 4.0]);
    assert_eq!(to_ints(queue.pointers()), vec![0, 1]);
}

#[test]
fn initial_queue_is_unit_norm_seeded_and_zero_pointed() {
    let device = Device::flex();
    let config = ClassBalancedQueueConfig::new(5, 4, 8).with_seed(11);
    let a = config.init(&device).unwrap();
    let b = config.init(&device).unwrap();
    let c = config.clone().with_seed(12).init(&device).unwrap();
    let keys = to_vec(a.keys());
    assert_eq!(keys, to_vec(b.keys()));
    assert_ne!(keys, to_vec(c.keys()));
    for row in keys.chunks(8) {
        let norm: f64 = row.iter().map(|v| v * v).sum::<f64>().sqrt();
        assert!((norm - 1.0).abs() < 1e-6, "{norm}");
    }
    assert_eq!(to_ints(a.pointers()), vec![0; 5]);
    assert_eq!(
        to_ints(a.slot_labels()),
        (0..20).map(|j| j / 4).collect::<Vec<i64>>()
    );
    // Coordinates look standard-normal before normalisation: no constant rows.
    assert!(
        keys.chunks(8)
            .all(|r| r.iter().any(|&v| (v - r[0]).abs() > 1e-3))
    );
}

#[test]
fn state_survives_a_record_round_trip() {
    let device = Device::flex();
    let mut queue = ClassBalancedQueueConfig::new(3, 2, 4)
        .init(&device)
        .unwrap();
    let mut rng = Rng::new(5);
    let (rows, labels) = random_step(&mut rng, 3, 5, 4);
    let labels: Vec<i64> = labels.iter().map(|&l| l as i64).collect();
    queue
        .enqueue(rows_tensor(&rows, &device), ints(&labels, &device))
        .unwrap();

    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("queue.bpk");
    queue.clone().save_file(&path).unwrap();
    let fresh = ClassBalancedQueueConfig::new(3, 2, 4)
        .with_seed(77)
        .init(&device)
        .unwrap();
    assert_ne!(to_vec(fresh.keys()), to_vec(queue.keys()));
    let restored = fresh.try_load_file(&path).unwrap();
    assert_eq!(to_vec(restored.keys()), to_vec(queue.keys()));
    assert_eq!(to_ints(restored.pointers()), to_ints(queue.pointers()));
}

#[test]
fn a_queue_is_drawn_when_first_read() {
    let device = Device::flex();
    // 10^12 keys of dimension 128 (512 TB): built without allocating them.
    let queue = ClassBalancedQueueConfig::new(1_000_000, 1_000_000, 128)
        .init(&device)
        .unwrap();
    assert_eq!(queue.num_params(), 128_000_000_000_000);
    assert!(matches!(
        ClassBalancedQueueConfig::new(usize::MAX, 2, 2).init(&device),
        Err(Error::InvalidConfig {
            field: "queue_per_class",
            ..
        })
    ));
    // Drawn when read, the same keys as ever (seeded on the host).
    let small = ClassBalancedQueueConfig::new(3, 2, 4).with_seed(7);
    let a = to_vec(small.init(&device).unwrap().keys());
    let b = to_vec(small.init(&device).unwrap().keys());
    assert_eq!(a, b);
}

#[test]
fn invalid_queue_inputs_are_errors() {
    let device = Device::flex();
    assert!(matches!(
        ClassBalancedQueueConfig::new(0, 2, 4).init(&device),
        Err(Error::InvalidConfig {
            field: "num_classes",
            ..
        })
    ));
    assert!(matches!(
        ClassBalancedQueueConfig::new(2, 0, 4).init(&device),
        Err(Error::InvalidConfig {
            field: "queue_per_class",
            ..
        })
    ));
    let mut queue = ClassBalancedQueueConfig::new(3, 2, 4)
        .init(&device)
        .unwrap();
    let before = to_vec(queue.keys());
    let keys = Tensor::<2>::ones([2, 4], &device);
    assert!(matches!(
        queue.enqueue(keys.clone(), ints(&[0, 3], &device)),
        Err(Error::LabelOutOfRange {
            row: 1,
            label: 3,
            ..
        })
    ));
    assert!(matches!(
        queue.enqueue(keys.clone(), ints(&[-1, 0], &device)),
        Err(Error::LabelOutOfRange {
            row: 0,
            label: -1,
            ..
        })
    ));
    assert!(matches!(
        queue.enqueue(Tensor::<2>::ones([2, 5], &device), ints(&[0, 1], &device)),
        Err(Error::Shape { name: "keys", .. })
    ));
    assert!(matches!(
        queue.enqueue(keys, ints(&[0, 1, 2], &device)),
        Err(Error::Shape { name: "labels", .. })
    ));
    assert_eq!(
        to_vec(queue.keys()),
        before,
        "a failed enqueue changes nothing"
    );

    let queue = ClassBalancedQueueConfig::new(3, 2, 4)
        .init(&device)
        .unwrap();
    assert!(matches!(
        queue.clone().with_state(
            Tensor::<2>::ones([6, 4], &device),
            ints(&[0, 2, 1], &device)
        ),
        Err(Error::InvalidConfig {
            field: "pointers",
            ..
        })
    ));
    assert!(matches!(
        queue.with_state(
            Tensor::<2>::ones([5, 4], &device),
            Tensor::<1, Int>::zeros([3], &device)
        ),
        Err(Error::Shape { name: "keys", .. })
    ));
}

/// The FIFO ablation queue against its sequential rule: slot `(ptr + i) % size` per row.
#[test]
fn fifo_enqueue_equals_sequential_rule() {
    let device = Device::flex();
    let mut rng = Rng::new(21);
    for size in [1usize, 3, 7] {
        let mut queue = rescom::FifoQueueConfig::new(size, 2).init(&device).unwrap();
        let mut keys = vec![vec![0f32; 2]; size];
        let mut labels = vec![-1i64; size];
        let mut ptr = 0usize;
        for rows in [2usize, 9, 1, 5] {
            let (step_rows, step_labels) = random_step(&mut rng, 4, rows, 2);
            let step_labels: Vec<i64> = step_labels.iter().map(|&l| l as i64).collect();
            queue
                .enqueue(
                    rows_tensor(&step_rows, &device),
                    ints(&step_labels, &device),
                )
                .unwrap();
            for (row, &label) in step_rows.iter().zip(&step_labels) {
                keys[ptr] = row.clone();
                labels[ptr] = label;
                ptr = (ptr + 1) % size;
            }
            let got: Vec<f32> = to_vec(queue.keys()).iter().map(|&v| v as f32).collect();
            let want: Vec<f32> = keys.iter().flatten().copied().collect();
            assert_eq!(got, want, "size {size}");
            assert_eq!(to_ints(queue.labels()), labels, "size {size}");
        }
    }
}
