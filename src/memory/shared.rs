//! The key memory of the contrastive branch, shared by every copy of a [`ResComLoss`], and
//! the rule by which replicas of one model write to it.
//!
//! A training framework calls a model's step through a shared reference (burn-train's
//! `TrainStep::step(&self, ..)`), clones the model every step and, to train on several
//! devices, forks it once per device. The queue therefore lives behind shared interior
//! mutability, as batch normalisation keeps its running statistics: every clone and every fork
//! of a loss reads and writes the same memory, and the memory is saved and loaded with the
//! record of any module that holds the loss.
//!
//! # Replicas
//! By default a loss has one replica: each [`ResComLoss::forward`] reads the memory, computes
//! the loss, then enqueues its view-1 keys, exactly as a plain training loop would.
//!
//! With `P` replicas ([`ResComLoss::set_replicas`], one device each, in a fixed order), every
//! replica computes its loss from the memory as it stood before the step (its own batch
//! against the shared queue: the contrast is local to the replica), and stages its view-1 keys
//! instead of writing them. When the last of the `P` replicas has staged, the staged keys are
//! enqueued in one call, in replica order and then row order: the memory becomes the one a
//! single device would hold after enqueueing the concatenated batch `[replica 0; replica 1;
//! ...]` of the replicas' keys, and every replica (they share it) and every saved record hold
//! that memory. (Each replica computes its keys with its own network: with batch
//! normalisation, from its own batch statistics, as data-parallel training without
//! synchronised batch norm does.) A replica that
//! stages twice before the step completes (a retried step) replaces its keys; keys are never
//! duplicated nor dropped. A step that only some replicas took (the last, shorter batch of an
//! epoch) is written by [`ResComLoss::flush_staged_keys`], which a training step calls after
//! the optimiser step.
//!
//! [`ResComLoss`]: crate::ResComLoss
//! [`ResComLoss::forward`]: crate::ResComLoss::forward
//! [`ResComLoss::set_replicas`]: crate::ResComLoss::set_replicas
//! [`ResComLoss::flush_staged_keys`]: crate::ResComLoss::flush_staged_keys

use std::sync::{Arc, Mutex, MutexGuard};

use burn::module::{
    Content, Devices, Module, ModuleDisplay, ModuleDisplayDefault, ModuleMapper, ModuleVisitor,
};
use burn::tensor::{Device, Int, Tensor};

use crate::error::{Error, Result};
use crate::memory::KeyMemory;
use crate::ops::int_dtype;

/// View-1 keys of one replica, waiting for the other replicas of the step.
#[derive(Debug, Clone)]
struct Staged {
    keys: Tensor<2>,
    labels: Tensor<1, Int>,
}

#[derive(Debug)]
struct State {
    memory: KeyMemory,
    /// The replica devices, in order; empty for a single replica.
    replicas: Vec<Device>,
    /// The device of the single replica, fixed by its first write (single replica only).
    single: Option<Device>,
    /// One slot per replica.
    staged: Vec<Option<Staged>>,
}

impl State {
    fn new(memory: KeyMemory) -> Self {
        Self {
            memory,
            replicas: Vec::new(),
            single: None,
            staged: vec![None],
        }
    }

    /// The replica index of a write from `device`.
    fn replica_of(&mut self, device: &Device) -> Result<usize> {
        if self.replicas.is_empty() {
            match &self.single {
                None => {
                    self.single = Some(device.clone());
                    Ok(0)
                }
                Some(d) if d == device => Ok(0),
                Some(d) => Err(Error::config(
                    "replicas",
                    format!(
                        "the loss is used on {device:?} after {d:?}: to train replicas on several \
                         devices, declare them in order with `ResComLoss::set_replicas`; to move \
                         a single model, use `Module::to_device`"
                    ),
                )),
            }
        } else {
            self.replicas
                .iter()
                .position(|d| d == device)
                .ok_or_else(|| {
                    Error::config(
                        "replicas",
                        format!(
                            "keys computed on {device:?}, which is not one of the {} replica \
                             devices {:?}",
                            self.replicas.len(),
                            self.replicas
                        ),
                    )
                })
        }
    }

    /// Enqueues every staged key, replica by replica, in one call; returns the rows written.
    fn commit(&mut self) -> usize {
        let staged: Vec<Staged> = self.staged.iter_mut().filter_map(Option::take).collect();
        let Some(device) = self.memory.devices().into_iter().next() else {
            return 0;
        };
        let rows: usize = staged.iter().map(|s| s.keys.dims()[0]).sum();
        if rows == 0 {
            return 0;
        }
        // Replicas on other backends may hold other dtypes (ndarray's integers are 64-bit,
        // flex's 32-bit): bring every share to the memory's.
        let (key_dtype, int) = (self.memory.key_dtype(), int_dtype(&device));
        let (keys, labels): (Vec<_>, Vec<_>) = staged
            .into_iter()
            .map(|s| {
                (
                    s.keys.to_device(&device).cast(key_dtype),
                    s.labels.to_device(&device).cast(int),
                )
            })
            .unzip();
        self.memory
            .enqueue_unchecked(Tensor::cat(keys, 0), Tensor::cat(labels, 0));
        rows
    }
}

/// A [`KeyMemory`] shared by every clone and fork of its owner, with the staging of replica
/// writes (rules in the [module docs](self)).
///
/// As a [`Module`] it shows the memory's keys and pointers as parameters that never require a
/// gradient (an optimiser has nothing to update there), so records hold them;
/// [`Module::fork`] keeps the memory shared where it is (replicas read it on their own
/// device), [`Module::to_device`] moves it, and [`Module::valid`] / [`Module::train`] return an
/// independent copy, as Burn's running statistics do.
#[derive(Clone, Debug)]
pub struct SharedMemory {
    state: Arc<Mutex<State>>,
}

impl SharedMemory {
    /// Shares `memory`.
    pub fn new(memory: KeyMemory) -> Self {
        Self {
            state: Arc::new(Mutex::new(State::new(memory))),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while the lock was held cannot leave the state half-written: every write
        // replaces whole values.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The memory as it stands (cheap: tensors are reference-counted).
    pub fn snapshot(&self) -> KeyMemory {
        self.lock().memory.clone()
    }

    /// Replaces the memory (clones and forks see the new one too).
    pub fn replace(&self, memory: KeyMemory) {
        self.lock().memory = memory;
    }

    /// The replica devices, in order (empty: one replica).
    pub fn replicas(&self) -> Vec<Device> {
        self.lock().replicas.clone()
    }

    /// Declares the replica devices, in order; keys staged so far are written first.
    /// One device, or none, means a single replica.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] if a device is listed twice.
    pub fn set_replicas(&self, devices: &[Device]) -> Result<()> {
        for (i, d) in devices.iter().enumerate() {
            if devices[..i].contains(d) {
                return Err(Error::config(
                    "replicas",
                    format!("device {d:?} is listed twice; each replica needs its own device"),
                ));
            }
        }
        let mut state = self.lock();
        state.commit();
        state.replicas = if devices.len() > 1 {
            devices.to_vec()
        } else {
            Vec::new()
        };
        state.single = devices.first().cloned().filter(|_| devices.len() == 1);
        state.staged = vec![None; state.replicas.len().max(1)];
        Ok(())
    }

    /// Stages the view-1 keys of one replica (the replica is the keys' device); when every
    /// replica has staged, writes them all. Returns the rows written (0 while waiting).
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] if the keys' device is not a replica device.
    pub(crate) fn stage(&self, keys: Tensor<2>, labels: Tensor<1, Int>) -> Result<usize> {
        let mut state = self.lock();
        let replica = state.replica_of(&keys.device())?;
        state.staged[replica] = Some(Staged {
            keys: keys.detach().without_autodiff(),
            labels: labels.without_autodiff(),
        });
        if state.staged.iter().all(Option::is_some) {
            Ok(state.commit())
        } else {
            Ok(0)
        }
    }

    /// Writes the keys staged by the replicas that took the current step, in replica order
    /// (a step that not every replica took). Returns the rows written.
    pub fn flush(&self) -> usize {
        self.lock().commit()
    }

    fn independent(memory: KeyMemory) -> Self {
        Self::new(memory)
    }
}

impl Module for SharedMemory {
    fn collect_devices(&self, devices: Devices) -> Devices {
        self.lock().memory.collect_devices(devices)
    }

    /// The memory stays shared where it is: every replica reads it on its own device.
    fn fork(self, _device: &Device) -> Self {
        self
    }

    fn to_device(self, device: &Device) -> Self {
        {
            let mut state = self.lock();
            state.memory = state.memory.clone().to_device(device);
            state.single = None;
        }
        self
    }

    fn train(self) -> Self {
        let memory = self.lock().memory.clone();
        Self::independent(memory.train())
    }

    fn valid(&self) -> Self {
        Self::independent(self.lock().memory.valid())
    }

    fn materialize(self) -> Self {
        self
    }

    fn visit<V: ModuleVisitor>(&self, visitor: &mut V) {
        self.lock().memory.visit(visitor)
    }

    fn map<M: ModuleMapper>(self, mapper: &mut M) -> Self {
        {
            let mut state = self.lock();
            state.memory = state.memory.clone().map(mapper);
        }
        self
    }
}

impl ModuleDisplayDefault for SharedMemory {
    fn content(&self, content: Content) -> Option<Content> {
        let state = self.lock();
        let replicas = state.replicas.len().max(1);
        match &state.memory {
            KeyMemory::ClassBalanced(queue) => content.add("class_balanced", queue),
            KeyMemory::Fifo(queue) => content.add("fifo", queue),
        }
        .add("replicas", &replicas)
        .optional()
    }
}

impl ModuleDisplay for SharedMemory {}
