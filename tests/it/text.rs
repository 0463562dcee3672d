//! The sentence setting: token batches, the LSTM against a plain host implementation, the
//! decoder's likelihood against the same reference, padding invariance, generation, and a
//! sentence VAE that learns.

use crate::common;

use burn::tensor::{Int, Tensor, TensorData};
use common::host;
use elbo::data::{CharVocab, SentenceData, TokenBatch, read_sentences};
use elbo::models::{BnScale, LstmDecoder, TextVaeConfig, VmfKappa};
use elbo::nn::{Lstm, LstmConfig};
use elbo::objective::{ElboObjective, Objective};
use elbo::train::{FitConfig, fit};
use elbo::{Batch, Decoder, Distribution, Encoder, Error, LatentVariableModel};

fn sigmoid(x: f64) -> f64 {
    1.0 / (1.0 + (-x).exp())
}

/// `y = x W (+ b)` for one row, with burn's `[d_in, d_out]` weight layout.
fn linear(x: &[f64], w: &[f64], b: Option<&[f64]>) -> Vec<f64> {
    let d_out = w.len() / x.len();
    (0..d_out)
        .map(|j| {
            let s: f64 = x
                .iter()
                .enumerate()
                .map(|(i, xi)| xi * w[i * d_out + j])
                .sum();
            s + b.map_or(0.0, |b| b[j])
        })
        .collect()
}

/// The weights of an LSTM on the host.
struct HostLstm {
    w: Vec<f64>,
    b: Vec<f64>,
    u: Vec<f64>,
    h: usize,
}

impl HostLstm {
    fn new(lstm: &Lstm) -> Self {
        Self {
            w: host(&lstm.input.weight.val()),
            b: host(&lstm.input.bias.as_ref().unwrap().val()),
            u: host(&lstm.hidden.weight.val()),
            h: lstm.d_hidden,
        }
    }

    /// One step of the textbook LSTM (gates i, f, g, o) in f64.
    fn step(&self, x: &[f64], extra: Option<&[f64]>, h: &[f64], c: &[f64]) -> (Vec<f64>, Vec<f64>) {
        let n = self.h;
        let mut gates = linear(x, &self.w, Some(&self.b));
        let rec = linear(h, &self.u, None);
        for j in 0..4 * n {
            gates[j] += rec[j] + extra.map_or(0.0, |e| e[j]);
        }
        let mut c_new = vec![0.0; n];
        let mut h_new = vec![0.0; n];
        for j in 0..n {
            let (i, f) = (sigmoid(gates[j]), sigmoid(gates[n + j]));
            let (g, o) = (gates[2 * n + j].tanh(), sigmoid(gates[3 * n + j]));
            c_new[j] = f * c[j] + i * g;
            h_new[j] = o * c_new[j].tanh();
        }
        (h_new, c_new)
    }
}

#[test]
fn lstm_matches_a_plain_host_implementation() {
    // Tolerance 1e-5 absolute: f32 arithmetic over 5 steps of width ≤ 6 against f64.
    let device = common::device();
    device.seed(3);
    let lstm = LstmConfig::new(3, 4).init(&device).unwrap();
    let reference = HostLstm::new(&lstm);
    // The forget gate's bias starts at 1, the others at their random init.
    assert!(reference.b[4..8].iter().all(|&b| (b - 1.0).abs() < 1e-7));
    let (batch, steps) = (2, 5);
    let xs: Vec<Tensor<2>> = (0..steps)
        .map(|t| {
            let v: Vec<f32> = (0..batch * 3)
                .map(|i| ((i * 7 + t * 3) % 11) as f32 / 5.0 - 1.0)
                .collect();
            Tensor::from_data(TensorData::new(v, [batch, 3]), &device)
        })
        .collect();
    let extra = Tensor::<2>::from_data(
        TensorData::new(
            (0..batch * 16)
                .map(|i| (i % 5) as f32 / 10.0)
                .collect::<Vec<_>>(),
            [batch, 16],
        ),
        &device,
    );
    let (outputs, state) = lstm.forward(&xs, Some(extra.clone()), lstm.zero_state(batch, &device));
    let extra_host = host(&extra);
    for row in 0..batch {
        let (mut h, mut c) = (vec![0.0; 4], vec![0.0; 4]);
        for (t, x) in xs.iter().enumerate() {
            let x_row = &host(x)[row * 3..row * 3 + 3];
            (h, c) = reference.step(x_row, Some(&extra_host[row * 16..row * 16 + 16]), &h, &c);
            let got = &host(&outputs[t])[row * 4..row * 4 + 4];
            for j in 0..4 {
                assert!(
                    (got[j] - h[j]).abs() < 1e-5,
                    "step {t} row {row}: {got:?} vs {h:?}"
                );
            }
        }
        let got_c = &host(&state.cell)[row * 4..row * 4 + 4];
        for j in 0..4 {
            assert!((got_c[j] - c[j]).abs() < 1e-5);
        }
    }
}

#[test]
fn models_build_on_an_autodiff_device_and_gradients_reach_every_lstm() {
    // Building directly on the training device must work (the forget-gate bias is edited
    // at init), and one backward pass must reach both LSTMs and the embeddings.
    let device = common::device().autodiff();
    let vocab = CharVocab::from_sentences(["abc"]);
    let vae = small_config(vocab.len()).gaussian(&device).unwrap();
    let x = TokenBatch::new(&[vocab.encode("cab"), vocab.encode("a")], &device).unwrap();
    let loss = vae.elbo(&x).unwrap().elbo().sum().neg();
    let grads = loss.backward();
    for (name, weight) in [
        ("encoder input", vae.encoder.lstm.input.weight.val()),
        ("encoder recurrent", vae.encoder.lstm.hidden.weight.val()),
        ("encoder embedding", vae.encoder.embedding.weight.val()),
        ("decoder recurrent", vae.decoder.lstm.hidden.weight.val()),
        (
            "decoder latent gates",
            vae.decoder.latent_gates.weight.val(),
        ),
        ("decoder output", vae.decoder.output.weight.val()),
    ] {
        let g = weight
            .grad(&grads)
            .unwrap_or_else(|| panic!("no gradient for {name}"));
        let norm: f64 = host(&g.reshape([-1])).iter().map(|v| v * v).sum();
        assert!(
            norm > 0.0 && norm.is_finite(),
            "{name}: gradient norm² {norm}"
        );
    }
}

#[test]
fn token_batches_pad_mask_and_trim() {
    let device = common::device();
    let vocab = CharVocab::from_sentences(["hello.", "hi!"]);
    assert_eq!(vocab.decode(&vocab.encode("hole!")), "hole!");
    assert_eq!(vocab.encode("hz")[1], CharVocab::UNK);
    let rows = vec![
        vocab.encode("hi!"),
        vocab.encode("hello."),
        vocab.encode(""),
    ];
    let batch = TokenBatch::new(&rows, &device).unwrap();
    assert_eq!(batch.lengths(), &[4, 7, 1]);
    assert_eq!(batch.steps(), 7);
    let tokens = batch.tokens().clone().try_into_vec_as::<i64>().unwrap();
    let (bos, eos, pad) = (CharVocab::BOS, CharVocab::EOS, CharVocab::PAD);
    let mut expected_row0 = vec![bos];
    expected_row0.extend(&rows[0]);
    expected_row0.extend([eos, pad, pad, pad]);
    assert_eq!(&tokens[..8], expected_row0.as_slice());
    assert_eq!(&tokens[16..18], &[bos, eos]);
    let mask = host(&batch.mask());
    let expected_mask: Vec<f64> = [4, 7, 1]
        .iter()
        .flat_map(|&n| (0..7).map(move |t| if t < n { 1.0 } else { 0.0 }))
        .collect();
    assert_eq!(mask, expected_mask);
    // Inputs are the targets shifted right by one.
    let inputs = batch.inputs().try_into_vec_as::<i64>().unwrap();
    let targets = batch.targets().try_into_vec_as::<i64>().unwrap();
    assert_eq!(&inputs[1..7], &targets[0..6]);
    assert_eq!(batch.sequences(), rows);
    // Chunks drop the columns that only hold padding; selections and tilings keep rows.
    let short = batch.narrow_rows(0, 1);
    assert_eq!(short.tokens().dims(), [1, 5]);
    assert_eq!(short.sequences(), vec![rows[0].clone()]);
    let picked = batch.select_rows(Tensor::<1, Int>::from_data(
        TensorData::new(vec![2i64, 0], [2]),
        &device,
    ));
    assert_eq!(picked.sequences(), vec![rows[2].clone(), rows[0].clone()]);
    assert_eq!(picked.steps(), 4);
    let tiled = batch.repeat_rows(2);
    assert_eq!(tiled.lengths(), &[4, 7, 1, 4, 7, 1]);
    assert_eq!(tiled.narrow_rows(3, 3).sequences(), rows);
}

/// `log p(x | z)` of an [`LstmDecoder`] recomputed on the host, character by character.
fn host_log_likelihood(decoder: &LstmDecoder, z: &[f64], sentence: &[i64]) -> f64 {
    let lstm = HostLstm::new(&decoder.lstm);
    let embedding = host(&decoder.embedding.weight.val());
    let e = decoder.embedding.weight.dims()[1];
    let c0 = linear(
        z,
        &host(&decoder.init.weight.val()),
        Some(&host(&decoder.init.bias.as_ref().unwrap().val())),
    );
    let z_gates = linear(z, &host(&decoder.latent_gates.weight.val()), None);
    let w_out = host(&decoder.output.weight.val());
    let b_out = host(&decoder.output.bias.as_ref().unwrap().val());
    let (mut h, mut c): (Vec<f64>, Vec<f64>) = (c0.iter().map(|v| v.tanh()).collect(), c0);
    let mut inputs = vec![CharVocab::BOS];
    inputs.extend(sentence);
    let mut targets = sentence.to_vec();
    targets.push(CharVocab::EOS);
    let mut total = 0.0;
    for (&x, &y) in inputs.iter().zip(&targets) {
        let x_vec = &embedding[x as usize * e..(x as usize + 1) * e];
        (h, c) = lstm.step(x_vec, Some(&z_gates), &h, &c);
        let logits = linear(&h, &w_out, Some(&b_out));
        let max = logits.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
        let log_norm = max + logits.iter().map(|l| (l - max).exp()).sum::<f64>().ln();
        total += logits[y as usize] - log_norm;
    }
    total
}

fn small_config(vocab_size: usize) -> TextVaeConfig {
    TextVaeConfig::new(vocab_size)
        .with_latent_dim(3)
        .with_embedding(5)
        .with_encoder_hidden(6)
        .with_decoder_hidden(7)
        .with_max_chars(12)
}

#[test]
fn decoder_likelihood_matches_the_host_reference_and_ignores_padding() {
    // Tolerance 1e-4 nats per sentence: f32 over ≤ 8 steps and a 10-way softmax.
    let device = common::device();
    device.seed(5);
    let vocab = CharVocab::from_sentences(["abcdef"]);
    let vae = small_config(vocab.len()).gaussian(&device).unwrap();
    let rows = vec![
        vocab.encode("fab"),
        vocab.encode("abcdefa"),
        vocab.encode(""),
    ];
    let x = TokenBatch::new(&rows, &device).unwrap();
    let z_rows = [[0.3, -1.0, 0.5], [1.2, 0.1, -0.4], [0.0, 0.7, 2.0]];
    let z = Tensor::<2>::from_data(
        TensorData::new(
            z_rows
                .iter()
                .flatten()
                .map(|&v| v as f32)
                .collect::<Vec<_>>(),
            [3, 3],
        ),
        &device,
    );
    let log_p = host(&vae.decoder.decode(&z).log_prob(&x));
    for (i, row) in rows.iter().enumerate() {
        let expected = host_log_likelihood(&vae.decoder, &z_rows[i], row);
        assert!(
            (log_p[i] - expected).abs() < 1e-4,
            "row {i}: {} vs {expected}",
            log_p[i]
        );
        // The same sentence alone (no padding) scores the same, and so do its features.
        let alone = x.narrow_rows(i, 1);
        let z_i = z.clone().narrow(0, i, 1);
        let single = host(&vae.decoder.decode(&z_i).log_prob(&alone))[0];
        assert!((single - log_p[i]).abs() < 1e-4);
        let f_all = host(&vae.encoder.features(&x));
        let f_one = host(&vae.encoder.features(&alone));
        for j in 0..6 {
            assert!(
                (f_all[i * 6 + j] - f_one[j]).abs() < 1e-5,
                "encoder features depend on padding"
            );
        }
    }
}

#[test]
fn generation_emits_only_characters_within_the_length_limit() {
    let device = common::device();
    device.seed(2);
    let vocab = CharVocab::from_sentences(["xyz"]);
    let vae = small_config(vocab.len())
        .vmf(VmfKappa::Fixed(5.0), &device)
        .unwrap();
    let z = elbo::Prior::sample(&vae.prior, 20, &device);
    for greedy in [false, true] {
        let batch = vae.decoder.decode(&z).generate(greedy);
        assert_eq!(batch.batch_size(), 20);
        for s in batch.sequences() {
            assert!(s.len() <= 12);
            assert!(
                s.iter()
                    .all(|&id| id >= CharVocab::UNK && (id as usize) < vocab.len())
            );
        }
    }
}

#[test]
fn a_sentence_vae_learns_a_tiny_corpus() {
    // Two sentences, 40 copies each. An untrained decoder pays about ln(vocab) ≈ 2.3 nats
    // per character; after training the reconstruction must fall far below that, and the
    // greedy reconstruction of each sentence must be the sentence itself (a fixed-κ vMF
    // posterior cannot collapse, so z tells the decoder which sentence it is).
    let device = common::device();
    device.seed(0);
    let corpus = ["the cat sat.", "a dog ran!"];
    let vocab = CharVocab::from_sentences(corpus);
    let sentences: Vec<&str> = corpus.iter().cycle().take(80).copied().collect();
    let data = SentenceData::new(&sentences, &vocab);
    let config = small_config(vocab.len())
        .with_decoder_hidden(24)
        .with_encoder_hidden(12);
    let vae = config.vmf(VmfKappa::Fixed(20.0), &device).unwrap();
    let mut fit_config = FitConfig::new(80, 16);
    fit_config.progress = false;
    fit_config.learning_rate = 1e-2;
    fit_config.grad_clip_norm = Some(5.0);
    fit_config.objective = Objective::Elbo(ElboObjective::default());
    let (vae, history) = fit(vae, &config, &data, &fit_config, &device).unwrap();
    let first = history.epochs[0].neg_bound;
    let last = history.epochs.last().unwrap().neg_bound;
    assert!(last < 0.3 * first, "-ELBO went from {first} to {last}");
    eprintln!(
        "-ELBO {first} -> {last}, KL {}",
        history.epochs.last().unwrap().kl
    );
    let vae = burn::module::Module::valid(&vae);
    let x = TokenBatch::new(&[vocab.encode(corpus[0]), vocab.encode(corpus[1])], &device).unwrap();
    let rebuilt: Vec<String> = vae
        .reconstruct(&x)
        .unwrap()
        .sequences()
        .iter()
        .map(|s| vocab.decode(s))
        .collect();
    assert_eq!(rebuilt, corpus);
    let terms = vae.elbo(&x).unwrap();
    assert_eq!(terms.reconstruction.dims(), [2]);
}

#[test]
fn bad_text_input_is_an_error() {
    let device = common::device();
    assert!(matches!(
        TokenBatch::new(&[], &device),
        Err(Error::ShapeMismatch { .. })
    ));
    assert!(matches!(
        TokenBatch::new(&[vec![4, CharVocab::PAD]], &device),
        Err(Error::InvalidData { .. })
    ));
    assert!(matches!(
        TokenBatch::new(&[vec![-3]], &device),
        Err(Error::InvalidData { .. })
    ));
    // Ids beyond the model's vocabulary.
    let vae = small_config(6).gaussian(&device).unwrap();
    let x = TokenBatch::new(&[vec![4, 9]], &device).unwrap();
    assert!(matches!(vae.elbo(&x), Err(Error::ShapeMismatch { .. })));
    assert!(matches!(
        vae.encoder.check_input(&x),
        Err(Error::ShapeMismatch { .. })
    ));
    // Zero sizes and bad heads.
    assert!(matches!(
        small_config(0).gaussian(&device),
        Err(Error::InvalidConfig { .. })
    ));
    assert!(matches!(
        small_config(6).with_decoder_hidden(0).gaussian(&device),
        Err(Error::InvalidConfig { .. })
    ));
    assert!(matches!(
        small_config(6).bn(BnScale::LearnedSplit(1.5), &device),
        Err(Error::InvalidConfig { .. })
    ));
    assert!(matches!(
        small_config(6)
            .with_latent_dim(1)
            .vmf(VmfKappa::Learned, &device),
        Err(Error::InvalidConfig { .. })
    ));
    assert!(matches!(
        small_config(6).power_spherical(f64::NAN, &device),
        Err(Error::InvalidConfig { .. })
    ));
    assert!(matches!(
        LstmConfig::new(0, 3).init(&device),
        Err(Error::InvalidConfig { .. })
    ));
    // Files: missing, empty, a line over the limit.
    let dir = std::env::temp_dir().join(format!("elbo-test-text-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let result = || {
        assert!(matches!(
            read_sentences(dir.join("missing.txt"), 10),
            Err(Error::Io { .. })
        ));
        std::fs::write(dir.join("empty.txt"), "\n  \n").unwrap();
        assert!(matches!(
            read_sentences(dir.join("empty.txt"), 10),
            Err(Error::InvalidData { .. })
        ));
        std::fs::write(dir.join("long.txt"), "short.\nthis line is too long.\n").unwrap();
        match read_sentences(dir.join("long.txt"), 10) {
            Err(Error::InvalidData { reason, .. }) => {
                assert!(reason.contains("line 2"), "{reason}")
            }
            other => panic!("expected InvalidData, got {other:?}"),
        }
        std::fs::write(dir.join("ok.txt"), "one.\r\n\ntwo!\n").unwrap();
        assert_eq!(
            read_sentences(dir.join("ok.txt"), 10).unwrap(),
            vec!["one.", "two!"]
        );
    };
    let outcome = std::panic::catch_unwind(result);
    let _ = std::fs::remove_dir_all(&dir);
    if let Err(panic) = outcome {
        std::panic::resume_unwind(panic);
    }
}
