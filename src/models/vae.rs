//! The generic variational autoencoder `Vae<E, D, P>`: any encoder, decoder and prior whose
//! types line up.

use burn::module::Module;
use burn::tensor::{Device, Tensor};

use crate::objective::{ElboTerms, PathLogWeights, rejection_corrected};
use crate::traits::{
    Batch, Decoder, Distribution, Encoder, KlDivergence, LatentVariableModel, Posterior, Prior,
};
use crate::{Error, Result};

/// A variational autoencoder: encoder `q(z | x)`, decoder `p(x | z)` and prior `p(z)`.
///
/// # Formula
/// ```text
/// ELBO(x)  = log p(x | z) − KL(q(z | x) ‖ p(z)),            z ~ q(z | x)   (one sample)
/// log w_j  = log p(x | z_j) + log p(z_j) − log q(z_j | x),  z_j ~ q(z | x)
/// ```
/// (Kingma & Welling 2014, eq. 10; Burda et al. 2016, eq. 8.) The KL is the posterior's
/// closed form against the prior ([`KlDivergence`]).
///
/// Variants are compositions: the Gaussian VAE is
/// `Vae<MlpEncoder<GaussianHead>, BernoulliMlpDecoder, StdNormal>` ([`GaussianVae`](super::GaussianVae));
/// other heads and priors plug into the same struct, and every estimator in
/// [`objective`](crate::objective) works on all of them.
///
/// # Example
/// ```
/// use burn::tensor::Tensor;
/// use elbo::LatentVariableModel;
/// use elbo::models::GaussianVaeConfig;
///
/// let device = elbo::device::default_device();
/// let vae = GaussianVaeConfig::new(6, 2).with_hidden(vec![8]).init(&device)?;
/// let x = Tensor::<2>::ones([4, 6], &device);
/// let terms = vae.elbo(&x)?;
/// assert_eq!(terms.elbo().dims(), [4]);
/// assert_eq!(vae.log_importance_weights(&x, 5)?.dims(), [4, 5]);
/// # Ok::<(), elbo::Error>(())
/// ```
#[derive(Module, Debug)]
pub struct Vae<E, D, P> {
    /// The inference network.
    pub encoder: E,
    /// The generative network.
    pub decoder: D,
    /// The prior over latents.
    pub prior: P,
}

impl<E, D, P> Vae<E, D, P> {
    /// Assembles a VAE from its parts.
    pub fn new(encoder: E, decoder: D, prior: P) -> Self {
        Self {
            encoder,
            decoder,
            prior,
        }
    }
}

impl<E, D, P, Z> Vae<E, D, P>
where
    E: Encoder,
    E::Posterior: Distribution<Value = Z>,
    D: Decoder<Latent = Z>,
    D::Likelihood: Distribution<Value = E::Input>,
    P: Prior<Value = Z>,
    Z: Batch,
{
    /// The posterior `q(z | x)` of a checked batch.
    ///
    /// # Errors
    /// [`Error::ShapeMismatch`] if `x` does not fit the encoder.
    ///
    /// # Shapes
    /// - `x`: a batch of `batch` examples
    /// - output: a posterior with `batch` rows
    pub fn encode(&self, x: &E::Input) -> Result<E::Posterior> {
        self.encoder.check_input(x)?;
        Ok(self.encoder.encode(x))
    }

    /// The mean of `p(x | z)` for each row of `z`.
    pub fn decode_mean(&self, z: &Z) -> E::Input {
        self.decoder.decode(z).mean()
    }

    /// Reconstructions: the likelihood mean at the posterior mode of each input.
    ///
    /// # Errors
    /// [`Error::ShapeMismatch`] if `x` does not fit the encoder.
    pub fn reconstruct(&self, x: &E::Input) -> Result<E::Input> {
        Ok(self.decode_mean(&self.encode(x)?.mode()))
    }

    /// `n` samples: the likelihood mean at `n` prior draws (what sample grids show).
    pub fn generate(&self, n: usize, device: &Device) -> E::Input {
        self.decode_mean(&self.prior.sample(n, device))
    }
}

impl<E, D, P> Vae<E, D, P>
where
    E: Encoder,
    E::Posterior: Distribution<Value = Tensor<2>>,
    D: Decoder<Latent = Tensor<2>>,
    D::Likelihood: Distribution<Value = E::Input>,
    P: Prior<Value = Tensor<2>>,
{
    /// The latent path between the posterior modes of `a` and `b` (one example each),
    /// decoded: `steps` rows, `z_t = (1 − t)·z_a + t·z_b` for `t` evenly spaced in `[0, 1]`.
    ///
    /// # Errors
    /// [`Error::ShapeMismatch`] unless `a` and `b` each hold one example that fits the
    /// encoder; [`Error::InvalidConfig`] if `steps < 2`.
    pub fn interpolate(&self, a: &E::Input, b: &E::Input, steps: usize) -> Result<E::Input> {
        if steps < 2 {
            return Err(Error::config(
                "steps",
                steps,
                "at least 2 (both end points)",
            ));
        }
        for (name, x) in [("a", a), ("b", b)] {
            if x.batch_size() != 1 {
                return Err(Error::shape(
                    format!("Vae::interpolate ({name})"),
                    "one example",
                    format!("{} examples", x.batch_size()),
                ));
            }
        }
        let za = self.encode(a)?.mode();
        let zb = self.encode(b)?.mode();
        let device = za.device();
        let t: Vec<f32> = (0..steps).map(|i| i as f32 / (steps - 1) as f32).collect();
        let t = Tensor::<1>::from_floats(t.as_slice(), &device).reshape([steps, 1]);
        let z = za.clone() + (zb - za) * t;
        Ok(self.decode_mean(&z))
    }
}

impl<E, D, P, Z> Vae<E, D, P>
where
    E: Encoder,
    E::Posterior: Distribution<Value = Z>,
    D: Decoder<Latent = Z>,
    D::Likelihood: Distribution<Value = E::Input>,
    P: Prior<Value = Z>,
    Z: Batch,
{
    /// `log p(x, z) − log q_{⊥φ}(z | x)` and `log p(x, ⊥z)` for `k` draws per example
    /// (see [`PathLogWeights`]).
    fn path_log_weights_of(
        &self,
        x: &E::Input,
        k: usize,
        with_log_joint_stopped: bool,
    ) -> Result<PathLogWeights> {
        crate::error::ensure_samples(k)?;
        let batch = x.batch_size();
        let q = self.encode(x)?.repeat_rows(k);
        let xk = x.repeat_rows(k);
        let (z, log_accepted) = q.sample_for_gradient();
        if log_accepted.is_some() {
            return Err(Error::config(
                "objective",
                "a path-derivative estimator (STL or DReG) with a rejection-sampled posterior",
                "a reparameterised posterior (Gaussian, Power Spherical, vMF with a fixed κ); \
                 train a learned-κ vMF on Objective::Elbo, whose gradient carries the \
                 rejection correction",
            ));
        }
        let log_w = self.decoder.decode(&z).log_prob(&xk) + self.prior.log_prob(&z)
            - q.detach().log_prob(&z);
        // Row j·B + i is sample j of example i.
        let by_example = |t: Tensor<1>| t.reshape([k, batch]).transpose();
        let log_joint_stopped = with_log_joint_stopped.then(|| {
            let z = z.detach();
            by_example(self.decoder.decode(&z).log_prob(&xk) + self.prior.log_prob(&z))
        });
        Ok(PathLogWeights {
            log_w: by_example(log_w),
            log_joint_stopped,
        })
    }
}

impl<E, D, P, Z> LatentVariableModel for Vae<E, D, P>
where
    E: Encoder,
    E::Posterior: Distribution<Value = Z> + KlDivergence<P>,
    D: Decoder<Latent = Z>,
    D::Likelihood: Distribution<Value = E::Input>,
    P: Prior<Value = Z>,
    Z: Batch,
{
    type Input = E::Input;

    fn elbo(&self, x: &E::Input) -> Result<ElboTerms> {
        let q = self.encode(x)?;
        let (z, log_accepted) = q.sample_for_gradient();
        let reconstruction = rejection_corrected(self.decoder.decode(&z).log_prob(x), log_accepted);
        let kl = q.kl(&self.prior);
        Ok(ElboTerms::new(reconstruction, vec![kl]))
    }

    fn log_importance_weights(&self, x: &E::Input, k: usize) -> Result<Tensor<2>> {
        crate::error::ensure_samples(k)?;
        let batch = x.batch_size();
        let q = self.encode(x)?.repeat_rows(k);
        let xk = x.repeat_rows(k);
        let z = q.sample();
        let log_px_z = self.decoder.decode(&z).log_prob(&xk);
        let log_w = log_px_z + self.prior.log_prob(&z) - q.log_prob(&z);
        // Row j·B + i is sample j of example i.
        Ok(log_w.reshape([k, batch]).transpose())
    }

    /// # Errors
    /// As [`log_importance_weights`](LatentVariableModel::log_importance_weights), and
    /// [`Error::InvalidConfig`] for a posterior sampled by rejection with learned
    /// parameters (the vMF posterior with a learned κ): its path derivative misses the
    /// rejection correction, so the estimators would be biased.
    fn path_log_weights(
        &self,
        x: &E::Input,
        k: usize,
        with_log_joint_stopped: bool,
    ) -> Option<Result<PathLogWeights>> {
        Some(self.path_log_weights_of(x, k, with_log_joint_stopped))
    }
}
