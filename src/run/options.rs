//! How and where a run trains, and on what data.

use std::path::PathBuf;

use burn::tensor::Device;
use burn::train::renderer::MetricsRenderer;

use crate::data::{DatasetSpec, EvalLoader, TwoViewLoader};
use crate::error::{Error, Result};
use crate::model::ResComModelConfig;
use crate::train::StepChecks;

/// Where a run trains.
#[derive(Debug, Clone)]
pub enum Devices {
    /// One device.
    Single(Device),
    /// burn-train's multi-device strategy: the model is forked to each device every step,
    /// each replica takes its share of the batches, and the gradients are gathered and applied
    /// on the first device. The ResCom queue is shared: each replica contrasts its own batch
    /// with it, and the replicas' keys are enqueued in device order.
    MultiDevice(Vec<Device>),
    /// burn-train's distributed data parallel strategy: one worker per device, gradients
    /// averaged by an all-reduce. Needs a backend with collective operations, which Burn
    /// 0.22.1 implements for CUDA only; other backends are refused.
    Ddp(Vec<Device>),
}

impl Devices {
    pub(crate) fn all(&self) -> &[Device] {
        match self {
            Devices::Single(device) => std::slice::from_ref(device),
            Devices::MultiDevice(devices) | Devices::Ddp(devices) => devices,
        }
    }

    /// The first device: the model lives and is evaluated there.
    pub fn main(&self) -> Device {
        self.all()[0].clone().autodiff()
    }

    pub(crate) fn validate(&self) -> Result<()> {
        let devices = self.all();
        if devices.is_empty() {
            return Err(Error::config("devices", "at least one device is needed"));
        }
        for (i, d) in devices.iter().enumerate() {
            if devices[..i].contains(d) {
                return Err(Error::config(
                    "devices",
                    format!("{d:?} is listed twice; each replica needs its own device"),
                ));
            }
        }
        if let Devices::Ddp(devices) = self
            && let Some(d) = devices.iter().find(|d| !format!("{d:?}").contains("Cuda"))
        {
            return Err(Error::config(
                "devices",
                format!(
                    "distributed data parallel training needs all-reduce collectives, which \
                     Burn 0.22.1 implements for CUDA devices only, not for {d:?}; use the \
                     multi-device strategy instead"
                ),
            ));
        }
        Ok(())
    }
}

/// How to run.
pub struct RunOptions {
    /// Output directory.
    pub out: PathBuf,
    /// Continue the run saved in `out` from its last complete checkpoint.
    pub resume: bool,
    /// Stop after this many epochs of this call (continue later with `resume`).
    pub stop_after: Option<usize>,
    /// Where to train.
    pub devices: Devices,
    /// The renderer; `None` for burn-train's default (its dashboard when standard output is
    /// a terminal, plain lines otherwise).
    pub renderer: Option<Box<dyn MetricsRenderer>>,
    /// Where a training step validates its batch and the network's outputs (default
    /// [`StepChecks::Auto`]: on the host on GPUs, so that a step reads nothing from the
    /// device; on the device on the CPU backends).
    pub step_checks: StepChecks,
    /// The configuration the network was built from, when it is the crate's
    /// [`ResComModel`](crate::model::ResComModel): recorded in `run.json`, it lets
    /// [`Predictor`](super::Predictor) rebuild the network. `None` (the default) for a network
    /// of one's own, whose runs can be resumed and evaluated but not opened by a `Predictor`.
    pub model: Option<ResComModelConfig>,
    /// The name of each class, by label, recorded in `run.json` for predictions (e.g.
    /// [`DatasetSpec::class_names`]); `None` by default.
    pub class_names: Option<Vec<String>>,
    /// Where the test split comes from, recorded in `run.json` so that the run's own test
    /// images can be classified again; `None` by default. That it describes the images of
    /// [`RunData::test`] is the caller's promise (it is not read during the run).
    pub test_split: Option<DatasetSpec>,
    /// Install burn-train's application logger, which writes the process's log lines
    /// (burn-train's among them) to `out/experiment.log`; `false` by default. The logger is
    /// process-wide and installed once: the first run of a process that asks for it keeps it,
    /// and every later run of that process, and any other code, logs into that first file. A
    /// program of one run (the `train` example) turns it on; a program of several runs, or
    /// one with its own `tracing`/`log` subscriber, leaves it off.
    pub experiment_log: bool,
}

impl RunOptions {
    /// A new run into `out` on one device, with the default renderer.
    pub fn new(out: impl Into<PathBuf>, device: Device) -> Self {
        Self {
            out: out.into(),
            resume: false,
            stop_after: None,
            devices: Devices::Single(device),
            renderer: None,
            step_checks: StepChecks::Auto,
            model: None,
            class_names: None,
            test_split: None,
            experiment_log: false,
        }
    }
}

/// The data of a run: two-view training batches and the evaluation set.
pub struct RunData {
    /// Training batches.
    pub train: TwoViewLoader,
    /// Evaluation batches.
    pub test: EvalLoader,
}
