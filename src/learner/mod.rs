//! Training through burn-train's `Learner` (feature `train`): burn's metrics, checkpoints,
//! dashboard and execution strategies (several devices in threads, or distributed data
//! parallel) for every [`LatentVariableModel`](crate::LatentVariableModel).
//!
//! The pieces, each usable on its own with burn's `SupervisedTraining`:
//!
//! - [`Trainable`]: a model and its [`Objective`](crate::objective::Objective) as burn's
//!   `TrainStep` + `InferenceStep`;
//! - [`ElboBatch`]: a batch, and where it sits in training when its loader knows;
//! - [`ElboDataLoader`]: burn's `DataLoader` over any [`TrainData`](crate::data::TrainData),
//!   drawing `fit`'s batches, each with its epoch and the step count the KL warm-up needs;
//! - [`ElboDataset`] and [`ElboBatcher`]: burn's `Dataset` and `Batcher` over any
//!   `TrainData`, for burn's own `DataLoaderBuilder` (its shuffling, workers and dataset
//!   transforms); the [`Trainable`] then counts steps and epochs itself;
//! - [`ElboOutput`] and [`ElboMetric`]: −ELBO, KL (total and per group) and the
//!   reconstruction term as burn metrics, with the objective through burn's `LossMetric`;
//! - [`FitSchedule`]: [`LrSchedule`](crate::train::LrSchedule) as burn's `LrScheduler`;
//! - [`QuietRenderer`]: a burn renderer that draws nothing;
//! - [`fit_with_learner`]: all of it from a [`FitConfig`](crate::train::FitConfig) and a
//!   [`DeviceStrategy`].
//!
//! # `fit` or the Learner
//!
//! [`fit`](crate::train::fit) is the small loop for one device: few dependencies, atomic
//! checkpoints with resume (the EMA and the history included). The Learner is for several
//! devices, burn's metric logs and dashboard, early stopping and burn's checkpoint format
//! (which [`fit_with_learner`] resumes from, without an EMA). Both run the same objective
//! code; on one device with the same config they give the same numbers (a test holds them
//! to float tolerance).
//!
//! # Example
//!
//! ```
//! use std::sync::Arc;
//! use elbo::data::{Binarization, ImageData, Images};
//! use elbo::learner::{DeviceStrategy, fit_with_learner};
//! use elbo::models::GaussianVaeConfig;
//! use elbo::train::FitConfig;
//!
//! let device = elbo::device::default_device();
//! let images = Images { count: 16, channels: 1, rows: 2, cols: 2, pixels: (0..64).map(|i| (i * 4) as u8).collect() };
//! let data = Arc::new(ImageData::new(images, Binarization::Dynamic));
//! let model = GaussianVaeConfig::new(4, 2).with_hidden(vec![8]).init(&device)?;
//! let mut config = FitConfig::new(2, 8);
//! config.progress = false;
//! let strategy = DeviceStrategy::Single(device);
//! let (model, history) = fit_with_learner(model, data.clone(), data, &config, strategy)?;
//! assert_eq!(history.epochs.len(), 2);
//! # Ok::<(), elbo::Error>(())
//! ```

mod batch;
mod batcher;
mod dataset;
mod loader;
mod metric;
mod model;
mod output;
mod renderer;
mod run;
mod schedule;

pub use batch::{BatchPosition, ElboBatch};
pub use batcher::ElboBatcher;
pub use dataset::ElboDataset;
pub use loader::ElboDataLoader;
pub use metric::{ElboFigure, ElboFigures, ElboMetric};
pub use model::Trainable;
pub use output::ElboOutput;
pub use renderer::QuietRenderer;
pub use run::{DeviceStrategy, fit_with_learner};
pub use schedule::FitSchedule;
