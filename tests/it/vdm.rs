//! Variational Diffusion Models. The noise schedule: the fixed line, the learned network's
//! values and derivative against the formula evaluated in f64 on the host, its
//! monotonicity for any weights (a property test over random and adversarial parameters),
//! bad configurations. The bound: exactness on Gaussian data with the optimal predictor
//! plugged in (diffusion loss in continuous and discrete time, prior and reconstruction
//! terms, against closed forms), the 8-bit decoder against quadrature, ancestral sampling,
//! and bad input.

use crate::common;

use burn::module::{Module, Param};
use burn::tensor::{Tensor, activation};
use common::host;
use elbo::models::ddpm::Denoiser;
use elbo::models::vdm::{
    DiffusionTime, GammaSchedule, GammaScheduleConfig, ScheduleKind, Vdm, VdmConfig, VdmData,
};
use elbo::{Error, LatentVariableModel};
use rand::RngExt;
use rand::SeedableRng;
use rand::rngs::StdRng;

/// The learned schedule's parameters on the host: `(γ_0, r, w₁, w₂, b₂, w₃)`.
struct HostParams {
    gamma_0: f64,
    range: f64,
    w1: f64,
    w2: Vec<f64>,
    b2: Vec<f64>,
    w3: Vec<f64>,
}

impl HostParams {
    fn of(schedule: &GammaSchedule) -> Self {
        let net = schedule.network.as_ref().expect("a learned schedule");
        HostParams {
            gamma_0: host(&net.gamma_0.val())[0],
            range: host(&net.range.val())[0],
            w1: host(&net.w1.val())[0],
            w2: host(&net.w2.val()),
            b2: host(&net.b2.val()),
            w3: host(&net.w3.val()),
        }
    }

    /// The network `n(t)` by the module docs' formula, in f64.
    fn network(&self, t: f64) -> f64 {
        let m = self.w2.len() as f64;
        let nonlinear: f64 = (0..self.w2.len())
            .map(|j| {
                let h = self.w2[j].abs() * (2.0 * t - 1.0) + self.b2[j];
                self.w3[j].abs() * (2.0 / (1.0 + (-h).exp()) - 1.0)
            })
            .sum();
        self.w1.abs() * t + nonlinear / m
    }

    /// `n(1) − n(0)`.
    fn rise(&self) -> f64 {
        self.network(1.0) - self.network(0.0)
    }

    /// `γ(t) = γ_0 + |r| (n(t) − n(0)) / (n(1) − n(0))`, in f64.
    fn gamma(&self, t: f64) -> f64 {
        self.gamma_0 + self.range.abs() * (self.network(t) - self.network(0.0)) / self.rise()
    }
}

/// Replaces the network's parameters with the given host values.
fn set_params(schedule: &mut GammaSchedule, p: &HostParams) {
    let device = common::device();
    let to = |v: &[f64]| {
        let v: Vec<f32> = v.iter().map(|&x| x as f32).collect();
        Param::from_tensor(Tensor::<1>::from_floats(v.as_slice(), &device))
    };
    let net = schedule.network.as_mut().expect("a learned schedule");
    net.gamma_0 = to(&[p.gamma_0]);
    net.range = to(&[p.range]);
    net.w1 = to(&[p.w1]);
    net.w2 = to(&p.w2);
    net.b2 = to(&p.b2);
    net.w3 = to(&p.w3);
}

fn grid(n: usize) -> Vec<f64> {
    (0..n).map(|i| i as f64 / (n - 1) as f64).collect()
}

fn on_device(times: &[f64]) -> Tensor<1> {
    let t: Vec<f32> = times.iter().map(|&v| v as f32).collect();
    Tensor::<1>::from_floats(t.as_slice(), &common::device())
}

/// The fixed schedule is the line from `γ_min` to `γ_max` with slope `γ_max − γ_min`
/// (f32 values of order 10: 1e-5).
#[test]
fn fixed_schedule_is_the_line_between_its_endpoints() {
    let device = common::device();
    let schedule = GammaScheduleConfig::new()
        .with_gamma_min(-10.0)
        .with_gamma_max(6.0)
        .init(&device)
        .unwrap();
    assert!(!schedule.is_learned());
    let times = grid(11);
    let (gamma, slope) = schedule.gamma_and_slope(on_device(&times));
    for ((t, g), s) in times.iter().zip(host(&gamma)).zip(host(&slope)) {
        assert!((g - (-10.0 + 16.0 * t)).abs() < 1e-5, "γ({t}) = {g}");
        assert!((s - 16.0).abs() < 1e-5, "γ'({t}) = {s}");
    }
}

/// The learned schedule's `γ(t)` against the formula in f64 (1e-4 absolute: f32 sums of
/// 64 terms of order 1), and its analytic `γ'(t)` against central differences of that f64
/// formula (step 1e-4: truncation O(h² γ''') below 1e-5 here; 1e-3 relative to the
/// largest slope for the f32 sum). Starts at the fixed schedule's endpoints plus the
/// network's part, then after the parameters are moved away from their initial values.
#[test]
fn learned_schedule_and_its_slope_match_the_formula() {
    let device = common::device();
    let mut schedule = GammaScheduleConfig::new()
        .with_kind(ScheduleKind::Learned { features: 64 })
        .init(&device)
        .unwrap();
    assert!(schedule.is_learned());
    let mut rng = StdRng::seed_from_u64(3);
    for round in 0..2 {
        if round == 1 {
            let p = HostParams {
                gamma_0: -7.0,
                range: -12.0, // used as |r|
                w1: -9.0,     // used as |w₁|
                w2: (0..64).map(|_| rng.random_range(-6.0..6.0)).collect(),
                b2: (0..64).map(|_| rng.random_range(-4.0..4.0)).collect(),
                w3: (0..64).map(|_| rng.random_range(-20.0..20.0)).collect(),
            };
            set_params(&mut schedule, &p);
        }
        let p = HostParams::of(&schedule);
        let times = grid(41);
        let (gamma, slope) = schedule.gamma_and_slope(on_device(&times));
        let (gamma, slope) = (host(&gamma), host(&slope));
        let max_slope = slope.iter().fold(0f64, |m, v| m.max(v.abs()));
        let h = 1e-4;
        for (i, &t) in times.iter().enumerate() {
            assert!(
                (gamma[i] - p.gamma(t)).abs() < 1e-4,
                "round {round}: γ({t}) = {} vs {}",
                gamma[i],
                p.gamma(t)
            );
            let numeric = (p.gamma(t + h) - p.gamma(t - h)) / (2.0 * h);
            assert!(
                (slope[i] - numeric).abs() < 1e-3 * max_slope,
                "round {round}: γ'({t}) = {} vs {numeric}",
                slope[i]
            );
        }
    }
}

/// Monotone for any weights: over 200 random parameter sets (signs mixed, magnitudes from
/// 1e-3 to 1e3, a few with `w₁ = 0`), `γ` on a grid of 513 times never decreases by more
/// than the f32 rounding of its terms (64 ulp of their summed size; a weight used with its
/// sign would make it fall by the size of that weight), and `γ'` is never negative.
#[test]
fn learned_schedule_is_monotone_for_any_weights() {
    let device = common::device();
    let mut schedule = GammaScheduleConfig::new()
        .with_kind(ScheduleKind::Learned { features: 16 })
        .init(&device)
        .unwrap();
    let mut rng = StdRng::seed_from_u64(7);
    let draw = |rng: &mut StdRng| {
        let scale = 10f64.powf(rng.random_range(-3.0..3.0));
        rng.random_range(-1.0..1.0) * scale
    };
    let times = grid(513);
    for case in 0..200 {
        let p = HostParams {
            gamma_0: draw(&mut rng),
            range: draw(&mut rng),
            w1: if case % 10 == 0 { 0.0 } else { draw(&mut rng) },
            w2: (0..16).map(|_| draw(&mut rng)).collect(),
            b2: (0..16).map(|_| draw(&mut rng)).collect(),
            w3: (0..16).map(|_| draw(&mut rng)).collect(),
        };
        set_params(&mut schedule, &p);
        let (gamma, slope) = schedule.gamma_and_slope(on_device(&times));
        let (gamma, slope) = (host(&gamma), host(&slope));
        // f32 rounding: of `n`'s terms (as large as the parameters make them), magnified by
        // the rescaling to `ĝ`, times |r|, plus that of `γ_0 + |r| ĝ`.
        let size_n = p.w1.abs() + p.w3.iter().map(|w| w.abs()).sum::<f64>() / 16.0;
        let magnified = size_n / p.rise().max(1e-30);
        let rounding =
            64.0 * f32::EPSILON as f64 * (p.gamma_0.abs() + p.range.abs() * (1.0 + magnified));
        for i in 1..gamma.len() {
            assert!(
                gamma[i] >= gamma[i - 1] - rounding,
                "case {case}: γ({}) = {} < γ({}) = {}",
                times[i],
                gamma[i],
                times[i - 1],
                gamma[i - 1]
            );
        }
        assert!(
            slope.iter().all(|&s| s >= 0.0),
            "case {case}: a negative slope"
        );
    }
}

/// `γ_min ≥ γ_max`, non-finite endpoints and an empty network are configuration errors
/// naming the field.
#[test]
fn bad_schedules_are_errors() {
    let device = common::device();
    for (config, field) in [
        (GammaScheduleConfig::new().with_gamma_min(5.0), "gamma_min"),
        (
            GammaScheduleConfig::new()
                .with_gamma_min(1.0)
                .with_gamma_max(0.0),
            "gamma_min",
        ),
        (
            GammaScheduleConfig::new().with_gamma_min(f64::NAN),
            "gamma_min",
        ),
        (
            GammaScheduleConfig::new().with_gamma_max(f64::INFINITY),
            "gamma_max",
        ),
        (
            GammaScheduleConfig::new().with_kind(ScheduleKind::Learned { features: 0 }),
            "features",
        ),
    ] {
        match config.init(&device) {
            Err(Error::InvalidConfig { field: f, .. }) => assert_eq!(f, field),
            other => panic!("expected an error naming {field}, got {other:?}"),
        }
    }
}

/// The optimal ε-predictor for data `x ~ N(m, s² I)`: `ε̂(z; γ) = E[ε | z_γ] =
/// σ (z − α m) / (α² s² + σ²)`, reading `γ` back from the model's time input
/// `1000 (γ − γ_min)/(γ_max − γ_min)`.
#[derive(Module, Debug)]
struct OptimalGaussian {
    #[module(skip)]
    m: f64,
    #[module(skip)]
    s: f64,
    #[module(skip)]
    gamma_min: f64,
    #[module(skip)]
    gamma_max: f64,
}

impl Denoiser for OptimalGaussian {
    fn predict(&self, z: Tensor<4>, t: Tensor<1>) -> elbo::Result<Tensor<4>> {
        let [b, _, _, _] = z.dims();
        let gamma = t
            .mul_scalar((self.gamma_max - self.gamma_min) / 1000.0)
            .add_scalar(self.gamma_min)
            .reshape([b, 1, 1, 1]);
        let var = activation::sigmoid(gamma.clone());
        let alpha2 = activation::sigmoid(gamma.neg());
        let denominator = alpha2.clone().mul_scalar(self.s * self.s) + var.clone();
        Ok((z - alpha2.sqrt().mul_scalar(self.m)) * var.sqrt() / denominator)
    }
}

const M: f64 = 0.3;
const S: f64 = 0.7;
const D: usize = 16;

/// A VDM on continuous `[n, 16]` data (4×4 images) with the optimal predictor for
/// `N(0.3, 0.7²)` data, the given time and schedule.
fn gaussian_vdm(time: DiffusionTime, schedule: GammaScheduleConfig) -> Vdm<OptimalGaussian> {
    let device = common::device();
    let config = VdmConfig::new(1, 4, 4)
        .with_data(VdmData::Continuous)
        .with_time(time)
        .with_schedule(schedule.clone());
    let denoiser = OptimalGaussian {
        m: M,
        s: S,
        gamma_min: schedule.gamma_min,
        gamma_max: schedule.gamma_max,
    };
    Vdm::new(denoiser, &config, &device).unwrap()
}

fn gaussian_data(n: usize) -> Tensor<2> {
    Tensor::<2>::random(
        [n, D],
        burn::tensor::Distribution::Normal(M, S),
        &common::device(),
    )
}

/// The mean and standard error of a `[n]` tensor's values.
fn mean_se(t: &Tensor<1>) -> (f64, f64) {
    let v = host(t);
    let n = v.len() as f64;
    let mean = v.iter().sum::<f64>() / n;
    let var = v.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1.0);
    (mean, (var / n).sqrt())
}

/// The continuous-time diffusion loss of the optimal predictor:
/// `½ D [ln(1 + s² e^{−γ(0)}) − ln(1 + s² e^{−γ(1)})]` (the MMSE `α²s²/(α²s² + σ²)` per
/// dimension integrated against `dγ`: it depends on the endpoints only, VDM eq. 20).
fn continuous_loss(gamma_0: f64, gamma_1: f64) -> f64 {
    let s2 = S * S;
    0.5 * D as f64 * ((1.0 + s2 * (-gamma_0).exp()).ln() - (1.0 + s2 * (-gamma_1).exp()).ln())
}

/// The `T`-step diffusion loss of the optimal predictor:
/// `½ D Σ_i (e^{γ_i − γ_{i−1}} − 1) s² / (s² + e^{γ_i})`, `γ_i = γ(i/T)`.
fn discrete_loss(gamma: &dyn Fn(f64) -> f64, steps: usize) -> f64 {
    let s2 = S * S;
    (1..=steps)
        .map(|i| {
            let (g_t, g_s) = (
                gamma(i as f64 / steps as f64),
                gamma((i - 1) as f64 / steps as f64),
            );
            0.5 * D as f64 * (g_t - g_s).exp_m1() * s2 / (s2 + g_t.exp())
        })
        .sum()
}

/// A learned schedule with hand-set, clearly non-linear parameters (64 units).
fn curved_schedule() -> (Vdm<OptimalGaussian>, HostParams) {
    let schedule = GammaScheduleConfig::new()
        .with_kind(ScheduleKind::Learned { features: 64 })
        .with_gamma_min(-10.0)
        .with_gamma_max(6.0);
    let mut vdm = gaussian_vdm(DiffusionTime::Continuous, schedule);
    let p = HostParams {
        gamma_0: -9.0,
        range: 14.0,
        w1: 6.0,
        w2: (0..64)
            .map(|j| 4.0 + (j as f64 * 0.7).sin() * 3.0)
            .collect(),
        b2: (0..64).map(|j| 3.0 + (j as f64 * 1.3).cos()).collect(),
        w3: (0..64)
            .map(|j| 10.0 + (j as f64 * 0.4).sin() * 6.0)
            .collect(),
    };
    set_params(&mut vdm.schedule, &p);
    (vdm, p)
}

/// Exactness on Gaussian data, continuous time: with the optimal predictor plugged in, the
/// Monte Carlo mean of the diffusion loss over 20,000 examples (one `t` and `ε` each, the
/// low-discrepancy sampler) is the closed form within 4 standard errors, for the fixed
/// linear schedule and for a hand-set curved learned one with other endpoints (whose
/// closed form uses only its endpoints: the invariance of VDM eq. 20).
#[test]
fn continuous_diffusion_loss_is_exact_on_gaussian_data() {
    let fixed = gaussian_vdm(DiffusionTime::Continuous, GammaScheduleConfig::new());
    let (curved, p) = curved_schedule();
    // The same curve between the fixed schedule's endpoints: eq. 20 says the same loss.
    let (mut curved_same_ends, mut q) = curved_schedule();
    (q.gamma_0, q.range) = (-13.3, 18.3);
    set_params(&mut curved_same_ends.schedule, &q);
    let x = gaussian_data(20_000);
    for (name, vdm, want) in [
        ("fixed", &fixed, continuous_loss(-13.3, 5.0)),
        (
            "curved",
            &curved,
            continuous_loss(p.gamma(0.0), p.gamma(1.0)),
        ),
        (
            "curved, fixed's endpoints",
            &curved_same_ends,
            continuous_loss(-13.3, 5.0),
        ),
    ] {
        let (mean, se) = mean_se(&vdm.diffusion_loss(&x).unwrap());
        println!("continuous diffusion loss, {name}: {mean:.4} ± {se:.4} (closed form {want:.4})");
        assert!(
            (mean - want).abs() < 4.0 * se,
            "{name}: {mean} ± {se} vs the closed form {want}"
        );
    }
    // The curved schedule is far from linear: its midpoint is off the chord by > 1.
    let chord = 0.5 * (p.gamma(0.0) + p.gamma(1.0));
    assert!((p.gamma(0.5) - chord).abs() > 1.0);
}

/// Exactness in discrete time: the `T = 10` loss of the optimal predictor is its closed
/// form within 4 standard errors (20,000 examples), and the closed forms for T = 10, 100,
/// 1000 approach the continuous-time loss from above (`L_T` decreases in `T`) at rate
/// `1/T`, the last within 1 %.
#[test]
fn discrete_diffusion_loss_is_exact_and_tends_to_the_continuous_one() {
    let vdm = gaussian_vdm(
        DiffusionTime::Discrete { steps: 10 },
        GammaScheduleConfig::new(),
    );
    let fixed = |t: f64| -13.3 + 18.3 * t;
    let x = gaussian_data(20_000);
    let (mean, se) = mean_se(&vdm.diffusion_loss(&x).unwrap());
    let want = discrete_loss(&fixed, 10);
    assert!(
        (mean - want).abs() < 4.0 * se,
        "T = 10: {mean} ± {se} vs {want}"
    );
    let infinite = continuous_loss(-13.3, 5.0);
    let losses: Vec<f64> = [10, 100, 1000]
        .iter()
        .map(|&t| discrete_loss(&fixed, t))
        .collect();
    println!("T = 10: Monte Carlo {mean:.4} ± {se:.4}");
    for (t, l) in [10, 100, 1000].iter().zip(&losses) {
        println!(
            "T = {t}: closed form {l:.5}, minus T = ∞: {:.5}",
            l - infinite
        );
    }
    println!("T = ∞: closed form {infinite:.5}");
    assert!(losses[0] > losses[1] && losses[1] > losses[2] && losses[2] > infinite);
    // First order in 1/T: ten times the steps, a tenth of the gap (within 20 %).
    let ratio = (losses[1] - infinite) / (losses[2] - infinite);
    assert!(
        (8.0..12.0).contains(&ratio),
        "{losses:?} vs {infinite}: ratio {ratio}"
    );
    assert!(
        losses[2] - infinite < 0.01 * infinite,
        "{losses:?} vs {infinite}"
    );
}

/// The prior loss `KL(q(z_1 | x) ‖ N(0, I))` and the Gaussian reconstruction term against
/// their expectations over `x ~ N(m, s²)` and `ε`:
/// `½ D (σ_1² + α_1² (m² + s²) − ln σ_1² − 1)` and `−½ D (ln 2π + γ_0 + 1)`, within 4
/// standard errors over 20,000 examples.
#[test]
fn prior_and_reconstruction_terms_are_exact_on_gaussian_data() {
    let vdm = gaussian_vdm(DiffusionTime::Continuous, GammaScheduleConfig::new());
    let x = gaussian_data(20_000);
    let var_1 = 1.0 / (1.0 + (-5.0f64).exp());
    let want_prior = 0.5 * D as f64 * (var_1 + (1.0 - var_1) * (M * M + S * S) - var_1.ln() - 1.0);
    let (mean, se) = mean_se(&vdm.prior_loss(&x));
    assert!(
        (mean - want_prior).abs() < 4.0 * se.max(1e-9),
        "prior: {mean} ± {se} vs {want_prior}"
    );
    let want_rec = -0.5 * D as f64 * ((2.0 * std::f64::consts::PI).ln() - 13.3 + 1.0);
    let (mean, se) = mean_se(&vdm.reconstruction(&x, &x));
    assert!(
        (mean - want_rec).abs() < 4.0 * se,
        "reconstruction: {mean} ± {se} vs {want_rec}"
    );
    let terms = vdm.elbo(&x.narrow(0, 0, 8)).unwrap();
    assert_eq!(terms.kl.len(), 2);
    assert_eq!(terms.group_dims, vec![D, D]);
}

/// The 8-bit decoder: the expected `log p(k | z_0)` of a pixel at level `k` is
/// `∫ φ(ε) log softmax_j(−½ (x_k + e^{γ_0/2} ε − x_j)² e^{−γ_0})[k] dε`, computed here by a
/// 4001-point rule over `ε ∈ [−8, 8]` in f64; with `γ_0 = −8` (neighbouring levels
/// plausible) the Monte Carlo mean over 4,000 images of 16 pixels at levels 0, 100 and 255
/// matches it within 4 standard errors.
#[test]
fn eight_bit_decoder_matches_quadrature() {
    let device = common::device();
    let config =
        VdmConfig::new(1, 4, 4).with_schedule(GammaScheduleConfig::new().with_gamma_min(-8.0));
    let denoiser = OptimalGaussian {
        m: 0.0,
        s: 1.0,
        gamma_min: -8.0,
        gamma_max: 5.0,
    };
    let vdm = Vdm::new(denoiser, &config, &device).unwrap();
    let centre = |k: f64| 2.0 * (k + 0.5) / 256.0 - 1.0;
    let expected = |k: f64| {
        let (sd, n) = ((-4.0f64).exp(), 4001);
        let h = 16.0 / (n - 1) as f64;
        (0..n)
            .map(|i| {
                let eps = -8.0 + i as f64 * h;
                let z = centre(k) + sd * eps;
                let logit = |j: f64| -0.5 * ((z - centre(j)) / sd).powi(2);
                let max = (0..256).map(|j| logit(j as f64)).fold(f64::MIN, f64::max);
                let lse = max
                    + (0..256)
                        .map(|j| (logit(j as f64) - max).exp())
                        .sum::<f64>()
                        .ln();
                let weight = if i == 0 || i == n - 1 { 0.5 } else { 1.0 };
                weight * h * (-0.5 * eps * eps).exp() / (2.0 * std::f64::consts::PI).sqrt()
                    * (logit(k) - lse)
            })
            .sum::<f64>()
    };
    for k in [0.0, 100.0, 255.0] {
        let x = Tensor::<2>::full([4000, D], k / 255.0, &device);
        let (mean, se) = mean_se(&vdm.reconstruction(&x, &vdm.to_model_space(&x)));
        let want = D as f64 * expected(k);
        assert!(
            (mean - want).abs() < 4.0 * se,
            "level {k}: {mean} ± {se} vs {want}"
        );
    }
}

/// Ancestral sampling with the optimal predictor over 500 steps draws from close to the
/// data distribution: the sample mean of 2,000 × 16 values within 0.02 of `m` (4 SE is
/// 0.016) and their standard deviation within 3 % of `s` (the sampler's discretisation
/// and the finite sample).
#[test]
fn ancestral_samples_follow_gaussian_data() {
    let vdm = gaussian_vdm(DiffusionTime::Continuous, GammaScheduleConfig::new());
    let samples = host(&vdm.sample(2000, 500, false, &common::device()).unwrap());
    let n = samples.len() as f64;
    let mean = samples.iter().sum::<f64>() / n;
    let sd = (samples.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1.0)).sqrt();
    assert!((mean - M).abs() < 0.02, "mean {mean}");
    assert!((sd - S).abs() < 0.03 * S, "sd {sd}");
}

/// Bad input is an `Error`, never a panic: 8-bit values outside `[0, 1]`, NaN, a wrong
/// width, `T = 0`, and `n = 0` or `steps = 0` for the sampler.
#[test]
fn bad_vdm_input_is_an_error() {
    let device = common::device();
    let config = VdmConfig::new(1, 4, 4);
    let denoiser = OptimalGaussian {
        m: 0.0,
        s: 1.0,
        gamma_min: -13.3,
        gamma_max: 5.0,
    };
    let vdm = Vdm::new(denoiser.clone(), &config, &device).unwrap();
    let bad = [
        Tensor::<2>::full([2, 16], 1.5, &device),
        Tensor::<2>::full([2, 16], -0.1, &device),
        Tensor::<2>::full([2, 16], f32::NAN, &device),
        Tensor::<2>::full([2, 15], 0.5, &device),
    ];
    for x in bad {
        assert!(vdm.elbo(&x).is_err());
    }
    assert!(vdm.sample(0, 10, false, &device).is_err());
    assert!(vdm.sample(2, 0, false, &device).is_err());
    let zero_steps = config
        .clone()
        .with_time(DiffusionTime::Discrete { steps: 0 });
    assert!(Vdm::new(denoiser, &zero_steps, &device).is_err());
    assert!(zero_steps.validate().is_err());
}

/// `GradientScale`: the identity forward; backward, the gradient times the factors set
/// after the forward pass (exact: one product per element), and unchanged if none were set.
#[test]
fn gradient_scale_multiplies_the_gradient_by_late_factors() {
    use elbo::models::vdm::GradientScale;
    let device = common::device().autodiff();
    let x = Tensor::<1>::from_floats([1.0, -2.0, 0.5], &device).require_grad();
    let w = Tensor::<1>::from_floats([0.3, 0.7, -1.1], &device);
    let scale = GradientScale::new();
    let y = scale.apply(x.clone());
    assert_eq!(host(&y), host(&x));
    let loss = (y * w.clone()).sum();
    scale
        .set(&Tensor::<1>::from_floats([2.0, 3.0, 5.0], &device))
        .unwrap();
    let grads = loss.backward();
    let got = host(&x.grad(&grads).unwrap());
    let want = [0.6, 2.1, -5.5];
    for (g, w) in got.iter().zip(want) {
        assert!((g - w).abs() < 1e-6, "{got:?} vs {want:?}");
    }
    let unset = GradientScale::new();
    let grads = (unset.apply(x.clone()) * w).sum().backward();
    let got = host(&x.grad(&grads).unwrap());
    assert!((got[1] - 0.7).abs() < 1e-6, "{got:?}");
    let nan = Tensor::<1>::from_floats([f32::NAN], &device);
    assert!(scale.set(&nan).is_err());
}

/// The variance gradient of a learned schedule: at fixed times and noise, with the
/// optimal predictor for Gaussian data, the gradient of `Σ_i L_i` with
/// `ScheduleGradient::Variance` equals, for the shape's parameters (`w₁` and the `b₂`
/// vector), `Σ_i 2 L_i ∂L_i/∂η` computed one example at a time with the plain gradient, and
/// for the endpoints (`γ_0`, `r`) the plain `Σ_i ∂L_i/∂η` (1e-3 relative, f32 sums), while
/// the value is the same; continuous time and T = 10.
#[test]
fn variance_gradient_is_twice_the_loss_times_its_gradient() {
    use elbo::models::vdm::ScheduleGradient;
    let device = common::device().autodiff();
    for time in [
        DiffusionTime::Continuous,
        DiffusionTime::Discrete { steps: 10 },
    ] {
        let build = |gradient: ScheduleGradient| {
            let schedule = GammaScheduleConfig::new()
                .with_kind(ScheduleKind::Learned { features: 8 })
                .with_gamma_min(-10.0)
                .with_gamma_max(6.0);
            let config = VdmConfig::new(1, 4, 4)
                .with_data(VdmData::Continuous)
                .with_time(time)
                .with_schedule(schedule)
                .with_schedule_gradient(gradient);
            let denoiser = OptimalGaussian {
                m: M,
                s: S,
                gamma_min: -10.0,
                gamma_max: 6.0,
            };
            let mut vdm = Vdm::new(denoiser, &config, &device).unwrap();
            let p = HostParams {
                gamma_0: -9.0,
                range: 15.0,
                w1: 12.0,
                w2: (0..8).map(|j| 2.0 + j as f64 * 0.5).collect(),
                b2: (0..8).map(|j| (j as f64 * 1.1).sin()).collect(),
                w3: (0..8).map(|j| 3.0 + (j as f64 * 0.3).cos()).collect(),
            };
            let device_params = |v: &[f64]| {
                let v: Vec<f32> = v.iter().map(|&x| x as f32).collect();
                Param::from_tensor(Tensor::<1>::from_floats(v.as_slice(), &device))
            };
            let net = vdm.schedule.network.as_mut().unwrap();
            net.gamma_0 = device_params(&[p.gamma_0]);
            net.range = device_params(&[p.range]);
            net.w1 = device_params(&[p.w1]);
            net.w2 = device_params(&p.w2);
            net.b2 = device_params(&p.b2);
            net.w3 = device_params(&p.w3);
            vdm
        };
        let values: Vec<f32> = (0..3 * D)
            .map(|i| 0.3 + 0.7 * (i as f32 * 0.61).sin())
            .collect();
        let noise: Vec<f32> = (0..3 * D).map(|i| (i as f32 * 1.37).cos() * 1.2).collect();
        let u = [0.13f32, 0.52, 0.91];
        let rows = |v: &[f32], r: std::ops::Range<usize>| {
            Tensor::<1>::from_floats(&v[r.start * D..r.end * D], &device).reshape([r.len(), D])
        };
        let grads_of = |vdm: &Vdm<OptimalGaussian>, r: std::ops::Range<usize>| {
            let loss = vdm
                .diffusion_loss_at(
                    &rows(&values, r.clone()),
                    Tensor::<1>::from_floats(&u[r.clone()], &device),
                    rows(&noise, r),
                )
                .unwrap();
            let total = host(&loss.clone().sum())[0];
            let grads = loss.sum().backward();
            let net = vdm.schedule.network.as_ref().unwrap();
            let mut g = host(&net.w1.val().grad(&grads).unwrap());
            g.extend(host(&net.b2.val().grad(&grads).unwrap()));
            let mut ends = host(&net.gamma_0.val().grad(&grads).unwrap());
            ends.extend(host(&net.range.val().grad(&grads).unwrap()));
            (total, g, ends)
        };
        let variance = build(ScheduleGradient::Variance);
        let (total, got, got_ends) = grads_of(&variance, 0..3);
        let bound = build(ScheduleGradient::Bound);
        let mut want = vec![0.0; got.len()];
        let mut want_ends = vec![0.0; got_ends.len()];
        let mut total_bound = 0.0;
        for i in 0..3 {
            let (l, g, ends) = grads_of(&bound, i..i + 1);
            total_bound += l;
            for (w, gi) in want.iter_mut().zip(g) {
                *w += 2.0 * l * gi;
            }
            for (w, gi) in want_ends.iter_mut().zip(ends) {
                *w += gi;
            }
        }
        let size = want_ends.iter().fold(0f64, |m, v| m.max(v.abs()));
        assert!(
            size > 1e-3,
            "{time:?}: the endpoints' gradient vanished: {want_ends:?}"
        );
        for (g, w) in got_ends.iter().zip(&want_ends) {
            assert!(
                (g - w).abs() < 1e-3 * size,
                "{time:?} endpoints: {got_ends:?} vs {want_ends:?}"
            );
        }
        assert!(
            (total - total_bound).abs() < 1e-3 * total_bound.abs(),
            "{total} vs {total_bound}"
        );
        let size = want.iter().fold(0f64, |m, v| m.max(v.abs()));
        for (g, w) in got.iter().zip(&want) {
            assert!((g - w).abs() < 1e-3 * size, "{time:?}: {got:?} vs {want:?}");
        }
    }
}
