//! The DDPM U-Net: the time embedding against a host computation, shapes through every
//! level, the parameter budget of the benchmark preset, and bad sizes.

use crate::common;

use burn::module::Module;
use burn::tensor::Tensor;
use common::host;
use elbo::nn::{UNetConfig, timestep_embedding};

/// `emb(t) = [sin(t ω_i), cos(t ω_i)]`, `ω_i = 10000^(−i/(D/2))`, computed here in f64;
/// f32 evaluation of sin/cos at arguments up to 1000 is good to ~1e-4 absolute
/// (the argument itself carries a relative error of ~6e-8, times 1000).
#[test]
fn timestep_embedding_matches_the_formula() {
    let device = common::device();
    let ts = [1.0f64, 17.0, 999.0];
    let dim = 16;
    let emb = host(&timestep_embedding(
        Tensor::from_floats([1.0, 17.0, 999.0], &device),
        dim,
    ));
    let half = dim / 2;
    for (row, &t) in ts.iter().enumerate() {
        for i in 0..half {
            let omega = 10000f64.powf(-(i as f64) / half as f64);
            let (s, c) = (t * omega).sin_cos();
            assert!((emb[row * dim + i] - s).abs() < 2e-4, "sin t={t} i={i}");
            assert!(
                (emb[row * dim + half + i] - c).abs() < 2e-4,
                "cos t={t} i={i}"
            );
        }
    }
}

/// 28×28 through two levels (28 → 14) and odd-sized 12×20 → 6×10 → 3×5 through three,
/// with two residual blocks per level and attention: the output has the input's shape.
#[test]
fn unet_keeps_the_shape_through_every_level() {
    let device = common::device();
    for (config, dims) in [
        (UNetConfig::new(1).with_base_channels(8), [2, 1, 28, 28]),
        (
            UNetConfig::new(3)
                .with_base_channels(8)
                .with_channel_mults(vec![1, 2, 2])
                .with_res_blocks(2)
                .with_attention_levels(vec![1, 2])
                .with_middle_attention(true)
                .with_dropout(0.1),
            [3, 3, 12, 20],
        ),
    ] {
        let net = config.init(&device).unwrap();
        let t = Tensor::<1>::from_floats(vec![5.0f32; dims[0]].as_slice(), &device);
        let out = net.forward(Tensor::zeros(dims, &device), t).unwrap();
        assert_eq!(out.dims(), dims);
        assert!(host(&out).iter().all(|v| v.is_finite()));
    }
}

/// The defaults are the reference PyTorch U-Net (`reference/pytorch/ddpm.py`):
/// its parameter count, derived by hand from that file's layers, is matched exactly.
#[test]
fn defaults_have_the_reference_unets_parameter_count() {
    // Parameters of the reference SmallUNet(C), layer by layer (weights + biases):
    fn reference(c: usize) -> usize {
        let linear = |i: usize, o: usize| i * o + o;
        let conv = |i: usize, o: usize, k: usize| i * o * k * k + o;
        let gn = |ch: usize| 2 * ch;
        let td = 4 * c;
        let res = |i: usize, o: usize| {
            gn(i)
                + conv(i, o, 3)
                + linear(td, o)
                + gn(o)
                + conv(o, o, 3)
                + if i != o { conv(i, o, 1) } else { 0 }
        };
        linear(c, td)
            + linear(td, td)
            + conv(1, c, 3)
            + res(c, c)
            + conv(c, c, 3)
            + res(c, 2 * c)
            + res(2 * c, 2 * c)
            + res(4 * c, 2 * c)
            + conv(2 * c, 2 * c, 3)
            + res(3 * c, c)
            + gn(c)
            + conv(c, 1, 3)
    }
    let device = common::device();
    for c in [32, 64] {
        let params = UNetConfig::new(1)
            .with_base_channels(c)
            .init(&device)
            .unwrap()
            .num_params();
        assert_eq!(params, reference(c), "base width {c}");
    }
    // "About 0.4 M" at width 32, as the issue says.
    assert!((350_000..450_000).contains(&reference(32)));
}

#[test]
fn bad_unet_configs_and_sizes_are_errors() {
    let device = common::device();
    assert!(UNetConfig::new(0).init(&device).is_err());
    assert!(
        UNetConfig::new(1)
            .with_channel_mults(vec![])
            .init(&device)
            .is_err()
    );
    assert!(
        UNetConfig::new(1)
            .with_channel_mults(vec![1, 0])
            .init(&device)
            .is_err()
    );
    assert!(
        UNetConfig::new(1)
            .with_attention_levels(vec![2])
            .init(&device)
            .is_err()
    );
    assert!(UNetConfig::new(1).with_res_blocks(0).init(&device).is_err());
    assert!(UNetConfig::new(1).with_dropout(1.0).init(&device).is_err());
    assert!(
        UNetConfig::new(1)
            .with_dropout(f64::NAN)
            .init(&device)
            .is_err()
    );
    let net = UNetConfig::new(1)
        .with_base_channels(8)
        .init(&device)
        .unwrap();
    let t = Tensor::<1>::from_floats([1.0, 2.0], &device);
    // 27 is not a multiple of 2 (two levels).
    assert!(
        net.forward(Tensor::zeros([2, 1, 27, 28], &device), t.clone())
            .is_err()
    );
    // t of the wrong length.
    assert!(
        net.forward(Tensor::zeros([3, 1, 28, 28], &device), t)
            .is_err()
    );
}

/// VDM's Fourier features: with exponents `[6, 7]` the stem reads `C (1 + 2·2)` channels,
/// in the order `[x, sin(2⁶·2π x), cos(2⁶·2π x), sin(2⁷·2π x), cos(2⁷·2π x)]` (each against
/// f64 on the host: 1e-3, f32 `sin` of arguments up to 800); the network keeps its output
/// shape; exponents out of range are configuration errors.
#[test]
fn fourier_features_follow_vdm() {
    let device = common::device();
    let net = UNetConfig::new(2)
        .with_base_channels(8)
        .with_fourier_exponents(vec![6, 7])
        .init(&device)
        .unwrap();
    let values: Vec<f32> = (0..2 * 4 * 4).map(|i| (i as f32 * 0.37).sin()).collect();
    let x = Tensor::<1>::from_floats(values.as_slice(), &device).reshape([1, 2, 4, 4]);
    let features = host(&net.with_fourier_features(x.clone()));
    assert_eq!(features.len(), 5 * values.len());
    for (i, &v) in values.iter().enumerate() {
        let (c, p) = (i / 16, i % 16);
        let at = |block: usize| features[block * 32 + c * 16 + p];
        assert_eq!(at(0), v as f64);
        for (k, n) in [6, 7].iter().enumerate() {
            let w = 2f64.powi(*n) * 2.0 * std::f64::consts::PI * v as f64;
            assert!((at(1 + 2 * k) - w.sin()).abs() < 1e-3, "sin, n = {n}");
            assert!((at(2 + 2 * k) - w.cos()).abs() < 1e-3, "cos, n = {n}");
        }
    }
    let t = Tensor::<1>::from_floats([3.0], &device);
    assert_eq!(net.forward(x, t).unwrap().dims(), [1, 2, 4, 4]);
    let bad = UNetConfig::new(1).with_fourier_exponents(vec![6, 40]);
    assert!(matches!(
        bad.validate(),
        Err(elbo::Error::InvalidConfig {
            field: "fourier_exponents",
            ..
        })
    ));
}
