//! Classifying images with a saved run: [`Predictor`].

use std::path::Path;

use burn::module::Module;
use burn::tensor::{Device, Tensor, TensorData};
use serde::{Deserialize, Serialize};

use super::evaluate::load_checkpoint;
use super::state::RunState;
use crate::data::{DatasetSpec, Image, Pipeline, decode_image_file};
use crate::error::{Error, Result};
use crate::model::ResComModel;
use crate::rng::Rng;
use crate::train::{CheckpointDir, LongTailModel, Record};

/// Images per forward pass unless [`Predictor::with_batch_size`] says otherwise.
pub const DEFAULT_PREDICT_BATCH: usize = 64;

/// One class of a [`Prediction`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClassScore {
    /// The class index (label).
    pub class: usize,
    /// Its name, when the run records class names.
    pub name: Option<String>,
    /// Its probability: the softmax of the network's unshifted logits.
    pub probability: f32,
}

/// The top classes of one image, most probable first (ties in class order).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Prediction {
    /// The `top_k` most probable classes.
    pub top: Vec<ClassScore>,
}

impl Prediction {
    /// The most probable class.
    pub fn class(&self) -> usize {
        self.top.first().map_or(0, |c| c.class)
    }
}

/// A trained run, opened for prediction: the network of its latest checkpoint, rebuilt from
/// the configuration its `run.json` records, with the run's evaluation pipeline and class
/// names. Nothing is ever written into the run directory.
///
/// Images may have any size and be grey or colour: they are converted to the channels the
/// evaluation pipeline takes (grey replicated to RGB, RGB to grey as PIL's `convert("L")`),
/// and, when that pipeline does not resize by itself, resized to its input size (the shorter
/// side, then the centre, with PIL's bilinear resize); then the pipeline prepares them exactly
/// as the run's evaluation did.
///
/// ```
/// # use std::sync::Arc;
/// # use burn::tensor::Device;
/// # use rescom::data::{
/// #     Cifar, Dataset, EvalLoader, InMemoryDataset, LoaderConfig, Pipeline, TwoViewLoader,
/// #     load_cifar_file,
/// # };
/// # use rescom::model::ResComModelConfig;
/// # use rescom::run::{RunData, RunOptions, fit};
/// # use rescom::train::{LrSchedule, Method, TrainConfig};
/// # use rescom::ResComLossConfig;
/// # let fixture = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/cifar10_test20.bin");
/// # let cifar = load_cifar_file(fixture.as_ref(), Cifar::Ten)?;
/// # // The 20 CIFAR-10 images in two classes: labels 0-4 and 5-9.
/// # let pixels = (0..20).flat_map(|i| cifar.raw(i).to_vec()).collect();
/// # let labels: Vec<usize> = (0..20).map(|i| usize::from(cifar.label(i) >= 5)).collect();
/// # let images: Arc<dyn Dataset> = Arc::new(InMemoryDataset::new(3, 32, 32, pixels, labels, 2)?);
/// # let dir = tempfile::tempdir()?;
/// # let run = dir.path().join("run");
/// # let device = Device::flex().autodiff();
/// # let model = ResComModelConfig::new("resnet8".parse()?, 2);
/// # let config = TrainConfig {
/// #     method: Method::CrossEntropy,
/// #     loss: ResComLossConfig::new(images.class_counts()),
/// #     epochs: 1,
/// #     schedule: LrSchedule::Constant { lr: 0.05 },
/// #     momentum: 0.9,
/// #     weight_decay: 5e-4,
/// #     seed: 0,
/// #     eval_every: 1,
/// #     dataset: "CIFAR-10 fixture".into(),
/// # };
/// # let data = RunData {
/// #     train: TwoViewLoader::new(images.clone(), Pipeline::cifar_train(), LoaderConfig::new(10, 0), &device)?,
/// #     test: EvalLoader::new(images.clone(), Pipeline::cifar_eval(), LoaderConfig::new(10, 0), &device.clone().inner())?,
/// # };
/// # let mut options = RunOptions::new(&run, device.clone());
/// # options.renderer = Some(Box::new(rescom::report::SilentRenderer));
/// # options.model = Some(model.clone());
/// # options.class_names = Some(vec!["0-4".into(), "5-9".into()]);
/// # fit(&config, model.init(&device)?, data, options)?;
/// use rescom::run::Predictor;
///
/// // `run` is the output directory of a training run whose `RunOptions::model` was set.
/// let predictor = Predictor::open(&run, &Device::flex())?;
/// assert_eq!(predictor.num_classes(), 2);
///
/// // In-memory images of any size, grey or colour...
/// let grey = rescom::data::Image::filled(1, 48, 40, 128);
/// let predictions = predictor.predict(&[images.image(0)?, grey], 2)?;
/// let best = &predictions[0].top[0];
/// println!("class {} ({:?}) with probability {:.3}", best.class, best.name, best.probability);
/// let total: f32 = predictions[1].top.iter().map(|c| c.probability).sum();
/// assert!((total - 1.0).abs() < 1e-5);
///
/// // ... or PNG and JPEG files.
/// let png = dir.path().join("first.png");
/// image::RgbImage::from_pixel(20, 30, image::Rgb([200, 40, 40])).save(&png)?;
/// let from_file = predictor.predict_files(&[&png], 1)?;
/// assert_eq!(from_file[0].top.len(), 1);
///
/// // Clear errors: a top-k beyond the classes, an image that is not one, no run at all.
/// assert!(matches!(predictor.predict(&[], 3), Err(rescom::Error::InvalidTopK { .. })));
/// std::fs::write(dir.path().join("bad.png"), b"not an image")?;
/// let bad = predictor.predict_files(&[dir.path().join("bad.png")], 1);
/// assert!(matches!(bad, Err(rescom::Error::Image { .. })));
/// let none = Predictor::open(dir.path().join("nowhere"), &Device::flex());
/// assert!(matches!(none, Err(rescom::Error::NoRun { .. })));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug)]
pub struct Predictor {
    model: ResComModel,
    pipeline: Pipeline,
    class_names: Option<Vec<String>>,
    test_split: Option<DatasetSpec>,
    num_classes: usize,
    epoch: usize,
    seed: u64,
    batch_size: usize,
    device: Device,
}

impl Predictor {
    /// Opens the run saved in `run` on `device` (its inner device when it has autodiff): its
    /// `run.json` and its latest complete checkpoint, checked as a resumed run checks them
    /// (every parameter of the model record with its shape, type and finite values).
    ///
    /// # Errors
    /// [`Error::NoRun`] when `run` does not exist or holds no `run.json`;
    /// [`Error::Checkpoint`] naming `run.json` when it is damaged or inconsistent, or naming
    /// the checkpoint directory or file when there is no complete checkpoint or its model
    /// record is damaged or does not fit the network; [`Error::NoModelConfig`] when `run.json`
    /// records no model configuration (a network of the caller's own).
    pub fn open(run: impl AsRef<Path>, device: &Device) -> Result<Self> {
        let run = run.as_ref();
        let json = RunState::path(run);
        let no_run = |reason: &str| Error::NoRun {
            path: run.to_path_buf(),
            reason: reason.into(),
        };
        if !run.is_dir() {
            return Err(no_run("the directory does not exist"));
        }
        if !json.is_file() {
            return Err(no_run("it holds no run.json"));
        }
        let state = RunState::read(run)?;
        let device = device.clone().inner();
        let checkpoints = CheckpointDir::new(run.join("checkpoint"));
        let model_file = checkpoints.file(Record::Model, checkpoints.latest()?);
        let recorded = std::fs::metadata(&model_file)
            .map_err(|e| Error::Checkpoint {
                path: model_file.clone(),
                reason: e.to_string(),
            })?
            .len();
        let network = rebuild(&state, &json, (&model_file, recorded), &device)?;
        let num_classes = state.config.class_counts().len();
        let objective = state
            .config
            .objective(&device)
            .map_err(|e| Error::Checkpoint {
                path: json.clone(),
                reason: format!("its class counts do not fit the configuration: {e}"),
            })?;
        let (model, epoch) = load_checkpoint(LongTailModel::new(network, objective), run)?;
        Ok(Self {
            model: model.valid().network,
            pipeline: state.eval_pipeline,
            class_names: state.class_names,
            test_split: state.test_split,
            num_classes,
            epoch,
            seed: state.data_seed,
            batch_size: DEFAULT_PREDICT_BATCH,
            device,
        })
    }

    /// The same predictor, classifying `batch_size` images per forward pass (default
    /// [`DEFAULT_PREDICT_BATCH`]).
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] for 0.
    pub fn with_batch_size(mut self, batch_size: usize) -> Result<Self> {
        if batch_size == 0 {
            return Err(Error::config("batch_size", "must be at least 1"));
        }
        self.batch_size = batch_size;
        Ok(self)
    }

    /// Classes of the run.
    pub fn num_classes(&self) -> usize {
        self.num_classes
    }

    /// The class names the run records, by label.
    pub fn class_names(&self) -> Option<&[String]> {
        self.class_names.as_deref()
    }

    /// Where the run's test split comes from, when the run records it.
    pub fn test_split(&self) -> Option<&DatasetSpec> {
        self.test_split.as_ref()
    }

    /// Epochs the loaded checkpoint completed.
    pub fn epoch(&self) -> usize {
        self.epoch
    }

    /// The run's evaluation pipeline.
    pub fn pipeline(&self) -> &Pipeline {
        &self.pipeline
    }

    /// The network, in inference mode.
    pub fn model(&self) -> &ResComModel {
        &self.model
    }

    /// The `top_k` most probable classes of each image, in the order of `images`.
    ///
    /// # Shapes
    /// Each image is `C x H x W` with any `H`, `W` and `C` of 1 or 3 (see [`Predictor`]).
    ///
    /// # Errors
    /// [`Error::InvalidTopK`] when `top_k` is 0 or above the number of classes (before
    /// anything is computed); [`Error::InvalidDataset`] for an inconsistent image and
    /// [`Error::Shape`] for one of another channel count; [`Error::DeviceRead`].
    pub fn predict(&self, images: &[Image], top_k: usize) -> Result<Vec<Prediction>> {
        self.check_top_k(top_k)?;
        let mut predictions = Vec::with_capacity(images.len());
        for (b, batch) in images.chunks(self.batch_size).enumerate() {
            predictions.extend(self.predict_batch(batch, b * self.batch_size, top_k)?);
        }
        Ok(predictions)
    }

    /// [`Predictor::predict`] on image files (PNG or JPEG, the format taken from the content;
    /// grey or colour), read one batch at a time, within the limits of
    /// [`ListDataset`](crate::data::ListDataset).
    ///
    /// # Errors
    /// As [`Predictor::predict`]; [`Error::Image`] naming a file that cannot be read or
    /// decoded (missing, truncated, not an image, beyond the limits).
    pub fn predict_files<P: AsRef<Path>>(
        &self,
        paths: &[P],
        top_k: usize,
    ) -> Result<Vec<Prediction>> {
        self.check_top_k(top_k)?;
        let mut predictions = Vec::with_capacity(paths.len());
        for (b, batch) in paths.chunks(self.batch_size).enumerate() {
            let images = batch
                .iter()
                .map(|p| decode_image_file(p.as_ref()))
                .collect::<Result<Vec<_>>>()?;
            predictions.extend(self.predict_batch(&images, b * self.batch_size, top_k)?);
        }
        Ok(predictions)
    }

    fn check_top_k(&self, top_k: usize) -> Result<()> {
        let num_classes = self.num_classes();
        if top_k == 0 || top_k > num_classes {
            return Err(Error::InvalidTopK { top_k, num_classes });
        }
        Ok(())
    }

    /// The predictions of one batch, whose first image is image `first` of the call (a random
    /// step of the pipeline draws from `Rng::from_key(&[data seed, u64::MAX, index, 0])`, as
    /// the evaluation loader keys image `index`).
    fn predict_batch(
        &self,
        images: &[Image],
        first: usize,
        top_k: usize,
    ) -> Result<Vec<Prediction>> {
        if images.is_empty() {
            return Ok(Vec::new());
        }
        let (c, h, w) = self.pipeline.output_shape();
        let len = self.pipeline.output_len();
        let mut views = vec![0.0f32; images.len() * len];
        for (i, (image, view)) in images.iter().zip(views.chunks_exact_mut(len)).enumerate() {
            let key = [self.seed, u64::MAX, (first + i) as u64, 0];
            let image = self.pipeline.conform(image)?;
            self.pipeline
                .apply_into(&image, &mut Rng::from_key(&key), view)?;
        }
        let dims = [images.len(), c, h, w];
        self.model.check_input(dims)?;
        let batch = Tensor::<4>::from_data(TensorData::new(views, dims), &self.device);
        let logits = self
            .model
            .logits(batch)
            .into_data()
            .convert::<f32>()
            .try_into_vec::<f32>()
            .map_err(|e| Error::DeviceRead {
                name: "logits",
                reason: format!("{e:?}"),
            })?;
        let classes = self.num_classes();
        Ok(logits
            .chunks_exact(classes)
            .map(|row| self.prediction(row, top_k))
            .collect())
    }

    /// The top `top_k` classes of one row of logits.
    fn prediction(&self, logits: &[f32], top_k: usize) -> Prediction {
        let probabilities = softmax(logits);
        let mut order: Vec<usize> = (0..logits.len()).collect();
        order.sort_by(|&a, &b| logits[b].total_cmp(&logits[a]).then(a.cmp(&b)));
        let top = order
            .into_iter()
            .take(top_k)
            .map(|class| ClassScore {
                class,
                name: self
                    .class_names
                    .as_ref()
                    .and_then(|names| names.get(class).cloned()),
                probability: probabilities[class],
            })
            .collect();
        Prediction { top }
    }
}

/// The network `state` records, built on `device` and checked against the rest of `run.json`
/// (`json`).
/// The network `run.json` describes, refused before anything is allocated when it is not the
/// run's: another input or class count, or more parameter values than the bytes of the
/// checkpoint's model file (`file` and its size) could hold (a damaged size would otherwise
/// exhaust memory).
fn rebuild(
    state: &RunState,
    json: &Path,
    (file, bytes): (&Path, u64),
    device: &Device,
) -> Result<ResComModel> {
    let damaged = |reason: String| Error::Checkpoint {
        path: json.to_path_buf(),
        reason,
    };
    let config = state.model.as_ref().ok_or_else(|| Error::NoModelConfig {
        path: json.to_path_buf(),
    })?;
    let classes = state.config.class_counts().len();
    let channels = state.eval_pipeline.output_shape().0;
    if config.num_classes != classes || config.backbone.in_channels() != channels {
        return Err(damaged(format!(
            "its model takes {} channels to {} classes, its evaluation views have {channels} \
             channels and its class counts {classes} classes",
            config.backbone.in_channels(),
            config.num_classes
        )));
    }
    if let Some(names) = &state.class_names
        && names.len() != classes
    {
        return Err(damaged(format!(
            "it names {} classes, the run has {classes}",
            names.len()
        )));
    }
    match config.num_params() {
        Some(values) if values as u64 <= bytes => {}
        values => {
            let values = values.map_or("more than 2^64".into(), |n| n.to_string());
            return Err(damaged(format!(
                "its model needs {values} parameter values, more than the {bytes} bytes of {} \
                 hold: one of the two is damaged",
                file.display()
            )));
        }
    }
    config
        .init(device)
        .map_err(|e| damaged(format!("its model configuration does not build: {e}")))
}

/// The softmax of `logits`, computed in `f64`.
fn softmax(logits: &[f32]) -> Vec<f32> {
    let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max) as f64;
    let exp: Vec<f64> = logits.iter().map(|&l| (l as f64 - max).exp()).collect();
    let total: f64 = exp.iter().sum();
    exp.into_iter().map(|e| (e / total) as f32).collect()
}
