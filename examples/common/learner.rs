//! `--devices` and `--ddp`: training through burn-train's `Learner` (`elbo::learner`,
//! feature `train`) instead of `elbo::train::fit`.

use std::sync::Arc;

use burn::tensor::Device;
use elbo::data::TrainData;
use elbo::train::{FitConfig, History};

/// Already binarised images (bytes 0/1, as the fixed binarised MNIST test file holds) as
/// data whose examples are those 0/1 values: the validation data of the binary examples.
pub fn binary_validation(images: &elbo::data::Images) -> elbo::data::ImageData {
    let mut levels = images.clone();
    for p in &mut levels.pixels {
        *p = if *p > 0 { 255 } else { 0 };
    }
    elbo::data::ImageData::new(levels, elbo::data::Binarization::Grey)
}

/// The flags that send training through burn-train's Learner.
#[derive(clap::Args, Debug, Clone)]
pub struct LearnerArgs {
    /// Train through burn-train's Learner on these devices: a count `N` (`cuda:0` to
    /// `cuda:N-1` when --device is CUDA; otherwise `N` replicas of --device, one thread
    /// each) or a list of names (`cuda:0,cuda:1`). `1` runs the Learner on one device.
    /// Needs the `train` feature (`cargo run --release --features train --example ...`).
    #[arg(long)]
    pub devices: Option<String>,
    /// With --devices: distributed data parallel (gradients all-reduced during the backward
    /// pass; NCCL on CUDA) instead of burn's multi-device strategy.
    #[arg(long, requires = "devices")]
    pub ddp: bool,
}

impl LearnerArgs {
    /// The devices `--devices` names, given `--device`'s name; empty without `--devices`.
    pub fn device_list(&self, device_name: &str) -> Result<Vec<Device>, elbo::Error> {
        let Some(devices) = &self.devices else {
            return Ok(Vec::new());
        };
        let names: Vec<String> = match devices.trim().parse::<usize>() {
            Ok(0) => {
                return Err(elbo::Error::config(
                    "--devices",
                    0,
                    "a count of at least 1, or a list of device names",
                ));
            }
            Ok(n) if device_name.starts_with("cuda") => {
                (0..n).map(|i| format!("cuda:{i}")).collect()
            }
            Ok(n) => vec![device_name.to_string(); n],
            Err(_) => devices.split(',').map(|s| s.trim().to_string()).collect(),
        };
        names
            .iter()
            .map(|name| elbo::device::from_name(name))
            .collect()
    }

    /// How many replicas share one optimiser step (1 without `--devices`): the KL warm-up
    /// counts optimiser steps.
    pub fn replicas(&self, device_name: &str) -> Result<usize, elbo::Error> {
        Ok(self.device_list(device_name)?.len().max(1))
    }

    /// Trains on `data` with `fit` on `device`, or with the Learner on `--devices`
    /// (evaluating the bound on `valid` after every epoch), after seeding the device from the fit's seed;
    /// prints `trained <N> epochs in <s> s` and returns the model for inference.
    pub fn fit<M, T, C>(
        &self,
        model: M,
        model_config: &C,
        (data, valid): (T, T),
        fit_config: &FitConfig,
        device: &Device,
        device_name: &str,
    ) -> Result<M, elbo::Error>
    where
        M: burn::module::Module
            + burn::module::ModuleDisplay
            + elbo::LatentVariableModel<Input = T::Input>
            + 'static,
        M::Input: Send + 'static,
        T: TrainData + Send + Sync + 'static,
        T::Input: 'static,
        C: burn::config::Config,
    {
        device.seed(fit_config.seed);
        let started = std::time::Instant::now();
        let devices = self.device_list(device_name)?;
        let (model, _history): (M, History) = if devices.is_empty() {
            elbo::train::fit(model, model_config, &data, fit_config, device)?
        } else {
            learner_fit(
                model,
                Arc::new(data),
                Arc::new(valid),
                fit_config,
                devices,
                self.ddp,
            )?
        };
        println!(
            "trained {} epochs in {:.1} s",
            fit_config.epochs,
            started.elapsed().as_secs_f64()
        );
        Ok(model.valid())
    }
}

#[cfg(feature = "train")]
fn learner_fit<M, T>(
    model: M,
    data: Arc<T>,
    valid: Arc<T>,
    fit_config: &FitConfig,
    devices: Vec<Device>,
    ddp: bool,
) -> Result<(M, History), elbo::Error>
where
    M: burn::module::Module
        + burn::module::ModuleDisplay
        + elbo::LatentVariableModel<Input = T::Input>
        + 'static,
    M::Input: Send + 'static,
    T: TrainData + Send + Sync + 'static,
    T::Input: 'static,
{
    use elbo::learner::{DeviceStrategy, fit_with_learner};
    println!(
        "training through burn-train's Learner on {} device(s){}",
        devices.len(),
        if ddp {
            ", distributed data parallel"
        } else {
            ""
        }
    );
    let strategy = if ddp {
        DeviceStrategy::Ddp(devices)
    } else {
        DeviceStrategy::from_devices(devices)?
    };
    fit_with_learner(model, data, valid, fit_config, strategy)
}

#[cfg(not(feature = "train"))]
fn learner_fit<M, T>(
    _model: M,
    _data: Arc<T>,
    _valid: Arc<T>,
    _fit_config: &FitConfig,
    _devices: Vec<Device>,
    _ddp: bool,
) -> Result<(M, History), elbo::Error> {
    Err(elbo::Error::config(
        "--devices",
        "given",
        "a build with the `train` feature: cargo run --release --features train --example ...",
    ))
}
