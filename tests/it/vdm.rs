//! The VDM noise schedule: the fixed line, the learned network's values and derivative
//! against the formula evaluated in f64 on the host, its monotonicity for any weights (a
//! property test over random and adversarial parameters), and bad configurations.

use crate::common;

use burn::module::Param;
use burn::tensor::Tensor;
use common::host;
use elbo::Error;
use elbo::models::vdm::{GammaSchedule, GammaScheduleConfig, ScheduleKind};
use rand::RngExt;
use rand::SeedableRng;
use rand::rngs::StdRng;

/// The learned schedule's parameters on the host: `(b₁, w₁, w₂, b₂, w₃)`.
struct HostParams {
    b1: f64,
    w1: f64,
    w2: Vec<f64>,
    b2: Vec<f64>,
    w3: Vec<f64>,
}

impl HostParams {
    fn of(schedule: &GammaSchedule) -> Self {
        let net = schedule.network.as_ref().expect("a learned schedule");
        HostParams {
            b1: host(&net.b1.val())[0],
            w1: host(&net.w1.val())[0],
            w2: host(&net.w2.val()),
            b2: host(&net.b2.val()),
            w3: host(&net.w3.val()),
        }
    }

    /// `γ(t)` by the module docs' formula, in f64.
    fn gamma(&self, t: f64) -> f64 {
        let n = self.w2.len() as f64;
        let nonlinear: f64 = (0..self.w2.len())
            .map(|j| {
                let h = self.w2[j].abs() * (2.0 * t - 1.0) + self.b2[j];
                self.w3[j].abs() * (2.0 / (1.0 + (-h).exp()) - 1.0)
            })
            .sum();
        self.b1 + self.w1.abs() * t + nonlinear / n
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
    net.b1 = to(&[p.b1]);
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
                b1: -7.0,
                w1: -9.0, // used as |w₁|
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
            b1: draw(&mut rng),
            w1: if case % 10 == 0 { 0.0 } else { draw(&mut rng) },
            w2: (0..16).map(|_| draw(&mut rng)).collect(),
            b2: (0..16).map(|_| draw(&mut rng)).collect(),
            w3: (0..16).map(|_| draw(&mut rng)).collect(),
        };
        set_params(&mut schedule, &p);
        let (gamma, slope) = schedule.gamma_and_slope(on_device(&times));
        let (gamma, slope) = (host(&gamma), host(&slope));
        // f32 rounding of a sum of terms as large as the parameters make them.
        let size = p.b1.abs() + p.w1.abs() + p.w3.iter().map(|w| w.abs()).sum::<f64>() / 16.0;
        let rounding = 64.0 * size * f32::EPSILON as f64;
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
