//! [`fit_with_learner`]: [`fit`](crate::train::fit)'s job, run by burn-train's `Learner` on
//! one device or several.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use burn::module::{Module, ModuleDisplay};
use burn::tensor::Device;
use burn::tensor::distributed::{DistributedConfig, ReduceOperation};
use burn::train::logger::InMemoryMetricLogger;
use burn::train::{ExecutionStrategy, Learner, MultiDeviceOptim, SupervisedTraining};

use super::loader::ElboDataLoader;
use super::metric::{ElboFigure, ElboMetric};
use super::model::Trainable;
use super::renderer::QuietRenderer;
use super::schedule::FitSchedule;
use crate::data::TrainData;
use crate::train::{FitConfig, History};
use crate::traits::LatentVariableModel;
use crate::{Error, Result};

/// Where the Learner runs.
#[derive(Clone, Debug)]
pub enum DeviceStrategy {
    /// One device.
    Single(Device),
    /// Several devices, one thread each (burn's `ExecutionStrategy::multi`): every replica
    /// runs a batch of `batch_size` examples, the main device (the first) sums their
    /// gradients and takes the optimiser step. Any backend; the same device may be listed
    /// twice (two threads on one device).
    Multi(Vec<Device>),
    /// Distributed data parallel (burn's `ExecutionStrategy::ddp`): gradients are averaged
    /// by an all-reduce during the backward pass. CUDA devices only: burn 0.22.1 runs it
    /// through NCCL and has no all-reduce for its other backends.
    Ddp(Vec<Device>),
}

impl DeviceStrategy {
    /// One device for one entry, [`DeviceStrategy::Multi`] for more.
    pub fn from_devices(devices: Vec<Device>) -> Result<Self> {
        match devices.len() {
            0 => Err(Error::config("devices", "none", "at least one device")),
            1 => Ok(Self::Single(devices[0].clone())),
            _ => Ok(Self::Multi(devices)),
        }
    }

    fn devices(&self) -> Vec<Device> {
        match self {
            Self::Single(device) => vec![device.clone()],
            Self::Multi(devices) | Self::Ddp(devices) => devices.clone(),
        }
    }

    /// How many replicas' gradients burn sums (1 where it averages or there is one).
    fn summed_replicas(&self) -> usize {
        match self {
            Self::Multi(devices) => devices.len(),
            Self::Single(_) | Self::Ddp(_) => 1,
        }
    }
}

/// Whether `device` is a CUDA device: burn's `Device` shows its backend only through its
/// `Debug` form (`Device<Cuda(..)>`, or `Device<Autodiff(Cuda(..))>`).
fn is_cuda(device: &Device) -> bool {
    format!("{device:?}").contains("Cuda(")
}

/// Trains `model` on `train` through burn-train's `Learner` and returns it (the EMA if
/// `config.ema_decay` is set, in training mode on the main device's autodiff device) with
/// its history; `valid` is evaluated (the bound) after every epoch, into burn's metrics.
///
/// The same [`FitConfig`] as [`fit`](crate::train::fit), and on one device the same
/// numbers: the same batches in the same order (see [`ElboDataLoader`]), the same
/// optimiser and learning rates, the same objective code. With `checkpoint_dir` set, burn
/// writes its checkpoints (`checkpoint/model-N`, …) and metric logs there; otherwise
/// nothing is written. With `config.progress` and standard output a terminal, burn draws
/// its progress (its terminal dashboard with burn's `tui` feature, else its CLI lines);
/// otherwise nothing ([`QuietRenderer`]).
///
/// Per-epoch lines (with the validation bound) are logged as `fit` logs them when
/// `config.log_epochs` is set.
///
/// With `config.resume`, training continues from the latest of burn's checkpoints in
/// `checkpoint_dir` (the weights, the optimiser's state and the schedule's step, from
/// burn's `SupervisedTraining::checkpoint`), with the batches and device seeds of the
/// epochs that follow, as the uninterrupted run would; without a checkpoint there it
/// starts afresh. The returned history holds the epochs this call ran (burn's metric logs
/// in `checkpoint_dir` hold every epoch's). burn's checkpoints do not hold an exponential
/// moving average, so `resume` with `ema_decay` is refused; [`fit`](crate::train::fit)
/// resumes both.
///
/// # Errors
/// [`Error::InvalidConfig`] for a bad config, empty data, `resume` with `ema_decay`, or
/// [`DeviceStrategy::Ddp`] on a device that is not CUDA; [`Error::Checkpoint`] for a
/// checkpoint burn cannot load (written for another model, or damaged);
/// [`Error::NonFiniteLoss`] naming the first step whose loss is not finite; the model's
/// error for a batch it rejects.
pub fn fit_with_learner<M, T>(
    model: M,
    train: Arc<T>,
    valid: Arc<T>,
    config: &FitConfig,
    strategy: DeviceStrategy,
) -> Result<(M, History)>
where
    M: Module + ModuleDisplay + LatentVariableModel<Input = T::Input> + 'static,
    M::Input: Send + 'static,
    T: TrainData + Send + Sync + 'static,
    T::Input: 'static,
{
    config.validate()?;
    if train.is_empty() {
        return Err(Error::config("data", "0 examples", "at least one example"));
    }
    if valid.is_empty() {
        return Err(Error::config(
            "validation data",
            "0 examples",
            "at least one example",
        ));
    }
    if config.resume && config.ema_decay.is_some() {
        return Err(Error::config(
            "resume",
            true,
            "false with ema_decay through the Learner (burn's checkpoints do not hold the \
             average): resume with train::fit, or train without ema_decay",
        ));
    }
    let devices: Vec<Device> = strategy
        .devices()
        .into_iter()
        .map(Device::autodiff)
        .collect();
    if devices.is_empty() {
        return Err(Error::config("devices", "none", "at least one device"));
    }
    if let DeviceStrategy::Ddp(_) = strategy
        && let Some(other) = devices.iter().find(|d| !is_cuda(d))
    {
        // burn 0.22.1 all-reduces on CUDA only (NCCL); elsewhere its dispatch panics.
        return Err(Error::config(
            "DeviceStrategy::Ddp",
            format!("{other:?}"),
            "CUDA devices (burn 0.22.1 runs distributed data parallel through NCCL only); \
             use DeviceStrategy::Multi on other backends",
        ));
    }
    let main = devices[0].clone();
    let mut trainable = Trainable::new(
        model.fork(&main).train(),
        config.objective.clone(),
        strategy.summed_replicas(),
    );
    // burn numbers epochs from 1: checkpoint `e` holds the state after `e` epochs, and
    // training resumes at (0-based) epoch `e`.
    let resume_from = match (&config.checkpoint_dir, config.resume) {
        (Some(directory), true) => latest_loadable_checkpoint(&trainable, directory)?,
        _ => None,
    };
    let first_epoch = resume_from.unwrap_or(0);
    let train_loader =
        ElboDataLoader::new(train, config.batch_size, config.seed, first_epoch, &main);
    // Each replica takes a block of the epoch's batches: a step is one batch per replica.
    let steps_per_epoch = train_loader.steps_per_epoch().div_ceil(devices.len());
    let valid_loader =
        ElboDataLoader::new(valid, config.batch_size, config.seed, first_epoch, &main);

    if let Some(decay) = config.ema_decay {
        trainable = trainable.with_ema(decay)?;
    }
    if config.log_epochs {
        trainable = trainable.with_epoch_log(config.epochs);
    }
    let directory = config
        .checkpoint_dir
        .clone()
        .unwrap_or_else(|| PathBuf::from("."));
    let mut training =
        SupervisedTraining::new(&directory, Arc::new(train_loader), Arc::new(valid_loader))
            .num_epochs(config.epochs)
            .with_application_logger(None)
            .metric_train_numeric(ElboMetric::new(ElboFigure::NegElbo))
            .metric_valid_numeric(ElboMetric::new(ElboFigure::NegElbo))
            .metric_train_numeric(ElboMetric::new(ElboFigure::Kl))
            .metric_train_numeric(ElboMetric::new(ElboFigure::Reconstruction))
            .metric_train_numeric(burn::train::metric::LossMetric::new())
            .metric_valid_numeric(burn::train::metric::LossMetric::new());
    if config.checkpoint_dir.is_some() {
        training = training.with_default_checkpointers();
        if let Some(epoch) = resume_from {
            training = training.checkpoint(epoch);
        }
    } else {
        training = training.with_metric_logger(InMemoryMetricLogger::new());
    }
    let execution = match &strategy {
        DeviceStrategy::Single(_) => ExecutionStrategy::single(main.clone()),
        DeviceStrategy::Multi(_) => {
            ExecutionStrategy::multi(devices.clone(), MultiDeviceOptim::OptimMainDevice)
        }
        DeviceStrategy::Ddp(_) => ExecutionStrategy::ddp(
            devices.clone(),
            DistributedConfig {
                all_reduce_op: ReduceOperation::Mean,
            },
        ),
    };
    training = training.with_training_strategy(execution.into());
    if !(config.progress && std::io::stdout().is_terminal()) {
        training = training.renderer(Box::new(QuietRenderer));
    }
    let trainable = trainable.with_interrupter(training.interrupter());
    let optimizer = config.build_optimizer()?;
    let schedule = FitSchedule::new(
        config.lr_schedule.clone(),
        config.learning_rate,
        steps_per_epoch,
        config.epochs,
    );
    let learner = Learner::new(trainable.clone(), optimizer, schedule);
    let result = training.launch(learner);

    // `trainable` shares its record and EMA with the replicas the Learner ran.
    if let Some(error) = trainable.take_failure() {
        return Err(error);
    }
    trainable.log_remaining();
    let epochs = trainable.epoch_records();
    let model = match trainable.ema_model() {
        Some(average) => average,
        None => result.model.model,
    };
    Ok((model.fork(&main).train(), History { epochs }))
}

/// The latest checkpoint in `directory` that burn can load into `trainable` (burn's epoch
/// count, from 1); `None` if there is none. burn writes its checkpoints in place, so a run
/// stopped while it wrote one leaves it damaged: that one is passed over, with a warning,
/// for the one before (burn keeps two). If every checkpoint fails to load (written for
/// another model), the latest one's error.
fn latest_loadable_checkpoint<M: Module>(trainable: &M, directory: &Path) -> Result<Option<usize>> {
    let mut first_error = None;
    for epoch in complete_checkpoints(directory)? {
        match check_checkpoint(trainable, directory, epoch) {
            Ok(()) => return Ok(Some(epoch)),
            Err(error) => {
                log::warn!("passing over checkpoint {epoch}: {error}");
                first_error.get_or_insert(error);
            }
        }
    }
    match first_error {
        Some(error) => Err(error),
        None => Ok(None),
    }
}

/// The file of burn's default checkpointer of `kind` (`model`, `optim`, `scheduler`) for
/// `epoch` in `directory`: `checkpoint/{kind}-{epoch}.bpk`.
fn checkpoint_file(directory: &Path, kind: &str, epoch: usize) -> PathBuf {
    directory
        .join("checkpoint")
        .join(format!("{kind}-{epoch}.bpk"))
}

/// The epochs (burn's count, from 1) whose model, optimiser and schedule checkpoints
/// ([`checkpoint_file`]) are all in `directory`, latest first.
fn complete_checkpoints(directory: &Path) -> Result<Vec<usize>> {
    let folder = directory.join("checkpoint");
    let entries = match std::fs::read_dir(&folder) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(Error::io(folder, e)),
    };
    let mut epochs = Vec::new();
    for entry in entries {
        let name = entry.map_err(|e| Error::io(&folder, e))?.file_name();
        let epoch = name
            .to_str()
            .and_then(|name| name.strip_prefix("model-"))
            .and_then(|rest| rest.strip_suffix(".bpk"))
            .and_then(|epoch| epoch.parse::<usize>().ok());
        let complete = |epoch: usize| {
            ["optim", "scheduler"]
                .iter()
                .all(|kind| checkpoint_file(directory, kind, epoch).is_file())
        };
        if let Some(epoch) = epoch.filter(|&e| complete(e)) {
            epochs.push(epoch);
        }
    }
    epochs.sort_unstable_by(|a, b| b.cmp(a));
    Ok(epochs)
}

/// Loads checkpoint `epoch`'s three records, and the model's into a copy of `trainable`,
/// so that one burn cannot load is an error here rather than burn's panic at launch.
fn check_checkpoint<M: Module>(trainable: &M, directory: &Path, epoch: usize) -> Result<()> {
    let path = |kind: &str| checkpoint_file(directory, kind, epoch);
    let unloadable = |path: PathBuf, e: &dyn std::fmt::Display| Error::Checkpoint {
        reason: format!(
            "burn cannot load it ({e}): a checkpoint of another model or a damaged file; \
             resume with the model it was written for, or point checkpoint_dir at a new \
             folder to start afresh"
        ),
        path,
    };
    trainable
        .clone()
        .try_load_file(path("model"))
        .map_err(|e| unloadable(path("model"), &e))?;
    burn::optim::OptimizerRecord::load(path("optim")).map_err(|e| unloadable(path("optim"), &e))?;
    burn::optim::lr_scheduler::LrSchedulerRecord::load(path("scheduler"))
        .map_err(|e| unloadable(path("scheduler"), &e))?;
    Ok(())
}
