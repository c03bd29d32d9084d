//! Prediction from a run directory: a tiny ResNet-8 run trained through `run::fit` with its
//! model configuration recorded, opened by `run::Predictor`, agrees with the run's own
//! evaluation; image files give the predictions of the same images in memory; every failure
//! is its own error and leaves the run directory as it was.

use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use burn::module::Module;
use burn::tensor::Device;
use burn::tensor::activation::softmax;
use burn::train::InferenceStep;
use rescom::data::{
    Dataset, DatasetSpec, EvalLoader, Image, InMemoryDataset, LoaderConfig, OnUnreadable, Pipeline,
    Step, TwoViewLoader,
};
use rescom::model::ResComModelConfig;
use rescom::run::{Predictor, RunData, RunOptions, evaluate_checkpoint, fit, load_checkpoint};
use rescom::train::{LongTailModel, LrSchedule, Method, TrainConfig};
use rescom::{Error, HardPairMinerConfig, ResComLossConfig, Rng};

const SIDE: usize = 8;
const CLASSES: usize = 3;
const COUNTS: [usize; CLASSES] = [12, 6, 3];
const NAMES: [&str; CLASSES] = ["red", "green", "blue"];

/// `counts[c]` noisy RGB images of class `c`: channel `c` bright, with a bright row `c`.
fn images(counts: &[usize], seed: u64) -> Vec<(Image, usize)> {
    let mut rng = Rng::new(seed);
    let mut out = Vec::new();
    for (c, &n) in counts.iter().enumerate() {
        for _ in 0..n {
            let pixels = (0..3 * SIDE * SIDE)
                .map(|p| {
                    let (channel, row) = (p / (SIDE * SIDE), p / SIDE % SIDE);
                    let base = 40.0 + 120.0 * f64::from(channel == c) + 60.0 * f64::from(row == c);
                    (base + 50.0 * rng.normal()).clamp(0.0, 255.0) as u8
                })
                .collect();
            out.push((Image::new(3, SIDE, SIDE, pixels).unwrap(), c));
        }
    }
    out
}

fn in_memory(images: &[(Image, usize)]) -> Arc<dyn Dataset> {
    let pixels = images.iter().flat_map(|(i, _)| i.pixels.clone()).collect();
    let labels = images.iter().map(|(_, l)| *l).collect();
    Arc::new(InMemoryDataset::new(3, SIDE, SIDE, pixels, labels, CLASSES).unwrap())
}

fn save_png(image: &Image, path: &Path) {
    let (h, w) = (image.height as u32, image.width as u32);
    let area = image.area();
    let hwc: Vec<u8> = (0..area)
        .flat_map(|i| (0..image.channels).map(move |c| (c, i)))
        .map(|(c, i)| image.pixels[c * area + i])
        .collect();
    match image.channels {
        1 => image::GrayImage::from_raw(w, h, hwc).unwrap().save(path),
        _ => image::RgbImage::from_raw(w, h, hwc).unwrap().save(path),
    }
    .unwrap();
}

/// The trained run shared by the tests (they copy it before changing anything).
struct Trained {
    dir: PathBuf,
    config: TrainConfig,
    model: ResComModelConfig,
    /// The test images, written as PNG files listed in `dir/../test.txt`.
    test: Vec<(Image, usize)>,
    test_split: DatasetSpec,
    pngs: Vec<PathBuf>,
}

fn eval_pipeline() -> Pipeline {
    Pipeline::normalize_only((3, SIDE, SIDE), &[0.4, 0.4, 0.4], &[0.3, 0.25, 0.3]).unwrap()
}

fn loader_config() -> LoaderConfig {
    let mut config = LoaderConfig::new(6, 3);
    config.workers = 1;
    config
}

fn train_config() -> TrainConfig {
    TrainConfig {
        method: Method::ResCom,
        loss: ResComLossConfig::new(COUNTS.to_vec())
            .with_projection_dim(8)
            .with_queue_per_class(2)
            .with_mining(HardPairMinerConfig::new().with_hard_negatives(2)),
        epochs: 3,
        schedule: LrSchedule::Constant { lr: 0.02 },
        momentum: 0.9,
        weight_decay: 5e-4,
        seed: 3,
        eval_every: 1,
        dataset: "synthetic RGB".into(),
    }
}

fn run_data(test: Arc<dyn Dataset>) -> RunData {
    let device = Device::flex().autodiff();
    let train = Pipeline::new(
        vec![Step::HorizontalFlip { p: 0.5 }],
        None,
        &[0.4, 0.4, 0.4],
        &[0.3, 0.25, 0.3],
        (3, SIDE, SIDE),
    )
    .unwrap();
    let train_set = in_memory(&images(&COUNTS, 1));
    RunData {
        train: TwoViewLoader::new(train_set, train, loader_config(), &device).unwrap(),
        test: EvalLoader::new(test, eval_pipeline(), loader_config(), &device.inner()).unwrap(),
    }
}

/// Options of a quiet run into `dir` recording what prediction needs.
fn options(dir: &Path, trained: &Trained) -> RunOptions {
    let mut options = RunOptions::new(dir, Device::flex().autodiff());
    options.renderer = Some(Box::new(rescom::report::SilentRenderer));
    options.model = Some(trained.model.clone());
    options.class_names = Some(NAMES.iter().map(|n| n.to_string()).collect());
    options.test_split = Some(trained.test_split.clone());
    options
}

fn trained() -> &'static Trained {
    static TRAINED: OnceLock<Trained> = OnceLock::new();
    TRAINED.get_or_init(|| {
        let root = Path::new(env!("CARGO_TARGET_TMPDIR"))
            .join(format!("predict-test-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        std::fs::create_dir_all(root.join("images")).unwrap();
        let test = images(&[5, 5, 5], 2);
        let mut list = String::new();
        let mut pngs = Vec::new();
        for (i, (image, label)) in test.iter().enumerate() {
            let path = root.join("images").join(format!("{i}.png"));
            save_png(image, &path);
            list.push_str(&format!("images/{i}.png {label}\n"));
            pngs.push(path);
        }
        std::fs::write(root.join("test.txt"), list).unwrap();
        let trained = Trained {
            dir: root.join("run"),
            config: train_config(),
            model: ResComModelConfig::new("resnet8".parse().unwrap(), CLASSES)
                .with_projection_dim(8),
            test_split: DatasetSpec::list(
                root.join("test.txt"),
                &root,
                CLASSES,
                OnUnreadable::Fail,
            ),
            test,
            pngs,
        };
        let device = Device::flex().autodiff();
        device.seed(5);
        let network = trained.model.init(&device).unwrap();
        let data = run_data(trained.test_split.open().unwrap());
        let outcome = fit(
            &trained.config,
            network,
            data,
            options(&trained.dir, &trained),
        )
        .unwrap();
        assert_eq!(outcome.epochs_done(), 3);
        trained
    })
}

/// Every file under `dir` with its bytes.
fn snapshot(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut files = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else {
                files.push((path.clone(), std::fs::read(&path).unwrap()));
            }
        }
    }
    files.sort();
    files
}

/// A copy of the trained run in a fresh directory.
fn copy_of_run() -> tempfile::TempDir {
    let copy = tempfile::tempdir().unwrap();
    for (path, bytes) in snapshot(&trained().dir) {
        let to = copy.path().join(path.strip_prefix(&trained().dir).unwrap());
        std::fs::create_dir_all(to.parent().unwrap()).unwrap();
        std::fs::write(to, bytes).unwrap();
    }
    copy
}

fn flex() -> Device {
    Device::flex()
}

fn probabilities(prediction: &rescom::run::Prediction) -> Vec<f32> {
    let mut p = vec![f32::NAN; CLASSES];
    for score in &prediction.top {
        p[score.class] = score.probability;
    }
    p
}

#[test]
fn predictions_agree_with_the_runs_own_evaluation() {
    let trained = trained();
    let predictor = Predictor::open(&trained.dir, &flex()).unwrap();
    assert_eq!(predictor.epoch(), 3);
    assert_eq!(predictor.num_classes(), CLASSES);
    assert_eq!(predictor.pipeline(), &eval_pipeline());
    assert_eq!(predictor.test_split(), Some(&trained.test_split));
    let images: Vec<Image> = trained.test.iter().map(|(i, _)| i.clone()).collect();
    let predictions = predictor.predict(&images, CLASSES).unwrap();

    // The logits of the run's own evaluation step: the checkpoint loaded into the network
    // the run trained, on the loader's batches.
    let device = flex();
    let network = trained.model.init(&device).unwrap();
    let objective = trained.config.objective(&device).unwrap();
    let (model, _) = load_checkpoint(LongTailModel::new(network, objective), &trained.dir).unwrap();
    let model = model.valid();
    let loader = EvalLoader::new(
        trained.test_split.open().unwrap(),
        eval_pipeline(),
        loader_config(),
        &device,
    )
    .unwrap();
    let mut expected = Vec::new();
    for batch in loader.batches().unwrap() {
        let step = model.step(batch.unwrap());
        let p = softmax(step.logits, 1)
            .into_data()
            .try_to_vec::<f32>()
            .unwrap();
        expected.extend(p.chunks(CLASSES).map(<[f32]>::to_vec));
    }
    assert_eq!(expected.len(), predictions.len());
    // Probabilities away from 0 and 1, for a comparison that means something.
    assert!(
        expected
            .iter()
            .any(|p| p.iter().all(|&v| v > 1e-3 && v < 0.99)),
        "{expected:?}"
    );
    for (i, (prediction, expected)) in predictions.iter().zip(&expected).enumerate() {
        let got = probabilities(prediction);
        for (g, e) in got.iter().zip(expected) {
            assert!(
                (g - e).abs() < 1e-5,
                "image {i}: {got:?} against {expected:?}"
            );
        }
        let argmax = (0..CLASSES)
            .max_by(|&a, &b| expected[a].total_cmp(&expected[b]))
            .unwrap();
        assert_eq!(prediction.class(), argmax, "image {i}");
        let names: Vec<_> = prediction
            .top
            .iter()
            .map(|c| c.name.clone().unwrap())
            .collect();
        let by_class: Vec<_> = prediction.top.iter().map(|c| NAMES[c.class]).collect();
        assert_eq!(names, by_class);
        let p: Vec<f32> = prediction.top.iter().map(|c| c.probability).collect();
        assert!(
            p.windows(2).all(|w| w[0] >= w[1]),
            "most probable first: {p:?}"
        );
    }

    // The same top-1 classes as the run's evaluation of its checkpoint (its confusion
    // matrix), evaluated in a copy so that nothing is written into the run.
    let copy = copy_of_run();
    let evaluated = evaluate_checkpoint(
        trained.model.init(&device).unwrap(),
        EvalLoader::new(
            trained.test_split.open().unwrap(),
            eval_pipeline(),
            loader_config(),
            &device,
        )
        .unwrap(),
        copy.path(),
    )
    .unwrap();
    let mut confusion = vec![vec![0u64; CLASSES]; CLASSES];
    for ((_, label), prediction) in trained.test.iter().zip(&predictions) {
        confusion[*label][prediction.class()] += 1;
    }
    assert_eq!(evaluated.report.confusion, Some(confusion));
    assert!(
        evaluated.report.top1 > 0.5,
        "the run should have learnt something"
    );
}

#[test]
fn files_give_the_predictions_of_the_same_images_in_memory() {
    let trained = trained();
    let predictor = Predictor::open(&trained.dir, &flex())
        .unwrap()
        .with_batch_size(4)
        .unwrap();
    let images: Vec<Image> = trained.test.iter().map(|(i, _)| i.clone()).collect();
    // Batches of 4 (a last one of 3) give what one batch gives, to float tolerance.
    let one_batch = Predictor::open(&trained.dir, &flex())
        .unwrap()
        .predict(&images, 2)
        .unwrap();
    let from_memory = predictor.predict(&images, 2).unwrap();
    let from_files = predictor.predict_files(&trained.pngs, 2).unwrap();
    assert_eq!(from_files, from_memory);
    for (a, b) in one_batch.iter().zip(&from_memory) {
        assert_eq!(a.class(), b.class());
        assert!((a.top[0].probability - b.top[0].probability).abs() < 1e-5);
    }

    let dir = tempfile::tempdir().unwrap();
    // A grey file: replicated to the run's three channels.
    let grey = Image::new(1, SIDE, SIDE, images[7].luma()).unwrap();
    let grey_png = dir.path().join("grey.png");
    save_png(&grey, &grey_png);
    let replicated = Image::new(3, SIDE, SIDE, grey.pixels.repeat(3)).unwrap();
    assert_eq!(
        predictor.predict_files(&[&grey_png], 3).unwrap(),
        predictor.predict(&[replicated], 3).unwrap()
    );
    // A larger colour file: resized to the run's 8x8, as the same image in memory is.
    let large = Image::new(
        3,
        20,
        16,
        (0..3 * 20 * 16).map(|v| (v * 37 % 251) as u8).collect(),
    )
    .unwrap();
    let large_png = dir.path().join("large.png");
    save_png(&large, &large_png);
    let from_large = predictor.predict_files(&[&large_png], 3).unwrap();
    assert_eq!(from_large, predictor.predict(&[large], 3).unwrap());
    // A JPEG: lossy, so only its form is checked.
    let jpeg = dir.path().join("first.jpg");
    let (h, w) = (SIDE as u32, SIDE as u32);
    image::RgbImage::from_fn(w, h, |x, y| {
        image::Rgb([200, (x * 20) as u8, (y * 20) as u8])
    })
    .save(&jpeg)
    .unwrap();
    let from_jpeg = predictor.predict_files(&[&jpeg], 3).unwrap();
    let total: f32 = from_jpeg[0].top.iter().map(|c| c.probability).sum();
    assert!((total - 1.0).abs() < 1e-5, "{total}");
}

fn assert_err<T: std::fmt::Debug>(
    result: rescom::Result<T>,
    is: impl Fn(&Error) -> bool,
    needle: &str,
) {
    let err = result.expect_err("must fail");
    assert!(is(&err), "wrong variant: {err:?}");
    assert!(err.to_string().contains(needle), "`{needle}` not in: {err}");
}

#[test]
fn bad_inputs_are_their_own_errors_and_leave_the_run_untouched() {
    let run = copy_of_run();
    let before = snapshot(run.path());
    let predictor = Predictor::open(run.path(), &flex()).unwrap();
    let image = trained().test[0].0.clone();
    let bad_top_k = |e: &Error| matches!(e, Error::InvalidTopK { .. });
    assert_err(
        predictor.predict(std::slice::from_ref(&image), 0),
        bad_top_k,
        "top-k of 0",
    );
    assert_err(predictor.predict(&[image], 4), bad_top_k, "1..=3");
    assert_err(
        predictor.predict_files(&trained().pngs, 4),
        bad_top_k,
        "1..=3",
    );

    let dir = tempfile::tempdir().unwrap();
    let is_image = |e: &Error| matches!(e, Error::Image { .. });
    let missing = dir.path().join("missing.png");
    assert_err(
        predictor.predict_files(&[&missing], 1),
        is_image,
        "missing.png",
    );
    let text = dir.path().join("text.png");
    std::fs::write(&text, "not an image").unwrap();
    assert_err(predictor.predict_files(&[&text], 1), is_image, "text.png");
    let truncated = dir.path().join("truncated.png");
    let png = std::fs::read(&trained().pngs[0]).unwrap();
    std::fs::write(&truncated, &png[..png.len() / 2]).unwrap();
    assert_err(
        predictor.predict_files(&[&truncated], 1),
        is_image,
        "truncated.png",
    );
    let rgba = Image::filled(4, SIDE, SIDE, 9);
    let is_shape = |e: &Error| matches!(e, Error::Shape { .. });
    assert_err(predictor.predict(&[rgba], 1), is_shape, "channels");
    drop(predictor);
    assert_eq!(
        snapshot(run.path()),
        before,
        "prediction wrote into the run"
    );
}

#[test]
fn a_missing_or_damaged_run_is_its_own_error_and_left_as_it_was() {
    let dir = tempfile::tempdir().unwrap();
    // No run there.
    let no_run = |e: &Error| matches!(e, Error::NoRun { .. });
    let nowhere = dir.path().join("nowhere");
    assert_err(Predictor::open(&nowhere, &flex()), no_run, "nowhere");
    assert_err(Predictor::open(dir.path(), &flex()), no_run, "run.json");

    // Damaged files: each an error naming the file, the directory left as it was.
    let damage = |file: &str, bytes: Option<Vec<u8>>, needle: &str| {
        let run = copy_of_run();
        let path = run.path().join(file);
        match bytes {
            Some(bytes) => std::fs::write(&path, bytes).unwrap(),
            None if path.is_dir() => std::fs::remove_dir_all(&path).unwrap(),
            None => std::fs::remove_file(&path).unwrap(),
        }
        let before = snapshot(run.path());
        let is_checkpoint = |e: &Error| matches!(e, Error::Checkpoint { .. });
        assert_err(Predictor::open(run.path(), &flex()), is_checkpoint, needle);
        assert_eq!(snapshot(run.path()), before, "{file}");
    };
    damage("run.json", Some(b"{\"config\": ".to_vec()), "run.json");
    let model = std::fs::read(trained().dir.join("checkpoint/model-3.bpk")).unwrap();
    let half = model[..model.len() / 2].to_vec();
    damage("checkpoint/model-3.bpk", Some(half), "model-3.bpk");
    damage("checkpoint/model-3.bpk", Some(Vec::new()), "model-3.bpk");
    damage("checkpoint", None, "no complete checkpoint");
    // A run.json whose model does not fit its classes.
    let json = std::fs::read_to_string(trained().dir.join("run.json")).unwrap();
    let mut state: serde_json::Value = serde_json::from_str(&json).unwrap();
    state["model"]["num_classes"] = 4.into();
    damage(
        "run.json",
        Some(serde_json::to_vec(&state).unwrap()),
        "run.json",
    );
    // A run.json asking for a network far larger than its checkpoint (a damaged size) is
    // refused before it is built: building it would exhaust memory.
    let backbone = state["model"]["backbone"]
        .as_object()
        .and_then(|b| b.keys().next().cloned())
        .unwrap();
    for (field, value) in [
        ("depth", serde_json::json!(6_000_002)),
        ("width", serde_json::json!(100_000_000_000u64)),
        ("width", serde_json::json!(u64::MAX - 1)),
    ] {
        let mut state: serde_json::Value = serde_json::from_str(&json).unwrap();
        state["model"]["backbone"][&backbone][field] = value;
        damage(
            "run.json",
            Some(serde_json::to_vec(&state).unwrap()),
            "parameter values, more than the",
        );
    }
    let mut state: serde_json::Value = serde_json::from_str(&json).unwrap();
    state["model"]["hidden_dim"] = 1_000_000_000_000u64.into();
    damage(
        "run.json",
        Some(serde_json::to_vec(&state).unwrap()),
        "parameter values, more than the",
    );
}

#[test]
fn a_run_without_a_model_configuration_is_refused_clearly() {
    use rescom_support::small_run;
    let dir = tempfile::tempdir().unwrap();
    let device = Device::flex().autodiff();
    let mut options = RunOptions::new(dir.path(), device.clone());
    options.renderer = Some(Box::new(rescom::report::SilentRenderer));
    // A network of its own: nothing to rebuild it from.
    fit(
        &small_run::run_config(1, "synthetic"),
        small_run::Small::new(&device),
        small_run::run_data(&device).unwrap(),
        options,
    )
    .unwrap();
    let before = snapshot(dir.path());
    let err = Predictor::open(dir.path(), &flex()).unwrap_err();
    assert!(matches!(err, Error::NoModelConfig { .. }), "{err:?}");
    let message = err.to_string();
    assert!(
        message.contains("run.json") && message.contains("load_checkpoint"),
        "{message}"
    );
    assert_eq!(snapshot(dir.path()), before);
}

#[test]
fn run_json_records_what_rebuilds_the_run_and_resume_compares_it() {
    let trained = trained();
    let json = std::fs::read_to_string(trained.dir.join("run.json")).unwrap();
    let state: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(state["model"]["num_classes"], CLASSES);
    assert_eq!(
        state["eval_pipeline"]["output"],
        serde_json::json!([3, SIDE, SIDE])
    );
    assert_eq!(state["class_names"], serde_json::json!(NAMES));
    assert_eq!(state["test_split"]["source"]["kind"], "list");

    // The same run resumes (it is complete: nothing more is trained)...
    let resume = |change: &dyn Fn(&mut RunOptions)| {
        let copy = copy_of_run();
        let mut options = options(copy.path(), trained);
        options.resume = true;
        change(&mut options);
        let device = Device::flex().autodiff();
        let data = run_data(trained.test_split.open().unwrap());
        fit(
            &trained.config,
            trained.model.init(&device).unwrap(),
            data,
            options,
        )
    };
    assert_eq!(resume(&|_| {}).unwrap().epochs_done(), 3);
    // ... one recording other names, another split or no model is another run.
    let refused = |change: &dyn Fn(&mut RunOptions), field: &str| {
        let err = resume(change).err().expect("must refuse");
        assert!(matches!(err, Error::Checkpoint { .. }), "{err:?}");
        let message = err.to_string();
        assert!(
            message.contains("run.json") && message.contains(field),
            "{message}"
        );
    };
    refused(
        &|o| o.class_names = Some(vec!["a".into(), "b".into(), "c".into()]),
        "class_names",
    );
    // Test data found elsewhere is the same run: it resumes, and run.json says where the data
    // is now; a resume that names no test split keeps the recorded one.
    let moved = DatasetSpec::list(
        "/elsewhere/test.txt",
        "/elsewhere",
        CLASSES,
        OnUnreadable::Fail,
    );
    let copy = copy_of_run();
    let mut moved_options = options(copy.path(), trained);
    moved_options.resume = true;
    moved_options.test_split = Some(moved.clone());
    let device = Device::flex().autodiff();
    let data = run_data(trained.test_split.open().unwrap());
    fit(
        &trained.config,
        trained.model.init(&device).unwrap(),
        data,
        moved_options,
    )
    .unwrap();
    let recorded = |dir: &std::path::Path| -> serde_json::Value {
        let json = std::fs::read_to_string(dir.join("run.json")).unwrap();
        serde_json::from_str::<serde_json::Value>(&json).unwrap()["test_split"].clone()
    };
    assert_eq!(recorded(copy.path()), serde_json::to_value(&moved).unwrap());
    let mut unnamed = options(copy.path(), trained);
    unnamed.resume = true;
    unnamed.test_split = None;
    let data = run_data(trained.test_split.open().unwrap());
    fit(
        &trained.config,
        trained.model.init(&device).unwrap(),
        data,
        unnamed,
    )
    .unwrap();
    assert_eq!(recorded(copy.path()), serde_json::to_value(&moved).unwrap());
    refused(&|o| o.model = None, "model");
    // A model configuration or class names that do not fit the run are refused at once.
    let invalid = |e: &Error| matches!(e, Error::InvalidConfig { .. });
    let other_classes = ResComModelConfig {
        num_classes: 4,
        ..trained.model.clone()
    };
    let result = resume(&|o| o.model = Some(other_classes.clone()));
    assert_err(result.map(|_| ()), invalid, "model.num_classes");
    let result = resume(&|o| o.class_names = Some(vec!["a".into()]));
    assert_err(result.map(|_| ()), invalid, "class_names");
}
