//! Conditional DDPM: the guided combination against its formula, the U-Net's label
//! embedding (the null label, bad labels), and a short training run after which guided
//! samples follow the label; bad configs are errors.

use crate::common;

use burn::tensor::{Int, Tensor, TensorData};
use elbo::data::{Images, LabeledBatch, LabeledImageData};
use elbo::models::ddpm::{
    ConditionalDdpmConfig, ConditionalDenoiser, DdpmConfig, Denoiser, Guided,
};
use elbo::nn::UNetConfig;
use elbo::objective::Objective;
use elbo::train::{FitConfig, fit};
use elbo::{Error, LatentVariableModel};

/// A network whose conditional prediction is `x + label` and whose unconditional one is
/// `x − 1`, everywhere.
struct Offsets;

impl ConditionalDenoiser for Offsets {
    fn predict_with_label(
        &self,
        x_t: Tensor<4>,
        _t: Tensor<1>,
        labels: Option<&Tensor<1, Int>>,
    ) -> elbo::Result<Tensor<4>> {
        let [b, c, h, w] = x_t.dims();
        Ok(match labels {
            Some(y) => x_t + y.clone().float().reshape([b, 1, 1, 1]).expand([b, c, h, w]),
            None => x_t.sub_scalar(1.0),
        })
    }

    fn num_classes(&self) -> usize {
        3
    }
}

/// `ε̃ = (1 + w)·ε(y) − w·ε(∅)` with `ε(y) = x + y`, `ε(∅) = x − 1`, worked out by hand:
/// `x + (1 + w)·y + w`, for `w` = 0, 0.5 and 3.
#[test]
fn guidance_combines_the_two_predictions_as_the_formula() {
    let device = common::device();
    let x = Tensor::<4>::from_data(TensorData::new(vec![0.5f32, -2.0], [2, 1, 1, 1]), &device);
    let t = Tensor::<1>::from_floats([3.0, 7.0], &device);
    for w in [0.0, 0.5, 3.0] {
        let guided = Guided {
            net: &Offsets,
            labels: Tensor::<1, Int>::from_ints([2, 0], &device),
            guidance: w,
        };
        let out = common::host(&guided.predict(x.clone(), t.clone()).unwrap());
        let expected = [0.5 + (1.0 + w) * 2.0 + w, -2.0 + w];
        for (a, b) in out.iter().zip(expected) {
            assert!((a - b).abs() < 1e-6, "w = {w}: {a} vs {b}");
        }
    }
}

/// The U-Net's label embedding: `None` is the null label `num_classes`; different labels
/// give different outputs; labels for an unconditional network, out of range or of the
/// wrong length are errors.
#[test]
fn the_unet_takes_labels_and_the_null_label() {
    let device = common::device();
    let net = UNetConfig::new(1)
        .with_base_channels(8)
        .with_num_classes(3)
        .init(&device)
        .unwrap();
    let x = Tensor::<4>::ones([2, 1, 4, 4], &device).mul_scalar(0.3);
    let t = Tensor::<1>::from_floats([5.0, 5.0], &device);
    let labels = |v: [i64; 2]| Tensor::<1, Int>::from_ints(v, &device);
    let run = |y: Option<&Tensor<1, Int>>| {
        common::host(&net.forward_with_label(x.clone(), t.clone(), y).unwrap())
    };
    assert_eq!(run(None), run(Some(&labels([3, 3]))));
    let (a, b) = (run(Some(&labels([0, 0]))), run(Some(&labels([1, 1]))));
    let gap: f64 = a.iter().zip(&b).map(|(u, v)| (u - v).abs()).sum();
    assert!(gap > 1e-3, "labels 0 and 1 give the same output");
    for bad in [[4, 0], [-1, 0]] {
        assert!(matches!(
            net.forward_with_label(x.clone(), t.clone(), Some(&labels(bad))),
            Err(Error::InvalidConfig { .. })
        ));
    }
    let short = Tensor::<1, Int>::from_ints([0], &device);
    assert!(matches!(
        net.forward_with_label(x.clone(), t.clone(), Some(&short)),
        Err(Error::ShapeMismatch { .. })
    ));
    let plain = UNetConfig::new(1)
        .with_base_channels(8)
        .init(&device)
        .unwrap();
    assert!(matches!(
        plain.forward_with_label(x, t, Some(&labels([0, 1]))),
        Err(Error::InvalidConfig { .. })
    ));
}

/// Two classes of 8×8 grey images: class 0 lights the left half, class 1 the right half.
/// After 300 Adam steps of a small conditional DDPM (T = 100) with label dropout 0.2,
/// 20-step DDIM samples at guidance weight 2 light the half their label names: of 16
/// samples per label, at least 12 have that half brighter than the other by 0.1.
///
/// A network that ignored the label would draw either kind whatever the label, so each
/// sample would pass with probability about ½, and 12 of 16 for both labels has
/// probability 0.04² ≈ 0.0015. A count per sample, rather than a mean over samples, keeps
/// the check from depending on a few stray samples (the device's random stream is shared
/// with the tests running beside this one, so the draws differ from run to run).
#[test]
fn guided_samples_follow_the_label() {
    let device = common::device();
    device.seed(51);
    let (count, side) = (64usize, 8usize);
    let mut pixels = Vec::new();
    let mut classes = Vec::new();
    for n in 0..count {
        let class = n % 2;
        classes.push(class as u8);
        for p in 0..side * side {
            let left = p % side < side / 2;
            pixels.push(if left == (class == 0) { 230 } else { 25 });
        }
    }
    let images = Images {
        count,
        channels: 1,
        rows: side,
        cols: side,
        pixels,
    };
    let data = LabeledImageData::new(images, classes, 2).unwrap();
    let config = ConditionalDdpmConfig::new(
        DdpmConfig::new(1, side, side)
            .with_steps(100)
            .with_unet(UNetConfig::new(1).with_base_channels(8)),
        2,
    )
    .with_p_uncond(0.2);
    let model = config.init(&device).unwrap();
    let mut fit_config = FitConfig::new(75, 16);
    fit_config.progress = false;
    fit_config.learning_rate = 2e-3;
    fit_config.objective = Objective::ModelLoss;
    let (model, history) = fit(model, &config, &data, &fit_config, &device).unwrap();
    assert!(history.epochs.last().unwrap().loss < history.epochs[0].loss);
    let per_label = 16;
    for class in [0i64, 1] {
        let y = Tensor::<1, Int>::from_ints([class; 16], &device);
        let samples = model
            .guided(y, 2.0)
            .unwrap()
            .sample_ddim(per_label, 20, 0.0, false, &device)
            .unwrap();
        let values = common::host(&samples);
        let following = values
            .chunks(side * side)
            .filter(|image| {
                let (mut left, mut right) = (0.0, 0.0);
                for (p, v) in image.iter().enumerate() {
                    if p % side < side / 2 {
                        left += v
                    } else {
                        right += v
                    }
                }
                let half = (side * side / 2) as f64;
                let (lit, dark) = if class == 0 {
                    (left, right)
                } else {
                    (right, left)
                };
                (lit - dark) / half > 0.1
            })
            .count();
        assert!(
            following >= 12,
            "class {class}: {following} of {per_label} samples light the asked half"
        );
    }
}

#[test]
fn bad_conditional_configs_and_inputs_are_errors() {
    let device = common::device();
    let ddpm = DdpmConfig::new(1, 4, 4).with_steps(5).with_unet(
        UNetConfig::new(1)
            .with_base_channels(8)
            .with_channel_mults(vec![1]),
    );
    for bad in [
        ConditionalDdpmConfig::new(ddpm.clone(), 0),
        ConditionalDdpmConfig::new(ddpm.clone(), 2).with_p_uncond(1.0),
        ConditionalDdpmConfig::new(ddpm.clone(), 2).with_p_uncond(f64::NAN),
    ] {
        assert!(
            matches!(bad.validate(), Err(Error::InvalidConfig { .. })),
            "{bad:?}"
        );
    }
    let model = ConditionalDdpmConfig::new(ddpm, 2).init(&device).unwrap();
    let x = Tensor::<2>::zeros([2, 16], &device);
    let batch = LabeledBatch::from_labels(x.clone(), &[0, 2]).unwrap();
    assert!(matches!(
        model.elbo(&batch),
        Err(Error::InvalidConfig { .. })
    ));
    let wide = LabeledBatch::from_labels(Tensor::zeros([2, 17], &device), &[0, 1]).unwrap();
    assert!(matches!(
        model.loss(&wide),
        Err(Error::ShapeMismatch { .. })
    ));
    let y = Tensor::<1, Int>::from_ints([0, 1], &device);
    assert!(model.guided(y.clone(), -1.0).is_err());
    assert!(model.guided(y.clone(), f64::INFINITY).is_err());
    assert!(
        model
            .guided(Tensor::<1, Int>::from_ints([0, 2], &device), 1.0)
            .is_err()
    );
    assert_eq!(
        model
            .log_importance_weights(&LabeledBatch::new(x, y).unwrap(), 3)
            .unwrap()
            .dims(),
        [2, 3]
    );
}
