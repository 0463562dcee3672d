//! The models' fused paths against the same computation by burn's own modules, which
//! are the independent reference here: the Gaussian posterior head (its two linear maps
//! as one product) and `Bernoulli::log_prob` (the fused kernel on flex). The layers
//! themselves are tested in crates/flex-kernels/tests/layers.rs. On a device the kernels
//! do not cover (wgpu) both sides are burn's ops, and the comparisons still hold.
//!
//! Tolerance: the two sides add the same f32 products in different orders, which moves a
//! result by a few ulp of the sum of magnitudes; the checks allow 1e-4 of the largest
//! reference value.

// burn's own `forward` is the independent reference of these tests (the models run
// their layers through `elbo::kernels::Run`).
#![allow(clippy::disallowed_methods)]

use crate::common;

use burn::tensor::{Distribution, Tensor, activation};
use common::{device, host};
use elbo::PosteriorHead;
use elbo::models::GaussianHead;

fn assert_close<const D: usize>(what: &str, got: &Tensor<D>, want: &Tensor<D>) {
    assert_eq!(got.dims(), want.dims(), "{what}: shape");
    let (got, want) = (host(got), host(want));
    let scale = want.iter().fold(0f64, |m, v| m.max(v.abs())).max(1e-3);
    for (i, (g, w)) in got.iter().zip(&want).enumerate() {
        assert!(
            (g - w).abs() <= 1e-4 * scale,
            "{what}[{i}]: {g} vs burn's {w} (scale {scale})"
        );
    }
}

/// The Gaussian posterior head, which runs its two linear maps as one product on their
/// weights side by side, against the two maps applied apart by burn's `Linear`: the mean
/// and log-variance, and the gradients of the features and of all four parameters.
#[test]
fn gaussian_head_matches_its_two_linear_maps() {
    let ad = device().autodiff();
    let head = GaussianHead::new(9, 4, &ad).unwrap();
    let x = Tensor::<2>::random([5, 9], Distribution::Normal(0.0, 1.0), &ad).require_grad();
    let q = head.posterior(x.clone());
    let (mean, log_var) = (q.loc(), q.log_var());
    let (want_mean, want_log_var) = (
        head.mean.forward(x.clone()),
        head.log_var.forward(x.clone()),
    );
    assert_close("mean", &mean, &want_mean);
    assert_close("log_var", &log_var, &want_log_var);
    let r = Tensor::<2>::random([5, 8], Distribution::Normal(0.0, 1.0), &ad);
    let weigh = |m: Tensor<2>, v: Tensor<2>| {
        (m * r.clone().narrow(1, 0, 4) + v * r.clone().narrow(1, 4, 4))
            .sum()
            .backward()
    };
    let (g, g_ref) = (weigh(mean, log_var), weigh(want_mean, want_log_var));
    assert_close("d features", &x.grad(&g).unwrap(), &x.grad(&g_ref).unwrap());
    for (name, layer) in [("mean", &head.mean), ("log_var", &head.log_var)] {
        let (w, b) = (layer.weight.val(), layer.bias.as_ref().unwrap().val());
        assert_close(
            &format!("d W_{name}"),
            &w.grad(&g).unwrap(),
            &w.grad(&g_ref).unwrap(),
        );
        assert_close(
            &format!("d b_{name}"),
            &b.grad(&g).unwrap(),
            &b.grad(&g_ref).unwrap(),
        );
    }
}

/// `Bernoulli::log_prob` (the fused kernel on flex) against the same sum composed from
/// burn's ops, `Σ x·l − softplus(l)`, values and gradients in both arguments, for logits
/// over [−30, 30] and 0/1 data.
#[test]
fn bernoulli_log_prob_values_and_gradients_match_burn() {
    use elbo::Distribution as _;
    use elbo::distributions::Bernoulli;
    let device = device().autodiff();
    let logits =
        Tensor::<2>::random([7, 53], Distribution::Uniform(-30.0, 30.0), &device).require_grad();
    let x = Tensor::<2>::random([7, 53], Distribution::Bernoulli(0.4), &device).require_grad();
    let fast = Bernoulli::new(logits.clone()).log_prob(&x);
    let reference = (x.clone() * logits.clone() - activation::softplus(logits.clone(), 1.0))
        .sum_dim(1)
        .reshape([7]);
    assert_close("log p(x | l)", &fast, &reference);
    let r = Tensor::<1>::random([7], Distribution::Normal(0.0, 1.0), &device);
    let g_fast = (fast * r.clone()).sum().backward();
    let g_ref = (reference * r).sum().backward();
    assert_close(
        "dl",
        &logits.grad(&g_fast).unwrap(),
        &logits.grad(&g_ref).unwrap(),
    );
    assert_close("dx", &x.grad(&g_fast).unwrap(), &x.grad(&g_ref).unwrap());
}
