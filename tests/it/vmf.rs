//! The von Mises–Fisher distribution and its numerics: Bessel functions and lgamma against
//! mpmath, the sampler against the exact marginal of `w = μᵀz` (KS test) and its mean
//! `A_d(κ)`, gradients against finite differences, KL against Monte Carlo.

// The reference tables keep mpmath's 17 printed digits.
#![allow(clippy::excessive_precision)]

use crate::common;

use burn::tensor::{Tensor, TensorData};
use common::{ExactCdf, host, mean_and_sd};
use elbo::distributions::{UniformSphere, VonMisesFisher, vmf_log_normalizer};
use elbo::math::{bessel_ratio, lgamma, log_bessel_i};
use elbo::{Distribution, Error, KlDivergence, Prior};
use rand::SeedableRng;
use rand::rngs::StdRng;

// Generated with mpmath 1.3.0 at 50 digits:
// import mpmath; mpmath.mp.dps = 50
// for nu in [0,0.5,1,4.5,49.5,50,100,499,1000]:
//   for x in [1e-4,0.01,1,10,100,1e3,1e4,1e5]:
//     (nu, x, mpmath.log(mpmath.besseli(nu,x)), mpmath.besseli(nu+1,x)/mpmath.besseli(nu,x))
// and mpmath.loggamma(x) for the lgamma table.
const BESSEL_REF: [(f64, f64, f64, f64); 72] = [
    (0.0, 0.0001, 2.4999999984375002e-9, 4.9999999937500003e-5),
    (0.0, 0.01, 2.499984375173609e-5, 0.0049999375010416489),
    (0.0, 1.0, 0.23591435850717865, 0.44638996589653451),
    (0.0, 10.0, 7.9429720831186956, 0.94859982595484596),
    (0.0, 100.0, 96.779732689942584, 0.99498737300516877),
    (0.0, 1000.0, 995.62730888986946, 0.99949987487480428),
    (0.0, 10000.0, 9994.4759037814323, 0.99994999874987498),
    (0.0, 100000.0, 99993.324599984316, 0.99999499998749987),
    (0.5, 0.0001, -4.8309615369661521, 3.3333333311111113e-5),
    (0.5, 0.01, -2.5283597790276616, 0.0033333111113227493),
    (0.5, 1.0, -0.064351991073531799, 0.3130352854993313),
    (0.5, 10.0, 7.9297689182371508, 0.90000000412230725),
    (0.5, 100.0, 96.778476373801282, 0.99),
    (0.5, 1000.0, 995.62718382730426, 0.999),
    (0.5, 10000.0, 9994.4758912808072, 0.9999),
    (0.5, 100000.0, 99993.32459873431, 0.99999),
    (1.0, 0.0001, -9.903487551286128, 2.4999999989583335e-5),
    (1.0, 0.01, -5.2983048665740782, 0.0024999895833984371),
    (1.0, 1.0, -0.57064798749083128, 0.24019372387008974),
    (1.0, 10.0, 7.8902038341042123, 0.85418530832368161),
    (1.0, 100.0, 96.774707457591448, 0.98503788000815684),
    (1.0, 1000.0, 995.62680863963998, 0.99850037537549303),
    (1.0, 10000.0, 9994.4758537789321, 0.99985000375037505),
    (1.0, 100000.0, 99993.324594984291, 0.99998500003750038),
    (4.5, 0.0001, -48.523507953576747, 9.0909090902733634e-6),
    (4.5, 0.01, -27.800237571631925, 0.00090909027336377123),
    (4.5, 1.0, -7.0316793954844578, 0.090280964114669712),
    (4.5, 10.0, 6.8955388756849491, 0.60492267678143781),
    (4.5, 100.0, 96.677988467676933, 0.95100963289258063),
    (4.5, 1000.0, 995.61717883901345, 0.99501000996482988),
    (4.5, 10000.0, 9994.4748912308189, 0.9995001000099965),
    (4.5, 100000.0, 99993.32449873381, 0.99995000100001),
    (49.5, 0.0001, -636.74188934120946, 9.900990099000384e-7),
    (49.5, 0.01, -408.78596463979894, 9.9009900038355293e-5),
    (49.5, 1.0, -180.82509067129444, 0.0099000385347205657),
    (49.5, 10.0, -66.359379275253848, 0.098075699810172479),
    (49.5, 100.0, 84.706735075631243, 0.61679081973625973),
    (49.5, 1000.0, 994.40182138561482, 0.95122547444199806),
    (49.5, 10000.0, 9994.353385405372, 0.99501225115012343),
    (49.5, 100000.0, 99993.31234867331, 0.99950012250121751),
    (50.0, 0.0001, -643.65214457853041, 9.8039215686182094e-7),
    (50.0, 0.01, -413.39363478897879, 9.8039214762073778e-5),
    (50.0, 1.0, -183.13022425000768, 0.009802997538795657),
    (50.0, 10.0, -67.517957737694268, 0.097131730858885977),
    (50.0, 100.0, 84.466243435178783, 0.61403405402801524),
    (50.0, 1000.0, 994.37694421545868, 0.95075034350704747),
    (50.0, 10000.0, 9994.350897791248, 0.99496249992192287),
    (50.0, 100000.0, 99993.312099922076, 0.99949512498874208),
    (100.0, 0.0001, -1354.0881308091515, 4.9504950495037494e-7),
    (100.0, 0.01, -893.5711119628424, 4.9504950374915187e-5),
    (100.0, 1.0, -433.05161839406589, 0.0049503749209588489),
    (100.0, 10.0, -202.54835893742074, 0.049385390157885816),
    (100.0, 100.0, 49.889332070791557, 0.41172023044427724),
    (100.0, 1000.0, 990.62897285223026, 0.90449239544710514),
    (100.0, 10000.0, 9993.9758829465155, 0.99000000250025002),
    (100.0, 100000.0, 99993.274599738481, 0.99899549999237495),
    (499.0, 0.0001, -7546.9561390772568, 9.9999999999999007e-8),
    (499.0, 0.01, -5248.9762162192042, 9.9999999990019962e-6),
    (499.0, 1.0, -2950.9957934613961, 0.00099999900199799603),
    (499.0, 10.0, -1801.9563345517965, 0.0099990021947641492),
    (499.0, 100.0, -648.04099545423619, 0.099021395665281644),
    (499.0, 1000.0, 873.48051327608123, 0.61818681291010496),
    (499.0, 10000.0, 9982.0278134535284, 0.95129435390594035),
    (499.0, 100000.0, 99992.079591342678, 0.99501745008449839),
    (1000.0, 0.0001, -15815.615731024289, 4.9950049950049828e-8),
    (1000.0, 0.01, -11210.445545011225, 4.9950049948804937e-6),
    (1000.0, 1.0, -6605.27510929789, 0.00049950037499918975),
    (1000.0, 10.0, -4302.665291340331, 0.0049948804998331012),
    (1000.0, 100.0, -1997.6107728110014, 0.049826164773211871),
    (1000.0, 1000.0, 528.29388709365664, 0.41396362870340701),
    (1000.0, 10000.0, 9944.514958153077, 0.90493805599096857),
    (1000.0, 100000.0, 99988.324616650712, 0.9900449992375205),
];
const LGAMMA_REF: [(f64, f64); 8] = [
    (0.001, 6.9071788853838537),
    (0.1, 2.2527126517342059),
    (0.5, 0.57236494292470009),
    (1.5, -0.12078223763524522),
    (3.7, 1.4280723266653881),
    (12.0, 17.502307845873886),
    (150.25, 601.26150403249973),
    (1000.5, 5908.6741758486775),
];

#[test]
fn log_bessel_i_and_ratio_match_mpmath() {
    // Tolerance 1e-8 relative in I_ν (absolute in ln I where |ln I| < 1), 100× the
    // issue's 1e-6: Debye's truncation error is < 1e-10 at ν ≥ 50 and the downward
    // recurrence adds at most ~50 roundings.
    for (nu, x, log_i, ratio) in BESSEL_REF {
        let got = log_bessel_i(nu, x);
        assert!(
            (got - log_i).abs() <= 1e-8 * log_i.abs().max(1.0),
            "ln I_{nu}({x}) = {got}, mpmath {log_i}"
        );
        let d = (2.0 * nu + 2.0) as usize;
        if (d as f64 - (2.0 * nu + 2.0)).abs() < 1e-12 {
            let got = bessel_ratio(d, x);
            assert!(
                (got / ratio - 1.0).abs() < 1e-8,
                "A_{d}({x}) = {got}, mpmath {ratio}"
            );
        }
    }
    // A_3(κ) = coth κ − 1/κ in closed form.
    for k in [0.01f64, 0.7, 5.0, 300.0] {
        assert!((bessel_ratio(3, k) - (1.0 / k.tanh() - 1.0 / k)).abs() < 1e-10 * (1.0 / k.tanh()));
    }
    assert!(
        log_bessel_i(-1.0, 1.0).is_nan()
            && log_bessel_i(1.0, 0.0).is_nan()
            && bessel_ratio(1, 1.0).is_nan()
    );
}

#[test]
fn lgamma_matches_mpmath() {
    for (x, reference) in LGAMMA_REF {
        let got = lgamma(x);
        // Lanczos (g = 7, n = 9): 1e-13 relative (absolute near the zeros at 1 and 2).
        assert!(
            (got - reference).abs() <= 1e-13 * reference.abs().max(1.0) * 10.0,
            "lgamma({x}) = {got}, mpmath {reference}"
        );
    }
    assert!(lgamma(0.0).is_nan() && lgamma(-1.5).is_nan());
}

#[test]
fn log_normalizer_gradient_matches_finite_difference() {
    let device = common::device().autodiff();
    for (d, k) in [(3usize, 0.5f64), (10, 7.0), (100, 250.0), (3, 1e4)] {
        let kappa = Tensor::<1>::from_floats([k as f32], &device).require_grad();
        let mu = Tensor::<2>::zeros([1, d], &device).slice_fill([0..1, 0..1], 1.0);
        let q = VonMisesFisher::new(mu, kappa.clone()).unwrap();
        let grads = q.log_normalizer().sum().backward();
        let got = kappa.grad(&grads).unwrap().into_scalar::<f32>() as f64;
        // Central difference of the f64 host function, h = 1e-5 κ: truncation O(h²).
        let h = 1e-5 * k;
        let fd = (vmf_log_normalizer(d, k + h) - vmf_log_normalizer(d, k - h)) / (2.0 * h);
        // The gradient passes through f32: 1e-5 relative.
        assert!(
            (got - fd).abs() <= 1e-5 * fd.abs().max(1e-3),
            "d {d}, κ {k}: {got} vs {fd}"
        );
    }
}

/// A fixed unit vector in R^d that is not a coordinate axis.
fn direction(d: usize) -> Vec<f64> {
    let v: Vec<f64> = (0..d).map(|i| ((i as f64) * 1.3 + 0.4).sin()).collect();
    let n = v.iter().map(|x| x * x).sum::<f64>().sqrt();
    v.into_iter().map(|x| x / n).collect()
}

#[test]
fn sampler_matches_the_exact_w_marginal_and_mean() {
    // n = 4000 draws per (d, κ), host seed 2024; KS at α = 0.001 (D_crit = 1.949/√n);
    // means within 4 standard errors.
    let device = common::device();
    device.seed(2024);
    let n = 4000;
    let mut rng = StdRng::seed_from_u64(2024);
    for d in [3usize, 10, 100] {
        let mu_host = direction(d);
        let mu_row: Vec<f32> = mu_host.iter().map(|&v| v as f32).collect();
        let mu = Tensor::<2>::from_data(TensorData::new(mu_row, [1, d]), &device).repeat_dim(0, n);
        for k in [0.1f64, 1.0, 10.0, 100.0, 1e4] {
            let q = VonMisesFisher::new(mu.clone(), Tensor::full([n], k, &device)).unwrap();
            let z: Vec<f32> = q
                .sample_with_rng(&mut rng)
                .try_into_vec_as::<f32>()
                .unwrap();
            let mut w = Vec::with_capacity(n);
            let mut coordinate_sums = vec![0.0f64; d];
            for row in z.chunks(d) {
                let norm: f64 = row.iter().map(|&v| (v as f64).powi(2)).sum::<f64>().sqrt();
                assert!((norm - 1.0).abs() < 1e-5, "‖z‖ = {norm} (d {d}, κ {k})");
                w.push(
                    row.iter()
                        .zip(&mu_host)
                        .map(|(&a, &b)| a as f64 * b)
                        .sum::<f64>(),
                );
                for (s, &v) in coordinate_sums.iter_mut().zip(row) {
                    *s += v as f64;
                }
            }
            // E[μᵀz] = A_d(κ)
            let (mean, sd) = mean_and_sd(&w);
            let a = bessel_ratio(d, k);
            assert!(
                (mean - a).abs() <= 4.0 * sd / (n as f64).sqrt() + 1e-6,
                "d {d}, κ {k}: mean w {mean} vs A_d {a}"
            );
            // E[z] = A_d μ: the tangent part averages out (checked on the first coordinate
            // against its own standard error bound sd_z ≤ 1).
            let z0 = coordinate_sums[0] / n as f64;
            assert!(
                (z0 - a * mu_host[0]).abs() < 4.0 / (n as f64).sqrt(),
                "d {d}, κ {k}: E[z_0] {z0}"
            );
            // KS test of u = 1 − w against the exact CDF: density ∝ e^{−κu} (u(2 − u))^{(d−3)/2}.
            let exact = ExactCdf::new(|u| {
                -k * u + (d as f64 - 3.0) / 2.0 * (u * (2.0 - u)).max(1e-300).ln()
            });
            let ks = exact.ks_statistic(&w);
            assert!(
                ks < 1.949 / (n as f64).sqrt(),
                "d {d}, κ {k}: KS statistic {ks}"
            );
        }
    }
}

#[test]
fn kl_to_uniform_matches_monte_carlo_and_entropy_is_consistent() {
    // 20,000 draws, seed 5: |closed form − MC| < 4 standard errors.
    let device = common::device();
    device.seed(5);
    let (n, d, k) = (20_000, 10, 5.0f32);
    let mu = Tensor::<2>::zeros([n, d], &device).slice_fill([0..n, 2..3], 1.0);
    let q = VonMisesFisher::new(mu, Tensor::full([n], k, &device)).unwrap();
    let prior = UniformSphere::new(d).unwrap();
    let z = q.sample_with_rng(&mut StdRng::seed_from_u64(5));
    let mc = host(&(q.log_prob(&z) - prior.log_prob(&z)));
    let (mean, sd) = mean_and_sd(&mc);
    let se = sd / (n as f64).sqrt();
    let kl = q.kl(&prior).narrow(0, 0, 1).into_scalar::<f32>() as f64;
    assert!((mean - kl).abs() < 4.0 * se, "KL {kl} vs MC {mean} ± {se}");
    // H = ln|S| − KL for the uniform reference.
    let h = q.entropy().narrow(0, 0, 1).into_scalar::<f32>() as f64;
    assert!((h - (prior.log_surface_area() - kl)).abs() < 1e-4);
}

#[test]
fn gradients_reach_a_learned_kappa_through_the_sample() {
    // With ε fixed, w = (1 − (1 + b)ε)/(1 − (1 − b)ε), b = (d−1)/(2κ + √(4κ² + (d−1)²)).
    let w_host = |k: f64, eps: f64, d: f64| {
        let b = (d - 1.0) / (2.0 * k + (4.0 * k * k + (d - 1.0).powi(2)).sqrt());
        (1.0 - (1.0 + b) * eps) / (1.0 - (1.0 - b) * eps)
    };
    let device = common::device().autodiff();
    let (d, k, eps) = (5usize, 3.0f64, 0.3f64);
    let kappa = Tensor::<1>::from_floats([k as f32], &device).require_grad();
    let mu = Tensor::<2>::zeros([1, d], &device).slice_fill([0..1, 0..1], 1.0);
    let q = VonMisesFisher::new(mu.clone(), kappa.clone()).unwrap();
    let noise = Tensor::<2>::from_floats([[0.3, -1.0, 0.5, 0.2, 0.9]], &device);
    let z = q
        .sample_with_noise(Tensor::from_floats([eps as f32], &device), noise)
        .unwrap();
    let w = (z * mu).sum();
    assert!((w.clone().into_scalar::<f32>() as f64 - w_host(k, eps, d as f64)).abs() < 1e-6);
    let grads = w.backward();
    let got = kappa.grad(&grads).unwrap().into_scalar::<f32>() as f64;
    let h = 1e-4;
    let fd = (w_host(k + h, eps, d as f64) - w_host(k - h, eps, d as f64)) / (2.0 * h);
    assert!((got - fd).abs() < 1e-4 * fd.abs(), "dw/dκ {got} vs {fd}");
}

#[test]
fn bad_parameters_are_errors() {
    let device = common::device();
    let mu = Tensor::<2>::from_floats([[1.0, 0.0, 0.0]], &device);
    for k in [0.0f32, -1.0, f32::NAN, f32::INFINITY] {
        match VonMisesFisher::new(mu.clone(), Tensor::from_floats([k], &device)) {
            Err(Error::InvalidConfig { field, .. }) => assert_eq!(field, "kappa"),
            other => panic!("κ = {k}: expected InvalidConfig, got {other:?}"),
        }
    }
    let zero = Tensor::<2>::zeros([1, 3], &device);
    assert!(matches!(
        VonMisesFisher::new(zero, Tensor::from_floats([1.0], &device)),
        Err(Error::InvalidConfig {
            field: "mean_direction",
            ..
        })
    ));
    let one_dim = Tensor::<2>::ones([1, 1], &device);
    assert!(matches!(
        VonMisesFisher::new(one_dim, Tensor::from_floats([1.0], &device)),
        Err(Error::ShapeMismatch { .. })
    ));
    assert!(matches!(
        VonMisesFisher::new(mu, Tensor::from_floats([1.0, 2.0], &device)),
        Err(Error::ShapeMismatch { .. })
    ));
    assert!(UniformSphere::new(1).is_err());
}

mod vmf_vae {
    use super::*;
    use elbo::data::{Binarization, ImageData, TrainData};
    use elbo::models::{VmfKappa, VmfVaeConfig};
    use elbo::objective::{LikelihoodConfig, log_likelihood};
    use elbo::train::{FitConfig, fit};
    use elbo::{Encoder, LatentVariableModel};

    fn mnist(n: usize) -> ImageData {
        ImageData::new(common::mnist_train(n), Binarization::Dynamic)
    }

    #[test]
    fn fixed_kappa_has_the_constant_closed_form_kl_and_trains() {
        let device = common::device();
        device.seed(8);
        let (d, k) = (8usize, 20.0f64);
        let config = VmfVaeConfig::new(784, d)
            .with_hidden(vec![128])
            .with_kappa(VmfKappa::Fixed(k));
        let mut fit_config = FitConfig::new(6, 32);
        fit_config.progress = false;
        let (model, history) = fit(
            config.init(&device).unwrap(),
            &config,
            &mnist(512),
            &fit_config,
            &device,
        )
        .unwrap();
        // KL = κ A_d(κ) + ln C_d(κ) + ln|S^{d−1}|, in f64 from the host functions.
        let expected = k * bessel_ratio(d, k)
            + vmf_log_normalizer(d, k)
            + UniformSphere::new(d).unwrap().log_surface_area();
        for e in &history.epochs {
            assert!(
                (e.kl - expected).abs() < 1e-4 * expected,
                "epoch {}: KL {} vs {expected}",
                e.epoch,
                e.kl
            );
        }
        let (first, last) = (history.epochs[0].neg_bound, history.epochs[5].neg_bound);
        assert!(first - last > 50.0, "−ELBO went from {first} to {last}");
        // The shared estimator works on it unchanged.
        let model = burn::module::Module::valid(&model);
        let x = mnist(8)
            .batch(
                &(0..8).collect::<Vec<_>>(),
                &mut StdRng::seed_from_u64(1),
                &device,
            )
            .unwrap();
        let ll = log_likelihood(&model, &x, &LikelihoodConfig::new(20)).unwrap();
        assert!(ll.mean.is_finite() && ll.mean < 0.0);
    }

    #[test]
    fn learned_kappa_receives_gradients_and_trains() {
        let device = common::device();
        device.seed(9);
        let config = VmfVaeConfig::new(784, 8)
            .with_hidden(vec![128])
            .with_kappa(VmfKappa::Learned);
        let model = config.init(&device).unwrap();
        let x = mnist(64)
            .batch(
                &(0..64).collect::<Vec<_>>(),
                &mut StdRng::seed_from_u64(2),
                &device,
            )
            .unwrap();
        let kappa_before = model.encoder.encode(&x).kappa().mean().into_scalar::<f32>();
        let mut fit_config = FitConfig::new(6, 32);
        fit_config.progress = false;
        let (model, history) = fit(model, &config, &mnist(512), &fit_config, &device).unwrap();
        let kappa_after = burn::module::Module::valid(&model)
            .encoder
            .encode(&x)
            .kappa()
            .mean()
            .into_scalar::<f32>();
        assert!(
            (kappa_after - kappa_before).abs() > 0.1,
            "κ moved from {kappa_before} to {kappa_after}"
        );
        assert!(history.epochs[0].neg_bound - history.epochs[5].neg_bound > 50.0);
        let terms = model
            .elbo(&x.to_device(&device.clone().autodiff()))
            .unwrap();
        assert!(terms.kl_total().min().into_scalar::<f32>() >= 0.0);
    }

    #[test]
    fn invalid_vmf_configs_are_errors() {
        let device = common::device();
        assert!(matches!(
            VmfVaeConfig::new(4, 1).init(&device),
            Err(Error::InvalidConfig {
                field: "latent_dim",
                ..
            })
        ));
        for k in [0.0, -2.0, f64::NAN] {
            assert!(matches!(
                VmfVaeConfig::new(4, 3)
                    .with_kappa(VmfKappa::Fixed(k))
                    .init(&device),
                Err(Error::InvalidConfig { field: "kappa", .. })
            ));
        }
        // A learned κ cannot start at or below 1 (κ = softplus(·) + 1).
        for k in [1.0, 0.5, f64::NAN, f64::INFINITY] {
            assert!(matches!(
                VmfVaeConfig::new(4, 3)
                    .with_kappa(VmfKappa::LearnedFrom(k))
                    .init(&device),
                Err(Error::InvalidConfig { .. })
            ));
        }
    }

    #[test]
    fn a_learned_kappa_starts_where_asked_and_then_learns() {
        // softplus(ln(e^{κ₀−1} − 1)) + 1 = κ₀ exactly in f64; f32 rounding of the bias:
        // 1e-4 relative. The κ layer's weights start at zero but receive gradients.
        let device = common::device().autodiff();
        for k0 in [1.5, 20.0, 100.0] {
            let model = VmfVaeConfig::new(16, 3)
                .with_hidden(vec![8])
                .with_kappa(VmfKappa::LearnedFrom(k0))
                .init(&device)
                .unwrap();
            let x =
                Tensor::<2>::random([5, 16], burn::tensor::Distribution::Bernoulli(0.5), &device);
            let kappa = host(&model.encode(&x).unwrap().kappa());
            for k in &kappa {
                assert!((k - k0).abs() < 1e-4 * k0, "κ {k} vs κ₀ {k0}");
            }
            let terms = model.elbo(&x).unwrap();
            let grads = terms.elbo().sum().backward();
            let layer = model.encoder.head.kappa.as_ref().unwrap();
            let g = host(&layer.weight.val().grad(&grads).unwrap().abs().sum());
            assert!(g[0] > 0.0, "no gradient reached the κ layer at κ₀ {k0}");
        }
    }
}

#[test]
fn sampler_on_the_circle_has_the_right_mean() {
    // d = 2 (S¹, the smallest sphere): the marginal density of w has integrable
    // singularities at ±1, so this checks E[μᵀz] = A_2(κ) = I_1(κ)/I_0(κ) and ‖z‖ = 1
    // (4000 draws, host seed 7, within 4 standard errors) rather than a KS test.
    let device = common::device();
    let n = 4000;
    let mut rng = StdRng::seed_from_u64(7);
    let mu = Tensor::<2>::from_floats([[0.6, -0.8]], &device).repeat_dim(0, n);
    for k in [0.1f64, 1.0, 10.0, 100.0] {
        let q = VonMisesFisher::new(mu.clone(), Tensor::full([n], k, &device)).unwrap();
        let z: Vec<f32> = q
            .sample_with_rng(&mut rng)
            .try_into_vec_as::<f32>()
            .unwrap();
        let w: Vec<f64> = z
            .chunks(2)
            .map(|row| {
                let norm = ((row[0] as f64).powi(2) + (row[1] as f64).powi(2)).sqrt();
                assert!((norm - 1.0).abs() < 1e-5, "‖z‖ = {norm} (κ {k})");
                0.6 * row[0] as f64 - 0.8 * row[1] as f64
            })
            .collect();
        let (mean, sd) = mean_and_sd(&w);
        let a = bessel_ratio(2, k);
        assert!(
            (mean - a).abs() <= 4.0 * sd / (n as f64).sqrt() + 1e-6,
            "κ {k}: mean w {mean} vs A_2 {a}"
        );
    }
}
