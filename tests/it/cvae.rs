//! The conditional VAE: its posterior, KL and likelihood are those of its inner networks
//! fed the one-hot labels by hand, a short training run makes the label steer the samples, and bad
//! labels are errors.

use crate::common;

use burn::tensor::{Int, Tensor};
use elbo::data::{Images, LabeledBatch, LabeledImageData};
use elbo::models::cvae::{ConditionalVaeConfig, one_hot};
use elbo::train::{FitConfig, fit};
use elbo::{
    Decoder, Distribution, Encoder, Error, KlDivergence, LatentVariableModel, Posterior, Prior,
};

/// The model's pieces against its inner MLP encoder and decoder fed inputs concatenated
/// here with a one-hot code written out element by element: the posterior's mode, its KL
/// to the prior (the ELBO's KL term), the reconstruction, and `log p(x | z, y)` at the mode
/// agree. (All deterministic: no draw is shared between the two computations.)
#[test]
fn the_parts_are_the_inner_networks_on_concatenated_inputs() {
    let device = common::device();
    let vae = ConditionalVaeConfig::new(5, 3, 2)
        .with_hidden(vec![7])
        .init(&device)
        .unwrap();
    let labels = [2i64, 0, 1, 2];
    let x: Vec<f32> = (0..20).map(|i| ((i * 3) % 4) as f32 / 3.0).collect();
    let x = Tensor::<2>::from_data(burn::tensor::TensorData::new(x, [4, 5]), &device);
    let batch = LabeledBatch::from_labels(x.clone(), &labels).unwrap();

    let mut code = vec![0f32; 4 * 3];
    for (i, &y) in labels.iter().enumerate() {
        code[i * 3 + y as usize] = 1.0;
    }
    let code = Tensor::<2>::from_data(burn::tensor::TensorData::new(code, [4, 3]), &device);
    assert_eq!(common::host(&one_hot(&batch.y, 3)), common::host(&code));

    let q_inner = vae
        .encoder
        .inner
        .encode(&Tensor::cat(vec![x.clone(), code.clone()], 1));
    let q = vae.encode(&batch).unwrap();
    let mode = q.mode();
    assert_eq!(mode.labels().unwrap(), labels.to_vec());
    let close = |a: Vec<f64>, b: Vec<f64>, what: &str| {
        assert_eq!(a.len(), b.len());
        for (u, v) in a.iter().zip(&b) {
            // The same operations on the same numbers.
            assert!((u - v).abs() < 1e-5, "{what}: {u} vs {v}");
        }
    };
    close(common::host(&mode.x), common::host(&q_inner.mode()), "mode");
    close(
        common::host(&vae.elbo(&batch).unwrap().kl[0]),
        common::host(&q_inner.kl(&vae.prior.inner)),
        "KL",
    );
    let zy = Tensor::cat(vec![q_inner.mode(), code], 1);
    let p_inner = vae.decoder.inner.decode(&zy);
    close(
        common::host(&vae.reconstruct(&batch).unwrap().x),
        common::host(&p_inner.mean()),
        "reconstruction",
    );
    close(
        common::host(&vae.decoder.decode(&mode).log_prob(&batch)),
        common::host(&p_inner.log_prob(&x)),
        "log p(x | z, y)",
    );
}

/// Two classes of 4×4 binary images: class 0 lights the left half, class 1 the right half.
/// After 150 Adam steps the decoder's mean image, at prior draws, lights the half its label
/// names: the mean over the lit half exceeds the mean over the other half by 0.5 for both
/// labels. (The latent alone cannot tell the classes apart at a prior draw, so only a
/// decoder that uses the label passes.)
#[test]
fn the_label_steers_the_samples() {
    let device = common::device();
    device.seed(41);
    let count = 64;
    let mut pixels = Vec::new();
    let mut labels = Vec::new();
    for n in 0..count {
        let class = n % 2;
        labels.push(class as u8);
        for p in 0..16 {
            let left = p % 4 < 2;
            pixels.push(if left == (class == 0) { 255 } else { 0 });
        }
    }
    let images = Images {
        count,
        channels: 1,
        rows: 4,
        cols: 4,
        pixels,
    };
    let data = LabeledImageData::new(images, labels, 2).unwrap();
    let config = ConditionalVaeConfig::new(16, 2, 2).with_hidden(vec![16]);
    let vae = config.init(&device).unwrap();
    let mut fit_config = FitConfig::new(75, 32);
    fit_config.progress = false;
    fit_config.learning_rate = 1e-2;
    let (vae, history) = fit(vae, &config, &data, &fit_config, &device).unwrap();
    assert!(history.epochs.last().unwrap().neg_bound < history.epochs[0].neg_bound);
    for class in [0i64, 1] {
        let y = Tensor::<1, Int>::from_ints([class; 20], &device);
        let mean = common::host(&vae.decode_mean(&vae.prior.sample_for(y)).x);
        let (mut left, mut right) = (0.0, 0.0);
        for (i, v) in mean.iter().enumerate() {
            if (i % 16) % 4 < 2 {
                left += v
            } else {
                right += v
            }
        }
        let (left, right) = (left / 160.0, right / 160.0);
        let (lit, dark) = if class == 0 {
            (left, right)
        } else {
            (right, left)
        };
        assert!(
            lit - dark > 0.5,
            "class {class}: lit half {lit:.3}, other {dark:.3}"
        );
    }
    // Draws from the prior itself come in class blocks: 4 draws of 2 classes are 0, 0, 1, 1.
    let z = vae.prior.sample(4, &device);
    assert_eq!(z.labels().unwrap(), vec![0, 0, 1, 1]);
}

#[test]
fn bad_labels_and_configs_are_errors() {
    let device = common::device();
    let vae = ConditionalVaeConfig::new(4, 3, 2)
        .with_hidden(vec![5])
        .init(&device)
        .unwrap();
    let x = Tensor::<2>::ones([2, 4], &device);
    for labels in [vec![0i64, 3], vec![-1, 0]] {
        let batch = LabeledBatch::from_labels(x.clone(), &labels).unwrap();
        assert!(matches!(vae.elbo(&batch), Err(Error::InvalidConfig { .. })));
    }
    let narrow = LabeledBatch::from_labels(Tensor::ones([2, 3], &device), &[0, 1]).unwrap();
    assert!(matches!(
        vae.encoder.check_input(&narrow),
        Err(Error::ShapeMismatch { .. })
    ));
    let mismatched = LabeledBatch {
        x: x.clone(),
        y: Tensor::<1, Int>::from_ints([0, 1, 2], &device),
    };
    assert!(vae.log_importance_weights(&mismatched, 2).is_err());
    assert!(ConditionalVaeConfig::new(4, 0, 2).init(&device).is_err());
    assert!(ConditionalVaeConfig::new(4, 3, 0).init(&device).is_err());
}
