//! Colour images: the discretised-logistic image likelihood reads flat rows channel by
//! channel, and a few hundred training steps of the conv VAE, NVAE (both with logistic
//! output) and DDPM on a small synthetic RGB set lower their losses clearly.

use crate::common;

use burn::tensor::{Tensor, TensorData};
use elbo::data::{Binarization, ImageData, Images};
use elbo::distributions::{DiscretizedLogisticMixture, ImageLikelihood, PixelLikelihood};
use elbo::models::ConvVaeConfig;
use elbo::models::ddpm::DdpmConfig;
use elbo::models::nvae::NvaeConfig;
use elbo::nn::UNetConfig;
use elbo::objective::Objective;
use elbo::train::{EpochRecord, FitConfig, fit};
use elbo::{Distribution, LatentVariableModel};

/// 64 RGB images of 8×8 pixels in four kinds: a red horizontal bar on blue, a green
/// vertical bar on black, a yellow square on grey, a white diagonal on purple; each image
/// has its own brightness offset (0..16 levels), so the set is not four exact copies.
fn colour_set() -> Images {
    let (count, side) = (64usize, 8usize);
    let mut pixels = Vec::with_capacity(count * 3 * side * side);
    for n in 0..count {
        let offset = ((n * 5) % 16) as u8;
        let (on, off): ([u8; 3], [u8; 3]) = match n % 4 {
            0 => ([230, 20, 20], [20, 20, 200]),
            1 => ([20, 220, 30], [0, 0, 0]),
            2 => ([240, 230, 10], [128, 128, 128]),
            _ => ([250, 250, 250], [120, 20, 140]),
        };
        for c in 0..3 {
            for y in 0..side {
                for x in 0..side {
                    let lit = match n % 4 {
                        0 => y == 3 || y == 4,
                        1 => x == 3 || x == 4,
                        2 => (2..6).contains(&x) && (2..6).contains(&y),
                        _ => x == y,
                    };
                    let v = if lit { on[c] } else { off[c] };
                    pixels.push(v.saturating_add(offset));
                }
            }
        }
    }
    Images {
        count,
        channels: 3,
        rows: side,
        cols: side,
        pixels,
    }
}

fn quiet(epochs: usize, batch_size: usize, learning_rate: f64) -> FitConfig {
    let mut fit_config = FitConfig::new(epochs, batch_size);
    fit_config.progress = false;
    fit_config.learning_rate = learning_rate;
    fit_config.seed = 5;
    fit_config
}

fn first_and_last(epochs: &[EpochRecord]) -> (f64, f64) {
    assert!(epochs.iter().all(|e| e.loss.is_finite()), "{epochs:?}");
    (epochs[0].neg_bound, epochs.last().unwrap().neg_bound)
}

/// A logistic map whose channel 0 has its mean below level 0 and channels 1 and 2 theirs
/// above level 255, with small scales (so the edge bins hold almost all the mass): flat rows laid out channel by channel (all of plane 0,
/// then plane 1, then plane 2, as `Images` stores them) must score far higher in the right
/// order than with the planes swapped, and exactly as the 4-dimensional mixture scores
/// the same data (its `[batch, C, H, W]` view, built here element by element).
#[test]
fn the_logistic_image_likelihood_reads_rows_plane_by_plane() {
    let device = common::device();
    let (c, h, w, m) = (3usize, 2usize, 3usize, 2usize);
    let family = PixelLikelihood::Logistic { mixtures: m };
    // Output channel order: logits (M·C), means (M·C), log-scales (M·C), component-major.
    let mut params = vec![0f32; 3 * m * c * h * w];
    for comp in 0..m {
        for ch in 0..c {
            let mean = if ch == 0 { -1.2 } else { 1.2 };
            for p in 0..h * w {
                params[((m * c + comp * c + ch) * h * w) + p] = mean;
                params[((2 * m * c + comp * c + ch) * h * w) + p] = -4.0;
            }
        }
    }
    let params = Tensor::<4>::from_data(TensorData::new(params, [1, 3 * m * c, h, w]), &device);
    let p = ImageLikelihood::from_network_output(params.clone(), &family, c).unwrap();
    let plane = h * w;
    let right: Vec<f32> = (0..c * plane)
        .map(|i| if i < plane { 0.0 } else { 1.0 })
        .collect();
    let swapped: Vec<f32> = (0..c * plane)
        .map(|i| {
            if (plane..2 * plane).contains(&i) {
                0.0
            } else {
                1.0
            }
        })
        .collect();
    let score = |v: &[f32]| {
        common::host(&p.log_prob(&Tensor::<2>::from_data(
            TensorData::new(v.to_vec(), [1, c * plane]),
            &device,
        )))[0]
    };
    let (good, bad) = (score(&right), score(&swapped));
    // In the right order every value sits in the edge bin next to its mean:
    // P = σ(0.2·e⁴) ≈ 1 − e^{−11}. With planes 0 and 1 swapped, 12 values sit in the far
    // edge bin, P = σ(−2.2·e⁴) ≈ e^{−120} each: the gap is over a thousand nats.
    assert!(good > -0.01, "right layout scores {good}");
    assert!(bad < good - 500.0, "swapped planes score {bad} vs {good}");
    let reference = DiscretizedLogisticMixture::from_network_output(params, c, m).unwrap();
    let images = Tensor::<4>::from_data(TensorData::new(right.clone(), [1, c, h, w]), &device);
    let expected = common::host(&reference.log_prob(&images))[0];
    // Same operations on the same numbers: equal to f32 rounding.
    assert!(
        (good - expected).abs() <= 1e-4 * expected.abs().max(1.0),
        "{good} vs {expected}"
    );
    assert_eq!(p.sample().dims(), [1, c * plane]);
    assert_eq!(p.mean().dims(), [1, c * plane]);
}

/// 200 Adam steps (50 epochs of 4 batches) of a conv VAE with a 3-component logistic
/// output lower the per-image −ELBO by a fifth.
///
/// At initialisation the log-scales are near 0: a bin of width 2/255 under a logistic of
/// scale 1 (density ≤ 1/4) costs at least ln(4 · 255/2) ≈ 6.2 nats, some 1,190 nats for a
/// 192-value image. Adam moves a bias by about the learning rate per step, so after 200
/// steps at 1e-2 the scales are still ≥ e^{−2} and a sub-pixel costs ≥ 4.2 nats: about
/// 800 nats per image is as low as these steps can go, whatever the model learns. A fifth
/// (to ≈ 950) is then a clear drop that a model whose gradients do not reach the
/// likelihood's parameters cannot make.
#[test]
fn a_colour_conv_vae_with_logistic_output_trains() {
    let device = common::device();
    device.seed(31);
    let data = ImageData::new(colour_set(), Binarization::Grey);
    let config = ConvVaeConfig::new(3, 8, 8)
        .with_channels(vec![8, 16])
        .with_latent_dim(4)
        .with_likelihood(PixelLikelihood::Logistic { mixtures: 3 });
    let vae = config.init(&device).unwrap();
    let (vae, history) = fit(vae, &config, &data, &quiet(50, 16, 1e-2), &device).unwrap();
    let (first, last) = first_and_last(&history.epochs);
    assert!(
        last < 0.8 * first,
        "−ELBO went from {first:.1} to {last:.1}"
    );
    let x = data
        .images()
        .to_tensor(data.images().unit(), &device)
        .unwrap();
    let log_w: Vec<f64> = common::host(&vae.log_importance_weights(&x.narrow(0, 0, 4), 2).unwrap());
    assert!(log_w.iter().all(|v| v.is_finite()));
}

/// 200 Adam steps of a tiny NVAE (one scale of two groups, logistic output with 2
/// components) lower the per-image −ELBO by a fifth (the same bounds as for the conv VAE
/// above apply).
#[test]
fn a_colour_nvae_with_logistic_output_trains() {
    let device = common::device();
    device.seed(32);
    let data = ImageData::new(colour_set(), Binarization::Grey);
    let config = NvaeConfig::new(3, 8, 8)
        .with_channels(8)
        .with_scales(1)
        .with_latent_channels(2)
        .with_preprocess_cells(0)
        .with_postprocess_cells(0)
        .with_likelihood(PixelLikelihood::Logistic { mixtures: 2 });
    let model = config.init(&device).unwrap();
    let (model, history) = fit(model, &config, &data, &quiet(50, 16, 1e-2), &device).unwrap();
    let (first, last) = first_and_last(&history.epochs);
    assert!(
        last < 0.8 * first,
        "−ELBO went from {first:.1} to {last:.1}"
    );
    let samples = common::host(&model.sample(4, 1.0, &device).unwrap());
    assert_eq!(samples.len(), 4 * 192);
    assert!(samples.iter().all(|v| (0.0..=1.0).contains(v)));
}

/// 200 Adam steps of DDPM (T = 100) with a small 3-channel U-Net on the same set scaled
/// to [−1, 1]: `L_simple` starts near 1 (an untrained network's ε̂ ≈ 0 has error E‖ε‖²/d = 1)
/// and falls below 0.6 of its first-epoch mean; these images are so regular that a trained
/// denoiser predicts most of the noise.
#[test]
fn a_colour_ddpm_trains() {
    let device = common::device();
    device.seed(33);
    let data = ImageData::new(colour_set(), Binarization::Grey);
    let config = DdpmConfig::new(3, 8, 8).with_steps(100).with_unet(
        UNetConfig::new(3)
            .with_base_channels(8)
            .with_channel_mults(vec![1, 2]),
    );
    let model = config.init(&device).unwrap();
    let mut fit_config = quiet(50, 16, 2e-3);
    fit_config.objective = Objective::ModelLoss;
    let (model, history) = fit(model, &config, &data, &fit_config, &device).unwrap();
    let (first, last) = (history.epochs[0].loss, history.epochs.last().unwrap().loss);
    assert!(
        last.is_finite() && last < 0.6 * first,
        "L_simple went from {first:.3} to {last:.3}"
    );
    let samples = model.sample_ancestral(2, false, &device).unwrap();
    assert_eq!(samples.dims(), [2, 192]);
}
