//! UniVAE: the segment masks against hand-built ones, the model's two-segment pass against
//! the paper's one-sequence pass under those masks, information reaching the decoder only
//! through the latents, padding and odd lengths, the bound's terms, training, and bad input.

// burn's own `forward` is the independent reference of these tests (the models run
// their layers through `elbo::kernels::Run`).
#![allow(clippy::disallowed_methods)]

use crate::common;

use burn::module::Module;
use burn::tensor::{Bool, Device, Int, Tensor, TensorData};
use common::{host, max_abs_diff};
use elbo::data::{CharVocab, TokenBatch};
use elbo::distributions::{UniformSphere, VonMisesFisher};
use elbo::models::univae::{Latents, UniVae, UniVaeConfig, visibility};
use elbo::{Batch, Error, KlDivergence, LatentVariableModel};

const SENTENCES: [&str; 4] = ["a", "abc", "the cat sat", "tac eht"];

fn vocab() -> CharVocab {
    CharVocab::from_sentences(SENTENCES)
}

/// A tiny config without dropout (width 16, latents on `S^3`, at most 12 characters).
fn tiny(layers: usize, latent_layers: usize) -> UniVaeConfig {
    UniVaeConfig::new(vocab().len())
        .with_d_model(16)
        .with_n_heads(2)
        .with_d_ff(32)
        .with_layers(layers)
        .with_latent_layers(latent_layers)
        .with_latent_dim(4)
        .with_max_chars(12)
        .with_dropout(0.0)
}

/// A small model without dropout, so every pass is deterministic given the latents.
fn small(device: &Device) -> UniVae {
    tiny(3, 2).init(device).unwrap()
}

fn batch(sentences: &[&str], device: &Device) -> TokenBatch {
    let vocab = vocab();
    let ids: Vec<Vec<i64>> = sentences.iter().map(|s| vocab.encode(s)).collect();
    TokenBatch::new(&ids, device).unwrap()
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

/// The paper's one-sequence pass, built here from the model's public parts: `[x ; x]` with
/// segment embeddings 0 and 1, every layer over the whole sequence with the [`visibility`]
/// masks and the encoder's padding hidden as keys, and at each latent layer the first
/// position's state replaced by `W_up z_l`, `z_l` given or the posterior mean direction
/// `normalize(W_down h₀)`. Returns the decoder segment's logits and the latents used.
/// (`small` has no dropout, so none is applied here.)
fn one_sequence_pass(
    model: &UniVae,
    encoder: &TokenBatch,
    decoder: &TokenBatch,
    given: Option<&[Tensor<2>]>,
) -> (Tensor<3>, Vec<Tensor<2>>) {
    let device = encoder.device();
    let embed = |tokens: Tensor<2, Int>, segment: i64| {
        let [batch, len] = tokens.dims();
        let positions = Tensor::<1, Int>::arange(0..len as i64, &device)
            .reshape([1, len])
            .repeat_dim(0, batch);
        let segments = Tensor::<2, Int>::full([batch, len], segment, &device);
        model.token_embedding.forward(tokens)
            + model.position_embedding.forward(positions)
            + model.segment_embedding.forward(segments)
    };
    let (enc, dec) = (encoder.tokens().clone(), decoder.inputs());
    let [batch, s0] = enc.dims();
    let s1 = dec.dims()[1];
    let s = s0 + s1;
    let mut h = Tensor::cat(vec![embed(enc, 0), embed(dec, 1)], 1);
    let d = h.dims()[2];
    let pad: Vec<bool> = encoder
        .lengths()
        .iter()
        .flat_map(|&n| (0..s).map(move |j| j < s0 && j > n))
        .collect();
    let pad = Tensor::<2, Bool>::from_data(TensorData::new(pad, [batch, s]), &device);
    let mask = |latent_layer: bool| {
        let blocked: Vec<bool> = visibility(s0, s1, latent_layer)
            .concat()
            .into_iter()
            .map(|seen| !seen)
            .collect();
        Tensor::<2, Bool>::from_data(TensorData::new(blocked, [s, s]), &device)
            .reshape([1, s, s])
            .expand([batch, s, s])
    };
    let first_latent = model.layers.len() - model.slots.len();
    let mut zs = Vec::new();
    for (i, layer) in model.layers.iter().enumerate() {
        let latent_layer = i >= first_latent;
        if latent_layer {
            let slot = &model.slots[i - first_latent];
            let z = match given {
                Some(z) => z[i - first_latent].clone(),
                None => {
                    let mu = slot
                        .down
                        .forward(h.clone().narrow(1, 0, 1).reshape([batch, d]));
                    mu.clone() / mu.powi_scalar(2).sum_dim(1).sqrt()
                }
            };
            let state = slot.up.forward(z.clone()).reshape([batch, 1, d]);
            h = Tensor::cat(vec![state, h.narrow(1, 1, s - 1)], 1);
            zs.push(z);
        }
        h = layer.forward(h, Some(pad.clone()), Some(mask(latent_layer)));
    }
    let logits = model
        .output
        .forward(model.norm.forward(h.narrow(1, s0, s1)));
    (logits, zs)
}

/// The model runs its encoder and decoder segments as separate sequences; the paper runs
/// one sequence `[x ; x]` under the [`visibility`] masks (built above, independently of the
/// model's passes). They agree: posterior mean directions and decoder logits to 1e-4 (the
/// same sums, the one-sequence pass with extra terms whose softmax weights are exactly 0,
/// since masked scores are filled with −1e4).
///
/// And the masks let information reach the decoder only through the latents: with the
/// latents given, the one-sequence pass gives the same decoder logits whatever sentence the
/// encoder segment holds, its first token included (1e-5), and those of the model's
/// decoder; with the latents taken from the encoder, changing the encoder sentence changes
/// the logits by more than 1e-3 (an untrained model's latents move them by ~1e-2).
#[test]
fn the_two_segment_pass_equals_the_one_sequence_pass_of_the_paper() {
    let device = common::device();
    device.seed(11);
    let model = small(&device);
    let x = batch(&SENTENCES, &device);
    let (logits, z) = one_sequence_pass(&model, &x, &x, None);
    let out = model.forward(&x, Latents::Mean).unwrap();
    assert_eq!(out.logits.dims(), logits.dims());
    let d = max_abs_diff(&host(&out.logits), &host(&logits));
    assert!(d < 1e-4, "logits differ by {d}");
    for (a, b) in out.z.iter().zip(&z) {
        let d = max_abs_diff(&host(a), &host(b));
        assert!(d < 1e-4, "latents differ by {d}");
    }

    let decoder = batch(&["the cat sat", "abc"], &device);
    let encoder_a = batch(&["the cat sat", "abc"], &device);
    let encoder_b = batch(&["tac", "a cat sat th"], &device);
    let z = model.sample_latents(2, &device);
    let (a, _) = one_sequence_pass(&model, &encoder_a, &decoder, Some(&z));
    let (b, _) = one_sequence_pass(&model, &encoder_b, &decoder, Some(&z));
    let (a, b) = (host(&a), host(&b));
    assert!(max_abs_diff(&a, &b) < 1e-5, "{}", max_abs_diff(&a, &b));
    let model_logits = host(&model.decode_logits(decoder.inputs(), &z).unwrap());
    let d = max_abs_diff(&a, &model_logits);
    assert!(d < 1e-4, "decoder logits differ by {d}");

    let (a, _) = one_sequence_pass(&model, &encoder_a, &decoder, None);
    let (b, _) = one_sequence_pass(&model, &encoder_b, &decoder, None);
    let d = max_abs_diff(&host(&a), &host(&b));
    assert!(d > 1e-3, "{d}");
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
/// end. `generate` keeps each layer's keys and values between steps; the same greedy
/// decoding done here step by step through `decode_logits` (the whole prefix recomputed
/// each step, no cache) gives the same sentences. (The two paths' logits differ by float
/// rounding, ~1e-6, so only an exact near-tie could make them pick different characters.)
#[test]
fn generation_from_latents() {
    let device = common::device();
    device.seed(15);
    let model = small(&device);
    let rows = 3;
    let z = model.sample_latents(rows, &device);
    for zl in &z {
        let norms = host(&zl.clone().powi_scalar(2).sum_dim(1).sqrt());
        assert!(norms.iter().all(|n| (n - 1.0).abs() < 1e-5));
    }
    let a = model.generate(&z, true).unwrap();
    let b = model.generate(&z, true).unwrap();
    assert_eq!(a.sequences(), b.sequences());
    for s in a.sequences() {
        assert!(s.len() <= model.max_chars());
        assert!(s.iter().all(|&id| id > CharVocab::EOS));
    }

    let vocab = model.vocab_size();
    let mut prefix: Vec<Vec<i64>> = vec![vec![CharVocab::BOS]; rows];
    let mut expected: Vec<Vec<i64>> = vec![Vec::new(); rows];
    let mut done = vec![false; rows];
    for step in 1..=model.max_chars() + 1 {
        let inputs =
            Tensor::<2, Int>::from_data(TensorData::new(prefix.concat(), [rows, step]), &device);
        let logits = host(&model.decode_logits(inputs, &z).unwrap());
        for row in 0..rows {
            let last = &logits[(row * step + step - 1) * vocab..(row * step + step) * vocab];
            // The ids a decoder may emit: the end marker and the characters.
            let id = (CharVocab::EOS as usize..vocab)
                .max_by(|&i, &j| last[i].total_cmp(&last[j]))
                .unwrap() as i64;
            if !done[row] {
                if id == CharVocab::EOS || expected[row].len() == model.max_chars() {
                    done[row] = true;
                } else {
                    expected[row].push(id);
                }
            }
            prefix[row].push(id);
        }
        if done.iter().all(|&d| d) {
            break;
        }
    }
    assert_eq!(a.sequences(), expected);
    let sampled = model.generate(&z, false).unwrap();
    assert_eq!(sampled.batch_size(), rows);
}

/// Beam search: with a beam of 1 it is greedy decoding; with a beam at least as large as
/// the number of partial sentences it is exact, so it must return the most probable
/// sentence, found here by scoring every sentence of at most 3 characters (820 of them:
/// the 9 ids a decoder may emit besides the end marker, lengths 0 to 3) with
/// `sentence_log_prob` for each of two latents.
#[test]
fn beam_search_is_greedy_at_width_one_and_exact_when_wide() {
    let device = common::device();
    device.seed(18);
    let model = tiny(3, 2).with_max_chars(3).init(&device).unwrap();
    let rows = 2;
    let z = model.sample_latents(rows, &device);
    assert_eq!(
        model.generate_beam(&z, 1).unwrap().sequences(),
        model.generate(&z, true).unwrap().sequences()
    );

    let chars: Vec<i64> = (CharVocab::UNK..model.vocab_size() as i64).collect();
    let mut all: Vec<Vec<i64>> = vec![Vec::new()];
    let mut frontier: Vec<Vec<i64>> = vec![Vec::new()];
    for _ in 0..3 {
        frontier = frontier
            .iter()
            .flat_map(|s| chars.iter().map(move |&c| [s.clone(), vec![c]].concat()))
            .collect();
        all.extend(frontier.iter().cloned());
    }
    assert_eq!(all.len(), 1 + 9 + 81 + 729);
    let x = TokenBatch::new(&all, &device).unwrap();
    let beam = model.generate_beam(&z, 1000).unwrap().sequences();
    for (row, found) in beam.iter().enumerate() {
        let picks = Tensor::<1, Int>::from_data(
            TensorData::new(vec![row as i64; all.len()], [all.len()]),
            &device,
        );
        let z_row: Vec<Tensor<2>> = z
            .iter()
            .map(|z| z.clone().select(0, picks.clone()))
            .collect();
        let logits = model.forward(&x, Latents::Given(z_row)).unwrap().logits;
        let log_p = host(&UniVae::sentence_log_prob(logits, &x));
        let best = (0..all.len())
            .max_by(|&i, &j| log_p[i].total_cmp(&log_p[j]))
            .unwrap();
        assert_eq!(
            found,
            &all[best],
            "row {row}: log p {} vs best {}",
            {
                let i = all.iter().position(|s| s == found).unwrap();
                log_p[i]
            },
            log_p[best]
        );
    }
    assert!(model.generate_beam(&z, 0).is_err());
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
    let config = tiny(2, 1);
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

/// Token dropout replaces decoder inputs by the unknown id during training only. The
/// decoder's logits at step `t` read inputs `0..=t`, so in a training pass they equal the
/// evaluation pass's at step 0 always (the begin marker is never dropped), and at step 1
/// unless input 1 was dropped. Over 400 rows with `token_dropout = 0.3` the fraction of
/// rows whose step-1 logits changed is within 4 standard errors (4·0.023) of 0.3; the
/// evaluation pass (no autodiff) equals a model without token dropout.
#[test]
fn token_dropout_corrupts_decoder_inputs_in_training_only() {
    let device = common::device();
    device.seed(17);
    let train = device.clone().autodiff();
    let model = tiny(2, 1).with_token_dropout(0.3).init(&train).unwrap();
    let rows = 400;
    let sentences = vec!["the cat sat"; rows];
    let x = batch(&sentences, &train);
    let z = model.sample_latents(rows, &train);
    let trained = model.forward(&x, Latents::Given(z.clone())).unwrap().logits;
    let eval_model = model.valid();
    let x_eval = batch(&sentences, &device);
    let z_eval: Vec<Tensor<2>> = z
        .iter()
        .map(|z| Tensor::from_data(z.to_data(), &device))
        .collect();
    let eval = eval_model
        .forward(&x_eval, Latents::Given(z_eval.clone()))
        .unwrap()
        .logits;
    let vocab = model.vocab_size();
    let steps = x.steps();
    let (trained, eval) = (host(&trained), host(&eval));
    let step = |v: &[f64], row: usize, t: usize| {
        v[(row * steps + t) * vocab..(row * steps + t + 1) * vocab].to_vec()
    };
    let mut changed = 0;
    for row in 0..rows {
        assert!(max_abs_diff(&step(&trained, row, 0), &step(&eval, row, 0)) < 1e-5);
        if max_abs_diff(&step(&trained, row, 1), &step(&eval, row, 1)) > 1e-5 {
            changed += 1;
        }
    }
    let fraction = changed as f64 / rows as f64;
    assert!(
        (fraction - 0.3).abs() < 4.0 * (0.3f64 * 0.7 / rows as f64).sqrt(),
        "{fraction}"
    );

    let mut plain_config = eval_model.clone();
    plain_config.token_dropout.prob = 0.0;
    let plain = plain_config
        .forward(&x_eval, Latents::Given(z_eval))
        .unwrap()
        .logits;
    assert!(max_abs_diff(&host(&plain), &eval) < 1e-6);
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
        base().with_token_dropout(1.0),
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
