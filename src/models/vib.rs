//! The deep variational information bottleneck (Alemi, Fischer, Dillon & Murphy 2017,
//! "Deep Variational Information Bottleneck"): a stochastic encoder `p(z | x)`, a softmax
//! classifier `q(y | z)` and a rate penalty `β·KL(p(z | x) ‖ r(z))`.

use burn::config::Config;
use burn::module::Module;
use burn::nn::{Linear, LinearConfig};
use burn::tensor::{Device, Distribution as TensorDistribution, Int, Tensor, activation};

use super::checks::check_mlp_sizes;
use super::{GaussianHead, MlpEncoder, mlp_trunk};
use crate::data::LabeledBatch;
use crate::distributions::{DiagNormal, StdNormal};
use crate::error::{ensure_non_negative, ensure_nonzero};
use crate::kernels::Run;
use crate::nn::Activation;
use crate::objective::{ElboObjective, ElboTerms, Objective};
use crate::traits::{Batch, Distribution, Encoder, KlDivergence, LatentVariableModel, Prior};

/// Configuration of a [`Vib`]: encoder `input_dim → hidden… → (μ, log σ²) ∈ R^latent_dim`,
/// classifier `latent_dim → num_classes` logits, and the rate weight `β`.
///
/// The defaults are Alemi et al.'s MNIST settings (sec. 4.1): two hidden layers of 1024
/// ReLU units, `K = 256` latent dimensions, `β = 1e-3`.
///
/// ```
/// use elbo::models::VibConfig;
///
/// let config = VibConfig::mnist(); // 784-1024-1024-(2·256), 256 → 10 softmax, β = 1e-3
/// assert_eq!(config.latent_dim, 256);
/// let vib = VibConfig::new(6, 3).with_hidden(vec![8]).with_latent_dim(2).init(&elbo::device::default_device())?;
/// assert_eq!(vib.num_classes(), 3);
/// assert!(VibConfig::new(6, 3).with_beta(-1.0).validate().is_err());
/// # Ok::<(), elbo::Error>(())
/// ```
#[derive(Config, Debug)]
pub struct VibConfig {
    /// Input width (784 for 28×28 images).
    pub input_dim: usize,
    /// Number of classes (at least 2).
    pub num_classes: usize,
    /// Hidden widths of the encoder's MLP trunk.
    #[config(default = "vec![1024, 1024]")]
    pub hidden: Vec<usize>,
    /// Dimension `K` of the bottleneck `z`.
    #[config(default = 256)]
    pub latent_dim: usize,
    /// Activation after every hidden layer.
    #[config(default = "Activation::Relu")]
    pub activation: Activation,
    /// Weight `β >= 0` of the rate `KL(p(z | x) ‖ r(z))` in the loss; used by
    /// [`objective`](Self::objective).
    #[config(default = 1e-3)]
    pub beta: f64,
}

impl VibConfig {
    /// Alemi et al.'s MNIST model: 784 → 1024 → 1024 → 256-dimensional Gaussian bottleneck
    /// → 10-way softmax, `β = 1e-3`.
    pub fn mnist() -> Self {
        Self::new(784, 10)
    }

    /// Checks that every size is at least 1, `num_classes >= 2` and `β` is a finite
    /// number `>= 0` (NaN fails).
    pub fn validate(&self) -> crate::Result<()> {
        check_mlp_sizes(self.input_dim, self.latent_dim, &self.hidden)?;
        if self.num_classes < 2 {
            return Err(crate::Error::config(
                "num_classes",
                self.num_classes,
                "at least 2 classes (a classifier needs two outcomes)",
            ));
        }
        ensure_non_negative("beta", self.beta)
    }

    /// The training objective that makes [`fit`](crate::train::fit) minimise the VIB loss
    /// with this config's `β`: the β-weighted ELBO without free bits or warm-up (see
    /// [`Vib`] for why that is the VIB objective).
    pub fn objective(&self) -> Objective {
        Objective::Elbo(ElboObjective {
            beta: self.beta,
            ..ElboObjective::default()
        })
    }

    /// Builds the model (PyTorch's default initialisation).
    ///
    /// # Errors
    /// [`Error::InvalidConfig`](crate::Error::InvalidConfig) as [`validate`](Self::validate).
    pub fn init(&self, device: &Device) -> crate::Result<Vib> {
        self.validate()?;
        let (trunk, width) = mlp_trunk(self.input_dim, &self.hidden, self.activation, device)?;
        let encoder = MlpEncoder::new(trunk, GaussianHead::new(width, self.latent_dim, device)?)?;
        let classifier = LinearConfig::new(self.latent_dim, self.num_classes).init(device);
        Ok(Vib {
            encoder,
            classifier,
        })
    }
}

/// A variational information bottleneck classifier: a Gaussian encoder
/// `p(z | x) = N(μ(x), diag σ²(x))`, a softmax decoder `q(y | z) = softmax(W z + b)` and the
/// marginal approximation `r(z) = N(0, I)`.
///
/// # Formula
/// ```text
/// J_IB = (1/N) Σ_n E_{ε ~ N(0, I)} [ −log q(y_n | f(x_n, ε)) ] + β · KL(p(z | x_n) ‖ r(z)),
///        f(x, ε) = μ(x) + σ(x) ⊙ ε
/// ```
/// (Alemi et al. 2017, sec. 3, the objective `J_IB`: `H(Y) − J_IB` is a lower bound on the
/// information bottleneck objective `I(Z; Y) − β I(Z; X)`.) [`elbo`](LatentVariableModel::elbo)
/// returns
/// ```text
/// reconstruction_n = log q(y_n | z_n) = log_softmax(W z_n + b)[y_n],  z_n = f(x_n, ε_n)
/// kl_n             = KL(p(z | x_n) ‖ N(0, I)) = ½ Σ_i (μ_i² + σ_i² − 1 − log σ_i²)
/// ```
/// so [`ElboObjective`] with weight `β` (no free bits, no warm-up) computes
/// `mean_n[−reconstruction_n] + β · mean_n kl_n`, which is `J_IB` on the batch with one
/// `ε` per example: training with [`fit`](crate::train::fit) and
/// [`VibConfig::objective`] minimises exactly the VIB loss. The figures `fit` reports as
/// `-bound` are the cross-entropy plus the unweighted rate (the `β = 1` loss), and `KL`
/// is the rate in nats.
///
/// The importance weights ([`log_importance_weights`](LatentVariableModel::log_importance_weights))
/// treat `r(z) q(y | z)` as a latent-variable model of the label with proposal `p(z | x)`:
/// ```text
/// log w_j = log q(y | z_j) + log r(z_j) − log p(z_j | x),  z_j ~ p(z | x)
/// E[log (1/k) Σ_j w_j] ≥ E[reconstruction − kl],   log (1/k) Σ_j w_j → log ∫ q(y | z) r(z) dz  (k → ∞)
/// ```
/// That is the probability the classifier gives `y` when `z` is drawn from the prior,
/// which does not depend on `x`; the `β = 1` ELBO is a lower bound on it. The paper does
/// not use it; it is here because the shared estimators need it.
///
/// # Example
/// ```
/// use burn::tensor::Tensor;
/// use elbo::LatentVariableModel;
/// use elbo::data::LabeledBatch;
/// use elbo::models::VibConfig;
///
/// let device = elbo::device::default_device();
/// let vib = VibConfig::new(4, 3).with_hidden(vec![8]).with_latent_dim(2).init(&device)?;
/// let batch = LabeledBatch::from_labels(Tensor::<2>::ones([5, 4], &device), &[0, 1, 2, 1, 0])?;
/// let terms = vib.elbo(&batch)?;
/// assert_eq!(terms.reconstruction.dims(), [5]); // log q(y | z) <= 0
/// let p = vib.predict_proba(&batch.x, 12)?;
/// assert_eq!(p.dims(), [5, 3]);
/// let accuracy = vib.accuracy(&batch, 12)?;
/// assert!((0.0..=1.0).contains(&accuracy));
/// assert!(vib.mean_kl(&batch.x)? >= 0.0);
/// assert!(vib.elbo(&LabeledBatch::from_labels(batch.x.clone(), &[0, 1, 2, 3, 0])?).is_err());
/// # Ok::<(), elbo::Error>(())
/// ```
#[derive(Module, Debug)]
pub struct Vib {
    /// The stochastic encoder `p(z | x)`: an MLP trunk and a diagonal-Gaussian head.
    pub encoder: MlpEncoder<GaussianHead>,
    /// The decoder `q(y | z)`: one linear layer `z → logits`, then a softmax.
    pub classifier: Linear,
}

impl Vib {
    /// The input width.
    pub fn input_dim(&self) -> usize {
        self.encoder.d_input()
    }

    /// The bottleneck dimension `K`.
    pub fn latent_dim(&self) -> usize {
        self.classifier.weight.dims()[0]
    }

    /// The number of classes.
    pub fn num_classes(&self) -> usize {
        self.classifier.weight.dims()[1]
    }

    /// The marginal approximation `r(z) = N(0, I)`.
    pub fn prior(&self) -> StdNormal {
        StdNormal::new(self.latent_dim()).expect("a linear layer has a non-zero width")
    }

    /// The encoder's distribution `p(z | x)` for each row of `x`.
    ///
    /// # Errors
    /// [`Error::ShapeMismatch`](crate::Error::ShapeMismatch) unless `x` is
    /// `[batch >= 1, input_dim]`.
    ///
    /// # Shapes
    /// - `x`: `[batch, input_dim]`
    /// - output: `[batch, latent_dim]`
    pub fn encode(&self, x: &Tensor<2>) -> crate::Result<DiagNormal<2>> {
        self.encoder.check_input(x)?;
        Ok(self.encoder.encode(x))
    }

    /// The classifier's logits `W z + b` for each row of `z`, `[batch, num_classes]`
    /// (deterministic: `softmax` of a row is `q(y | z)`).
    ///
    /// # Errors
    /// [`Error::ShapeMismatch`](crate::Error::ShapeMismatch) unless `z` is
    /// `[batch >= 1, latent_dim]`.
    pub fn logits(&self, z: &Tensor<2>) -> crate::Result<Tensor<2>> {
        let [batch, k] = z.dims();
        if batch == 0 || k != self.latent_dim() {
            return Err(crate::Error::shape(
                "Vib::logits (z)",
                format!("[batch >= 1, {}]", self.latent_dim()),
                z.dims(),
            ));
        }
        Ok(self.classifier.run(z.clone()))
    }

    /// Checks a labelled batch: `x` is `[batch >= 1, input_dim]`, there is one label per
    /// row and every label is in `0..num_classes`. Reads the labels back to the host.
    ///
    /// # Errors
    /// [`Error::ShapeMismatch`](crate::Error::ShapeMismatch) for a wrong width or a label
    /// count that differs from the rows of `x`;
    /// [`Error::InvalidConfig`](crate::Error::InvalidConfig) for a label out of range.
    pub fn check_batch(&self, batch: &LabeledBatch) -> crate::Result<()> {
        self.encoder.check_input(&batch.x)?;
        batch.check_labels(self.num_classes())
    }

    /// The ELBO terms for given standard-normal noise `ε` (`[batch, latent_dim]`): the
    /// deterministic core of [`elbo`](LatentVariableModel::elbo), with
    /// `z = μ(x) + σ(x) ⊙ ε` (see [`Vib`] for the formula).
    ///
    /// # Errors
    /// As [`check_batch`](Self::check_batch), and
    /// [`Error::ShapeMismatch`](crate::Error::ShapeMismatch) for noise of another shape.
    pub fn elbo_with_noise(
        &self,
        batch: &LabeledBatch,
        noise: Tensor<2>,
    ) -> crate::Result<ElboTerms> {
        self.check_batch(batch)?;
        let q = self.encoder.encode(&batch.x);
        let z = q.sample_with_noise(noise)?;
        Ok(self.terms(&q, &z, &batch.y))
    }

    /// The log importance weights for given standard-normal noise `ε` of shape
    /// `[k·batch, latent_dim]` (row `j·batch + i` is draw `j` of example `i`): the
    /// deterministic core of
    /// [`log_importance_weights`](LatentVariableModel::log_importance_weights), shape
    /// `[batch, k]`.
    ///
    /// # Errors
    /// As [`check_batch`](Self::check_batch), and
    /// [`Error::ShapeMismatch`](crate::Error::ShapeMismatch) unless the noise has a
    /// positive multiple of `batch` rows and `latent_dim` columns.
    pub fn log_importance_weights_with_noise(
        &self,
        batch: &LabeledBatch,
        noise: Tensor<2>,
    ) -> crate::Result<Tensor<2>> {
        self.check_batch(batch)?;
        let n = batch.batch_size();
        let k = self.draws("Vib::log_importance_weights_with_noise", n, &noise)?;
        let q = self.encoder.encode(&batch.x).repeat_rows(k);
        let z = q.sample_with_noise(noise)?;
        let y = batch.y.clone().repeat_dim(0, k);
        let log_w = self.label_log_prob(&z, &y) + self.prior().log_prob(&z) - q.log_prob(&z);
        Ok(log_w.reshape([k, n]).transpose())
    }

    /// Class probabilities averaged over `samples` draws of `z ~ p(z | x)`:
    /// `p̂(y | x) = (1/S) Σ_s softmax(W z_s + b)`, `[batch, num_classes]`. The paper
    /// evaluates with `S = 12`.
    ///
    /// # Errors
    /// [`Error::ShapeMismatch`](crate::Error::ShapeMismatch) unless `x` is
    /// `[batch >= 1, input_dim]`; [`Error::InvalidConfig`](crate::Error::InvalidConfig) if
    /// `samples == 0`.
    pub fn predict_proba(&self, x: &Tensor<2>, samples: usize) -> crate::Result<Tensor<2>> {
        ensure_nonzero("samples", samples)?;
        self.encoder.check_input(x)?;
        let noise = Tensor::random(
            [samples * x.dims()[0], self.latent_dim()],
            TensorDistribution::Normal(0.0, 1.0),
            &x.device(),
        );
        self.predict_proba_with_noise(x, noise)
    }

    /// [`predict_proba`](Self::predict_proba) for given standard-normal noise of shape
    /// `[S·batch, latent_dim]` (row `s·batch + i` is draw `s` of example `i`).
    ///
    /// # Errors
    /// As [`predict_proba`](Self::predict_proba), and
    /// [`Error::ShapeMismatch`](crate::Error::ShapeMismatch) unless the noise has a
    /// positive multiple of `batch` rows and `latent_dim` columns.
    pub fn predict_proba_with_noise(
        &self,
        x: &Tensor<2>,
        noise: Tensor<2>,
    ) -> crate::Result<Tensor<2>> {
        self.encoder.check_input(x)?;
        let n = x.dims()[0];
        let samples = self.draws("Vib::predict_proba_with_noise", n, &noise)?;
        let z = self
            .encoder
            .encode(x)
            .repeat_rows(samples)
            .sample_with_noise(noise)?;
        let p = activation::softmax(self.classifier.run(z), 1);
        let classes = self.num_classes();
        Ok(p.reshape([samples, n, classes])
            .mean_dim(0)
            .reshape([n, classes]))
    }

    /// The fraction of rows whose most probable class under
    /// [`predict_proba`](Self::predict_proba) (`samples` draws) is the label.
    ///
    /// # Errors
    /// As [`check_batch`](Self::check_batch), and
    /// [`Error::InvalidConfig`](crate::Error::InvalidConfig) if `samples == 0`.
    pub fn accuracy(&self, batch: &LabeledBatch, samples: usize) -> crate::Result<f64> {
        self.check_batch(batch)?;
        let n = batch.batch_size();
        let predicted = self
            .predict_proba(&batch.x, samples)?
            .argmax(1)
            .reshape([n]);
        let correct = predicted.equal(batch.y.clone()).int().sum();
        let correct = correct.into_scalar::<i64>();
        Ok(correct as f64 / n as f64)
    }

    /// The rate: the batch mean of `KL(p(z | x) ‖ N(0, I))`, in nats (an upper bound on
    /// `I(Z; X)` over the batch's empirical distribution).
    ///
    /// # Errors
    /// [`Error::ShapeMismatch`](crate::Error::ShapeMismatch) unless `x` is
    /// `[batch >= 1, input_dim]`.
    pub fn mean_kl(&self, x: &Tensor<2>) -> crate::Result<f64> {
        let kl = self.encode(x)?.kl(&self.prior()).detach().mean();
        Ok(kl.into_scalar::<f32>() as f64)
    }

    /// `log q(y | z) = log_softmax(W z + b)[y]` per row (numerically stable).
    fn label_log_prob(&self, z: &Tensor<2>, y: &Tensor<1, Int>) -> Tensor<1> {
        let n = z.dims()[0];
        let log_p = activation::log_softmax(self.classifier.run(z.clone()), 1);
        log_p.gather(1, y.clone().reshape([n, 1])).reshape([n])
    }

    fn terms(&self, q: &DiagNormal<2>, z: &Tensor<2>, y: &Tensor<1, Int>) -> ElboTerms {
        ElboTerms::new(self.label_log_prob(z, y), vec![q.kl(&self.prior())])
    }

    /// The number of draws in noise of shape `[draws·batch, latent_dim]`.
    fn draws(&self, context: &str, batch: usize, noise: &Tensor<2>) -> crate::Result<usize> {
        let [rows, k] = noise.dims();
        if rows == 0 || rows % batch != 0 || k != self.latent_dim() {
            return Err(crate::Error::shape(
                format!("{context} (noise)"),
                format!(
                    "[draws·{batch}, {}] with draws >= 1 (row j·batch + i is draw j of example i)",
                    self.latent_dim()
                ),
                noise.dims(),
            ));
        }
        Ok(rows / batch)
    }
}

impl LatentVariableModel for Vib {
    type Input = LabeledBatch;

    fn elbo(&self, batch: &LabeledBatch) -> crate::Result<ElboTerms> {
        self.check_batch(batch)?;
        let q = self.encoder.encode(&batch.x);
        let z = q.sample();
        Ok(self.terms(&q, &z, &batch.y))
    }

    fn log_importance_weights(&self, batch: &LabeledBatch, k: usize) -> crate::Result<Tensor<2>> {
        crate::error::ensure_samples(k)?;
        self.encoder.check_input(&batch.x)?;
        let noise = Tensor::random(
            [k * batch.batch_size(), self.latent_dim()],
            TensorDistribution::Normal(0.0, 1.0),
            &batch.x.device(),
        );
        self.log_importance_weights_with_noise(batch, noise)
    }
}

impl crate::train::ModelConfig for VibConfig {
    type Model = Vib;

    fn init_model(&self, device: &Device) -> crate::Result<Vib> {
        self.init(device)
    }
}
