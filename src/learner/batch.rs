//! [`ElboBatch`]: what a burn-train step of a [`Trainable`](super::Trainable) takes.

use crate::Error;

/// One training or validation batch: the examples (or why they could not be read) and,
/// when its loader knows it, where the batch sits in training.
///
/// - [`ElboDataLoader`](super::ElboDataLoader) sets `position`: it draws `fit`'s batches
///   epoch by epoch and counts them.
/// - A batch built by burn's own `DataLoader` through [`ElboBatcher`](super::ElboBatcher)
///   (or a batcher of the user's) has no position: burn's `Batcher` is not told the
///   epoch, and a loader with several workers builds batches out of order. The
///   [`Trainable`](super::Trainable) then counts its optimiser steps and epochs itself.
///
/// `x` is a `Result` because burn's `Batcher::batch` has no error return: a batcher that
/// fails (an unreadable example, a batch of the wrong shape) hands its error over in the
/// batch, and the step that receives it stops training with that error instead of
/// panicking.
#[derive(Clone, Debug)]
pub struct ElboBatch<I> {
    /// The examples, or the error met reading them.
    pub x: Result<I, Error>,
    /// Where the batch sits in training, if the loader knows.
    pub position: Option<BatchPosition>,
}

impl<I> ElboBatch<I> {
    /// A batch whose position the training step counts (the burn `Batcher` case).
    pub fn new(x: crate::Result<I>) -> Self {
        Self { x, position: None }
    }

    /// A batch at a known position (the [`ElboDataLoader`](super::ElboDataLoader) case).
    pub fn at(x: crate::Result<I>, position: BatchPosition) -> Self {
        Self {
            x,
            position: Some(position),
        }
    }
}

/// Where a batch sits in training.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BatchPosition {
    /// 0-based epoch.
    pub epoch: usize,
    /// 0-based step within the epoch (on this replica).
    pub step: usize,
    /// 0-based optimiser step since the start of training: what the KL warm-up counts.
    pub global_step: usize,
}
