//! vMF-VAE: a von Mises–Fisher posterior on the unit sphere with a uniform prior
//! (Davidson et al. 2018 "Hyperspherical Variational Auto-Encoders"; Xu & Durrett 2018
//! "Spherical Latent Spaces for Stable Variational Autoencoders").

use burn::config::Config;
use burn::module::Module;
use burn::tensor::{Device, Tensor, activation};

use super::gaussian_vae::check_flat_input;
use super::{BernoulliMlpDecoder, Vae};
use crate::distributions::{UniformSphere, VonMisesFisher};
use crate::error::{ensure_nonzero, ensure_positive};
use crate::nn::{Activation, Mlp, MlpConfig};
use crate::traits::Encoder;

/// A VAE with latents on `S^{d−1}`: vMF posterior, uniform prior, Bernoulli decoder.
pub type VmfVae = Vae<VmfMlpEncoder, BernoulliMlpDecoder, UniformSphere>;

/// How the posterior concentration κ is set.
#[derive(Config, Debug, Copy, PartialEq)]
pub enum VmfKappa {
    /// One fixed κ for every example (Xu & Durrett; Su): the KL to the uniform prior is a
    /// constant, `KL = κ A_d(κ) + ln C_d(κ) + ln |S^{d−1}|`, so it cannot vanish, and
    /// the sampled `w` needs no gradient. The encoder only outputs a direction.
    Fixed(f64),
    /// κ per example from the encoder, `κ = softplus(·) + 1` (Davidson et al. 2018);
    /// gradients reach κ through the sample and the KL.
    Learned,
}

/// Configuration of a [`VmfVae`].
///
/// ```
/// use burn::tensor::{Device, Tensor};
/// use elbo::LatentVariableModel;
/// use elbo::models::{VmfKappa, VmfVaeConfig};
///
/// let device = Device::flex();
/// let vae = VmfVaeConfig::new(6, 3).with_hidden(vec![8]).with_kappa(VmfKappa::Fixed(10.0)).init(&device)?;
/// let terms = vae.elbo(&Tensor::<2>::ones([4, 6], &device))?;
/// assert_eq!(terms.kl[0].dims(), [4]);
/// # Ok::<(), elbo::Error>(())
/// ```
#[derive(Config, Debug)]
pub struct VmfVaeConfig {
    /// Data dimension.
    pub input_dim: usize,
    /// Ambient latent dimension `d` (the sphere is `S^{d−1}`), at least 2.
    pub latent_dim: usize,
    /// Hidden widths of the encoder; the decoder uses them in reverse.
    #[config(default = "vec![400]")]
    pub hidden: Vec<usize>,
    /// Activation between layers.
    #[config(default = "Activation::Relu")]
    pub activation: Activation,
    /// Fixed or learned concentration.
    #[config(default = "VmfKappa::Learned")]
    pub kappa: VmfKappa,
}

impl VmfVaeConfig {
    /// Checks sizes (`latent_dim ≥ 2`) and a fixed κ > 0 (NaN-proof).
    pub fn validate(&self) -> crate::Result<()> {
        ensure_nonzero("input_dim", self.input_dim)?;
        if self.latent_dim < 2 {
            return Err(crate::Error::config(
                "latent_dim",
                self.latent_dim,
                "at least 2 (the sphere S^{d-1} in R^d)",
            ));
        }
        for &h in &self.hidden {
            ensure_nonzero("hidden", h)?;
        }
        if let VmfKappa::Fixed(k) = self.kappa {
            ensure_positive("kappa", k)?;
        }
        Ok(())
    }

    /// Builds the model.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`](crate::Error::InvalidConfig) as [`validate`](Self::validate).
    pub fn init(&self, device: &Device) -> crate::Result<VmfVae> {
        self.validate()?;
        let d = self.latent_dim;
        let head = match self.kappa {
            VmfKappa::Fixed(_) => d,
            VmfKappa::Learned => d + 1,
        };
        let mut enc_sizes = vec![self.input_dim];
        enc_sizes.extend(&self.hidden);
        enc_sizes.push(head);
        let mut dec_sizes = vec![d];
        dec_sizes.extend(self.hidden.iter().rev());
        dec_sizes.push(self.input_dim);
        let encoder = VmfMlpEncoder {
            mlp: MlpConfig::new(enc_sizes)
                .with_activation(self.activation)
                .init(device)?,
            latent_dim: d,
            fixed_kappa: match self.kappa {
                VmfKappa::Fixed(k) => Some(k),
                VmfKappa::Learned => None,
            },
        };
        let decoder = BernoulliMlpDecoder {
            mlp: MlpConfig::new(dec_sizes)
                .with_activation(self.activation)
                .init(device)?,
        };
        Ok(Vae::new(encoder, decoder, UniformSphere::new(d)?))
    }
}

/// An MLP whose output is normalised to a mean direction on `S^{d−1}`, plus (for learned
/// κ) one more output mapped to `κ = softplus(·) + 1`.
#[derive(Module, Debug)]
pub struct VmfMlpEncoder {
    /// Maps `[batch, d_in]` to `[batch, d]` (fixed κ) or `[batch, d + 1]` (learned κ).
    pub mlp: Mlp,
    /// The ambient latent dimension `d`.
    pub latent_dim: usize,
    /// The fixed κ, if κ is not learned.
    pub fixed_kappa: Option<f64>,
}

impl Encoder for VmfMlpEncoder {
    type Input = Tensor<2>;
    type Posterior = VonMisesFisher;

    fn encode(&self, x: &Tensor<2>) -> VonMisesFisher {
        let h = self.mlp.forward(x.clone());
        let [batch, _] = h.dims();
        let d = self.latent_dim;
        let raw = h.clone().narrow(1, 0, d);
        let norm = raw
            .clone()
            .powi_scalar(2)
            .sum_dim(1)
            .sqrt()
            .clamp_min(1e-12);
        let direction = raw / norm;
        let kappa = match self.fixed_kappa {
            Some(k) => Tensor::full([batch], k, &h.device()),
            None => activation::softplus(h.narrow(1, d, 1).reshape([batch]), 1.0).add_scalar(1.0),
        };
        VonMisesFisher::from_unit_unchecked(direction, kappa)
    }

    fn check_input(&self, x: &Tensor<2>) -> crate::Result<()> {
        check_flat_input("VmfMlpEncoder input", x, self.mlp.d_input())
    }
}
