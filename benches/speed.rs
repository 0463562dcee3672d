//! Our side of every row of the speed comparison with PyTorch on this 2-core machine
//! (issue 6), printed as one table beside the PyTorch figures the issue measured with
//! `reference/pytorch/{mlp_vae,conv_vae,ddpm}.py --bench` (2 threads), and the NVAE rows
//! (issue 21) beside `reference/pytorch/nvae.py --bench` and `--bench-eval 10` measured on
//! 2026-12-07.
//!
//! ```text
//! cargo bench --bench speed                                  # flex (CPU)
//! ELBO_BENCH_DEVICE=wgpu cargo bench --features wgpu --bench speed
//! cargo bench --bench speed -- conv ddpm-reverse            # only the rows named
//! ```
//! The row names are `mlp`, `mlp-eval`, `conv`, `ddpm-train`, `ddpm-reverse`, `nvae` and
//! `nvae-eval`; with none given, every row runs.
//! Each figure is the median of repeated runs after a warm-up, with the PyTorch scripts'
//! counts (training steps: 200 after 20, the U-Net's 50 after 5; reverse steps: 100 after
//! 5), and every run ends on a device sync.
//! Reads the repository's `data/mnist-10k` (or `$ELBO_MNIST_DIR`). The run takes about two
//! minutes on flex; run it on an otherwise idle machine.

mod common;

use burn::module::Module;
use burn::tensor::{Distribution as TensorDistribution, Tensor};
use common::{
    TrainStep, ddpm_train_step, device, median_seconds, mnist_binary_test, mnist_train_batches,
};
use elbo::LatentVariableModel;
use elbo::models::ddpm::DdpmConfig;
use elbo::models::nvae::NvaeConfig;
use elbo::models::{ConvVaeConfig, GaussianVaeConfig};
use elbo::objective::{LikelihoodConfig, log_likelihood, log_likelihood_parallel};

/// The row names a run may be limited to (see the module docs).
const ROW_NAMES: [&str; 7] = [
    "mlp",
    "mlp-eval",
    "conv",
    "ddpm-train",
    "ddpm-reverse",
    "nvae",
    "nvae-eval",
];

/// One row: the workload, the PyTorch figure, ours, and whether larger is better.
struct Row {
    workload: &'static str,
    pytorch: f64,
    ours: f64,
    unit: &'static str,
    higher_is_better: bool,
}

/// The median time of one training step of `model` on `batches`, in ms, counted as the
/// PyTorch scripts count theirs: 200 steps after 20.
fn training_step_ms<M: Module + LatentVariableModel>(model: M, batches: &[M::Input]) -> f64 {
    let mut step = TrainStep::new(model);
    1e3 * median_seconds(20, 200, || step.run(batches))
}

fn main() {
    // Criterion passes `--bench`; the other arguments name the rows to run.
    let wanted: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .collect();
    for name in &wanted {
        assert!(
            ROW_NAMES.contains(&name.as_str()),
            "unknown row `{name}`: use one of {ROW_NAMES:?}"
        );
    }
    let runs = |name: &str| wanted.is_empty() || wanted.iter().any(|w| w == name);
    let device = device();
    let train = device.clone().autodiff();
    let mut rows = Vec::new();

    let batches = mnist_train_batches(&train, 128);
    if runs("mlp") {
        let model = GaussianVaeConfig::mnist_mlp().init(&train).unwrap();
        rows.push(Row {
            workload: "MLP VAE 784-400-20, training step, batch 128",
            pytorch: 4.1,
            ours: training_step_ms(model.train(), &batches),
            unit: "ms",
            higher_is_better: false,
        });
    }

    if runs("mlp-eval") {
        let n = 50;
        let x = mnist_binary_test(&device, n);
        let vae = GaussianVaeConfig::mnist_mlp()
            .init(&device)
            .unwrap()
            .valid();
        let config = LikelihoodConfig::new(1000);
        let seconds = median_seconds(1, 3, || {
            log_likelihood(&vae, &x, &config).unwrap();
        });
        rows.push(Row {
            workload: "same, importance-sampled evaluation, K = 1000",
            pytorch: 170.0,
            ours: n as f64 / seconds,
            unit: "test images/s",
            higher_is_better: true,
        });
    }

    if runs("conv") {
        let model = ConvVaeConfig::mnist().init(&train).unwrap();
        rows.push(Row {
            workload: "conv VAE (conv 32/64 stride 2, latent 32, transposed-conv decoder), training step, batch 128",
            pytorch: 22.4,
            ours: training_step_ms(model.train(), &batches),
            unit: "ms",
            higher_is_better: false,
        });
    }

    if runs("ddpm-train") {
        let (mut step, unit_batches) = ddpm_train_step(&train);
        let seconds = median_seconds(5, 50, || step.run(&unit_batches));
        rows.push(Row {
            workload: "DDPM U-Net base width 32, training step, batch 64",
            pytorch: 288.0,
            ours: 1e3 * seconds,
            unit: "ms",
            higher_is_better: false,
        });
    }

    if runs("ddpm-reverse") {
        let model = DdpmConfig::mnist_small().init(&device).unwrap().valid();
        let noise = Tensor::<2>::random([16, 784], TensorDistribution::Normal(0.0, 1.0), &device);
        let mut t = 1000;
        let seconds = median_seconds(5, 100, || {
            let next = model.reverse_step(noise.clone(), t).unwrap();
            t = if t > 2 { t - 1 } else { 1000 };
            let _: f32 = next.sum().into_scalar();
        });
        rows.push(Row {
            workload: "DDPM U-Net base width 32, reverse step, batch 16",
            pytorch: 23.0,
            ours: 1e3 * seconds,
            unit: "ms",
            higher_is_better: false,
        });
    }

    if runs("nvae") {
        let batches = mnist_train_batches(&train, 64);
        let model = NvaeConfig::mnist_small().init(&train).unwrap();
        rows.push(Row {
            workload: "NVAE mnist_small (2 scales × 2 groups, 112,533 weights), training step with the spectral and BN penalties, batch 64",
            pytorch: 334.0,
            ours: training_step_ms(model.train(), &batches),
            unit: "ms",
            higher_is_better: false,
        });
    }

    if runs("nvae-eval") {
        // As examples/nvae.rs evaluates: K = 1000 in passes of 1 image × 100 draws, two
        // passes at a time.
        let n = 10;
        let x = mnist_binary_test(&device, n);
        let model = NvaeConfig::mnist_small().init(&device).unwrap().valid();
        let config = LikelihoodConfig::new(1000)
            .with_example_chunk(1)
            .with_sample_chunk(100);
        let seconds = median_seconds(1, 3, || {
            log_likelihood_parallel(&model, &x, &config, 2).unwrap();
        });
        rows.push(Row {
            workload: "same, importance-sampled evaluation, K = 1000",
            pytorch: 1.11,
            ours: n as f64 / seconds,
            unit: "test images/s",
            higher_is_better: true,
        });
    }

    println!("| workload | PyTorch (issue) | ours | ours ÷ PyTorch time |");
    println!("| --- | --- | --- | --- |");
    for row in rows {
        // A time ratio: above 1 means we are slower, whichever way the unit runs.
        let ratio = if row.higher_is_better {
            row.pytorch / row.ours
        } else {
            row.ours / row.pytorch
        };
        // Three significant figures: 3.94 ms, 21.3 ms, 270 ms.
        let decimals = if row.ours < 10.0 {
            2
        } else if row.ours < 100.0 {
            1
        } else {
            0
        };
        println!(
            "| {} | {} {} | {:.*} {} | {:.2}× |",
            row.workload, row.pytorch, row.unit, decimals, row.ours, row.unit, ratio
        );
    }
}
