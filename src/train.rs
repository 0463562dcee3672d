//! A small, generic fit loop: optimizer, learning-rate schedule, progress bar,
//! per-epoch history, atomic checkpoints and resume.
//!
//! Checkpoints live in a folder: each epoch is written to a temporary sub-folder that is
//! renamed to `epoch-NNNN` once complete, then the file `latest` (itself written to a
//! temporary name and renamed) is pointed at it. A crash leaves either the previous
//! checkpoint or the new one, never half of one.

use std::path::{Path, PathBuf};
use std::time::Instant;

use burn::config::Config;
use burn::module::Module;
use burn::optim::{GradientsParams, ModuleOptimizer, grad_clipping::GradientClippingConfig};
use burn::tensor::Device;
use rand::SeedableRng;
use rand::rngs::StdRng;
use serde::{Deserialize, Serialize};

use crate::atomic_write::{rename_synced, sync_dir, sync_file, tmp_path, write_atomic};
use crate::data::TrainData;
use crate::ema::Ema;
use crate::error::{ensure_nonzero, ensure_positive};
use crate::objective::Objective;
use crate::optim::FusedAdamConfig;
use crate::progress::progress_bar;
use crate::traits::LatentVariableModel;
use crate::{Error, Result};

/// The optimizer.
#[derive(Clone, Debug, PartialEq)]
pub enum OptimizerKind {
    /// Adam (Kingma & Ba 2015), β = (0.9, 0.999), ε = 1e-8 (PyTorch's defaults).
    Adam,
    /// AdamW (Loshchilov & Hutter 2019) with decoupled weight decay.
    AdamW {
        /// Decoupled weight-decay coefficient.
        weight_decay: f64,
    },
}

/// The learning rate as a function of training progress.
#[derive(Clone, Debug, PartialEq)]
pub enum LrSchedule {
    /// The base rate throughout.
    Constant,
    /// Cosine decay from the base rate to `min_lr` over all steps:
    /// `lr_t = min + ½(base − min)(1 + cos(π t / T))`.
    Cosine {
        /// The final learning rate.
        min_lr: f64,
    },
    /// Multiply by `gamma` after every epoch: `lr = base · gamma^epoch`.
    Exponential {
        /// Per-epoch factor in `(0, 1]`.
        gamma: f64,
    },
}

impl LrSchedule {
    /// The learning rate at global step `step` of `total` (epoch `epoch`, 0-based).
    pub fn rate(&self, base: f64, step: usize, total: usize, epoch: usize) -> f64 {
        match self {
            LrSchedule::Constant => base,
            LrSchedule::Cosine { min_lr } => {
                let t = step as f64 / total.max(1) as f64;
                min_lr + 0.5 * (base - min_lr) * (1.0 + (std::f64::consts::PI * t).cos())
            }
            LrSchedule::Exponential { gamma } => base * gamma.powi(epoch as i32),
        }
    }
}

/// Settings of [`fit`].
#[derive(Clone, Debug)]
pub struct FitConfig {
    /// The optimizer.
    pub optimizer: OptimizerKind,
    /// Base learning rate.
    pub learning_rate: f64,
    /// Number of epochs (in total, counting epochs done before a resume).
    pub epochs: usize,
    /// Examples per batch.
    pub batch_size: usize,
    /// Seed of the shuffling, the data's randomness and the device's noise.
    pub seed: u64,
    /// Learning-rate schedule.
    pub lr_schedule: LrSchedule,
    /// What is minimised.
    pub objective: Objective,
    /// Show a progress bar (on standard error, and only when it is a terminal).
    pub progress: bool,
    /// Write a checkpoint to this folder after every epoch.
    pub checkpoint_dir: Option<PathBuf>,
    /// Continue from the latest checkpoint in `checkpoint_dir`, if there is one.
    pub resume: bool,
    /// Report one line per epoch (loss, bound, KL, learning rate, time) through the `log`
    /// crate, at `info` level with target `elbo::train`: a program shows it by installing a
    /// logger, as the examples do with `env_logger`. The same figures are in the returned
    /// [`History`] either way.
    pub log_epochs: bool,
    /// Clip each parameter's gradient to this L2 norm before the update (burn's
    /// `GradientClipping::Norm`, applied per parameter tensor); `None` leaves gradients
    /// alone. Recurrent models usually train with 5.
    pub grad_clip_norm: Option<f64>,
    /// Keep an exponential moving average of the weights with this decay (see [`Ema`]) and
    /// return it instead of the last weights; `None` returns the last weights. Checkpoints
    /// hold the average beside the weights, so a resumed run continues it (from a checkpoint
    /// written without one, the average restarts from the weights).
    pub ema_decay: Option<f64>,
}

impl FitConfig {
    /// Adam at 1e-3, the ELBO, seed 0, progress bar on, no checkpoints.
    pub fn new(epochs: usize, batch_size: usize) -> Self {
        Self {
            optimizer: OptimizerKind::Adam,
            learning_rate: 1e-3,
            epochs,
            batch_size,
            seed: 0,
            lr_schedule: LrSchedule::Constant,
            objective: Objective::default(),
            progress: true,
            checkpoint_dir: None,
            resume: false,
            log_epochs: false,
            grad_clip_norm: None,
            ema_decay: None,
        }
    }

    /// Checks every field (NaN-proof).
    pub fn validate(&self) -> Result<()> {
        ensure_positive("learning_rate", self.learning_rate)?;
        ensure_nonzero("epochs", self.epochs)?;
        ensure_nonzero("batch_size", self.batch_size)?;
        self.objective.validate()?;
        if let Some(norm) = self.grad_clip_norm {
            ensure_positive("grad_clip_norm", norm)?;
        }
        if let Some(decay) = self.ema_decay
            && !(0.0..1.0).contains(&decay)
        {
            return Err(Error::config("ema_decay", decay, "a number in [0, 1)"));
        }
        if let OptimizerKind::AdamW { weight_decay } = self.optimizer {
            crate::error::ensure_non_negative("weight_decay", weight_decay)?;
        }
        match self.lr_schedule {
            LrSchedule::Constant => {}
            LrSchedule::Cosine { min_lr } => crate::error::ensure_non_negative("min_lr", min_lr)?,
            LrSchedule::Exponential { gamma } => {
                if !(gamma > 0.0 && gamma <= 1.0) {
                    return Err(Error::config("gamma", gamma, "a number in (0, 1]"));
                }
            }
        }
        if self.resume && self.checkpoint_dir.is_none() {
            return Err(Error::config(
                "resume",
                true,
                "a checkpoint_dir to resume from (or resume = false)",
            ));
        }
        Ok(())
    }

    /// The optimiser `fit` trains with: Adam (or AdamW with `weight_decay`), gradients
    /// clipped to `grad_clip_norm` if set. For a burn `Learner` built by hand, whose rate
    /// comes from its scheduler (`elbo::learner::FitSchedule`, feature `train`, gives
    /// `fit`'s).
    ///
    /// # Errors
    /// burn's error if the optimiser cannot be built.
    pub fn build_optimizer(&self) -> crate::Result<ModuleOptimizer> {
        let clipping = self
            .grad_clip_norm
            .map(|norm| GradientClippingConfig::Norm(norm as f32));
        let weight_decay = match self.optimizer {
            OptimizerKind::Adam => 0.0,
            OptimizerKind::AdamW { weight_decay } => weight_decay as f32,
        };
        FusedAdamConfig::new()
            .with_weight_decay(weight_decay)
            .with_grad_clipping(clipping)
            .init()
    }
}

/// Figures of one epoch, averaged over its examples.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EpochRecord {
    /// 1-based epoch number.
    pub epoch: usize,
    /// Mean training loss (the objective, with β / free bits / warm-up applied).
    pub loss: f64,
    /// Mean negative bound: −ELBO, or −IWAE_k for the IWAE objective, in nats.
    pub neg_bound: f64,
    /// Mean KL summed over groups, in nats (0 for the IWAE objective).
    pub kl: f64,
    /// Mean KL of each latent group, in nats (empty for the IWAE objective).
    #[serde(default)]
    pub kl_groups: Vec<f64>,
    /// Learning rate at the epoch's last step.
    pub learning_rate: f64,
    /// Wall time of the epoch, in seconds.
    pub seconds: f64,
}

/// What [`fit`] returns besides the model: one record per epoch.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct History {
    /// One record per finished epoch, in order.
    pub epochs: Vec<EpochRecord>,
}

#[derive(Serialize, Deserialize)]
struct CheckpointState {
    epoch: usize,
    global_step: usize,
    model_config: serde_json::Value,
    history: History,
}

pub(crate) fn mix_seed(seed: u64, epoch: usize) -> u64 {
    seed ^ (epoch as u64 + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15)
}

/// Trains `model` on `data` and returns it (on `device.autodiff()`) with its history.
///
/// `model_config` is the configuration the model was built from: checkpoints store it,
/// and resuming from a checkpoint written for another configuration is an error. A model
/// assembled by hand, with no config, passes [`NoConfig`].
///
/// Each epoch draws its batches ([`TrainData::epoch_batches`]: shuffled, or length-bucketed
/// for sentences) with a generator seeded from `(seed, epoch)` and seeds the
/// device's noise the same way, so a run resumed from a checkpoint continues as the
/// uninterrupted run would (up to float non-associativity).
///
/// # Errors
/// [`Error::InvalidConfig`] for a bad [`FitConfig`] or empty data;
/// [`Error::NonFiniteLoss`] naming the first step whose loss is NaN or infinite;
/// [`Error::Checkpoint`] / [`Error::Io`] for checkpoint problems; the model's errors for
/// batches of the wrong shape.
///
/// The loop runs as a task of rayon's global pool, the pool that burn's CPU backend and
/// the [`kernels`](crate::kernels) run their parallel loops on: each loop then starts on
/// the training thread itself and is shared with the pool's other threads, where from a
/// thread outside the pool every operation was handed over and waited for (the MLP and
/// convolutional VAEs' steps ran about 1.2× faster on 2 cores; docs/results.md).
///
/// # Example
/// ```
/// use elbo::data::{Binarization, ImageData, Images};
/// use elbo::models::GaussianVaeConfig;
/// use elbo::train::{FitConfig, fit};
///
/// let device = elbo::device::default_device();
/// let images = Images { count: 16, channels: 1, rows: 2, cols: 2, pixels: (0..64).map(|i| (i * 4) as u8).collect() };
/// let data = ImageData::new(images, Binarization::Dynamic);
/// let config = GaussianVaeConfig::new(4, 2).with_hidden(vec![8]);
/// let model = config.init(&device)?;
/// let mut fit_config = FitConfig::new(2, 8);
/// fit_config.progress = false;
/// let (model, history) = fit(model, &config, &data, &fit_config, &device)?;
/// assert_eq!(history.epochs.len(), 2);
/// # Ok::<(), elbo::Error>(())
/// ```
pub fn fit<M, T, C>(
    model: M,
    model_config: &C,
    data: &T,
    config: &FitConfig,
    device: &Device,
) -> Result<(M, History)>
where
    M: Module + LatentVariableModel<Input = T::Input>,
    T: TrainData + Sync,
    C: Config,
{
    config.validate()?;
    if data.is_empty() {
        return Err(Error::config("data", "0 examples", "at least one example"));
    }
    let model_config = serde_json::to_value(model_config).map_err(|e| Error::Checkpoint {
        path: PathBuf::new(),
        reason: format!("cannot serialise the model config: {e}"),
    })?;
    rayon::scope(|_| fit_in_pool(model, &model_config, data, config, device))
}

/// [`fit`]'s loop, on the thread that calls it (a thread of rayon's pool), for a model
/// whose configuration is `model_config` as JSON.
fn fit_in_pool<M, T>(
    model: M,
    model_config: &serde_json::Value,
    data: &T,
    config: &FitConfig,
    device: &Device,
) -> Result<(M, History)>
where
    M: Module + LatentVariableModel<Input = T::Input>,
    T: TrainData,
{
    let train_device = device.clone().autodiff();
    let mut model = model.fork(&train_device).train();
    let mut optimizer = config.build_optimizer()?;
    let mut history = History::default();
    let mut start_epoch = 0;
    let mut ema = None;

    if let (true, Some(dir)) = (config.resume, &config.checkpoint_dir)
        && let Some(state_dir) = latest_checkpoint(dir)?
    {
        let (m, o, state) = load_checkpoint(&state_dir, model, optimizer, model_config)?;
        model = m.fork(&train_device).train();
        optimizer = o;
        history = state.history;
        start_epoch = state.epoch;
        if let Some(decay) = config.ema_decay {
            ema = load_ema(&state_dir, &model, decay)?;
        }
    }

    if ema.is_none() {
        ema = config.ema_decay.map(|d| Ema::new(&model, d)).transpose()?;
    }
    let steps_per_epoch = data.len().div_ceil(config.batch_size);
    let total_steps = steps_per_epoch * config.epochs;
    for epoch in start_epoch..config.epochs {
        let started = Instant::now();
        let mut rng = StdRng::seed_from_u64(mix_seed(config.seed, epoch));
        train_device.seed(mix_seed(config.seed.wrapping_add(1), epoch));
        let batches = data.epoch_batches(config.batch_size, &mut rng);
        let bar = progress_bar(
            config.progress,
            batches.len(),
            format!("epoch {}/{}", epoch + 1, config.epochs),
        );
        let (mut sum_loss, mut sum_bound, mut sum_kl, mut seen) = (0.0, 0.0, 0.0, 0usize);
        let mut sum_kl_groups: Vec<f64> = Vec::new();
        let mut lr = config.learning_rate;
        for (step, indices) in batches.iter().enumerate() {
            let global_step = epoch * steps_per_epoch + step;
            lr = config
                .lr_schedule
                .rate(config.learning_rate, global_step, total_steps, epoch);
            let x = data.batch(indices, &mut rng, &train_device)?;
            let out = config.objective.step_loss(&model, &x, global_step)?;
            let ([loss, bound, kl], kl_groups) = out.host_figures();
            if !loss.is_finite() {
                bar.abandon();
                return Err(Error::NonFiniteLoss {
                    epoch: epoch + 1,
                    step,
                    global_step,
                    value: loss,
                });
            }
            let grads = GradientsParams::from_grads(out.loss.backward(), &model);
            model = optimizer.step(lr, model, grads);
            if let Some(ema) = &mut ema {
                ema.update(&model);
            }
            let n = indices.len();
            sum_loss += loss * n as f64;
            sum_bound += bound * n as f64;
            sum_kl += kl * n as f64;
            if !kl_groups.is_empty() {
                sum_kl_groups.resize(kl_groups.len(), 0.0);
                for (sum, g) in sum_kl_groups.iter_mut().zip(kl_groups) {
                    *sum += g * n as f64;
                }
            }
            seen += n;
            bar.set_message(format!("-bound {:.3}", sum_bound / seen as f64));
            bar.inc(1);
        }
        bar.finish_and_clear();
        let record = EpochRecord {
            epoch: epoch + 1,
            loss: sum_loss / seen as f64,
            neg_bound: sum_bound / seen as f64,
            kl: sum_kl / seen as f64,
            kl_groups: sum_kl_groups.iter().map(|s| s / seen as f64).collect(),
            learning_rate: lr,
            seconds: started.elapsed().as_secs_f64(),
        };
        if config.log_epochs {
            log_epoch(&record, config.epochs, &config.objective, None);
        }
        history.epochs.push(record);
        if let Some(dir) = &config.checkpoint_dir {
            let state = CheckpointState {
                epoch: epoch + 1,
                global_step: (epoch + 1) * steps_per_epoch,
                model_config: model_config.clone(),
                history: history.clone(),
            };
            save_checkpoint(
                dir,
                &model,
                ema.as_ref().map(Ema::model),
                &optimizer,
                &state,
            )?;
        }
    }
    Ok((ema.map_or(model, Ema::into_model), history))
}

/// Logs an epoch's line (at `info`, as [`FitConfig::log_epochs`] asks): the loss alone for
/// [`Objective::ModelLoss`], else the loss, −bound, KL (with a line of the KL per group for
/// more than one group) and, when given, the validation −bound.
pub(crate) fn log_epoch(
    record: &EpochRecord,
    epochs: usize,
    objective: &Objective,
    valid_neg_bound: Option<f64>,
) {
    let valid = valid_neg_bound
        .map(|v| format!("  valid -bound {v:9.3}"))
        .unwrap_or_default();
    if *objective == Objective::ModelLoss {
        log::info!(
            "epoch {:>3}/{epochs}  loss {:9.5}{valid}  lr {:.2e}  {:6.2} s",
            record.epoch,
            record.loss,
            record.learning_rate,
            record.seconds
        );
        return;
    }
    log::info!(
        "epoch {:>3}/{epochs}  loss {:9.3}  -bound {:9.3} nats  KL {:7.3}{valid}  lr {:.2e}  {:6.2} s",
        record.epoch,
        record.loss,
        record.neg_bound,
        record.kl,
        record.learning_rate,
        record.seconds
    );
    if record.kl_groups.len() > 1 {
        let groups: Vec<String> = record.kl_groups.iter().map(|k| format!("{k:.2}")).collect();
        log::info!("           KL per group (top first): {}", groups.join(" "));
    }
}

fn checkpoint_error(path: &Path, reason: impl Into<String>) -> Error {
    Error::Checkpoint {
        path: path.to_path_buf(),
        reason: reason.into(),
    }
}

fn save_checkpoint<M: Module>(
    dir: &Path,
    model: &M,
    ema: Option<&M>,
    optimizer: &ModuleOptimizer,
    state: &CheckpointState,
) -> Result<()> {
    std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    let name = format!("epoch-{:04}", state.epoch);
    let final_dir = dir.join(&name);
    let tmp_dir = tmp_path(&final_dir);
    let _ = std::fs::remove_dir_all(&tmp_dir);
    std::fs::create_dir_all(&tmp_dir).map_err(|e| Error::io(&tmp_dir, e))?;
    let result = (|| {
        model
            .clone()
            .save_file(tmp_dir.join("model.bpk"))
            .map_err(|e| checkpoint_error(&tmp_dir, format!("saving the model: {e:?}")))?;
        if let Some(ema) = ema {
            ema.clone().save_file(tmp_dir.join(EMA_FILE)).map_err(|e| {
                checkpoint_error(&tmp_dir, format!("saving the weight average: {e:?}"))
            })?;
        }
        optimizer
            .save(tmp_dir.join("optimizer.bpk"))
            .map_err(|e| checkpoint_error(&tmp_dir, format!("saving the optimizer: {e:?}")))?;
        let json = serde_json::to_vec_pretty(state)
            .map_err(|e| checkpoint_error(&tmp_dir, format!("serialising the state: {e}")))?;
        std::fs::write(tmp_dir.join("state.json"), json)
            .map_err(|e| Error::io(tmp_dir.join("state.json"), e))?;
        // Every file on disk, then the folder's entries, before the folder takes its name.
        for entry in std::fs::read_dir(&tmp_dir).map_err(|e| Error::io(&tmp_dir, e))? {
            sync_file(&entry.map_err(|e| Error::io(&tmp_dir, e))?.path())?;
        }
        sync_dir(&tmp_dir)?;
        if final_dir.exists() {
            // A folder of this epoch left by an earlier run. A resumed run never meets the
            // one `latest` names (it saves later epochs); a fresh run into a folder of an
            // older run can, and a crash between this removal and the rename below then
            // leaves `latest` naming a missing folder, which resuming reports as an error.
            std::fs::remove_dir_all(&final_dir).map_err(|e| Error::io(&final_dir, e))?;
        }
        rename_synced(&tmp_dir, &final_dir)?;
        write_atomic(&dir.join("latest"), name.as_bytes())
    })();
    if result.is_err() {
        let _ = std::fs::remove_dir_all(&tmp_dir);
    } else {
        remove_stale_temporaries(dir);
    }
    result
}

/// Removes the half-written checkpoint folders (`.epoch-NNNN.tmp-PID`) and `latest`
/// pointers (`.latest.tmp-PID`) that a process killed while saving left in `dir`. Called after a checkpoint has taken its name, so
/// the only saver of the folder (one fit per checkpoint folder) has none in progress.
/// Best effort: a folder that cannot be removed stays, and costs only disk space.
fn remove_stale_temporaries(dir: &Path) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let name = name.to_string_lossy();
        let ours = name.starts_with(".epoch-") || name.starts_with(".latest.");
        if ours && name.contains(".tmp-") {
            let path = entry.path();
            let _ = if path.is_dir() {
                std::fs::remove_dir_all(&path)
            } else {
                std::fs::remove_file(&path)
            };
        }
    }
}

/// The folder the `latest` pointer of a checkpoint folder names, if there is one.
fn latest_checkpoint(dir: &Path) -> Result<Option<PathBuf>> {
    let latest = dir.join("latest");
    match std::fs::read_to_string(&latest) {
        Ok(name) => {
            let name = name.trim();
            if name.is_empty() || name.contains(['/', '\\']) || name.starts_with('.') {
                return Err(checkpoint_error(
                    &latest,
                    format!("names an invalid folder {name:?}"),
                ));
            }
            Ok(Some(dir.join(name)))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(Error::io(latest, e)),
    }
}

fn load_checkpoint<M: Module>(
    dir: &Path,
    model: M,
    optimizer: ModuleOptimizer,
    model_config: &serde_json::Value,
) -> Result<(M, ModuleOptimizer, CheckpointState)> {
    let state_path = dir.join("state.json");
    let bytes = std::fs::read(&state_path).map_err(|e| Error::io(&state_path, e))?;
    let state: CheckpointState = serde_json::from_slice(&bytes)
        .map_err(|e| checkpoint_error(&state_path, format!("corrupt state: {e}")))?;
    if &state.model_config != model_config {
        return Err(checkpoint_error(
            dir,
            format!(
                "was written for model config {} but this model was built from {}; \
                 resume with the same config or use another checkpoint folder",
                state.model_config, model_config
            ),
        ));
    }
    let model = without_panics(dir, "loading the model weights", || {
        model.try_load_file(dir.join("model.bpk"))
    })?;
    let optimizer = without_panics(dir, "loading the optimizer state", || {
        optimizer.load(dir.join("optimizer.bpk"))
    })?;
    Ok((model, optimizer, state))
}

/// Runs one of burn's loaders on a checkpoint file, turning its error, or a panic, into an
/// [`Error::Checkpoint`] that says `what` failed. burn 0.22.1 answers some corrupt files
/// with a panic instead of an error (its optimizer-record loader `expect`s a parameter id
/// on every tensor of the file; found by `tests/it/fuzz_readers.rs`). Under
/// `panic = "abort"` such a file still aborts the process.
fn without_panics<T, E: std::fmt::Debug>(
    dir: &Path,
    what: &str,
    load: impl FnOnce() -> std::result::Result<T, E>,
) -> Result<T> {
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(load)) {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(e)) => Err(checkpoint_error(dir, format!("{what}: {e:?}"))),
        Err(panic) => {
            let reason = panic
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "a panic in burn's loader".into());
            Err(checkpoint_error(
                dir,
                format!("{what}: the file is corrupt ({reason})"),
            ))
        }
    }
}

pub use no_config::NoConfig;

// Its own module: the `Config` derive of a struct without fields writes `Result<_, _>`,
// which this file's `crate::Result` alias would capture.
mod no_config {
    use burn::config::Config;

    /// The config to give [`fit`](super::fit) for a model assembled by hand that has no config of its own.
    ///
    /// Checkpoints store it as `{}`: [`load_latest`](super::load_latest) (into a model you build the same way) and
    /// `resume` work as for any config, while [`restore`](super::restore), which rebuilds the model from the
    /// stored config, needs a [`ModelConfig`](super::ModelConfig) (one line to implement for a config of yours).
    ///
    /// ```
    /// use elbo::data::{Binarization, ImageData, Images};
    /// use elbo::distributions::StdNormal;
    /// use elbo::models::{BernoulliMlpDecoder, GaussianHead, MlpEncoder, Vae, mlp_trunk};
    /// use elbo::nn::Activation;
    /// use elbo::train::{FitConfig, NoConfig, fit};
    ///
    /// let device = elbo::device::default_device();
    /// // A VAE from parts, no config type anywhere:
    /// let (trunk, width) = mlp_trunk(4, &[8], Activation::Relu, &device)?;
    /// let encoder = MlpEncoder::new(trunk, GaussianHead::new(width, 2, &device)?)?;
    /// let decoder = BernoulliMlpDecoder::new(2, &[8], 4, Activation::Relu, &device)?;
    /// let model = Vae::new(encoder, decoder, StdNormal::new(2)?);
    /// let images = Images { count: 16, channels: 1, rows: 2, cols: 2, pixels: (0..64).map(|i| (i * 4) as u8).collect() };
    /// let data = ImageData::new(images, Binarization::Dynamic);
    /// let mut fit_config = FitConfig::new(2, 8);
    /// fit_config.progress = false;
    /// let (_model, history) = fit(model, &NoConfig::new(), &data, &fit_config, &device)?;
    /// assert_eq!(history.epochs.len(), 2);
    /// # Ok::<(), elbo::Error>(())
    /// ```
    #[derive(Config, Debug)]
    pub struct NoConfig {}
}

/// The checkpoint file that holds the weight average (EMA), when the fit keeps one.
const EMA_FILE: &str = "ema.bpk";

/// The weight average saved beside a checkpoint's weights, continued with `decay`; `None`
/// for a checkpoint written without one (the average then restarts from the weights).
fn load_ema<M: Module>(dir: &Path, model: &M, decay: f64) -> Result<Option<Ema<M>>> {
    let path = dir.join(EMA_FILE);
    if !path.exists() {
        return Ok(None);
    }
    let average = without_panics(dir, "loading the weight average", || {
        model.clone().try_load_file(&path)
    })?;
    Ema::new(&average, decay).map(Some)
}

/// A config that builds its model: what [`restore`] needs to rebuild a model from the
/// config a checkpoint stores. Every model config of the crate implements it; a config of
/// your own implements it in one line (`type Model = …; fn init_model` calling your
/// `init`).
pub trait ModelConfig: Config {
    /// The model the config builds.
    type Model: Module;

    /// A model with fresh weights (the config's `init`).
    ///
    /// # Errors
    /// As the config's validation.
    fn init_model(&self, device: &Device) -> Result<Self::Model>;
}

/// The model of the latest checkpoint in `dir`, and the config it was built from, on
/// `device` for inference (`model.valid()` drops autodiff where the device has it): the
/// config is read from the checkpoint's `state.json`, the model built from it and given
/// the saved weights, the weight average where the run kept one (`ema.bpk`, what [`fit`]
/// returns then), else the trained weights.
///
/// ```
/// use elbo::data::{Binarization, ImageData, Images};
/// use elbo::models::GaussianVaeConfig;
/// use elbo::train::{FitConfig, fit, restore};
/// # fn main() -> elbo::Result<()> {
/// let device = elbo::device::default_device();
/// let dir = std::env::temp_dir().join(format!("elbo-doc-restore-{}", std::process::id()));
/// let images = Images { count: 8, channels: 1, rows: 2, cols: 2, pixels: vec![128; 32] };
/// let config = GaussianVaeConfig::new(4, 2).with_hidden(vec![4]);
/// let mut fit_config = FitConfig::new(1, 4);
/// fit_config.progress = false;
/// fit_config.checkpoint_dir = Some(dir.clone());
/// let data = ImageData::new(images, Binarization::Dynamic);
/// fit(config.init(&device)?, &config, &data, &fit_config, &device)?;
///
/// // Later, elsewhere: one call gives the model and its config back.
/// let (model, restored_config) = restore::<GaussianVaeConfig>(&dir, &device)?;
/// assert_eq!(restored_config.hidden, vec![4]);
/// let samples = model.generate(3, &device);
/// assert_eq!(samples.dims(), [3, 4]);
/// # std::fs::remove_dir_all(&dir).unwrap();
/// # Ok(())
/// # }
/// ```
///
/// # Errors
/// [`Error::Checkpoint`] if the folder has no `latest` checkpoint, its state is corrupt,
/// its config is not a `C`, or its weights do not load; [`Error::Io`] if a file cannot be
/// read.
pub fn restore<C: ModelConfig>(dir: impl AsRef<Path>, device: &Device) -> Result<(C::Model, C)> {
    let dir = dir.as_ref();
    let state_dir = latest_checkpoint(dir)?
        .ok_or_else(|| checkpoint_error(dir, "no `latest` checkpoint in this folder"))?;
    let state_path = state_dir.join("state.json");
    let bytes = std::fs::read(&state_path).map_err(|e| Error::io(&state_path, e))?;
    let state: CheckpointState = serde_json::from_slice(&bytes)
        .map_err(|e| checkpoint_error(&state_path, format!("corrupt state: {e}")))?;
    let config: C = serde_json::from_value(state.model_config).map_err(|e| {
        checkpoint_error(
            &state_path,
            format!(
                "its model config is not a {}: {e}; restore it with the config type it was \
                 trained with",
                std::any::type_name::<C>()
            ),
        )
    })?;
    let model = config.init_model(device)?;
    let ema = state_dir.join(EMA_FILE);
    let weights = if ema.exists() {
        ema
    } else {
        state_dir.join("model.bpk")
    };
    let model = without_panics(&state_dir, "loading the weights", || {
        model.try_load_file(&weights)
    })?;
    Ok((model, config))
}

/// Loads the weights of the latest checkpoint in `dir` into `model`, checking that it was
/// written for `model_config`.
///
/// # Errors
/// [`Error::Checkpoint`] if there is none, it is corrupt, or it belongs to another config.
pub fn load_latest<M: Module, C: Config>(
    dir: impl AsRef<Path>,
    model: M,
    model_config: &C,
) -> Result<M> {
    let dir = dir.as_ref();
    let state_dir = latest_checkpoint(dir)?
        .ok_or_else(|| checkpoint_error(dir, "no `latest` checkpoint in this folder"))?;
    let value = serde_json::to_value(model_config)
        .map_err(|e| checkpoint_error(dir, format!("cannot serialise the model config: {e}")))?;
    let (model, _, _) = load_checkpoint(&state_dir, model, FusedAdamConfig::new().init()?, &value)?;
    Ok(model)
}
