//! [`ConditionalDdpm`]: DDPM conditioned on a class label, trained with label dropout for
//! classifier-free guidance; its config [`ConditionalDdpmConfig`].

use burn::config::Config;
use burn::module::Module;
use burn::tensor::{Device, Distribution as TensorDistribution, Int, Tensor};

use super::config::DdpmConfig;
use super::guidance::{ConditionalDenoiser, Guided};
use super::model::Ddpm;
use crate::data::{LabeledBatch, check_class_labels};
use crate::error::{Error, ensure_nonzero};
use crate::nn::UNet;
use crate::objective::ElboTerms;
use crate::traits::LatentVariableModel;

/// Configuration of a [`ConditionalDdpm`] with a [`UNet`]: the diffusion model's
/// settings, the number of classes and the rate at which training drops the label.
///
/// ```
/// use burn::tensor::{Int, Tensor};
/// use elbo::LatentVariableModel;
/// use elbo::data::LabeledBatch;
/// use elbo::models::ddpm::{ConditionalDdpmConfig, DdpmConfig};
/// use elbo::nn::UNetConfig;
///
/// let device = elbo::device::default_device();
/// let ddpm = DdpmConfig::new(1, 8, 8).with_steps(10).with_unet(UNetConfig::new(1).with_base_channels(8));
/// let model = ConditionalDdpmConfig::new(ddpm, 3).init(&device)?;
/// let batch = LabeledBatch::from_labels(Tensor::<2>::zeros([2, 64], &device), &[0, 2])?;
/// assert_eq!(model.elbo(&batch)?.kl.len(), 10);
/// // Two samples of class 1 at guidance weight 2, by 5 DDIM steps:
/// let y = Tensor::<1, Int>::from_ints([1, 1], &device);
/// assert_eq!(model.guided(y, 2.0)?.sample_ddim(2, 5, 0.0, false, &device)?.dims(), [2, 64]);
/// # Ok::<(), elbo::Error>(())
/// ```
#[derive(Config, Debug)]
pub struct ConditionalDdpmConfig {
    /// The diffusion model; its `unet.num_classes` is set to `num_classes`.
    pub ddpm: DdpmConfig,
    /// Number of classes.
    pub num_classes: usize,
    /// Probability that training replaces a row's label by the null label, so the same
    /// network also learns the unconditional model that guidance needs (Ho & Salimans use
    /// 0.1–0.2).
    #[config(default = 0.1)]
    pub p_uncond: f64,
}

impl ConditionalDdpmConfig {
    /// Checks the diffusion model, the class count and the dropout rate (NaN-proof).
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] for a bad field.
    pub fn validate(&self) -> crate::Result<()> {
        ensure_nonzero("num_classes", self.num_classes)?;
        if !(0.0..1.0).contains(&self.p_uncond) {
            return Err(Error::config(
                "p_uncond",
                self.p_uncond,
                "a probability in [0, 1)",
            ));
        }
        self.unet_config().validate()
    }

    /// The diffusion config with the U-Net conditioned on `num_classes` labels.
    fn unet_config(&self) -> DdpmConfig {
        let mut ddpm = self.ddpm.clone();
        ddpm.unet.num_classes = self.num_classes;
        ddpm
    }

    /// Builds the model with a fresh conditional U-Net.
    ///
    /// # Errors
    /// As [`validate`](Self::validate).
    pub fn init(&self, device: &Device) -> crate::Result<ConditionalDdpm<UNet>> {
        self.validate()?;
        let ddpm = self.unet_config().init(device)?;
        Ok(ConditionalDdpm {
            ddpm,
            num_classes: self.num_classes,
            p_uncond: self.p_uncond,
        })
    }
}

impl crate::train::ModelConfig for ConditionalDdpmConfig {
    type Model = ConditionalDdpm<UNet>;

    fn init_model(&self, device: &Device) -> crate::Result<ConditionalDdpm<UNet>> {
        self.init(device)
    }
}

/// DDPM conditioned on a class label, on [`LabeledBatch`]es of flat images in `[0, 1]`.
///
/// # Formula
/// ```text
/// training:  L_simple with y replaced by ∅ with probability p_uncond   (Ho & Salimans 2022, alg. 1)
/// sampling:  ε̃ = (1 + w) ε_θ(x_t, t, y) − w ε_θ(x_t, t, ∅)             (see Guided)
/// bound:     −ELBO(x | y) of the chain with ε_θ(·, ·, y), a bound on −log p(x | y)
/// ```
/// [`guided`](Self::guided) gives the [`Ddpm`] for given labels and weight, with every
/// sampler and estimate of the unconditional model.
#[derive(Module, Debug)]
pub struct ConditionalDdpm<N> {
    /// The diffusion model around the conditional network.
    pub ddpm: Ddpm<N>,
    /// Number of classes.
    #[module(skip)]
    pub num_classes: usize,
    /// Training's label-dropout probability.
    #[module(skip)]
    pub p_uncond: f64,
}

impl<N: ConditionalDenoiser> ConditionalDdpm<N> {
    /// The diffusion model that denoises with `labels` (`[n]`, classes in
    /// `0..num_classes`) at guidance weight `w`: its samplers draw `n` images, row `i` of
    /// class `labels[i]`.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] for a label out of range or a weight that is negative or
    /// not finite.
    pub fn guided(
        &self,
        labels: Tensor<1, Int>,
        guidance: f64,
    ) -> crate::Result<Ddpm<Guided<'_, N>>> {
        if !guidance.is_finite() || guidance < 0.0 {
            return Err(Error::config(
                "guidance",
                guidance,
                "a finite weight >= 0 (0: the conditional model itself)",
            ));
        }
        check_class_labels(&labels, self.num_classes)?;
        Ok(self.with_labels(labels, guidance))
    }

    /// [`guided`](Self::guided) without the checks, for labels already checked (or the
    /// null label `num_classes` of label dropout).
    fn with_labels(&self, labels: Tensor<1, Int>, guidance: f64) -> Ddpm<Guided<'_, N>> {
        Ddpm {
            denoiser: Guided {
                net: &self.ddpm.denoiser,
                labels,
                guidance,
            },
            schedule: self.ddpm.schedule.clone(),
            settings: self.ddpm.settings.clone(),
        }
    }

    /// Checks a batch: images of the model's size, one label per row, each a class.
    ///
    /// # Errors
    /// [`Error::ShapeMismatch`] or [`Error::InvalidConfig`] naming what is wrong.
    pub fn check_batch(&self, batch: &LabeledBatch) -> crate::Result<()> {
        self.ddpm.check_input(&batch.x)?;
        batch.check_labels(self.num_classes)
    }

    /// The training loss of one batch (`[1]`): the diffusion loss of the model's
    /// [`DdpmLoss`](super::DdpmLoss) with each label replaced by the null label with
    /// probability `p_uncond` (one uniform per row from the device's random stream).
    ///
    /// # Errors
    /// As [`check_batch`](Self::check_batch).
    pub fn loss(&self, batch: &LabeledBatch) -> crate::Result<Tensor<1>> {
        self.check_batch(batch)?;
        let rows = batch.x.dims()[0];
        let device = batch.x.device();
        let u = Tensor::<1>::random([rows], TensorDistribution::Uniform(0.0, 1.0), &device);
        let null = Tensor::<1, Int>::full([rows], self.num_classes as i64, &device);
        let labels = batch
            .y
            .clone()
            .mask_where(u.lower_elem(self.p_uncond), null);
        self.with_labels(labels, 0.0).loss(&batch.x)
    }
}

impl<N: ConditionalDenoiser + Module> LatentVariableModel for ConditionalDdpm<N> {
    type Input = LabeledBatch;

    /// The bound's terms for `log p(x | y)` (as [`Ddpm`]'s, with the network given `y`).
    fn elbo(&self, batch: &LabeledBatch) -> crate::Result<ElboTerms> {
        self.check_batch(batch)?;
        self.with_labels(batch.y.clone(), 0.0).elbo(&batch.x)
    }

    fn log_importance_weights(&self, batch: &LabeledBatch, k: usize) -> crate::Result<Tensor<2>> {
        self.check_batch(batch)?;
        crate::error::ensure_samples(k)?;
        // Ddpm tiles x as [x, x, …] (k copies): tile the labels the same way.
        self.with_labels(batch.y.clone().repeat_dim(0, k), 0.0)
            .log_importance_weights(&batch.x, k)
    }

    fn training_loss(&self, batch: &LabeledBatch) -> Option<crate::Result<Tensor<1>>> {
        Some(self.loss(batch))
    }
}
