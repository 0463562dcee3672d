//! [`ElboDataLoader`]: burn's `DataLoader` over any [`TrainData`] (`ImageData`,
//! `SentenceData`, `LabeledImageData`, or a type of the user's), drawing the same batches
//! as [`fit`](crate::train::fit), each with its [`BatchPosition`].
//!
//! Epoch `e` (0-based) draws its batches with [`TrainData::epoch_batches`] from a generator
//! seeded with `mix_seed(seed, e)`, then each batch's randomness (dynamic binarisation) from
//! the same generator, and seeds the device's noise with `mix_seed(seed + 1, e)`: what
//! `fit` does, so one device gives `fit`'s batches in `fit`'s order.
//!
//! For several devices burn's `split_dataloader` cuts the loader into contiguous ranges of
//! examples ([`DataLoader::slice`]); here a range is a block of the epoch's batches (the
//! batches whose first example falls in it), so the replicas share one permutation per
//! epoch and together see every example once. Replica `r > 0` draws its batches'
//! randomness from its own generator, `mix_seed(seed + r, e)`, and seeds its device's
//! noise with `mix_seed(seed + 1 + r, e)`.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use burn::data::dataloader::{DataLoader, DataLoaderIterator, Progress};
use burn::tensor::Device;
use rand::SeedableRng;
use rand::rngs::StdRng;

use super::batch::{BatchPosition, ElboBatch};
use crate::data::TrainData;
use crate::train::mix_seed;

/// A `DataLoader` of [`ElboBatch`]es over a [`TrainData`]; see the module docs.
pub struct ElboDataLoader<T> {
    data: Arc<T>,
    batch_size: usize,
    seed: u64,
    /// The replica this loader feeds, named by the first position of its range (0 for the
    /// main device, or a single device).
    replica: u64,
    /// The range of example positions (in each epoch's batch order) this loader covers.
    start: usize,
    end: usize,
    device: Device,
    /// The epoch the next `iter()` draws.
    next_epoch: AtomicUsize,
}

impl<T> fmt::Debug for ElboDataLoader<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ElboDataLoader")
            .field("batch_size", &self.batch_size)
            .field("seed", &self.seed)
            .field("replica", &self.replica)
            .field("range", &(self.start..self.end))
            .field("next_epoch", &self.next_epoch.load(Ordering::Relaxed))
            .finish()
    }
}

impl<T: TrainData> ElboDataLoader<T> {
    /// A loader of all of `data` in batches of `batch_size`, starting at epoch
    /// `first_epoch` (0 for a new run, the number of epochs done for a resumed one).
    pub fn new(
        data: Arc<T>,
        batch_size: usize,
        seed: u64,
        first_epoch: usize,
        device: &Device,
    ) -> Self {
        let end = data.len();
        Self {
            data,
            batch_size: batch_size.max(1),
            seed,
            replica: 0,
            start: 0,
            end,
            device: device.clone(),
            next_epoch: AtomicUsize::new(first_epoch),
        }
    }

    fn with_range(&self, start: usize, end: usize, device: &Device, replica: u64) -> Self {
        Self {
            data: self.data.clone(),
            batch_size: self.batch_size,
            seed: self.seed,
            replica,
            start,
            end,
            device: device.clone(),
            next_epoch: AtomicUsize::new(self.next_epoch.load(Ordering::Relaxed)),
        }
    }

    /// The number of optimiser steps of one epoch on one device: the batches of the whole
    /// data.
    pub fn steps_per_epoch(&self) -> usize {
        self.data.len().div_ceil(self.batch_size)
    }
}

struct ElboIterator<T: TrainData> {
    data: Arc<T>,
    batches: Vec<Vec<usize>>,
    position: usize,
    rng: StdRng,
    device: Device,
    epoch: usize,
    steps_per_epoch: usize,
    items_done: usize,
    items_total: usize,
}

impl<T: TrainData> Iterator for ElboIterator<T> {
    type Item = Result<ElboBatch<T::Input>, burn::data::dataset::DatasetError>;

    fn next(&mut self) -> Option<Self::Item> {
        let indices = self.batches.get(self.position)?;
        let step = self.position;
        self.position += 1;
        self.items_done += indices.len();
        // An error (an index past the end of a user's data, an unreadable example) travels
        // in the batch: the step stops training with it, and `take_failure` returns it.
        let x = self.data.batch(indices, &mut self.rng, &self.device);
        let position = BatchPosition {
            epoch: self.epoch,
            step,
            global_step: self.epoch * self.steps_per_epoch + step,
        };
        Some(Ok(ElboBatch::at(x, position)))
    }
}

impl<T: TrainData> DataLoaderIterator<ElboBatch<T::Input>> for ElboIterator<T> {
    fn progress(&self) -> Progress {
        Progress::new(self.items_done, self.items_total, Some("examples".into()))
    }
}

impl<T> DataLoader<ElboBatch<T::Input>> for ElboDataLoader<T>
where
    T: TrainData + Send + Sync + 'static,
    T::Input: 'static,
{
    fn iter<'a>(&'a self) -> Box<dyn DataLoaderIterator<ElboBatch<T::Input>> + 'a> {
        let epoch = self.next_epoch.fetch_add(1, Ordering::Relaxed);
        let mut rng = StdRng::seed_from_u64(mix_seed(self.seed, epoch));
        self.device
            .seed(mix_seed(self.seed.wrapping_add(1 + self.replica), epoch));
        let all = self.data.epoch_batches(self.batch_size, &mut rng);
        if self.replica > 0 {
            rng = StdRng::seed_from_u64(mix_seed(self.seed.wrapping_add(self.replica), epoch));
        }
        // Keep the batches whose first example's position falls in [start, end).
        let mut first = 0;
        let mut batches = Vec::new();
        for batch in all {
            let len = batch.len();
            if (self.start..self.end).contains(&first) {
                batches.push(batch);
            }
            first += len;
        }
        let items_total = batches.iter().map(Vec::len).sum();
        Box::new(ElboIterator {
            data: self.data.clone(),
            steps_per_epoch: batches.len(),
            batches,
            position: 0,
            rng,
            device: self.device.clone(),
            epoch,
            items_done: 0,
            items_total,
        })
    }

    fn num_items(&self) -> usize {
        self.end - self.start
    }

    fn to_device(&self, device: &Device) -> Arc<dyn DataLoader<ElboBatch<T::Input>>> {
        Arc::new(self.with_range(self.start, self.end, device, self.replica))
    }

    fn slice(&self, start: usize, end: usize) -> Arc<dyn DataLoader<ElboBatch<T::Input>>> {
        // burn's `split_dataloader` slices [0, n/r), [n/r, 2n/r), ... and moves each slice
        // to its replica's device.
        let start = (self.start + start).min(self.end);
        let end = (self.start + end).min(self.end);
        // The replica is named by its first position: 0 for the main device.
        Arc::new(self.with_range(start, end, &self.device, start as u64))
    }
}
