//! The training loop shared by every method: ResCom, its ablations, and the baselines.
//!
//! One epoch: for each two-view batch, the network gives logits and projections, the method's
//! loss is computed (for ResCom the queue is read, then updated), one SGD step is taken. After
//! each epoch the model is evaluated on the balanced test set, the metrics and plots are
//! rewritten and a checkpoint is written atomically. A run resumed from that checkpoint
//! continues exactly as if it had never stopped: the data pipeline's randomness is a pure
//! function of `(seed, epoch, sample)`, and model, optimiser, queue and history are restored.

use std::path::{Path, PathBuf};
use std::time::Instant;

use burn::module::Module;
use burn::optim::{
    GradientsParams, ModuleOptimizer, SgdConfig, decay::WeightDecayConfig, momentum::MomentumConfig,
};
use burn::tensor::{Device, Int, Tensor, Transaction};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::loss::{
    BalancedSoftmaxLoss, BalancedSoftmaxLossConfig, MemoryKind, ResComLoss, ResComLossConfig,
};
use crate::train::checkpoint::Checkpoint;
use crate::train::metrics::{Accuracy, EvalReport};
use crate::train::report::{EpochRecord, plot_curves, plot_per_class, write_history};
use crate::train::schedule::LrSchedule;

/// The training objective.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Method {
    /// ResCom: Siamese Balanced Softmax + class-balanced supervised contrastive loss with
    /// hard mining from the class-balanced queue.
    Rescom,
    /// Plain cross-entropy on the classifier logits.
    CrossEntropy,
    /// Balanced Softmax on the classifier logits.
    BalancedSoftmax,
}

/// Parts of ResCom that can be switched off for ablations (all on by default).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Parts {
    /// Effective-number class weights in the contrastive loss (off: `beta = 0`).
    pub class_weights: bool,
    /// The class-balanced queue (off: a FIFO queue of the same size).
    pub balanced_queue: bool,
    /// Hard mining (off: every key of the queue is used as a positive or a negative).
    pub hard_mining: bool,
    /// Balanced Softmax in the classification branch (off: cross-entropy).
    pub balanced_softmax: bool,
}

impl Default for Parts {
    fn default() -> Self {
        Self {
            class_weights: true,
            balanced_queue: true,
            hard_mining: true,
            balanced_softmax: true,
        }
    }
}

/// Hyper-parameters of the ResCom loss (defaults: the CIFAR recipe).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LossSettings {
    /// Projection dimension `D`.
    pub dim: usize,
    /// Queue keys per class `K`.
    pub queue_per_class: usize,
    /// Mined hard positives.
    pub hard_positives: usize,
    /// Mined hard negatives.
    pub hard_negatives: usize,
    /// Temperature.
    pub temperature: f64,
    /// Weight of the contrastive term.
    pub contrast_weight: f64,
    /// Effective-number beta.
    pub effective_num_beta: f64,
    /// Prior strength inside the contrast.
    pub prior_strength: f64,
}

impl Default for LossSettings {
    fn default() -> Self {
        Self {
            dim: 32,
            queue_per_class: 10,
            hard_positives: 1,
            hard_negatives: 400,
            temperature: 0.2,
            contrast_weight: 0.5,
            effective_num_beta: 0.999999,
            prior_strength: 0.0,
        }
    }
}

/// Everything that defines a training run; stored in every checkpoint.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrainConfig {
    /// The objective.
    pub method: Method,
    /// ResCom parts (ignored by the baselines).
    pub parts: Parts,
    /// Loss hyper-parameters (ResCom only).
    pub loss: LossSettings,
    /// Number of epochs.
    pub epochs: usize,
    /// Learning-rate schedule.
    pub schedule: LrSchedule,
    /// SGD momentum (no dampening, as in PyTorch).
    pub momentum: f64,
    /// L2 weight decay.
    pub weight_decay: f64,
    /// Seed of every random choice of the run.
    pub seed: u64,
    /// Evaluate every this many epochs (and always after the last one).
    pub eval_every: usize,
    /// Free-form description of the data (kept in the summary).
    pub dataset: String,
}

impl TrainConfig {
    /// The ResCom loss configuration for a class histogram, with the ablations applied.
    pub fn rescom_loss(&self, class_counts: &[usize]) -> ResComLossConfig {
        let s = &self.loss;
        let classes = class_counts.len();
        let (hard_positives, hard_negatives) = if self.parts.hard_mining {
            (s.hard_positives, s.hard_negatives)
        } else {
            (
                s.queue_per_class,
                classes.saturating_sub(1) * s.queue_per_class,
            )
        };
        ResComLossConfig::new(class_counts.to_vec())
            .with_dim(s.dim)
            .with_queue_per_class(s.queue_per_class)
            .with_hard_positives(hard_positives)
            .with_hard_negatives(hard_negatives)
            .with_temperature(s.temperature)
            .with_contrast_weight(s.contrast_weight)
            .with_effective_num_beta(if self.parts.class_weights {
                s.effective_num_beta
            } else {
                0.0
            })
            .with_prior_strength(s.prior_strength)
            .with_seed(self.seed)
            .with_memory(if self.parts.balanced_queue {
                MemoryKind::ClassBalanced
            } else {
                MemoryKind::Fifo
            })
            .with_balanced_softmax(self.parts.balanced_softmax)
    }

    /// A short name of the method with its ablations, e.g. `rescom-no-mining`.
    pub fn method_name(&self) -> String {
        match self.method {
            Method::CrossEntropy => "cross-entropy".into(),
            Method::BalancedSoftmax => "balanced-softmax".into(),
            Method::Rescom => {
                let p = &self.parts;
                let mut name = String::from("rescom");
                for (on, part) in [
                    (p.class_weights, "weights"),
                    (p.balanced_queue, "queue"),
                    (p.hard_mining, "mining"),
                    (p.balanced_softmax, "balanced-softmax"),
                ] {
                    if !on {
                        name.push_str("-no-");
                        name.push_str(part);
                    }
                }
                name
            }
        }
    }
}

/// A network the trainer can optimise: classifier logits and projections from images.
pub trait Network: Module {
    /// Training forward pass.
    ///
    /// # Shapes
    /// - `images`: `[B, C, H, W]`
    /// - output: logits `[B, classes]`, projections `[B, D]`
    fn forward_train(&self, images: Tensor<4>) -> (Tensor<2>, Tensor<2>);

    /// Inference logits (no projection head).
    ///
    /// # Shapes
    /// - `images`: `[B, C, H, W]`
    /// - output: `[B, classes]`
    fn forward_logits(&self, images: Tensor<4>) -> Tensor<2>;
}

/// A batch on the training device.
#[derive(Debug, Clone)]
pub struct Batch {
    /// Images, `[rows, C, H, W]` (two-view batches stack view 1 then view 2).
    pub images: Tensor<4>,
    /// Labels, `Int [rows]`.
    pub labels: Tensor<1, Int>,
    /// The same labels on the host.
    pub host_labels: Vec<i64>,
    /// Number of distinct images in the batch (rows / 2 for two-view batches).
    pub images_in_batch: usize,
}

/// Where training batches come from.
pub trait TrainData {
    /// Batches of one epoch, in order; a pure function of `(seed, epoch)`.
    fn epoch(&mut self, epoch: usize) -> Result<Box<dyn Iterator<Item = Result<Batch>> + '_>>;
    /// Number of batches per epoch.
    fn steps_per_epoch(&self) -> usize;
}

/// Where evaluation batches come from (single views, unshifted logits).
pub trait EvalData {
    /// All test batches, in order.
    fn batches(&mut self) -> Result<Box<dyn Iterator<Item = Result<Batch>> + '_>>;
    /// Number of test images.
    fn len(&self) -> usize;
    /// Whether the test set is empty.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Progress reporting hooks (progress bars, logs).
pub trait Progress {
    /// Called at the start of a phase (`"train"` or `"eval"`) with its number of steps.
    fn start(&mut self, _phase: &str, _epoch: usize, _steps: usize) {}
    /// Called after each step with a one-line status.
    fn step(&mut self, _status: &str) {}
    /// Called when a phase ends with a summary line.
    fn finish(&mut self, _summary: &str) {}
}

/// Progress that reports nothing.
pub struct Silent;
impl Progress for Silent {}

/// The figures of a finished run, written as `summary.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    /// Method name (with ablations).
    pub method: String,
    /// Dataset description.
    pub dataset: String,
    /// Epochs trained.
    pub epochs: usize,
    /// The last epoch's evaluation (its fields appear at the top level of `summary.json`:
    /// `top1`, `top5`, `many`, `medium`, `few`, `per_class`, `images`).
    #[serde(flatten)]
    pub last: EvalReport,
    /// The epoch (0-based) with the best top-1, and its figures.
    pub best_epoch: usize,
    /// The best epoch's evaluation.
    pub best: EvalReport,
    /// Training histogram.
    pub train_counts: Vec<usize>,
    /// Seed.
    pub seed: u64,
}

/// Checkpoint metadata.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct State {
    config: TrainConfig,
    train_counts: Vec<usize>,
    /// Epochs completed.
    epochs_done: usize,
    history: Vec<EpochRecord>,
}

/// The objective of a run.
enum Objective {
    Rescom(Box<ResComLoss>),
    Classifier(Box<BalancedSoftmaxLoss>),
}

/// A training run in progress.
pub struct Trainer<M: Network> {
    model: M,
    objective: Objective,
    optimizer: ModuleOptimizer,
    state: State,
    out: PathBuf,
}

const CHECKPOINT: &str = "checkpoint.bin";

impl<M: Network> Trainer<M> {
    /// Starts a run writing into `out`. `model` must live on an autodiff device.
    pub fn new(
        config: TrainConfig,
        model: M,
        train_counts: &[usize],
        device: &Device,
        out: &Path,
    ) -> Result<Self> {
        config.schedule.validate()?;
        if config.epochs == 0 {
            return Err(Error::config("epochs", "must be at least 1"));
        }
        let objective = match config.method {
            Method::Rescom => {
                Objective::Rescom(Box::new(config.rescom_loss(train_counts).init(device)?))
            }
            Method::BalancedSoftmax => Objective::Classifier(Box::new(
                BalancedSoftmaxLossConfig::new(train_counts.to_vec()).init(device)?,
            )),
            Method::CrossEntropy => {
                // Validates the histogram like the other methods.
                crate::stats::ClassStats::new(train_counts)?;
                Objective::Classifier(Box::new(BalancedSoftmaxLoss::unshifted(
                    train_counts.len(),
                    device,
                )))
            }
        };
        let optimizer = SgdConfig::new()
            .with_momentum(Some(
                MomentumConfig::new()
                    .with_momentum(config.momentum)
                    .with_dampening(0.0),
            ))
            .with_weight_decay(Some(WeightDecayConfig::new(config.weight_decay as f32)))
            .init();
        Ok(Self {
            model,
            objective,
            optimizer,
            state: State {
                config,
                train_counts: train_counts.to_vec(),
                epochs_done: 0,
                history: Vec::new(),
            },
            out: out.to_path_buf(),
        })
    }

    /// Restores a run from `out/checkpoint.bin`. `config` and `train_counts` must be those of
    /// the saved run and `model` must have its architecture.
    pub fn resume(
        config: TrainConfig,
        model: M,
        train_counts: &[usize],
        device: &Device,
        out: &Path,
    ) -> Result<Self> {
        let path = out.join(CHECKPOINT);
        let checkpoint = Checkpoint::<State>::load(&path)?;
        let saved = &checkpoint.meta;
        if saved.config != config || saved.train_counts != train_counts {
            return Err(Error::Checkpoint {
                path,
                reason: "it was written by a run with another configuration or data; \
                         start a new run in another directory"
                    .into(),
            });
        }
        let mut trainer = Self::new(config, model, train_counts, device, out)?;
        trainer.restore(&checkpoint, &path)?;
        Ok(trainer)
    }

    fn restore(&mut self, checkpoint: &Checkpoint<State>, path: &Path) -> Result<()> {
        self.model = checkpoint.load_module("model", self.model.clone(), path)?;
        if let Objective::Rescom(loss) = &mut self.objective {
            **loss = checkpoint.load_module("loss", (**loss).clone(), path)?;
        }
        self.optimizer =
            checkpoint.load_optimizer("optimizer", self.optimizer.clone(), &self.model, path)?;
        self.state = checkpoint.meta.clone();
        Ok(())
    }

    /// The run's configuration.
    pub fn config(&self) -> &TrainConfig {
        &self.state.config
    }

    /// Epochs completed so far.
    pub fn epochs_done(&self) -> usize {
        self.state.epochs_done
    }

    /// The metrics of the completed epochs.
    pub fn history(&self) -> &[EpochRecord] {
        &self.state.history
    }

    /// The model being trained.
    pub fn model(&self) -> &M {
        &self.model
    }

    /// The ResCom loss (with its queue), for ResCom runs.
    pub fn rescom_loss(&self) -> Option<&ResComLoss> {
        match &self.objective {
            Objective::Rescom(loss) => Some(loss),
            Objective::Classifier(_) => None,
        }
    }

    /// Trains the remaining epochs, evaluating, reporting and checkpointing after each, and
    /// writes `summary.json`. Stops with [`Error::NonFiniteLoss`] if the loss stops being
    /// finite; the last checkpoint then still holds the last good state.
    pub fn fit(
        &mut self,
        train: &mut dyn TrainData,
        test: &mut dyn EvalData,
        progress: &mut dyn Progress,
    ) -> Result<Summary> {
        self.fit_epochs(train, test, progress, usize::MAX)?
            .ok_or_else(|| Error::config("epochs", "the run ended without an evaluation"))
    }

    /// Like [`Trainer::fit`], but stops after at most `max_epochs` more epochs (a planned
    /// interruption: the run continues later with [`Trainer::resume`]). Returns the summary
    /// so far, or `None` if no evaluation has run yet.
    pub fn fit_epochs(
        &mut self,
        train: &mut dyn TrainData,
        test: &mut dyn EvalData,
        progress: &mut dyn Progress,
        max_epochs: usize,
    ) -> Result<Option<Summary>> {
        let stop = self
            .config()
            .epochs
            .min(self.state.epochs_done.saturating_add(max_epochs));
        while self.state.epochs_done < stop {
            let epoch = self.state.epochs_done;
            let mut record = self.train_epoch(epoch, train, progress)?;
            let last = epoch + 1 == self.config().epochs;
            if last || (epoch + 1).is_multiple_of(self.config().eval_every.max(1)) {
                record.eval = Some(self.evaluate(test, epoch, progress)?);
            }
            self.state.history.push(record);
            self.state.epochs_done = epoch + 1;
            self.save_checkpoint()?;
            self.write_reports()?;
        }
        if self.state.history.iter().any(|r| r.eval.is_some()) {
            self.summary().map(Some)
        } else {
            Ok(None)
        }
    }

    fn train_epoch(
        &mut self,
        epoch: usize,
        train: &mut dyn TrainData,
        progress: &mut dyn Progress,
    ) -> Result<EpochRecord> {
        let lr = self.config().schedule.lr(epoch);
        let steps = train.steps_per_epoch();
        progress.start("train", epoch, steps);
        let started = Instant::now();
        let (mut loss_sum, mut cls_sum, mut con_sum) = (0.0, 0.0, 0.0);
        let (mut correct, mut rows, mut images, mut count) = (0usize, 0usize, 0usize, 0usize);
        let batches = train.epoch(epoch)?;
        for (step, batch) in batches.enumerate() {
            let batch = batch?;
            let (logits, total, classification, contrastive) = match &mut self.objective {
                Objective::Rescom(loss) => {
                    let (logits, projections) = self.model.forward_train(batch.images);
                    let out = loss.forward(projections, logits.clone(), batch.labels.clone())?;
                    (logits, out.total, out.classification, Some(out.contrastive))
                }
                Objective::Classifier(loss) => {
                    // The baselines train the backbone and classifier only.
                    let logits = self.model.forward_logits(batch.images);
                    let value = loss.forward(logits.clone(), batch.labels.clone())?;
                    (logits, value.clone(), value, None)
                }
            };
            let hits = logits
                .detach()
                .argmax(1)
                .reshape([batch.host_labels.len()])
                .equal(batch.labels.clone())
                .int()
                .sum();
            // One read per step: the loss terms and the number of correct rows.
            let mut transaction = Transaction::default()
                .register(total.clone().detach())
                .register(classification.detach())
                .register(hits);
            if let Some(c) = &contrastive {
                transaction = transaction.register(c.clone().detach());
            }
            let values = transaction.try_execute().map_err(|e| Error::DeviceRead {
                name: "loss",
                reason: format!("{e:?}"),
            })?;
            let scalar = |i: usize| -> f64 {
                values[i]
                    .clone()
                    .convert::<f64>()
                    .try_into_vec::<f64>()
                    .ok()
                    .and_then(|v| v.first().copied())
                    .unwrap_or(f64::NAN)
            };
            let (l, c, h) = (scalar(0), scalar(1), scalar(2));
            let con = contrastive.as_ref().map(|_| scalar(3));
            if !l.is_finite() {
                return Err(Error::NonFiniteLoss {
                    epoch,
                    step,
                    what: format!("total = {l}, classification = {c}, contrastive = {con:?}"),
                });
            }
            let grads = GradientsParams::from_grads(total.backward(), &self.model);
            self.model = self.optimizer.step(lr, self.model.clone(), grads);

            loss_sum += l;
            cls_sum += c;
            con_sum += con.unwrap_or(0.0);
            correct += h as usize;
            rows += batch.host_labels.len();
            images += batch.images_in_batch;
            count += 1;
            let seconds = started.elapsed().as_secs_f64().max(1e-9);
            progress.step(&format!(
                "loss {:.4} acc {:.3} {:.0} img/s lr {lr:.4}",
                loss_sum / count as f64,
                correct as f64 / rows.max(1) as f64,
                images as f64 / seconds
            ));
        }
        let seconds = started.elapsed().as_secs_f64();
        let n = count.max(1) as f64;
        let record = EpochRecord {
            epoch,
            lr,
            loss: loss_sum / n,
            classification: cls_sum / n,
            contrastive: matches!(self.objective, Objective::Rescom(_)).then_some(con_sum / n),
            train_top1: correct as f64 / rows.max(1) as f64,
            images_per_second: images as f64 / seconds.max(1e-9),
            seconds,
            eval: None,
        };
        progress.finish(&format!(
            "epoch {} train loss {:.4} acc {:.3} ({:.0} img/s, {:.1} s)",
            epoch + 1,
            record.loss,
            record.train_top1,
            record.images_per_second,
            seconds
        ));
        Ok(record)
    }

    /// Evaluates the current model on `test` (inference mode, unshifted logits).
    pub fn evaluate(
        &self,
        test: &mut dyn EvalData,
        epoch: usize,
        progress: &mut dyn Progress,
    ) -> Result<EvalReport> {
        evaluate(&self.model, test, &self.state.train_counts, epoch, progress)
    }

    fn save_checkpoint(&self) -> Result<()> {
        let path = self.out.join(CHECKPOINT);
        let record_error = |e: &dyn std::fmt::Debug| Error::Checkpoint {
            path: path.clone(),
            reason: format!("{e:?}"),
        };
        // Batch-norm running statistics lag one update behind in Burn until a synchronising
        // read; `valid` performs it (and its result is not needed), so the record holds the
        // statistics of the last step.
        let _ = self.model.valid();
        let mut sections = vec![(
            "model".to_string(),
            self.model
                .clone()
                .into_record()
                .into_bytes()
                .map_err(|e| record_error(&e))?
                .to_vec(),
        )];
        if let Objective::Rescom(loss) = &self.objective {
            sections.push((
                "loss".into(),
                (**loss)
                    .clone()
                    .into_record()
                    .into_bytes()
                    .map_err(|e| record_error(&e))?
                    .to_vec(),
            ));
        }
        sections.push((
            "optimizer".into(),
            self.optimizer
                .into_bytes()
                .map_err(|e| record_error(&e))?
                .to_vec(),
        ));
        Checkpoint {
            meta: self.state.clone(),
            sections,
        }
        .save(&path)
    }

    fn write_reports(&self) -> Result<()> {
        let history = &self.state.history;
        write_history(&self.out, history)?;
        plot_curves(&self.out.join("curves.svg"), history)?;
        if let Some(eval) = history.iter().rev().find_map(|r| r.eval.as_ref()) {
            plot_per_class(
                &self.out.join("per_class.svg"),
                &self.state.train_counts,
                &eval.per_class,
            )?;
        }
        Ok(())
    }

    /// The summary of the run so far, also written to `out/summary.json`.
    pub fn summary(&self) -> Result<Summary> {
        let evaluated: Vec<(usize, &EvalReport)> = self
            .state
            .history
            .iter()
            .filter_map(|r| r.eval.as_ref().map(|e| (r.epoch, e)))
            .collect();
        let (_, last) = *evaluated
            .last()
            .ok_or_else(|| Error::config("epochs", "no evaluation has been run yet"))?;
        let (best_epoch, best) = evaluated
            .iter()
            .copied()
            .fold(evaluated[0], |a, b| if b.1.top1 > a.1.top1 { b } else { a });
        let config = self.config();
        let summary = Summary {
            method: config.method_name(),
            dataset: config.dataset.clone(),
            epochs: self.state.epochs_done,
            last: last.clone(),
            best_epoch,
            best: best.clone(),
            train_counts: self.state.train_counts.clone(),
            seed: config.seed,
        };
        crate::train::write_atomic(
            &self.out.join("summary.json"),
            serde_json::to_string_pretty(&summary)?.as_bytes(),
        )?;
        Ok(summary)
    }
}

/// Evaluates `model` on `test` in inference mode; the shot groups come from `train_counts`.
pub fn evaluate<M: Network>(
    model: &M,
    test: &mut dyn EvalData,
    train_counts: &[usize],
    epoch: usize,
    progress: &mut dyn Progress,
) -> Result<EvalReport> {
    let model = model.valid();
    let mut accuracy = Accuracy::new(train_counts.len());
    let total = test.len();
    progress.start("eval", epoch, total);
    let started = Instant::now();
    let mut seen = 0;
    for batch in test.batches()? {
        let batch = batch?;
        let images = batch.images.without_autodiff();
        let logits = model.forward_logits(images);
        accuracy.update(logits, &batch.host_labels)?;
        seen += batch.host_labels.len();
        progress.step(&format!(
            "{seen}/{total} images, {:.0} img/s",
            seen as f64 / started.elapsed().as_secs_f64().max(1e-9)
        ));
    }
    let report = accuracy.report(train_counts)?;
    let pct = |v: Option<f64>| v.map_or("-".into(), |v| format!("{:.2}", 100.0 * v));
    progress.finish(&format!(
        "eval top-1 {:.2} top-5 {:.2} many {} medium {} few {}",
        100.0 * report.top1,
        100.0 * report.top5,
        pct(report.many),
        pct(report.medium),
        pct(report.few)
    ));
    Ok(report)
}
