//! The convolutional VAE: the reference architecture's parameter count, the strided
//! convolution's wiring against a host computation, the shared estimators' shapes,
//! training, and bad input.

// burn's own `forward` is the independent reference of these tests (the models run
// their layers through `elbo::kernels::Run`).
#![allow(clippy::disallowed_methods)]

use crate::common;

use burn::module::{Module, Param};
use burn::tensor::{Tensor, TensorData};
use common::host;
use elbo::data::{Binarization, ImageData, Images};
use elbo::models::ConvVaeConfig;
use elbo::train::{FitConfig, fit};
use elbo::{Encoder, Error, LatentVariableModel};

/// `reference/pytorch/conv_vae.py`'s model has
/// conv1 1·32·16 + 32, conv2 32·64·16 + 64, two heads 2·(3136·32 + 32), dec_fc 32·3136 + 3136,
/// deconv1 64·32·16 + 32, deconv2 32·1·16 + 1 = 370,945 parameters
/// (`sum(p.numel() for p in ConvVae().parameters())`); ours must have exactly as many.
#[test]
fn the_mnist_preset_has_the_reference_parameter_count() {
    let device = common::device();
    let vae = ConvVaeConfig::mnist().init(&device).unwrap();
    assert_eq!(vae.num_params(), 370_945);
}

/// With every weight of the first convolution set to 1 and its bias to 0, each output pixel
/// is the sum of the 4×4 input window at stride 2 with one pixel of zero padding
/// (PyTorch's `Conv2d(1, 32, 4, 2, 1)`), recomputed here with host loops; after ReLU the
/// encoder's first map equals it exactly for a non-negative image (sums of small integers
/// are exact in f32).
#[test]
fn the_first_convolution_is_kernel_4_stride_2_padding_1() {
    let device = common::device();
    let mut vae = ConvVaeConfig::new(1, 8, 8)
        .with_channels(vec![2])
        .with_latent_dim(2)
        .init(&device)
        .unwrap();
    let conv = &mut vae.encoder.convs[0];
    conv.weight = Param::from_tensor(Tensor::ones([2, 1, 4, 4], &device));
    conv.bias = Some(Param::from_tensor(Tensor::zeros([2], &device)));
    let pixels: Vec<f32> = (0..64).map(|i| ((i * 7) % 5) as f32).collect();
    let x = Tensor::<4>::from_data(TensorData::new(pixels.clone(), [1, 1, 8, 8]), &device);
    let out = host(&vae.encoder.convs[0].forward(x));
    assert_eq!(out.len(), 2 * 4 * 4);
    for oy in 0..4 {
        for ox in 0..4 {
            let mut sum = 0.0;
            for ky in 0..4 {
                for kx in 0..4 {
                    let (y, x) = (2 * oy + ky, 2 * ox + kx);
                    // Input coordinates are shifted by the padding of 1.
                    if (1..=8).contains(&y) && (1..=8).contains(&x) {
                        sum += pixels[(y - 1) * 8 + (x - 1)] as f64;
                    }
                }
            }
            for c in 0..2 {
                assert_eq!(
                    out[c * 16 + oy * 4 + ox],
                    sum,
                    "channel {c} at ({oy}, {ox})"
                );
            }
        }
    }
}

/// The shared tools take the conv VAE unchanged: per-example ELBO terms, `[batch, k]`
/// importance weights, decoder logits of the image's size, on a 3-channel 16×16 model with
/// three stages.
#[test]
fn the_shared_estimators_take_it() {
    let device = common::device();
    let vae = ConvVaeConfig::new(3, 16, 16)
        .with_channels(vec![4, 8, 8])
        .with_latent_dim(3)
        .init(&device)
        .unwrap();
    let x = Tensor::<2>::ones([5, 3 * 16 * 16], &device).mul_scalar(0.5);
    let terms = vae.elbo(&x).unwrap();
    assert_eq!(terms.reconstruction.dims(), [5]);
    assert_eq!(terms.kl.len(), 1);
    assert_eq!(vae.log_importance_weights(&x, 4).unwrap().dims(), [5, 4]);
    let mean = vae.reconstruct(&x).unwrap();
    assert_eq!(mean.dims(), [5, 768]);
    assert!(host(&mean).iter().all(|p| (0.0..=1.0).contains(p)));
}

/// Thirty Adam steps on 64 synthetic 8×8 images (two stroke patterns) lower the training
/// −ELBO per image by more than a third from its first-epoch value (about 64 ln 2 ≈ 44 nats
/// at initialisation): gradients reach every layer through the convolutions.
#[test]
fn training_lowers_the_negative_elbo() {
    let device = common::device();
    device.seed(21);
    let pixels: Vec<u8> = (0..64 * 64)
        .map(|i| {
            let (n, p) = (i / 64, i % 64);
            let (y, x) = (p / 8, p % 8);
            let on = if n % 2 == 0 {
                x == 3 || x == 4
            } else {
                y == 3 || y == 4
            };
            if on { 255 } else { 0 }
        })
        .collect();
    let images = Images {
        count: 64,
        channels: 1,
        rows: 8,
        cols: 8,
        pixels,
    };
    let data = ImageData::new(images, Binarization::Dynamic);
    let config = ConvVaeConfig::new(1, 8, 8)
        .with_channels(vec![4, 8])
        .with_latent_dim(2);
    let vae = config.init(&device).unwrap();
    let mut fit_config = FitConfig::new(15, 32);
    fit_config.progress = false;
    fit_config.learning_rate = 1e-2;
    let (_, history) = fit(vae, &config, &data, &fit_config, &device).unwrap();
    let first = history.epochs[0].neg_bound;
    let last = history.epochs.last().unwrap().neg_bound;
    assert!(last < first * 2.0 / 3.0, "{first} → {last}");
}

#[test]
fn bad_input_is_an_error() {
    let device = common::device();
    let vae = ConvVaeConfig::mnist().init(&device).unwrap();
    let x = Tensor::<2>::ones([2, 783], &device);
    assert!(matches!(
        vae.encoder.check_input(&x),
        Err(Error::ShapeMismatch { .. })
    ));
    assert!(vae.elbo(&x).is_err());
    assert!(
        vae.log_importance_weights(&Tensor::ones([2, 784], &device), 0)
            .is_err()
    );
    for bad in [
        ConvVaeConfig::new(0, 28, 28),
        ConvVaeConfig::new(1, 30, 28),
        ConvVaeConfig::new(1, 28, 0),
        ConvVaeConfig::mnist().with_channels(vec![]),
        ConvVaeConfig::mnist().with_channels(vec![32, 0]),
        ConvVaeConfig::mnist().with_latent_dim(0),
    ] {
        assert!(
            matches!(bad.validate(), Err(Error::InvalidConfig { .. })),
            "{bad:?}"
        );
    }
}
