//! [`FitSchedule`]: a [`FitConfig`](crate::train::FitConfig)'s learning-rate schedule as a
//! burn `LrScheduler`, so the Learner steps through the rates `fit` uses.

use burn::optim::LearningRate;
use burn::optim::lr_scheduler::{LrScheduler, LrSchedulerRecord};

use crate::train::LrSchedule;

/// `lr = schedule.rate(base, step, total, step / steps_per_epoch)` at optimiser step `step`
/// (0-based), as in [`fit`](crate::train::fit).
#[derive(Clone, Debug)]
pub struct FitSchedule {
    schedule: LrSchedule,
    base: f64,
    steps_per_epoch: usize,
    total_steps: usize,
    step: usize,
}

impl FitSchedule {
    /// The schedule over `epochs` epochs of `steps_per_epoch` optimiser steps each.
    pub fn new(schedule: LrSchedule, base: f64, steps_per_epoch: usize, epochs: usize) -> Self {
        let steps_per_epoch = steps_per_epoch.max(1);
        Self {
            schedule,
            base,
            steps_per_epoch,
            total_steps: steps_per_epoch * epochs,
            step: 0,
        }
    }
}

impl LrScheduler for FitSchedule {
    fn step(&mut self) -> LearningRate {
        let epoch = self.step / self.steps_per_epoch;
        let rate = self
            .schedule
            .rate(self.base, self.step, self.total_steps, epoch);
        self.step += 1;
        rate
    }

    fn to_record(&self) -> LrSchedulerRecord {
        LrSchedulerRecord::new().with_scalar("step", self.step as u64)
    }

    fn load_record(&mut self, record: LrSchedulerRecord) {
        if let Some(step) = record.scalar::<u64>("step") {
            self.step = step as usize;
        }
    }
}
