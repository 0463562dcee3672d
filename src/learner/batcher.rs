//! [`ElboBatcher`]: burn's `Batcher` from a batch of example indices (an
//! [`ElboDataset`](super::ElboDataset)'s items) to an [`ElboBatch`].

use std::fmt;
use std::sync::{Arc, Mutex, PoisonError};

use burn::data::dataloader::batcher::Batcher;
use burn::tensor::Device;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use super::batch::ElboBatch;
use crate::data::TrainData;
use crate::train::mix_seed;

/// burn's `Batcher` over a [`TrainData`]: the examples at a batch of indices, read by
/// [`TrainData::batch`] onto the device burn's loader names, as an [`ElboBatch`] without a
/// position (the [`Trainable`](super::Trainable) counts steps and epochs itself).
///
/// Randomness:
/// - **on the device** ([`Binarization::DynamicOnDevice`](crate::data::Binarization), the
///   model's noise): the batcher seeds each device the first time it batches for it, with
///   a seed mixed from its own and the device's name, so replicas on different devices
///   draw different streams and a run on the same devices repeats;
/// - **on the host** ([`Binarization::Dynamic`](crate::data::Binarization)): each batch
///   draws from a generator seeded from the batcher's stream, taken in the order batches
///   are built. One loader worker (burn's default) repeats a run exactly; with several,
///   the order of the workers decides which batch gets which seed.
///
/// A failure to read (an index the data does not have, a malformed example) travels in
/// the batch's `x`: burn's `Batcher` has no error return, and the training step stops on
/// it with the error.
///
/// Against [`ElboDataLoader`](super::ElboDataLoader): this goes through burn's own loader
/// (its shuffling, its workers, its dataset transforms), but burn cuts batches from one
/// shuffled order, so sentences are not bucketed by length, and its numbers are not
/// `fit`'s draw for draw.
///
/// Training a model through burn's own loader and Learner:
///
/// ```
/// use std::sync::Arc;
/// use burn::data::dataloader::DataLoaderBuilder;
/// use burn::module::Module;
/// use burn::train::{Learner, SupervisedTraining, logger::InMemoryMetricLogger};
/// use elbo::data::{Binarization, ImageData, Images};
/// use elbo::learner::{ElboBatcher, ElboDataset, FitSchedule, QuietRenderer, Trainable};
/// use elbo::models::GaussianVaeConfig;
/// use elbo::train::{FitConfig, LrSchedule};
///
/// let device = elbo::device::default_device().autodiff();
/// let images = Images { count: 10, channels: 1, rows: 2, cols: 2, pixels: (0..40).map(|i| (i * 6) as u8).collect() };
/// let data = Arc::new(ImageData::new(images, Binarization::DynamicOnDevice));
/// let loader = |batch_size| {
///     DataLoaderBuilder::new(ElboBatcher::new(data.clone(), 7))
///         .batch_size(batch_size)
///         .shuffle(7)
///         .set_device(device.clone())
///         .build(ElboDataset::new(data.clone()))
/// };
/// let sizes: Vec<usize> = loader(4).iter().map(|b| b.unwrap().x.unwrap().dims()[0]).collect();
/// assert_eq!(sizes, [4, 4, 2]);
///
/// let model = GaussianVaeConfig::new(4, 2).with_hidden(vec![8]).init(&device)?;
/// let config = FitConfig::new(2, 4);
/// let trainable = Trainable::new(model.train(), config.objective.clone(), 1);
/// // 3 steps per epoch, 2 epochs: FitSchedule gives `fit`'s rates.
/// let schedule = FitSchedule::new(LrSchedule::Constant, config.learning_rate, 3, 2);
/// let learner = Learner::new(trainable.clone(), config.build_optimizer()?, schedule);
/// let directory = std::env::temp_dir().join("elbo-doc-batcher");
/// SupervisedTraining::new(&directory, loader(4), loader(10))
///     .num_epochs(2)
///     .with_metric_logger(InMemoryMetricLogger::new())
///     .with_application_logger(None)
///     .renderer(Box::new(QuietRenderer))
///     .launch(learner);
/// if let Some(error) = trainable.take_failure() {
///     return Err(error);
/// }
/// assert_eq!(trainable.epoch_records().len(), 2);
/// # Ok::<(), elbo::Error>(())
/// ```
pub struct ElboBatcher<T> {
    data: Arc<T>,
    seed: u64,
    state: Mutex<State>,
}

struct State {
    /// The stream each batch's host generator is seeded from.
    rng: StdRng,
    /// The devices seeded so far.
    seeded: Vec<Device>,
}

impl<T> ElboBatcher<T> {
    /// A batcher reading from `data`, its randomness seeded from `seed`.
    pub fn new(data: Arc<T>, seed: u64) -> Self {
        Self {
            data,
            seed,
            state: Mutex::new(State {
                rng: StdRng::seed_from_u64(seed),
                seeded: Vec::new(),
            }),
        }
    }
}

impl<T> fmt::Debug for ElboBatcher<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ElboBatcher")
            .field("seed", &self.seed)
            .finish_non_exhaustive()
    }
}

/// The seed of `device`'s stream: `seed` mixed with an FNV-1a hash of the device's name
/// (its `Debug` form without autodiff, e.g. `Device<Cuda(CudaDevice { index: 1 })>`),
/// which is the same in every run.
fn device_seed(seed: u64, device: &Device) -> u64 {
    let name = format!("{:?}", device.clone().without_autodiff());
    let hash = name.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    });
    mix_seed(seed, hash as usize)
}

impl<T> Batcher<usize, ElboBatch<T::Input>> for ElboBatcher<T>
where
    T: TrainData + Send + Sync,
{
    fn batch(&self, indices: Vec<usize>, device: &Device) -> ElboBatch<T::Input> {
        let mut rng = {
            let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
            if !state.seeded.contains(device) {
                device.seed(device_seed(self.seed, device));
                state.seeded.push(device.clone());
            }
            StdRng::seed_from_u64(state.rng.next_u64())
        };
        ElboBatch::new(self.data.batch(&indices, &mut rng, device))
    }
}
