//! The integration tests, as one binary: a module per area, so that the suite links once
//! and a new file is a `mod` line here (which `.ci/run` reads to run every module on wgpu
//! too). `cargo test --test it -- vmf::` runs one module.
//!
//! Every module that builds tensors takes its device from [`common::device`]
//! (`$ELBO_TEST_DEVICE`, flex by default), so the same bodies run on every backend.
//! Tests that replay the device's process-wide random stream exactly live in
//! `tests/replay.rs`, a process of their own: the draws of the modules here would land
//! between their two runs.

mod common;
/// The custom-model example's networks, as the example compiles them.
#[path = "../../examples/custom_model/model.rs"]
mod custom_example;
/// The examples' data loaders, as the examples compile them.
#[path = "../../examples/common/data.rs"]
mod example_loaders;

mod bad_input;
mod bn_vae;
mod colour;
mod conv_vae;
mod crash_safety;
mod custom_model;
mod cvae;
mod ddpm;
mod ddpm_conditional;
mod ddpm_schedule;
mod diagnostics;
mod discretized_logistic;
mod discretized_normal;
mod distributions;
mod dreg;
mod ema;
mod example_data;
#[cfg(feature = "png")]
mod fuzz_readers;
#[cfg(feature = "png")]
mod image_data;
mod kernels;
#[cfg(feature = "train")]
mod learner;
mod linear_gaussian;
mod nvae;
mod objective_and_data;
mod optim;
mod power_spherical;
mod text;
mod training_smoke;
mod unet;
mod univae;
mod vdm;
mod vib;
mod vmf;
mod vmf_gradient;
mod weights;
