//! UniVAE: the segment masks against hand-built ones, information reaching the decoder only
//! through the latents, padding and odd lengths, the bound's terms, training, and bad input.

mod common;

use burn::module::Module;
use burn::tensor::{Device, Tensor};
use common::host;
use elbo::data::{CharVocab, TokenBatch};
use elbo::distributions::{UniformSphere, VonMisesFisher};
use elbo::models::univae::{Latents, UniVae, UniVaeConfig, visibility};
use elbo::{Batch, Error, KlDivergence, LatentVariableModel};

const SENTENCES: [&str; 4] = ["a", "abc", "the cat sat", "tac eht"];

fn vocab() -> CharVocab {
    CharVocab::from_sentences(SENTENCES)
}

/// A small model without dropout, so every pass is deterministic given the latents.
fn small(device: &Device) -> UniVae {
    UniVaeConfig::new(vocab().len())
        .with_d_model(16)
        .with_n_heads(2)
        .with_d_ff(32)
        .with_layers(3)
        .with_latent_layers(2)
        .with_latent_dim(4)
        .with_max_chars(12)
        .with_dropout(0.0)
        .init(device)
        .unwrap()
}

fn batch(sentences: &[&str], device: &Device) -> TokenBatch {
    let vocab = vocab();
    let ids: Vec<Vec<i64>> = sentences.iter().map(|s| vocab.encode(s)).collect();
    TokenBatch::new(&ids, device).unwrap()
}

fn max_abs_diff(a: &[f64], b: &[f64]) -> f64 {
    assert_eq!(a.len(), b.len());
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f64::max)
}

/// The masks for 3 encoder and 3 decoder positions, written out by hand from the paper's
/// description: `1` = may attend. Lower layers: two diagonal blocks (full, causal); latent
/// layers: the decoder rows also see column 0.
#[test]
fn masks_match_hand_built_ones() {
    let lower = [
        "111000", //
        "111000", //
        "111000", //
        "000100", //
        "000110", //
        "000111",
    ];
    let latent = [
        "111000", //
        "111000", //
        "111000", //
        "100100", //
        "100110", //
        "100111",
    ];
    let parse = |rows: [&str; 6]| -> Vec<Vec<bool>> {
        rows.iter()
            .map(|r| r.chars().map(|c| c == '1').collect())
            .collect()
    };
    assert_eq!(visibility(3, 3, false), parse(lower));
    assert_eq!(visibility(3, 3, true), parse(latent));
}

/// With the latents given, the decoder's logits are the same whatever sentence the encoder
/// segment holds, its first token included: the decoder reads the encoder only through the
/// latent slot. The masked scores are filled with −1e4 before the softmax, so their weights
/// are exactly 0 in f32 and the logits agree to rounding (1e-5 allowed). The contrast: with
/// the latents taken from the encoder (posterior means), changing the encoder sentence does
/// change the logits, by more than 100 times that allowance.
#[test]
fn the_decoder_reads_the_encoder_only_through_the_latents() {
    let device = common::device();
    device.seed(11);
    let model = small(&device);
    let decoder = batch(&["the cat sat", "abc"], &device);
    let encoder_a = batch(&["the cat sat", "abc"], &device);
    let encoder_b = batch(&["tac", "a cat sat th"], &device);
    let z = model.sample_latents(2, &device);
    let logits = |encoder: &TokenBatch, latents: Latents| {
        host(
            &model
                .forward_segments(encoder, &decoder, latents)
                .unwrap()
                .logits,
        )
    };
    let a = logits(&encoder_a, Latents::Given(z.clone()));
    let b = logits(&encoder_b, Latents::Given(z.clone()));
    assert!(max_abs_diff(&a, &b) < 1e-5, "{}", max_abs_diff(&a, &b));

    let a = logits(&encoder_a, Latents::Mean);
    let b = logits(&encoder_b, Latents::Mean);
    // At least 100 times the rounding allowance above (an untrained model's latents move
    // the logits by ~1e-2, the exact amount depending on the backend's initial weights).
    assert!(max_abs_diff(&a, &b) > 1e-3, "{}", max_abs_diff(&a, &b));
}

/// The decoder-only pass (the encoder segment cut down to its first position) gives the
/// decoder half of the full pass for the same latents, to f32 rounding (1e-4: the softmax
/// sums run over different numbers of exact zeros and the layer norms over the same rows).
#[test]
fn the_decoder_only_pass_equals_the_full_pass() {
    let device = common::device();
    device.seed(12);
    let model = small(&device);
    let x = batch(&SENTENCES, &device);
    let z = model.sample_latents(4, &device);
    let full = model.forward(&x, Latents::Given(z.clone())).unwrap().logits;
    let alone = model.decode_logits(x.inputs(), &z).unwrap();
    assert_eq!(full.dims(), alone.dims());
    let d = max_abs_diff(&host(&full), &host(&alone));
    assert!(d < 1e-4, "{d}");
}

/// Padding changes nothing: each sentence (of odd lengths 1, 3, 11 and 7 characters) gets
/// the same posterior means and the same decoder logits over its own positions alone as in
/// a padded batch with the others (1e-4: the same sums with extra exact zeros).
#[test]
fn padding_and_odd_lengths_change_nothing() {
    let device = common::device();
    device.seed(13);
    let model = small(&device);
    let x = batch(&SENTENCES, &device);
    let (_, z_batch) = model.encode(&x, true).unwrap();
    let out = model.forward(&x, Latents::Mean).unwrap();
    let steps = x.steps();
    let vocab = model.vocab_size();
    assert_eq!(out.logits.dims(), [4, steps, vocab]);
    for (row, sentence) in SENTENCES.iter().enumerate() {
        let alone = batch(&[sentence], &device);
        let n = alone.steps();
        assert_eq!(n, sentence.len() + 1);
        let (_, z_alone) = model.encode(&alone, true).unwrap();
        for (zb, za) in z_batch.iter().zip(&z_alone) {
            let zb = zb.clone().narrow(0, row, 1);
            let d = max_abs_diff(&host(&zb), &host(za));
            assert!(d < 1e-4, "{sentence:?}: latent differs by {d}");
        }
        let batched = out.logits.clone().narrow(0, row, 1).narrow(1, 0, n);
        let single = model.forward(&alone, Latents::Mean).unwrap().logits;
        let d = max_abs_diff(&host(&batched), &host(&single));
        assert!(d < 1e-4, "{sentence:?}: logits differ by {d}");
    }
}

/// The ELBO's reconstruction is the masked sum of the decoder's log-softmax at the targets
/// (recomputed here on the host from the same logits, with the latents of the same draw),
/// and each KL is the closed-form `KL(vMF(κ) ‖ U(S^{d−1}))`, a constant of κ and d, checked
/// against a vMF built independently of the model (1e-4 relative). The importance weights
/// have one column per draw.
#[test]
fn the_bound_is_the_sentence_log_likelihood_minus_constant_kls() {
    let device = common::device();
    device.seed(14);
    let model = small(&device);
    let x = batch(&SENTENCES, &device);
    let terms = model.elbo(&x).unwrap();
    assert_eq!(terms.kl.len(), 2);
    let d = model.latent_dim();
    let mu = Tensor::<2>::ones([1, d], &device).div_scalar((d as f64).sqrt());
    let q = VonMisesFisher::new(mu, Tensor::full([1], model.kappa(), &device)).unwrap();
    let expected = host(&q.kl(&UniformSphere::new(d).unwrap()))[0];
    assert!(expected > 0.0);
    for kl in &terms.kl {
        for v in host(kl) {
            assert!((v - expected).abs() < 1e-4 * expected, "{v} vs {expected}");
        }
    }

    let z = model.sample_latents(4, &device);
    let logits = model.forward(&x, Latents::Given(z)).unwrap().logits;
    let from_model = host(&UniVae::sentence_log_prob(logits.clone(), &x));
    let [_, steps, vocab] = logits.dims();
    let values = host(&logits);
    let targets: Vec<i64> = x.targets().try_into_vec_as::<i64>().unwrap();
    for (row, &n) in x.lengths().iter().enumerate() {
        let mut sum = 0.0;
        for t in 0..n {
            let l = &values[(row * steps + t) * vocab..(row * steps + t + 1) * vocab];
            let max = l.iter().copied().fold(f64::NEG_INFINITY, f64::max);
            let lse = max + l.iter().map(|v| (v - max).exp()).sum::<f64>().ln();
            sum += l[targets[row * steps + t] as usize] - lse;
        }
        assert!((sum - from_model[row]).abs() < 1e-4 * sum.abs().max(1.0));
    }

    let log_w = model.log_importance_weights(&x, 3).unwrap();
    assert_eq!(log_w.dims(), [4, 3]);
    assert!(host(&log_w).iter().all(|v| v.is_finite()));
}

/// Latents drawn from the prior are unit vectors, and greedy decoding from the same latents
/// is deterministic, ends every row within `max_chars` and emits no reserved id but the
/// end. The first character decoded is the argmax of the decoder's first-step logits over
/// the ids it may emit (all but padding and the begin marker).
#[test]
fn generation_from_latents() {
    let device = common::device();
    device.seed(15);
    let model = small(&device);
    let z = model.sample_latents(3, &device);
    for zl in &z {
        let norms = host(&zl.clone().powi_scalar(2).sum_dim(1).sqrt());
        assert!(norms.iter().all(|n| (n - 1.0).abs() < 1e-5));
    }
    let a = model.generate(&z, true).unwrap();
    let b = model.generate(&z, true).unwrap();
    assert_eq!(a.sequences(), b.sequences());
    let logits = host(
        &model
            .decode_logits(Tensor::full([3, 1], CharVocab::BOS, &device), &z)
            .unwrap(),
    );
    let vocab = model.vocab_size();
    let first: Vec<i64> = logits
        .chunks(vocab)
        .map(|row| {
            (CharVocab::EOS as usize..vocab)
                .max_by(|&i, &j| row[i].total_cmp(&row[j]))
                .unwrap() as i64
        })
        .collect();
    for (s, f) in a.sequences().iter().zip(first) {
        assert!(s.len() <= model.max_chars());
        assert!(s.iter().all(|&id| id > CharVocab::EOS));
        match s.first() {
            Some(&c) => assert_eq!(c, f),
            None => assert_eq!(f, CharVocab::EOS),
        }
    }
    let sampled = model.generate(&z, false).unwrap();
    assert_eq!(sampled.batch_size(), 3);
}

/// Sixty Adam steps on four sentences at least halve the reconstruction part of the
/// training loss (the negative bound per sentence minus the constant KL), from about
/// 6.5 ln 12 ≈ 16 nats at initialisation (6.5 predicted tokens per sentence at near-uniform
/// odds over 12 ids): the model, trained through the shared fit loop, memorises them.
#[test]
fn training_lowers_the_loss() {
    use elbo::data::SentenceData;
    use elbo::train::{FitConfig, fit};
    let device = common::device();
    device.seed(16);
    let config = UniVaeConfig::new(vocab().len())
        .with_d_model(16)
        .with_n_heads(2)
        .with_d_ff(32)
        .with_layers(2)
        .with_latent_layers(1)
        .with_latent_dim(4)
        .with_max_chars(12)
        .with_dropout(0.0);
    let model = config.init(&device).unwrap();
    let data = SentenceData::new(&SENTENCES, &vocab());
    let mut fit_config = FitConfig::new(60, 4);
    fit_config.progress = false;
    fit_config.learning_rate = 1e-2;
    let (model, history) = fit(model, &config, &data, &fit_config, &device).unwrap();
    let first = history.epochs[0].loss;
    let last = history.epochs.last().unwrap().loss;
    let kl = history.epochs.last().unwrap().kl;
    assert!(last - kl < 0.5 * (first - kl), "{first} → {last} (KL {kl})");
    let _ = model.valid();
}

#[test]
fn bad_input_is_an_error() {
    let device = common::device();
    let model = small(&device);
    // A sentence longer than max_chars = 12.
    let long = batch(&["the cat sat tac eht"], &device);
    assert!(matches!(model.elbo(&long), Err(Error::InvalidData { .. })));
    // Ids outside the model's vocabulary.
    let other = CharVocab::from_sentences(["xyzw qrstu!"]);
    let ids = vec![vec![other.len() as i64 + 3]];
    let foreign = TokenBatch::new(&ids, &device).unwrap();
    assert!(matches!(
        model.forward(&foreign, Latents::Mean),
        Err(Error::InvalidData { .. })
    ));
    // Characters outside the vocabulary, when asked to refuse them.
    assert!(matches!(
        vocab().try_encode("cats!"),
        Err(Error::InvalidData { .. })
    ));
    // Latents of the wrong number or width.
    let x = batch(&["abc"], &device);
    let z = model.sample_latents(1, &device);
    for wrong in [vec![z[0].clone()], vec![z[0].clone(); 3]] {
        assert!(matches!(
            model.forward(&x, Latents::Given(wrong)),
            Err(Error::ShapeMismatch { .. })
        ));
    }
    let wide = vec![Tensor::<2>::ones([1, 5], &device); 2];
    assert!(model.generate(&wide, true).is_err());
    assert!(model.generate(&[], true).is_err());
    // Mismatched segment batches, too many decoder steps, bad k.
    let two = batch(&["a", "abc"], &device);
    assert!(model.forward_segments(&x, &two, Latents::Mean).is_err());
    assert!(
        model
            .decode_logits(Tensor::full([1, 14], CharVocab::BOS, &device), &z)
            .is_err()
    );
    assert!(model.log_importance_weights(&x, 0).is_err());
    // Configs.
    let base = || UniVaeConfig::new(vocab().len());
    for bad in [
        UniVaeConfig::new(4),
        base().with_latent_layers(0),
        base().with_latent_layers(5),
        base().with_n_heads(5),
        base().with_latent_dim(1),
        base().with_kappa(0.0),
        base().with_kappa(f64::NAN),
        base().with_dropout(1.0),
        base().with_max_chars(0),
    ] {
        assert!(
            matches!(bad.validate(), Err(Error::InvalidConfig { .. })),
            "{bad:?}"
        );
    }
}
