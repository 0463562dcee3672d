//! [`Nvae`]: the bottom-up and top-down towers, the latent groups, the ELBO and the
//! importance weights, sampling at a temperature and the batch-norm readjustment.

use burn::module::{Module, Param};
use burn::nn::BatchNorm;
use burn::tensor::{Device, Distribution as TensorDistribution, Tensor};

use super::cells::{BN_MOMENTUM, DecoderCell, EncoderCell, conv};
use super::config::NvaeConfig;
use super::latent::{normal, residual_normal, split_params, with_temperature};

use crate::Result;
use crate::distributions::{DiagNormal, ImageLikelihood};
use crate::error::Error;
use crate::kernels;
use crate::nn::SpectralConv2d;
use crate::objective::ElboTerms;
use crate::traits::{Distribution, KlDivergence, LatentVariableModel};

/// The bottom-up cells that lead to one group's encoder feature (the first may downsample).
#[derive(Module, Debug)]
pub struct EncoderGroup {
    /// The cells, applied in order.
    pub cells: Vec<EncoderCell>,
}

/// One step of the top-down tower: its cells, then the group's prior, posterior and the
/// combination of the sampled latent map with the state.
#[derive(Module, Debug)]
pub struct DecoderGroup {
    /// Cells applied to the state before the group (the first may upsample); none for the
    /// top group.
    pub cells: Vec<DecoderCell>,
    /// `ELU → Conv1×1 → (μ_p, log σ_p)`; `None` for the top group, whose prior is `N(0, I)`.
    pub prior_head: Option<SpectralConv2d>,
    /// Top group: `ELU → Conv1×1 → ELU` on the last encoder feature; other groups: the
    /// encoder feature plus a 1×1 convolution of the state.
    pub encoder_combiner: SpectralConv2d,
    /// `Conv3×3 → (Δμ, log Δσ)` (top group: `(μ, log σ)`).
    pub posterior_head: SpectralConv2d,
    /// `Conv1×1` of the concatenated state and latent map, back to the state's channels.
    pub decoder_combiner: SpectralConv2d,
}

/// An NVAE-style deep hierarchical VAE (Vahdat & Kautz 2020) for images given as flat rows
/// `[batch, channels·height·width]`.
///
/// # Formula
/// ```text
/// p(x, z) = p(x | z) Π_l p(z_l | z_<l),        q(z | x) = Π_l q(z_l | z_<l, x)
/// ELBO    = E_q[log p(x | z)] − Σ_l E_q[KL(q(z_l | z_<l, x) ‖ p(z_l | z_<l))]
/// ```
/// Group 0 (the coarsest) has prior `N(0, I)`; every other group's prior comes from the
/// top-down state and its posterior is the [residual normal](super::residual_normal) around
/// it. [`elbo`](LatentVariableModel::elbo) returns one KL term per group, top group first.
///
/// ```
/// use burn::tensor::{Tensor, Distribution};
/// use elbo::LatentVariableModel;
/// use elbo::models::nvae::NvaeConfig;
/// let device = elbo::device::default_device();
/// let config = NvaeConfig::new(1, 8, 8).with_channels(4).with_latent_channels(2);
/// let model = config.init(&device)?;
/// let x = Tensor::<2>::random([3, 64], Distribution::Bernoulli(0.5), &device);
/// let terms = model.elbo(&x)?;
/// assert_eq!(terms.kl.len(), 4); // 2 scales × 2 groups
/// assert_eq!(model.log_importance_weights(&x, 5)?.dims(), [3, 5]);
/// # Ok::<(), elbo::Error>(())
/// ```
#[derive(Module, Debug)]
pub struct Nvae {
    /// `Conv3×3`: image → features at full resolution.
    pub stem: SpectralConv2d,
    /// Full-resolution bottom-up cells, the last one downsampling to the finest scale.
    pub preprocess: Vec<EncoderCell>,
    /// Bottom-up groups, finest first.
    pub encoder_groups: Vec<EncoderGroup>,
    /// The learned top-down input `[C_top, h_top, w_top]`.
    pub top: Param<Tensor<3>>,
    /// Top-down groups, coarsest first.
    pub decoder_groups: Vec<DecoderGroup>,
    /// Top-down cells back to full resolution, the first one upsampling.
    pub postprocess: Vec<DecoderCell>,
    /// `ELU → Conv3×3`: features → the pixel distribution's parameters.
    pub image_head: SpectralConv2d,
    /// The configuration the model was built from.
    #[module(skip)]
    pub config: NvaeConfig,
}

/// What the top-down pass produced for one group.
struct GroupDraw {
    prior: DiagNormal<4>,
    posterior: Option<DiagNormal<4>>,
    z: Tensor<4>,
}

impl Nvae {
    pub(crate) fn new(config: &NvaeConfig, device: &Device) -> Self {
        let c0 = config.channels_at(0);
        let z = config.latent_channels;
        let n = config.cells_per_group;

        let mut preprocess: Vec<EncoderCell> = (0..config.preprocess_cells)
            .map(|_| EncoderCell::new(c0, c0, false, device))
            .collect();
        preprocess.push(EncoderCell::new(c0, c0, true, device));

        let mut encoder_groups = Vec::new();
        for scale in 0..config.scales {
            let c = config.channels_at(scale);
            for g in 0..config.groups_per_scale {
                let mut cells = Vec::new();
                if scale > 0 && g == 0 {
                    cells.push(EncoderCell::new(
                        config.channels_at(scale - 1),
                        c,
                        true,
                        device,
                    ));
                }
                cells.extend((0..n).map(|_| EncoderCell::new(c, c, false, device)));
                encoder_groups.push(EncoderGroup { cells });
            }
        }

        let top_scale = config.scales - 1;
        let (h_top, w_top) = config.size_at(top_scale);
        let c_top = config.channels_at(top_scale);
        let top = Param::from_tensor(Tensor::random(
            [c_top, h_top, w_top],
            TensorDistribution::Normal(0.0, 1.0),
            device,
        ));

        let mut decoder_groups = Vec::new();
        for group in 0..config.groups() {
            let scale = config.scales - 1 - group / config.groups_per_scale;
            let c = config.channels_at(scale);
            let first_of_scale = group % config.groups_per_scale == 0;
            let mut cells = Vec::new();
            if group > 0 {
                if first_of_scale {
                    let c_above = config.channels_at(scale + 1);
                    cells.push(DecoderCell::new(c_above, c, config.expansion, true, device));
                }
                cells.extend(
                    (0..n).map(|_| DecoderCell::new(c, c, config.expansion, false, device)),
                );
            }
            decoder_groups.push(DecoderGroup {
                cells,
                prior_head: (group > 0).then(|| conv(c, 2 * z, 1, device)),
                encoder_combiner: conv(c, c, 1, device),
                posterior_head: conv(c, 2 * z, 3, device),
                decoder_combiner: conv(c + z, c, 1, device),
            });
        }

        let mut postprocess = vec![DecoderCell::new(c0, c0, config.expansion, true, device)];
        postprocess.extend(
            (0..config.postprocess_cells)
                .map(|_| DecoderCell::new(c0, c0, config.expansion, false, device)),
        );

        Self {
            stem: conv(config.image_channels, c0, 3, device),
            preprocess,
            encoder_groups,
            top,
            decoder_groups,
            postprocess,
            image_head: conv(c0, config.output_channels(), 3, device),
            config: config.clone(),
        }
    }

    /// Number of latent groups.
    pub fn groups(&self) -> usize {
        self.decoder_groups.len()
    }

    /// Latent dimensions `Z·h·w` of each group, top group first.
    pub fn group_dims(&self) -> Vec<usize> {
        (0..self.groups())
            .map(|l| self.config.group_shape(l).iter().product())
            .collect()
    }

    /// Checks that `x` is `[batch ≥ 1, channels·height·width]` and finite.
    pub fn check_input(&self, x: &Tensor<2>) -> Result<()> {
        let c = &self.config;
        let d = c.image_channels * c.height * c.width;
        let [b, cols] = x.dims();
        if b == 0 || cols != d {
            return Err(Error::shape(
                "NVAE input",
                format!(
                    "[batch ≥ 1, {d}] (flat {}×{}×{} images)",
                    c.image_channels, c.height, c.width
                ),
                [b, cols],
            ));
        }
        Ok(())
    }

    fn images(&self, x: &Tensor<2>) -> Tensor<4> {
        let c = &self.config;
        let [b, _] = x.dims();
        x.clone().reshape([b, c.image_channels, c.height, c.width])
    }

    /// The encoder features of each group, top group first (bottom-up pass).
    fn bottom_up(&self, x: Tensor<4>) -> Vec<Tensor<4>> {
        // Pixels in [0, 1] → [−1, 1], as NVAE feeds its stem.
        let mut s = self.stem.forward(x.mul_scalar(2.0).sub_scalar(1.0));
        for cell in &self.preprocess {
            s = cell.forward(s);
        }
        let mut features = Vec::with_capacity(self.encoder_groups.len());
        for group in &self.encoder_groups {
            for cell in &group.cells {
                s = cell.forward(s);
            }
            features.push(s.clone());
        }
        features.reverse();
        features
    }

    /// The top-down pass over `batch` rows. With `features` (from [`bottom_up`], one row
    /// per image) and a number of draws `k`, every latent is drawn from the posterior,
    /// `k` draws per image (row `j·B + i` is draw `j` of image `i`, `batch = B·k`); without,
    /// from the prior at `temperature`. Returns the pixel distribution's parameters and
    /// each group's draw.
    fn top_down(
        &self,
        features: Option<(&[Tensor<4>], usize)>,
        batch: usize,
        temperature: f64,
        device: &Device,
    ) -> Result<(Tensor<4>, Vec<GroupDraw>)> {
        let [c, h, w] = self.top.dims();
        let mut s = self.top.val().unsqueeze::<4>().expand([batch, c, h, w]);
        let mut draws = Vec::with_capacity(self.groups());
        for (l, group) in self.decoder_groups.iter().enumerate() {
            for cell in &group.cells {
                s = cell.forward(s);
            }
            let prior = match &group.prior_head {
                None => {
                    let [z, h, w] = self.config.group_shape(l);
                    normal(
                        Tensor::zeros([batch, z, h, w], device),
                        Tensor::zeros([batch, z, h, w], device),
                    )?
                }
                Some(head) => {
                    let (mu, log_sigma) = split_params(head.forward(kernels::elu(s.clone(), 1.0)))?;
                    normal(mu, log_sigma)?
                }
            };
            let (z, posterior) = match features {
                Some((features, k)) => {
                    let repeat = |t: Tensor<4>| if k == 1 { t } else { t.repeat_dim(0, k) };
                    let f = features[l].clone();
                    let posterior = if l == 0 {
                        // The top group's posterior depends on the image alone: computed
                        // once per image, then repeated for its draws.
                        let f = kernels::elu(f, 1.0);
                        let f = kernels::elu(group.encoder_combiner.forward(f), 1.0);
                        let params = repeat(group.posterior_head.forward(f));
                        let (mu, log_sigma) = split_params(params)?;
                        normal(mu, log_sigma)?
                    } else {
                        let f = repeat(f) + group.encoder_combiner.forward(s.clone());
                        residual_normal(&prior, group.posterior_head.forward(f))?
                    };
                    (posterior.sample(), Some(posterior))
                }
                None => {
                    let scaled = with_temperature(prior.clone(), temperature)?;
                    (scaled.sample(), None)
                }
            };
            s = group
                .decoder_combiner
                .forward(Tensor::cat(vec![s, z.clone()], 1));
            draws.push(GroupDraw {
                prior,
                posterior,
                z,
            });
        }
        for cell in &self.postprocess {
            s = cell.forward(s);
        }
        let params = self.image_head.forward(kernels::elu(s, 1.0));
        Ok((params, draws))
    }

    /// `log w_j = log p(x, z_j) − log q(z_j | x)` for `k` draws per example from the
    /// bottom-up `features` of `x` (the tower is deterministic: its features are repeated,
    /// not recomputed), shape `[batch, k]`.
    fn log_weights_given_features(
        &self,
        x: &Tensor<2>,
        features: &[Tensor<4>],
        k: usize,
    ) -> Result<Tensor<2>> {
        let batch = x.dims()[0];
        let (params, draws) = self.top_down(Some((features, k)), batch * k, 1.0, &x.device())?;
        let mut log_w = self
            .likelihood(params)?
            .log_prob(&x.clone().repeat_dim(0, k));
        for d in &draws {
            let q = d.posterior.as_ref().expect("posterior pass draws from q");
            log_w = log_w + d.prior.log_prob(&d.z) - q.log_prob(&d.z);
        }
        // Row j·B + i is sample j of example i.
        Ok(log_w.reshape([k, batch]).transpose())
    }

    /// `p(x | z)` from the image head's output: Bernoulli logits or the logistic mixture's
    /// parameters, over flat rows.
    fn likelihood(&self, params: Tensor<4>) -> Result<ImageLikelihood> {
        ImageLikelihood::from_network_output(
            params,
            &self.config.likelihood,
            self.config.image_channels,
        )
    }

    /// The mean image (Bernoulli probabilities, or the mixture's mean level), flat.
    fn mean_image(&self, params: Tensor<4>) -> Result<Tensor<2>> {
        Ok(self.likelihood(params)?.mean())
    }

    /// `n` images drawn from the prior with every prior scale multiplied by `temperature`
    /// (NVAE's reduced-temperature sampling), returned as mean images `[n, C·H·W]`.
    ///
    /// # Errors
    /// `n = 0` or a temperature outside `(0, ∞)`.
    pub fn sample(&self, n: usize, temperature: f64, device: &Device) -> Result<Tensor<2>> {
        check_temperature(temperature)?;
        crate::error::ensure_nonzero("n", n)?;
        let (params, _) = self.top_down(None, n, temperature, device)?;
        self.mean_image(params)
    }

    /// Reconstructions of `x`: one posterior draw of every group, decoded to mean images.
    pub fn reconstruct(&self, x: &Tensor<2>) -> Result<Tensor<2>> {
        self.check_input(x)?;
        let features = self.bottom_up(self.images(x));
        let (params, _) = self.top_down(Some((&features, 1)), x.dims()[0], 1.0, &x.device())?;
        self.mean_image(params)
    }

    /// NVAE's batch-norm readjustment before sampling at a reduced temperature: runs
    /// `iterations` sampling passes of `batch_size` images at `temperature` with the
    /// top-down batch norms in training mode and momentum `1/i` on pass `i`, so that their
    /// running statistics become the average over all passes of the samples' statistics
    /// (NVAE sets the momentum to `None` for the same cumulative average), then returns the
    /// model in evaluation mode with the usual momentum restored.
    ///
    /// # Errors
    /// `iterations = 0`, `batch_size = 0` or a temperature outside `(0, ∞)`.
    pub fn readjust_batch_norm(
        self,
        iterations: usize,
        batch_size: usize,
        temperature: f64,
        device: &Device,
    ) -> Result<Self> {
        check_temperature(temperature)?;
        crate::error::ensure_nonzero("iterations", iterations)?;
        crate::error::ensure_nonzero("batch_size", batch_size)?;
        let train_device = device.clone().autodiff();
        let mut model = self.fork(&train_device).train();
        for i in 1..=iterations {
            model.set_decoder_momentum(1.0 / i as f64);
            let (params, _) = model.top_down(None, batch_size, temperature, &train_device)?;
            // Run the pass (the statistics update as it executes), keep nothing.
            let _ = params.detach().sum().into_scalar::<f32>();
        }
        model.set_decoder_momentum(BN_MOMENTUM);
        Ok(model.valid())
    }

    fn set_decoder_momentum(&mut self, momentum: f64) {
        let cells = self
            .decoder_groups
            .iter_mut()
            .flat_map(|g| g.cells.iter_mut())
            .chain(self.postprocess.iter_mut());
        for cell in cells {
            for bn in cell.batch_norms_mut() {
                bn.momentum = momentum;
            }
        }
    }

    fn convs(&self) -> Vec<&SpectralConv2d> {
        let mut convs = vec![&self.stem, &self.image_head];
        for cell in &self.preprocess {
            convs.extend(cell.convs());
        }
        for group in &self.encoder_groups {
            for cell in &group.cells {
                convs.extend(cell.convs());
            }
        }
        for group in &self.decoder_groups {
            for cell in &group.cells {
                convs.extend(cell.convs());
            }
            convs.extend(group.prior_head.as_ref());
            convs.push(&group.encoder_combiner);
            convs.push(&group.posterior_head);
            convs.push(&group.decoder_combiner);
        }
        for cell in &self.postprocess {
            convs.extend(cell.convs());
        }
        convs
    }

    fn batch_norms(&self) -> Vec<&BatchNorm> {
        let mut norms = Vec::new();
        for cell in &self.preprocess {
            norms.extend(cell.batch_norms());
        }
        for group in &self.encoder_groups {
            for cell in &group.cells {
                norms.extend(cell.batch_norms());
            }
        }
        for group in &self.decoder_groups {
            for cell in &group.cells {
                norms.extend(cell.batch_norms());
            }
        }
        for cell in &self.postprocess {
            norms.extend(cell.batch_norms());
        }
        norms
    }

    /// The spectral regulariser `Σ_convs σ_max(W)` (one power-iteration pass per call,
    /// updating each convolution's stored singular vector), shape `[1]`.
    pub fn spectral_penalty(&self) -> Tensor<1> {
        let iterations = self.config.power_iterations;
        let norms: Vec<Tensor<1>> = self
            .convs()
            .into_iter()
            .map(|c| c.spectral_norm(iterations))
            .collect();
        Tensor::cat(norms, 0).sum()
    }

    /// The batch-norm regulariser `Σ_BN max_c |γ_c|`, shape `[1]`.
    pub fn batch_norm_penalty(&self) -> Tensor<1> {
        let maxima: Vec<Tensor<1>> = self
            .batch_norms()
            .into_iter()
            .map(|bn| bn.gamma.val().abs().max())
            .collect();
        Tensor::cat(maxima, 0).sum()
    }
}

fn check_temperature(temperature: f64) -> Result<()> {
    if !(temperature > 0.0 && temperature.is_finite()) {
        return Err(Error::config(
            "temperature",
            temperature,
            "a finite number > 0 (1 samples the prior itself; NVAE uses 0.6–1)",
        ));
    }
    Ok(())
}

impl LatentVariableModel for Nvae {
    type Input = Tensor<2>;

    fn elbo(&self, x: &Tensor<2>) -> Result<ElboTerms> {
        self.check_input(x)?;
        let images = self.images(x);
        let features = self.bottom_up(images);
        let (params, draws) = self.top_down(Some((&features, 1)), x.dims()[0], 1.0, &x.device())?;
        let reconstruction = self.likelihood(params)?.log_prob(x);
        let kl = draws
            .iter()
            .map(|d| {
                d.posterior
                    .as_ref()
                    .map(|q| q.kl(&d.prior))
                    .expect("posterior pass draws from q")
            })
            .collect();
        Ok(ElboTerms {
            reconstruction,
            kl,
            group_dims: self.group_dims(),
        })
    }

    fn log_importance_weights(&self, x: &Tensor<2>, k: usize) -> Result<Tensor<2>> {
        self.check_input(x)?;
        crate::error::ensure_samples(k)?;
        let features = self.bottom_up(self.images(x));
        self.log_weights_given_features(x, &features, k)
    }

    /// Runs the bottom-up tower once for the whole batch, then one top-down pass of `s`
    /// draws per example for each chunk: the deterministic encoder is not recomputed.
    fn visit_log_importance_weights(
        &self,
        x: &Tensor<2>,
        k: usize,
        chunk: usize,
        visit: &mut dyn FnMut(Tensor<2>) -> Result<()>,
    ) -> Result<()> {
        self.check_input(x)?;
        crate::error::ensure_samples(k)?;
        crate::error::ensure_nonzero("sample_chunk", chunk)?;
        let features = self.bottom_up(self.images(x));
        let mut done = 0;
        while done < k {
            let s = chunk.min(k - done);
            visit(self.log_weights_given_features(x, &features, s)?)?;
            done += s;
        }
        Ok(())
    }

    fn penalty(&self) -> Option<Tensor<1>> {
        let c = &self.config;
        let mut total: Option<Tensor<1>> = None;
        if c.spectral_reg > 0.0 {
            total = Some(self.spectral_penalty().mul_scalar(c.spectral_reg));
        }
        if c.bn_reg > 0.0 {
            let bn = self.batch_norm_penalty().mul_scalar(c.bn_reg);
            total = Some(match total {
                Some(t) => t + bn,
                None => bn,
            });
        }
        total
    }
}

impl NvaeConfig {
    /// Builds the model with fresh weights.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] from [`validate`](Self::validate).
    pub fn init(&self, device: &Device) -> crate::Result<Nvae> {
        self.validate()?;
        Ok(Nvae::new(self, device))
    }
}

impl crate::train::ModelConfig for NvaeConfig {
    type Model = Nvae;

    fn init_model(&self, device: &Device) -> crate::Result<Nvae> {
        self.init(device)
    }
}
