//! Measures the variance of the Gaussian VAE's gradient estimators on MNIST-format data:
//! plain IWAE against DReG (Tucker et al. 2019) at each `k`, and the closed-form-KL ELBO
//! against STL (Roeder et al. 2017). The model (784-400-20) is first trained on the ELBO
//! for `--epochs`; then, on one fixed batch of test images, each objective's gradient is
//! drawn `--reps` times and the variance summed over the encoder's (and the decoder's)
//! parameters is reported, with the ratio to the plain estimator.
//!
//! ```text
//! cargo run --release --example gradient_variance -- [--epochs 10] [--k 5,50] [--reps 200]
//! ```
//! Each line reads `<objective>  encoder var <v> (ratio <r>)  decoder var <v> (ratio <r>)
//! encoder SNR <s>`, SNR being `‖E g‖ / √(Σ Var g)` over the encoder's parameters.

mod common;

use std::path::PathBuf;

use burn::tensor::Tensor;
use clap::Parser;
use elbo::data::{Binarization, ImageData};
use elbo::models::{GaussianVae, GaussianVaeConfig};
use elbo::objective::Objective;
use elbo::train::{FitConfig, fit};

/// Compares the gradient variance of IWAE with DReG and of the ELBO with STL.
#[derive(Parser)]
#[command(name = "gradient_variance")]
struct Args {
    /// MNIST-format data folder.
    #[arg(long, value_name = "DIR", default_value_os_t = common::data::default_mnist_dir())]
    data: PathBuf,
    /// ELBO training epochs before the measurement (0 measures at initialisation).
    #[arg(long, default_value_t = 10)]
    epochs: usize,
    /// Latent dimensions.
    #[arg(long, default_value_t = 20)]
    latent: usize,
    /// Importance samples of the IWAE/DReG pairs, comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "5,50")]
    k: Vec<usize>,
    /// Test images in the fixed batch.
    #[arg(long, default_value_t = 64)]
    batch: usize,
    /// Gradient draws per objective.
    #[arg(long, default_value_t = 200)]
    reps: usize,
    /// Seed of the weights, the batches and the draws.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Device: flex, wgpu[:N] or cuda[:N] (the last two with their cargo features).
    #[arg(long, default_value = elbo::device::DEFAULT_NAME)]
    device: String,
}

fn main() {
    common::main_with(run);
}

/// The encoder's and the decoder's parameter tensors, flattened.
fn parameters(model: &GaussianVae) -> (Vec<Tensor<1>>, Vec<Tensor<1>>) {
    let flat = |layer: &burn::nn::Linear| {
        let w = layer.weight.val();
        let [a, b] = w.dims();
        let mut v = vec![w.reshape([a * b])];
        if let Some(bias) = &layer.bias {
            v.push(bias.val());
        }
        v
    };
    let mut encoder: Vec<Tensor<1>> = Vec::new();
    if let Some(trunk) = &model.encoder.trunk {
        trunk.layers.iter().for_each(|l| encoder.extend(flat(l)));
    }
    encoder.extend(flat(&model.encoder.head.mean));
    encoder.extend(flat(&model.encoder.head.log_var));
    let decoder = model.decoder.mlp.layers.iter().flat_map(flat).collect();
    (encoder, decoder)
}

/// Per-coordinate running sums of a gradient and its square.
#[derive(Default)]
struct Moments {
    sum: Vec<f64>,
    sum_sq: Vec<f64>,
    n: usize,
}

impl Moments {
    fn add(&mut self, g: &[f32]) {
        if self.sum.is_empty() {
            self.sum = vec![0.0; g.len()];
            self.sum_sq = vec![0.0; g.len()];
        }
        for (i, &v) in g.iter().enumerate() {
            self.sum[i] += v as f64;
            self.sum_sq[i] += (v as f64).powi(2);
        }
        self.n += 1;
    }

    /// `(Σ_c Var g_c, ‖E g‖²)`, the variance unbiased over the draws.
    fn trace_and_mean_sq(&self) -> (f64, f64) {
        let n = self.n as f64;
        let mut var = 0.0;
        let mut mean_sq = 0.0;
        for (s, s2) in self.sum.iter().zip(&self.sum_sq) {
            let m = s / n;
            var += (s2 - n * m * m) / (n - 1.0);
            mean_sq += m * m;
        }
        (var, mean_sq)
    }
}

/// `reps` gradient draws of `objective` on `x`: the moments of the encoder's and the
/// decoder's flattened gradients.
fn measure(
    model: &GaussianVae,
    x: &Tensor<2>,
    objective: &Objective,
    reps: usize,
) -> Result<(Moments, Moments), elbo::Error> {
    let (enc, dec) = parameters(model);
    let (mut me, mut md) = (Moments::default(), Moments::default());
    for _ in 0..reps {
        let grads = objective.step_loss(model, x, usize::MAX)?.loss.backward();
        let collect = |ps: &[Tensor<1>]| -> Vec<f32> {
            ps.iter()
                .flat_map(|p| {
                    p.grad(&grads)
                        .map(|g| g.try_into_vec_as::<f32>().unwrap_or_default())
                        .unwrap_or_default()
                })
                .collect()
        };
        me.add(&collect(&enc));
        md.add(&collect(&dec));
    }
    Ok((me, md))
}

/// A short name for the table: `elbo`, `stl`, `iwae-5`, `dreg-50`.
fn name(objective: &Objective) -> String {
    match objective {
        Objective::Iwae { k } => format!("iwae-{k}"),
        Objective::Dreg { k } => format!("dreg-{k}"),
        Objective::Stl => "stl".into(),
        _ => "elbo".into(),
    }
}

fn run(args: Args) -> Result<(), Box<dyn std::error::Error>> {
    let device = common::device(&args.device)?;
    let mnist = common::data::load_mnist(&args.data)?;
    let test = mnist.binarized_test();
    let train = mnist.train;
    let config = GaussianVaeConfig::new(train.dim(), args.latent);
    // On the autodiff device, so that the untrained model (`--epochs 0`) has gradients too.
    let model = config.init(&device.clone().autodiff())?;
    let mut fit_config = FitConfig::new(args.epochs.max(1), 128);
    fit_config.seed = args.seed;
    device.seed(args.seed);
    let model = if args.epochs > 0 {
        let data = ImageData::new(train, Binarization::Dynamic);
        fit(model, &config, &data, &fit_config, &device)?.0
    } else {
        model
    };
    println!(
        "measured after {} ELBO epochs, {} test images, {} draws per objective",
        args.epochs, args.batch, args.reps
    );
    let x = test
        .to_tensor(test.binary()?, &device)?
        .narrow(0, 0, args.batch.min(test.count));

    let mut pairs = vec![(Objective::Elbo(Default::default()), Objective::Stl)];
    pairs.extend(
        args.k
            .iter()
            .map(|&k| (Objective::Iwae { k }, Objective::Dreg { k })),
    );
    for (plain, path) in pairs {
        device.seed(args.seed.wrapping_add(1));
        let (pe, pd) = measure(&model, &x, &plain, args.reps)?;
        let (qe, qd) = measure(&model, &x, &path, args.reps)?;
        let ((pev, pem), (pdv, _)) = (pe.trace_and_mean_sq(), pd.trace_and_mean_sq());
        let ((qev, qem), (qdv, _)) = (qe.trace_and_mean_sq(), qd.trace_and_mean_sq());
        println!(
            "{:<10} encoder var {pev:.4e}              decoder var {pdv:.4e}              encoder SNR {:.3}",
            name(&plain),
            (pem / pev).sqrt()
        );
        println!(
            "{:<10} encoder var {qev:.4e} (ratio {:.4})  decoder var {qdv:.4e} (ratio {:.3})  encoder SNR {:.3}",
            name(&path),
            qev / pev,
            qdv / pdv,
            (qem / qev).sqrt()
        );
    }
    Ok(())
}
