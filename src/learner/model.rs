//! [`Trainable`]: a [`LatentVariableModel`] and its [`Objective`] as burn-train's model
//! (`TrainStep` + `InferenceStep`).

use std::any::Any;
use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;

use burn::module::{Module, ModuleDisplay};
use burn::optim::lr_scheduler::module_lr_scheduler::ModuleLearningRate;
use burn::optim::{GradientsParams, ModuleOptimizer, MultiGradientsParams};
use burn::tensor::{Device, Tensor};
use burn::train::{InferenceStep, Interrupter, TrainOutput, TrainStep};

use super::batch::{BatchPosition, ElboBatch};
use super::output::ElboOutput;
use crate::Error;
use crate::ema::Ema;
use crate::objective::Objective;
use crate::train::{EpochRecord, log_epoch};
use crate::traits::{Batch, LatentVariableModel};

/// A [`LatentVariableModel`] with the [`Objective`] it is trained on, as a burn-train model.
///
/// `TrainStep::step` computes the objective on an [`ElboBatch`] (at the batch's global
/// step, for the KL warm-up) exactly as [`fit`](crate::train::fit) does, reads its value
/// back, and differentiates `loss / replicas`: burn's multi-device strategies *sum* the
/// replicas' gradients, so with `replicas` equal halves of a batch the sum is the gradient of
/// the whole batch's mean. `TrainStep::optimize` applies the update, then the EMA (if any)
/// on the main device. `InferenceStep::step` reports the bound on a validation batch.
///
/// A batch without a position (from burn's own `DataLoader`, through
/// [`ElboBatcher`](super::ElboBatcher)) is placed by counting: its global step is the
/// number of optimiser steps taken so far, and its epoch is the number of validation
/// passes seen before it (burn's Learner validates after each training epoch; with no
/// validation data, every batch counts as epoch 0). A batch from
/// [`ElboDataLoader`](super::ElboDataLoader) carries its position, which is used as given.
/// The count starts at 0 when the `Trainable` is made, or where [`Self::resumed_at`] puts
/// it.
///
/// A non-finite loss, an error from the model (a batch of the wrong shape) or a batch that
/// could not be read stops training through burn's [`Interrupter`] before the update is
/// applied; [`Self::take_failure`] then returns it, with the step, as `fit`'s error.
///
/// State that is not a gradient: BatchNorm running statistics and NVAE's power-iteration
/// vectors are burn `RunningState`s, which every replica of a module shares (a clone holds
/// the same state) and which average the replicas' updates (one per thread) before they are
/// next read, so replicas cannot drift apart; the EMA is updated after each optimiser step
/// by the replica on the device the model was on when [`Self::with_ema`] was called (the
/// main device), and by no other. (Under distributed data parallel on one device listed
/// twice, every replica is on that device; list distinct devices there.)
#[derive(Module, Debug)]
pub struct Trainable<M> {
    /// The model.
    pub model: M,
    #[module(skip)]
    state: Shared,
}

/// What the replicas of a [`Trainable`] share: settings, the EMA, the running figures.
#[derive(Clone)]
struct Shared {
    objective: Objective,
    replicas: usize,
    /// Log one line per epoch (of this many) as it ends.
    log_epochs: Option<usize>,
    /// An `Ema<M>`: held as `Any` because burn's `Module` derive forbids a module field's
    /// generic type in a skipped field.
    ema: Option<Arc<Mutex<Box<dyn Any + Send>>>>,
    /// The device whose replica updates the EMA: under distributed data parallel every
    /// replica takes the optimiser step, and only the main device's may average it.
    ema_device: Option<Device>,
    record: Arc<Mutex<Record>>,
    interrupter: Option<Interrupter>,
}

impl fmt::Debug for Shared {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Shared")
            .field("objective", &self.objective)
            .field("replicas", &self.replicas)
            .field("ema", &self.ema.is_some())
            .finish()
    }
}

/// Sums over the examples of each epoch, the step count, and the first failure.
#[derive(Default)]
struct Record {
    epochs: Vec<EpochSums>,
    failure: Option<Error>,
    failed: bool,
    /// The epoch of the last batch added.
    epoch: usize,
    /// Epochs whose line has been logged.
    logged: usize,
    /// Optimiser steps taken, per device that took them: the main device under burn's
    /// multi-device strategy, every replica under distributed data parallel. The count is
    /// the largest.
    steps: Vec<(Device, usize)>,
    /// For batches without a position: the epoch being counted and the step it began at.
    counted_epoch: usize,
    counted_epoch_start: usize,
    /// Whether a validation batch came after the last training batch: the next training
    /// batch then opens the next epoch.
    validated: bool,
}

impl Record {
    /// The sums of `epoch` (0-based), made if this is its first batch.
    fn sums(&mut self, epoch: usize) -> &mut EpochSums {
        if self.epochs.len() <= epoch {
            self.epochs.resize(epoch + 1, EpochSums::default());
        }
        &mut self.epochs[epoch]
    }

    /// Optimiser steps taken so far.
    fn steps_taken(&self) -> usize {
        self.steps.iter().map(|(_, n)| *n).max().unwrap_or(0)
    }

    /// Where a training batch sits: as given, or counted.
    fn place_train(&mut self, given: Option<BatchPosition>) -> BatchPosition {
        if let Some(position) = given {
            return position;
        }
        let taken = self.steps_taken();
        if self.validated {
            self.validated = false;
            self.counted_epoch += 1;
            self.counted_epoch_start = taken;
        }
        BatchPosition {
            epoch: self.counted_epoch,
            step: taken - self.counted_epoch_start,
            global_step: taken,
        }
    }

    /// The epoch of a validation batch: as given, or the epoch just trained.
    fn place_valid(&mut self, given: Option<BatchPosition>) -> BatchPosition {
        if let Some(position) = given {
            return position;
        }
        let taken = self.steps_taken();
        // Validation closes an epoch only if it trained (not a pass before training).
        if taken > self.counted_epoch_start {
            self.validated = true;
        }
        BatchPosition {
            epoch: self.counted_epoch,
            step: 0,
            global_step: taken,
        }
    }
}

#[derive(Clone, Default)]
struct EpochSums {
    loss: f64,
    neg_bound: f64,
    kl: f64,
    kl_groups: Vec<f64>,
    examples: usize,
    learning_rate: f64,
    started: Option<Instant>,
    seconds: f64,
    /// −bound summed over the validation examples, and their count.
    valid_neg_bound: f64,
    valid_examples: usize,
}

impl EpochSums {
    /// The means over the epoch's examples, as `fit`'s history has them (`epoch` 0-based).
    fn record(&self, epoch: usize) -> EpochRecord {
        let n = self.examples.max(1) as f64;
        EpochRecord {
            epoch: epoch + 1,
            loss: self.loss / n,
            neg_bound: self.neg_bound / n,
            kl: self.kl / n,
            kl_groups: self.kl_groups.iter().map(|s| s / n).collect(),
            learning_rate: self.learning_rate,
            seconds: self.seconds,
        }
    }

    /// The mean −bound over the validation examples, if there were any.
    fn valid_neg_bound(&self) -> Option<f64> {
        (self.valid_examples > 0).then(|| self.valid_neg_bound / self.valid_examples as f64)
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl<M: Module + ModuleDisplay + LatentVariableModel + 'static> Trainable<M> {
    /// Wraps `model` to be trained on `objective`, its gradient split over `replicas`
    /// devices (1 for one device; see the type's docs).
    pub fn new(model: M, objective: Objective, replicas: usize) -> Self {
        Self {
            model,
            state: Shared {
                objective,
                replicas: replicas.max(1),
                log_epochs: None,
                ema: None,
                ema_device: None,
                record: Arc::default(),
                interrupter: None,
            },
        }
    }

    /// Keeps an exponential moving average of the weights with this decay, updated after
    /// every optimiser step ([`Self::ema_model`] returns it).
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] for a decay outside `[0, 1)`.
    pub fn with_ema(mut self, decay: f64) -> crate::Result<Self> {
        let ema: Box<dyn Any + Send> = Box::new(Ema::new(&self.model, decay)?);
        self.state.ema = Some(Arc::new(Mutex::new(ema)));
        self.state.ema_device = self.model.devices().into_iter().next();
        Ok(self)
    }

    /// Stops training through this interrupter (burn-train's, from
    /// `SupervisedTraining::interrupter`) at a non-finite loss or a model error.
    pub fn with_interrupter(mut self, interrupter: Interrupter) -> Self {
        self.state.interrupter = Some(interrupter);
        self
    }

    /// Continues a run at the start of 0-based epoch `epoch`, after `steps_taken` optimiser
    /// steps: the count that batches without a position are placed by (the KL warm-up's
    /// step, the epoch in the records and in errors) goes on from there instead of 0. For
    /// a run resumed from burn's checkpoint (`SupervisedTraining::checkpoint(epoch)`) fed
    /// by burn's own loader; batches from [`ElboDataLoader`](super::ElboDataLoader) carry
    /// their positions (give it the first epoch instead).
    pub fn resumed_at(self, epoch: usize, steps_taken: usize) -> Self {
        let device = main_device(&self);
        let mut record = lock(&self.state.record);
        record.steps = vec![(device, steps_taken)];
        record.counted_epoch = epoch;
        record.counted_epoch_start = steps_taken;
        record.validated = false;
        record.epoch = epoch;
        record.logged = epoch;
        drop(record);
        self
    }

    /// Logs one line per epoch (of `epochs`) as the next begins, through the `log` crate at
    /// `info` (target `elbo::learner`), as [`fit`](crate::train::fit) does with
    /// `log_epochs`; [`Self::log_remaining`] logs the last.
    pub fn with_epoch_log(mut self, epochs: usize) -> Self {
        self.state.log_epochs = Some(epochs);
        self
    }

    /// Logs the lines of the epochs not logged yet (after training).
    pub fn log_remaining(&self) {
        let mut record = lock(&self.state.record);
        let done = record.epochs.len();
        self.log_until(&mut record, done);
    }

    fn log_until(&self, record: &mut Record, end: usize) {
        let Some(total) = self.state.log_epochs else {
            return;
        };
        for epoch in record.logged..end.min(record.epochs.len()) {
            let sums = &record.epochs[epoch];
            if sums.examples > 0 {
                let valid = sums.valid_neg_bound();
                log_epoch(&sums.record(epoch), total, &self.state.objective, valid);
            }
        }
        record.logged = record.logged.max(end.min(record.epochs.len()));
    }

    /// The averaged weights, if an EMA was asked for.
    pub fn ema_model(&self) -> Option<M> {
        let ema = lock(self.state.ema.as_ref()?);
        ema.downcast_ref::<Ema<M>>().map(|ema| ema.model().clone())
    }

    /// The first non-finite loss or model error met in training, if any (taken: a second
    /// call returns `None`).
    pub fn take_failure(&self) -> Option<Error> {
        lock(&self.state.record).failure.take()
    }

    /// The training figures of each epoch run so far (means over its examples, as
    /// [`fit`](crate::train::fit)'s history has them).
    pub fn epoch_records(&self) -> Vec<EpochRecord> {
        let record = lock(&self.state.record);
        record
            .epochs
            .iter()
            .enumerate()
            .filter(|(_, sums)| sums.examples > 0)
            .map(|(epoch, sums)| sums.record(epoch))
            .collect()
    }

    fn fail(&self, error: Error) {
        let message = error.to_string();
        let mut record = lock(&self.state.record);
        if !record.failed {
            record.failure = Some(error);
            record.failed = true;
        }
        drop(record);
        if let Some(interrupter) = &self.state.interrupter {
            interrupter.stop(Some(&message));
        }
    }

    fn failed(&self) -> bool {
        lock(&self.state.record).failed
    }

    /// Adds one batch's figures to its epoch's sums; `values` = `[loss, −bound, KL]`.
    fn add(&self, batch: (usize, usize), values: &[f64], kl_groups: &[f64]) {
        let (epoch, n) = batch;
        let mut record = lock(&self.state.record);
        if epoch > record.epoch {
            self.log_until(&mut record, epoch);
        }
        record.epoch = epoch;
        let sums = record.sums(epoch);
        let started = *sums.started.get_or_insert_with(Instant::now);
        sums.loss += values[0] * n as f64;
        sums.neg_bound += values[1] * n as f64;
        sums.kl += values[2] * n as f64;
        sums.kl_groups.resize(kl_groups.len(), 0.0);
        for (sum, g) in sums.kl_groups.iter_mut().zip(kl_groups) {
            *sum += g * n as f64;
        }
        sums.examples += n;
        sums.seconds = started.elapsed().as_secs_f64();
    }

    /// After an optimiser step: the step count, the EMA, and the step's rate for its
    /// epoch's record.
    fn after_update(self, lr: &ModuleLearningRate) -> Self {
        let device = main_device(&self);
        let mut record = lock(&self.state.record);
        let epoch = record.epoch;
        if let Some(sums) = record.epochs.get_mut(epoch) {
            sums.learning_rate = lr.base();
        }
        match record.steps.iter_mut().find(|(d, _)| *d == device) {
            Some((_, n)) => *n += 1,
            None => record.steps.push((device.clone(), 1)),
        }
        drop(record);
        let on_main = Some(&device) == self.state.ema_device.as_ref();
        if let Some(ema) = &self.state.ema
            && on_main
            && let Some(ema) = lock(ema).downcast_mut::<Ema<M>>()
        {
            ema.update(&self.model);
        }
        self
    }
}

impl<M> TrainStep for Trainable<M>
where
    M: Module + ModuleDisplay + LatentVariableModel + 'static,
    M::Input: Send + 'static,
{
    type Input = ElboBatch<M::Input>;
    type Output = ElboOutput;

    fn step(&self, batch: ElboBatch<M::Input>) -> TrainOutput<ElboOutput> {
        let x = match batch.x {
            Ok(x) => x,
            Err(error) => {
                self.fail(error);
                return skipped(self);
            }
        };
        let n = x.batch_size();
        let position = lock(&self.state.record).place_train(batch.position);
        let out = match self
            .state
            .objective
            .step_loss(&self.model, &x, position.global_step)
        {
            Ok(out) => out,
            Err(error) => {
                self.fail(error);
                return skipped(self);
            }
        };
        let (values, kl_groups) = out.host_figures();
        if !values[0].is_finite() {
            self.fail(Error::NonFiniteLoss {
                epoch: position.epoch + 1,
                step: position.step,
                global_step: position.global_step,
                value: values[0],
            });
            return skipped(self);
        }
        if !out.loss.is_tracked() {
            self.fail(Error::config(
                "Trainable's model",
                "parameters without gradient tracking",
                "a model on an autodiff device in training mode \
                 (`model.fork(&device.autodiff()).train()`), trained by a Learner on \
                 `device.autodiff()`",
            ));
            return skipped(self);
        }
        self.add((position.epoch, n), &values, &kl_groups);
        let loss = out.loss.clone().div_scalar(self.state.replicas as f64);
        let grads = loss.backward();
        let item = ElboOutput::from_values(&values, &kl_groups, n, &out.loss.device());
        TrainOutput::new(self, grads, item)
    }

    fn optimize(
        self,
        optim: &mut ModuleOptimizer,
        lr: ModuleLearningRate,
        grads: GradientsParams,
    ) -> Self {
        if self.failed() {
            return self;
        }
        optim.step(lr.clone(), self, grads).after_update(&lr)
    }

    fn optimize_multi(
        self,
        optim: &mut ModuleOptimizer,
        lr: ModuleLearningRate,
        grads: MultiGradientsParams,
    ) -> Self {
        if self.failed() {
            return self;
        }
        optim.step_multi(lr.clone(), self, grads).after_update(&lr)
    }
}

/// The device of the model's first parameter.
fn main_device<M: Module>(module: &Trainable<M>) -> Device {
    module
        .model
        .devices()
        .into_iter()
        .next()
        .unwrap_or_default()
}

/// The output of a step that was not taken: no gradients, NaN figures.
fn skipped<M: Module + ModuleDisplay + LatentVariableModel + 'static>(
    module: &Trainable<M>,
) -> TrainOutput<ElboOutput> {
    let device = main_device(module);
    // On the autodiff device, so that the untracked model's case is not a panic here.
    let zero = Tensor::<1>::zeros([1], &device.clone().autodiff()).require_grad();
    let item = ElboOutput::from_values(&[f64::NAN; 3], &[], 1, &device);
    TrainOutput::new(module, zero.backward(), item)
}

impl<M> InferenceStep for Trainable<M>
where
    M: Module + ModuleDisplay + LatentVariableModel + 'static,
    M::Input: Send + 'static,
{
    type Input = ElboBatch<M::Input>;
    type Output = ElboOutput;

    fn step(&self, batch: ElboBatch<M::Input>) -> ElboOutput {
        let x = match batch.x {
            Ok(x) => x,
            Err(error) => {
                self.fail(error);
                let device = main_device(self);
                return ElboOutput::from_values(&[f64::NAN; 3], &[], 1, &device);
            }
        };
        let n = x.batch_size();
        let device = x.device();
        let position = lock(&self.state.record).place_valid(batch.position);
        match self
            .state
            .objective
            .step_loss(&self.model, &x, position.global_step)
        {
            Ok(out) => {
                let (mut values, kl_groups) = out.host_figures();
                // The validation loss is the bound, without the objective's weights.
                values[0] = values[1];
                let mut record = lock(&self.state.record);
                let sums = record.sums(position.epoch);
                sums.valid_neg_bound += values[1] * n as f64;
                sums.valid_examples += n;
                drop(record);
                ElboOutput::from_values(&values, &kl_groups, n, &device)
            }
            Err(error) => {
                self.fail(error);
                ElboOutput::from_values(&[f64::NAN; 3], &[], n, &device)
            }
        }
    }
}
