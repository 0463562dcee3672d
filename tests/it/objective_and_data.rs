//! The training objectives against hand computations, and the data pipeline's randomness
//! against its stated distribution.

use crate::common;

use burn::tensor::{Device, Tensor};
use elbo::data::{
    Binarization, ImageData, Images, SentenceData, TrainData, bucketed_batches, shuffled_batches,
};
use elbo::objective::{ElboObjective, ElboTerms, bits_per_dim, nats_from_bits_per_dim};
use rand::RngExt as _;
use rand::SeedableRng;
use rand::rngs::StdRng;

fn terms(device: &Device) -> ElboTerms {
    // Two examples, two KL groups.
    ElboTerms::new(
        Tensor::from_floats([-10.0, -14.0], device),
        vec![
            Tensor::from_floats([0.2, 0.4], device),
            Tensor::from_floats([3.0, 5.0], device),
        ],
    )
}

#[test]
fn elbo_objective_applies_beta_free_bits_and_warmup() {
    let device = common::device();
    let t = terms(&device);
    let scalar = |x: Tensor<1>| x.into_scalar::<f32>() as f64;
    // Plain −ELBO: mean rec 12, mean KLs 0.3 + 4.0.
    assert!((scalar(ElboObjective::default().loss(&t, 0)) - 16.3).abs() < 1e-5);
    assert!((scalar(t.elbo().mean()) + 16.3).abs() < 1e-5);
    // β = 0.5.
    let beta = ElboObjective {
        beta: 0.5,
        ..Default::default()
    };
    assert!((scalar(beta.loss(&t, 0)) - (12.0 + 0.5 * 4.3)).abs() < 1e-5);
    // Free bits λ = 1: group 1's mean 0.3 is lifted to 1, group 2's 4.0 is kept.
    let free = ElboObjective {
        free_bits: 1.0,
        ..Default::default()
    };
    assert!((scalar(free.loss(&t, 0)) - (12.0 + 1.0 + 4.0)).abs() < 1e-5);
    // Warm-up over 100 steps: β = 0.25 at step 25, 1 from step 100 on.
    let warm = ElboObjective {
        warmup_steps: 100,
        ..Default::default()
    };
    assert_eq!(warm.beta_at(0), 0.0);
    assert!((scalar(warm.loss(&t, 25)) - (12.0 + 0.25 * 4.3)).abs() < 1e-5);
    assert_eq!(warm.beta_at(250), 1.0);
}

#[test]
fn warmup_start_and_kl_balancing_follow_nvae() {
    let device = common::device();
    let mut t = terms(&device);
    t.group_dims = vec![1, 4];
    let scalar = |x: Tensor<1>| x.into_scalar::<f32>() as f64;
    let objective = ElboObjective {
        warmup_steps: 10,
        warmup_start: 1e-4,
        kl_balancing: true,
        ..Default::default()
    };
    // β_t = max(1e-4, t / 10).
    assert_eq!(objective.beta_at(0), 1e-4);
    assert_eq!(objective.beta_at(5), 0.5);
    // Hand computation of NVAE's coefficients: mean |KL| + 0.01 = (0.31, 4.01), total 4.32;
    // divided by α = (1, 4) and times the total: (1.3392, 4.3308); divided by their mean
    // 2.835: c = (0.472381, 1.527619). Loss at step 5 = 12 + 0.5 (0.3 c_0 + 4.0 c_1).
    let c0 = 0.31 * 4.32 / 2.835;
    let c1 = 4.01 / 4.0 * 4.32 / 2.835;
    let expected = 12.0 + 0.5 * (0.3 * c0 + 4.0 * c1);
    // f32 arithmetic on numbers ~10: 1e-4 absolute.
    assert!((scalar(objective.loss(&t, 5)) - expected).abs() < 1e-4);
    // Once β has reached its target the balancing is off: the plain −ELBO.
    assert!((scalar(objective.loss(&t, 10)) - 16.3).abs() < 1e-5);
    // Without group sizes the groups count as equal: c ∝ mean |KL| + 0.01.
    t.group_dims.clear();
    let (r0, r1) = (0.31 * 4.32, 4.01 * 4.32);
    let (e0, e1) = (r0 / ((r0 + r1) / 2.0), r1 / ((r0 + r1) / 2.0));
    let expected = 12.0 + 0.5 * (0.3 * e0 + 4.0 * e1);
    assert!((scalar(objective.loss(&t, 5)) - expected).abs() < 1e-4);
    // warmup_start outside [0, 1] is rejected.
    let bad = ElboObjective {
        warmup_start: 1.5,
        ..Default::default()
    };
    assert!(bad.validate().is_err());
}

#[test]
fn bits_per_dim_round_trips() {
    // 784 dims, 100 nats: 100 / (784 ln 2) = 0.18401... bits/dim.
    let b = bits_per_dim(100.0, 784);
    assert!((b - 100.0 / (784.0 * std::f64::consts::LN_2)).abs() < 1e-12);
    assert!((nats_from_bits_per_dim(b, 784) - 100.0).abs() < 1e-9);
}

#[test]
fn shuffled_batches_cover_every_example_once() {
    let mut rng = StdRng::seed_from_u64(5);
    let batches = shuffled_batches(1000, 128, &mut rng);
    assert_eq!(batches.len(), 8);
    assert_eq!(batches.last().unwrap().len(), 1000 - 7 * 128);
    let mut all: Vec<usize> = batches.concat();
    assert_ne!(all[..10], (0..10).collect::<Vec<_>>()[..], "shuffled");
    all.sort_unstable();
    assert_eq!(all, (0..1000).collect::<Vec<_>>());
}

#[test]
fn bucketed_batches_cover_every_example_once_with_little_padding() {
    // 5000 lengths uniform on 1..=64 (as the sentence corpus), batches of 64. A padded batch
    // costs its longest member: random batches waste about a third of their tokens on
    // padding (E[max of 64] ≈ 63 against a mean of 32.5), pools of 32 sorted batches
    // under 5% (a batch spans about 64·64/2048 = 2 lengths). Bounds: shuffled > 40%,
    // bucketed < 10%.
    let mut rng = StdRng::seed_from_u64(3);
    let lengths: Vec<usize> = (0..5000).map(|_| rng.random_range(1..=64)).collect();
    let waste = |batches: &[Vec<usize>]| {
        let (mut padded, mut used) = (0usize, 0usize);
        for b in batches {
            let longest = b.iter().map(|&i| lengths[i]).max().unwrap();
            padded += longest * b.len();
            used += b.iter().map(|&i| lengths[i]).sum::<usize>();
        }
        1.0 - used as f64 / padded as f64
    };
    let shuffled = shuffled_batches(lengths.len(), 64, &mut rng);
    let first = bucketed_batches(&lengths, 64, &mut rng);
    let second = bucketed_batches(&lengths, 64, &mut rng);
    assert_eq!(first.len(), shuffled.len());
    assert_eq!(first.iter().filter(|b| b.len() != 64).count(), 1);
    let mut all = first.concat();
    all.sort_unstable();
    assert_eq!(all, (0..lengths.len()).collect::<Vec<_>>());
    assert!(
        waste(&shuffled) > 0.40,
        "shuffled waste {}",
        waste(&shuffled)
    );
    assert!(waste(&first) < 0.10, "bucketed waste {}", waste(&first));
    // Random batches each epoch: the two epochs group the examples differently.
    assert_ne!(first[0], second[0]);
    let firsts: Vec<usize> = first.iter().map(|b| lengths[b[0]]).collect();
    assert!(
        firsts.windows(2).any(|w| w[0] > w[1]),
        "batch order is shuffled"
    );

    // Sentence data batches this way in the fit loop.
    let data = SentenceData {
        sequences: lengths.iter().map(|&n| vec![4; n]).collect(),
    };
    let batches = data.epoch_batches(64, &mut rng);
    assert!(waste(&batches) < 0.10);
}

#[test]
fn dynamic_binarisation_draws_fresh_bernoulli_pixels() {
    // 4000 pixels of grey 51 (p = 0.2): the mean of the draw is within 4 standard errors
    // (sqrt(0.2·0.8/4000) = 0.0063) of 0.2, and two epochs differ.
    let device = common::device();
    let images = Images {
        count: 10,
        channels: 1,
        rows: 20,
        cols: 20,
        pixels: vec![51; 4000],
    };
    let data = ImageData::new(images.clone(), Binarization::Dynamic);
    let mut rng = StdRng::seed_from_u64(9);
    let indices: Vec<usize> = (0..10).collect();
    let a = data
        .batch(&indices, &mut rng, &device)
        .unwrap()
        .try_into_vec_as::<f32>()
        .unwrap();
    let b = data
        .batch(&indices, &mut rng, &device)
        .unwrap()
        .try_into_vec_as::<f32>()
        .unwrap();
    let mean = a.iter().sum::<f32>() as f64 / a.len() as f64;
    assert!(
        (mean - 0.2).abs() < 4.0 * (0.2f64 * 0.8 / 4000.0).sqrt(),
        "{mean}"
    );
    assert!(a.iter().all(|&v| v == 0.0 || v == 1.0));
    assert_ne!(a, b, "a fresh draw per batch");
    // A fixed binarisation is the same every time and for the same seed.
    let fixed = ImageData::new(images.clone(), Binarization::Fixed { seed: 3 });
    let c = fixed
        .batch(&indices, &mut rng, &device)
        .unwrap()
        .try_into_vec_as::<f32>()
        .unwrap();
    let d = fixed
        .batch(&indices, &mut rng, &device)
        .unwrap()
        .try_into_vec_as::<f32>()
        .unwrap();
    assert_eq!(c, d);
    assert_eq!(c, images.binarize_fixed(3));
    // Grey mode scales to [0, 1].
    let grey = ImageData::new(images, Binarization::Grey);
    let g = grey
        .batch(&[0], &mut rng, &device)
        .unwrap()
        .try_into_vec_as::<f32>()
        .unwrap();
    assert!(g.iter().all(|&v| (v - 0.2).abs() < 1e-6));
}

/// The binarisation drawn on the device: levels 0, 51, 128 and 255 (p = 0, 0.2, 0.502, 1)
/// over 4000 copies of one image give per-level means within 4 standard errors
/// (`sqrt(p(1 − p)/4000)`, at most 0.0079) of p, exactly 0 and 1 at the ends; every value
/// is 0 or 1; the same device seed gives the same draw and another seed another one; an
/// index past the end is an error.
#[test]
fn binarisation_on_the_device_draws_bernoulli_pixels_from_the_device_stream() {
    let device = common::device();
    let levels = [0u8, 51, 128, 255];
    let images = Images {
        count: 1,
        channels: 1,
        rows: 1,
        cols: 4,
        pixels: levels.to_vec(),
    };
    let data = ImageData::new(images, Binarization::DynamicOnDevice);
    let mut rng = StdRng::seed_from_u64(0);
    let indices = vec![0usize; 4000];
    let mut draw = |seed: u64| {
        device.seed(seed);
        data.batch(&indices, &mut rng, &device)
            .unwrap()
            .try_into_vec_as::<f32>()
            .unwrap()
    };
    let a = draw(5);
    assert!(a.iter().all(|&v| v == 0.0 || v == 1.0));
    for (j, &level) in levels.iter().enumerate() {
        let p = level as f64 / 255.0;
        let mean = a.iter().skip(j).step_by(4).map(|&v| v as f64).sum::<f64>() / 4000.0;
        let se = (p * (1.0 - p) / 4000.0).sqrt();
        assert!(
            (mean - p).abs() <= 4.0 * se,
            "level {level}: mean {mean}, p {p}"
        );
    }
    assert_eq!(a, draw(5), "the device's seed fixes the draw");
    assert_ne!(a, draw(6), "another seed, another draw");
    assert!(data.batch(&[1], &mut rng, &device).is_err());
}

/// A model with known log weights: `log w_ij = x_i − j` for draw `j` of example `i` (the
/// draws counted within each call), so that every estimate is a closed form and no random
/// stream is involved.
struct KnownWeights;

impl elbo::LatentVariableModel for KnownWeights {
    type Input = Tensor<2>;

    fn elbo(&self, x: &Tensor<2>) -> elbo::Result<ElboTerms> {
        let [b, _] = x.dims();
        Ok(ElboTerms {
            reconstruction: x.clone().reshape([b]),
            kl: vec![],
            group_dims: vec![],
        })
    }

    fn log_importance_weights(&self, x: &Tensor<2>, k: usize) -> elbo::Result<Tensor<2>> {
        let [b, _] = x.dims();
        let offsets: Vec<f32> = (0..k).map(|j| -(j as f32)).collect();
        let offsets = Tensor::<1>::from_floats(offsets.as_slice(), &x.device());
        Ok(x.clone().expand([b, k]) + offsets.reshape([1, k]))
    }
}

/// `log_likelihood` and `log_likelihood_parallel` (2 and 3 threads taking chunks of 3
/// examples in turns, 8 examples, so the shares differ in size) return the same estimates
/// in the order of the examples: `x_i + log((1/K) Σ_{chunks} Σ_j e^{−j})` with the draws
/// counted per sample chunk of 4 (K = 10: chunks of 4, 4, 2), to 1e-5 (f32 log weights).
#[test]
fn parallel_likelihood_keeps_the_examples_in_order() {
    use elbo::objective::{LikelihoodConfig, log_likelihood, log_likelihood_parallel};
    let device = common::device();
    let values: Vec<f32> = (0..8).map(|i| (i as f32 * 1.7).sin() * 3.0).collect();
    let x = Tensor::<2>::from_data(
        burn::tensor::TensorData::new(values.clone(), [8, 1]),
        &device,
    );
    let config = LikelihoodConfig::new(10)
        .with_example_chunk(3)
        .with_sample_chunk(4);
    let per_call = |n: usize| (0..n).map(|j| (-(j as f64)).exp()).sum::<f64>();
    let offset = ((2.0 * per_call(4) + per_call(2)) / 10.0).ln();
    let sequential = log_likelihood(&KnownWeights, &x, &config).unwrap();
    for threads in [1, 2, 3] {
        let parallel = log_likelihood_parallel(&KnownWeights, &x, &config, threads).unwrap();
        assert_eq!(parallel.per_example.len(), 8);
        for (i, (&p, &s)) in parallel
            .per_example
            .iter()
            .zip(&sequential.per_example)
            .enumerate()
        {
            let want = values[i] as f64 + offset;
            assert!(
                (p - want).abs() < 1e-5,
                "{threads} threads, example {i}: {p} vs {want}"
            );
            assert!(
                (s - want).abs() < 1e-5,
                "sequential, example {i}: {s} vs {want}"
            );
        }
    }
    assert!(log_likelihood_parallel(&KnownWeights, &x, &config, 0).is_err());
}
