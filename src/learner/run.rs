//! [`fit_with_learner`]: [`fit`](crate::train::fit)'s job, run by burn-train's `Learner` on
//! one device or several.

use std::io::IsTerminal;
use std::path::PathBuf;
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
/// # Errors
/// [`Error::InvalidConfig`] for a bad config, empty data, `resume` (resume with burn's
/// own `SupervisedTraining::checkpoint`) or [`DeviceStrategy::Ddp`] on a device that is not
/// CUDA; [`Error::NonFiniteLoss`] naming the first step
/// whose loss is not finite; the model's error for a batch it rejects.
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
    if config.resume {
        return Err(Error::config(
            "resume",
            true,
            "false: with the Learner, resume through burn's SupervisedTraining::checkpoint",
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
    let train_loader = ElboDataLoader::new(train, config.batch_size, config.seed, 0, &main);
    let replicas = strategy.summed_replicas();
    // Each replica takes a block of the epoch's batches: a step is one batch per replica.
    let steps_per_epoch = train_loader.steps_per_epoch().div_ceil(devices.len());
    let valid_loader = ElboDataLoader::new(valid, config.batch_size, config.seed, 0, &main);

    let mut trainable = Trainable::new(
        model.fork(&main).train(),
        config.objective.clone(),
        replicas,
    );
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
