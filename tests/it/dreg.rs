//! The path-derivative objectives: DReG (Tucker et al. 2019) estimates the same gradient as
//! IWAE with less variance in the encoder, STL (Roeder et al. 2017) the same gradient as the
//! ELBO; both keep their bound's value; models without path weights and rejection-sampled
//! posteriors are errors.

use crate::common;

use burn::tensor::{Distribution as TensorDistribution, Tensor};
use common::{host, mean_and_sd};
use elbo::models::{GaussianVae, GaussianVaeConfig, VmfVaeConfig};
use elbo::objective::Objective;
use elbo::{ElboTerms, Error, LatentVariableModel};

/// A small Gaussian VAE (20 binary pixels, 16 hidden units, 4 latents) and a fixed batch.
fn setup() -> (GaussianVae, Tensor<2>) {
    let device = common::device().autodiff();
    let model = GaussianVaeConfig::new(20, 4)
        .with_hidden(vec![16])
        .init(&device)
        .unwrap();
    let x = Tensor::<2>::random([6, 20], TensorDistribution::Bernoulli(0.4), &device);
    (model, x)
}

/// `reps` gradient draws of `objective` at `model`, projected on fixed directions of the
/// encoder's mean layer and of the decoder's output layer: `(encoder, decoder)`.
fn projected_gradients(
    model: &GaussianVae,
    x: &Tensor<2>,
    objective: &Objective,
    reps: usize,
) -> (Vec<f64>, Vec<f64>) {
    let encoder_weight = model.encoder.head.mean.weight.val();
    let decoder_weight = model.decoder.mlp.layers.last().unwrap().weight.val();
    // Fixed directions: cos of the flat index, the same for every objective.
    let direction = |t: &Tensor<2>| {
        let n = t.dims()[0] * t.dims()[1];
        let v: Vec<f32> = (0..n).map(|i| (i as f32 * 0.7 + 0.3).cos()).collect();
        Tensor::<1>::from_floats(v.as_slice(), &t.device()).reshape(t.dims())
    };
    let (de, dd) = (direction(&encoder_weight), direction(&decoder_weight));
    let (mut enc, mut dec) = (Vec::new(), Vec::new());
    for _ in 0..reps {
        let loss = objective.step_loss(model, x, 0).unwrap().loss;
        let grads = loss.backward();
        let ge = encoder_weight.grad(&grads).unwrap();
        let gd = decoder_weight.grad(&grads).unwrap();
        enc.push(host(&(ge * de.clone()).sum())[0]);
        dec.push(host(&(gd * dd.clone()).sum())[0]);
    }
    (enc, dec)
}

/// `(mean, standard error)`.
fn mean_se(v: &[f64]) -> (f64, f64) {
    let (m, sd) = mean_and_sd(v);
    (m, sd / (v.len() as f64).sqrt())
}

#[test]
fn dreg_and_stl_estimate_the_gradients_of_iwae_and_the_elbo_with_less_encoder_variance() {
    // 400 gradient draws per objective; means agree within 4 standard errors of their
    // difference (independent draws). DReG's encoder variance must be below IWAE's at
    // k = 5 and k = 50.
    let (model, x) = setup();
    let reps = 400;
    let pairs = [
        (Objective::Iwae { k: 5 }, Objective::Dreg { k: 5 }),
        (Objective::Iwae { k: 50 }, Objective::Dreg { k: 50 }),
        (Objective::Iwae { k: 1 }, Objective::Stl),
    ];
    for (plain, path) in pairs {
        let (pe, pd) = projected_gradients(&model, &x, &plain, reps);
        let (qe, qd) = projected_gradients(&model, &x, &path, reps);
        for (part, a, b) in [("encoder", &pe, &qe), ("decoder", &pd, &qd)] {
            let ((ma, sa), (mb, sb)) = (mean_se(a), mean_se(b));
            let se = (sa * sa + sb * sb).sqrt();
            assert!(
                (ma - mb).abs() < 4.0 * se,
                "{plain:?} vs {path:?}, {part}: mean gradient {ma} vs {mb} (± {se})"
            );
        }
        if let Objective::Dreg { k } = path {
            let (va, vb) = (mean_and_sd(&pe).1.powi(2), mean_and_sd(&qe).1.powi(2));
            assert!(
                vb < va,
                "k {k}: DReG encoder variance {vb} not below IWAE's {va}"
            );
        }
    }
}

#[test]
fn path_objectives_keep_the_bound_value() {
    // The same draws cannot be replayed across objectives, so the check is on one draw:
    // with k = 1, Stl's loss is −(log p(x, z) − log q(z|x)) for one z, a single-sample
    // ELBO estimate; over 200 draws its mean must match the closed-form ELBO's within 4
    // standard errors. Dreg's loss equals −log mean exp of its own log weights (checked
    // against Iwae's estimate of the same bound in the same way).
    let (model, x) = setup();
    let draws = |objective: &Objective| -> Vec<f64> {
        (0..200)
            .map(|_| host(&objective.step_loss(&model, &x, 0).unwrap().loss)[0])
            .collect()
    };
    for (a, b) in [
        (Objective::Elbo(Default::default()), Objective::Stl),
        (Objective::Iwae { k: 8 }, Objective::Dreg { k: 8 }),
    ] {
        let ((ma, sa), (mb, sb)) = (mean_se(&draws(&a)), mean_se(&draws(&b)));
        let se = (sa * sa + sb * sb).sqrt();
        assert!(
            (ma - mb).abs() < 4.0 * se,
            "{a:?} {ma} ± {sa} vs {b:?} {mb} ± {sb}"
        );
    }
}

#[test]
fn path_objectives_refuse_what_they_cannot_estimate() {
    let device = common::device().autodiff();
    let x = Tensor::<2>::random([4, 20], TensorDistribution::Bernoulli(0.4), &device);
    // A learned-κ vMF posterior is sampled by rejection: its path derivative is biased.
    let vmf = VmfVaeConfig::new(20, 3)
        .with_hidden(vec![8])
        .init(&device)
        .unwrap();
    for objective in [Objective::Stl, Objective::Dreg { k: 4 }] {
        let err = objective.step_loss(&vmf, &x, 0).err();
        assert!(matches!(err, Some(Error::InvalidConfig { .. })), "{err:?}");
    }
    // k = 0 is refused.
    let (model, x) = setup();
    assert!(Objective::Dreg { k: 0 }.validate().is_err());
    assert!(Objective::Dreg { k: 0 }.step_loss(&model, &x, 0).is_err());
    // A model without path weights (here one that only has the default) is an error that
    // names the objectives it can use.
    let err = Objective::Stl.step_loss(&NoPathWeights, &x, 0).err();
    assert!(
        matches!(&err, Some(Error::InvalidConfig { .. })) && format!("{err:?}").contains("Iwae"),
        "{err:?}"
    );
}

/// A model with an ELBO and log weights but no path log weights (the trait's default).
struct NoPathWeights;

impl LatentVariableModel for NoPathWeights {
    type Input = Tensor<2>;

    fn elbo(&self, x: &Tensor<2>) -> elbo::Result<ElboTerms> {
        let zero = Tensor::<1>::zeros([x.dims()[0]], &x.device());
        Ok(ElboTerms::new(zero.clone(), vec![zero]))
    }

    fn log_importance_weights(&self, x: &Tensor<2>, k: usize) -> elbo::Result<Tensor<2>> {
        Ok(Tensor::zeros([x.dims()[0], k], &x.device()))
    }
}
