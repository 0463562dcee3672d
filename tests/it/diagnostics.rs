//! Diagnostics against closed forms.

use crate::common;

use burn::tensor::{Distribution as TensorDistribution, Tensor};
use elbo::KlDivergence;
use elbo::distributions::{DiagNormal, StdNormal};
use elbo::models::GaussianVaeConfig;
use elbo::objective::{active_units, kl_per_group, mutual_information};

#[test]
fn mutual_information_matches_the_gaussian_closed_form() {
    // x ~ N(0, 1), q(z | x) = N(x, 1): (x, z) jointly Gaussian with correlation 1/√2, so
    // I(x; z) = ½ ln(1 + 1/1) = ½ ln 2 = 0.34657.
    // 20 batches of N = 1000 (seed 12). Bias of the batch estimator: the own term adds at
    // most E[q(z_i|x_i)/q(z_i)]/(N−1) < 2e-3 and Jensen on the other N−1 terms subtracts
    // about Var[q(z|x)/q(z)]/(2(N−1)) < 2e-3, so the tolerance is 4 SE + 0.004.
    let device = common::device();
    device.seed(12);
    let n = 1000;
    let estimates: Vec<f64> = (0..20)
        .map(|_| {
            let x = Tensor::<2>::random([n, 1], TensorDistribution::Normal(0.0, 1.0), &device);
            let q = DiagNormal::new(x.clone(), x.zeros_like()).unwrap();
            mutual_information(&q).unwrap()
        })
        .collect();
    let mean = estimates.iter().sum::<f64>() / 20.0;
    let se = (estimates.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / 19.0 / 20.0).sqrt();
    let exact = 0.5 * 2f64.ln();
    assert!(
        (mean - exact).abs() < 4.0 * se + 0.004,
        "MI {mean} ± {se} vs {exact}"
    );
    // A posterior that ignores x has no information: I = 0 up to the same bias.
    let q = DiagNormal::new(
        Tensor::<2>::zeros([n, 1], &device),
        Tensor::zeros([n, 1], &device),
    )
    .unwrap();
    assert!(mutual_information(&q).unwrap().abs() < 0.01);
}

#[test]
fn active_units_and_kl_per_dimension_and_group() {
    let device = common::device();
    // Dimension 0 varies across examples (variance 1), dimension 1 barely (variance 1e-4).
    let means = Tensor::<2>::from_floats(
        [[1.0, 0.01], [-1.0, -0.01], [1.0, 0.01], [-1.0, -0.01]],
        &device,
    );
    let au = active_units(means.clone(), 0.01).unwrap();
    assert_eq!(au.count, 1);
    // Unbiased variance: 4/3 and 4e-4/3.
    assert!(
        (au.activity[0] - 4.0 / 3.0).abs() < 1e-5 && (au.activity[1] - 4e-4 / 3.0).abs() < 1e-8
    );
    assert!(active_units(means.clone().narrow(0, 0, 1), 0.01).is_err());

    // KL per dimension sums to the KL; dimension i of N(μ, 1) has KL μ²/2.
    let q = DiagNormal::new(means.clone(), means.zeros_like()).unwrap();
    let per_dim = q
        .kl_per_dim(&StdNormal::new(2).unwrap())
        .try_into_vec_as::<f32>()
        .unwrap();
    assert!((per_dim[0] - 0.5).abs() < 1e-6 && (per_dim[1] - 0.5e-4).abs() < 1e-8);
    let total = q
        .kl(&StdNormal::new(2).unwrap())
        .try_into_vec_as::<f32>()
        .unwrap();
    assert!((total[0] - per_dim[0] - per_dim[1]).abs() < 1e-6);

    // A flat VAE reports one KL group; its mean matches the ELBO terms' KL.
    let vae = GaussianVaeConfig::new(4, 2)
        .with_hidden(vec![8])
        .init(&device)
        .unwrap();
    let groups = kl_per_group(&vae, &Tensor::<2>::ones([10, 4], &device), 3).unwrap();
    assert_eq!(groups.len(), 1);
    assert!(groups[0] >= 0.0);
}
