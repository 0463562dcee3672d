//! The user's side of `examples/custom_model`: a convolutional encoder trunk and a decoder
//! with a learned-variance Gaussian likelihood, written against elbo's traits and plugged
//! into its `Vae` with its Gaussian head and standard-normal prior; a config that builds
//! them; and dequantised images to train the continuous density on. `tests/it/custom_model.rs`
//! includes this file as it is.

use burn::config::Config;
use burn::module::{Module, Param};
use burn::nn::conv::{Conv2d, Conv2dConfig, ConvTranspose2d, ConvTranspose2dConfig};
use burn::nn::{Linear, LinearConfig, PaddingConfig2d};
use burn::tensor::{Device, Tensor, TensorData, activation};
use elbo::data::{Images, TrainData};
use elbo::distributions::{DiagNormal, StdNormal};
use elbo::kernels::Run;
use elbo::models::{GaussianHead, Vae};
use elbo::train::ModelConfig;
use elbo::{Decoder, Encoder, PosteriorHead};
use rand::RngExt;
use rand::rngs::StdRng;

/// An encoder trunk of our own: two 4×4 convolutions of stride 2 with ReLU on
/// `[batch, channels·side·side]` images, flattened into any posterior head.
#[derive(Module, Debug)]
pub struct SmallConvTrunk<H> {
    pub conv1: Conv2d,
    pub conv2: Conv2d,
    pub head: H,
    /// `[channels, side]` of the input images.
    pub image: [usize; 2],
}

impl<H: PosteriorHead> Encoder for SmallConvTrunk<H> {
    type Input = Tensor<2>;
    type Posterior = H::Posterior;

    fn encode(&self, x: &Tensor<2>) -> H::Posterior {
        let [c, side] = self.image;
        let batch = x.dims()[0];
        let map = x.clone().reshape([batch, c, side, side]);
        let map = activation::relu(self.conv1.run(map));
        let map = activation::relu(self.conv2.run(map));
        self.head.posterior(map.reshape([batch as i64, -1]))
    }

    fn check_input(&self, x: &Tensor<2>) -> elbo::Result<()> {
        let [c, side] = self.image;
        let [batch, d] = x.dims();
        if batch == 0 || d != c * side * side {
            return Err(elbo::Error::shape(
                "SmallConvTrunk input",
                format!("[batch >= 1, {}]", c * side * side),
                x.dims(),
            ));
        }
        Ok(())
    }
}

/// A decoder of our own: a linear map to `channels·(side/4)²` features, two transposed
/// convolutions back to the image, a sigmoid mean in `[0, 1]`, and a learned
/// log-variance per pixel: `p(x | z) = N(μ(z), diag σ²)`.
#[derive(Module, Debug)]
pub struct LearnedVarianceDecoder {
    pub linear: Linear,
    pub deconv1: ConvTranspose2d,
    pub deconv2: ConvTranspose2d,
    /// `log σ²` of each pixel, learned.
    pub log_var: Param<Tensor<1>>,
    /// `[channels, side]` of the output images, and the width of the first feature map.
    pub shape: [usize; 3],
}

impl Decoder for LearnedVarianceDecoder {
    type Latent = Tensor<2>;
    type Likelihood = DiagNormal<2>;

    fn decode(&self, z: &Tensor<2>) -> DiagNormal<2> {
        let [c, side, width] = self.shape;
        let batch = z.dims()[0];
        let map = activation::relu(self.linear.run(z.clone())).reshape([
            batch,
            width,
            side / 4,
            side / 4,
        ]);
        let map = activation::relu(self.deconv1.run(map));
        let mean = activation::sigmoid(self.deconv2.run(map)).reshape([batch, c * side * side]);
        let log_var = self
            .log_var
            .val()
            .reshape([1, c * side * side])
            .expand([batch, c * side * side]);
        DiagNormal::new(mean, log_var).expect("mean and log-variance are one shape")
    }
}

/// The whole model: our trunk with elbo's Gaussian head, our decoder, elbo's prior.
pub type CustomVae = Vae<SmallConvTrunk<GaussianHead>, LearnedVarianceDecoder, StdNormal>;

/// What builds a [`CustomVae`]; it is what checkpoints store and `restore` reads back.
#[derive(Config, Debug)]
pub struct CustomVaeConfig {
    /// Image planes (1 grey, 3 RGB).
    pub channels: usize,
    /// Image side, a multiple of 4.
    pub side: usize,
    /// Latent dimensions.
    #[config(default = 16)]
    pub latent: usize,
    /// Feature maps of the convolutions.
    #[config(default = 32)]
    pub width: usize,
}

impl CustomVaeConfig {
    /// A model with fresh weights.
    pub fn init(&self, device: &Device) -> elbo::Result<CustomVae> {
        if self.side == 0 || !self.side.is_multiple_of(4) {
            return Err(elbo::Error::config("side", self.side, "a multiple of 4"));
        }
        let (c, w, side) = (self.channels, self.width, self.side);
        let pad = || PaddingConfig2d::Explicit(1, 1, 1, 1);
        let conv = |c_in, c_out| {
            Conv2dConfig::new([c_in, c_out], [4, 4])
                .with_stride([2, 2])
                .with_padding(pad())
                .init(device)
        };
        let deconv = |c_in, c_out| {
            ConvTranspose2dConfig::new([c_in, c_out], [4, 4])
                .with_stride([2, 2])
                .with_padding([1, 1])
                .init(device)
        };
        let features = w * (side / 4) * (side / 4);
        let trunk = SmallConvTrunk {
            conv1: conv(c, w),
            conv2: conv(w, w),
            head: GaussianHead::new(features, self.latent, device)?,
            image: [c, side],
        };
        let decoder = LearnedVarianceDecoder {
            linear: LinearConfig::new(self.latent, features).init(device),
            deconv1: deconv(w, w),
            deconv2: deconv(w, c),
            log_var: Param::from_tensor(Tensor::full([c * side * side], -4.0, device)),
            shape: [c, side, w],
        };
        Ok(Vae::new(trunk, decoder, StdNormal::new(self.latent)?))
    }
}

/// The one line `restore` needs from a config of our own.
impl ModelConfig for CustomVaeConfig {
    type Model = CustomVae;
    fn init_model(&self, device: &Device) -> elbo::Result<CustomVae> {
        self.init(device)
    }
}

/// 8-bit images as a continuous density's training data: each batch draws
/// `x = (pixel + u) / 256`, `u ~ U(0, 1)` (uniform dequantisation, Theis et al. 2016), so
/// that a Gaussian likelihood cannot collapse onto the 256 levels, and
/// `log p(pixels) ≥ log p(x) − D ln 256`.
pub struct Dequantized(pub Images);

impl Dequantized {
    /// Every image dequantised once with `rng`, as a `[count, D]` tensor.
    pub fn tensor(&self, rng: &mut StdRng, device: &Device) -> elbo::Result<Tensor<2>> {
        let all: Vec<usize> = (0..self.0.count).collect();
        self.batch(&all, rng, device)
    }
}

impl TrainData for Dequantized {
    type Input = Tensor<2>;

    fn len(&self) -> usize {
        self.0.count
    }

    fn batch(
        &self,
        indices: &[usize],
        rng: &mut StdRng,
        device: &Device,
    ) -> elbo::Result<Tensor<2>> {
        let d = self.0.dim();
        let mut values = Vec::with_capacity(indices.len() * d);
        for &i in indices {
            let image = self.0.pixels.get(i * d..(i + 1) * d).ok_or_else(|| {
                elbo::Error::config("index", i, format!("below {}", self.0.count))
            })?;
            values.extend(
                image
                    .iter()
                    .map(|&p| (p as f32 + rng.random::<f32>()) / 256.0),
            );
        }
        Ok(Tensor::from_data(
            TensorData::new(values, [indices.len(), d]),
            device,
        ))
    }
}

/// Bits per dimension of the 8-bit data from the continuous log-likelihood of their
/// dequantisation, `log p(x)` in nats per image of `dims` values:
/// `(−log p(x) + D ln 256) / (D ln 2)`.
pub fn bits_per_dim_8bit(log_px: f64, dims: usize) -> f64 {
    let d = dims as f64;
    (-log_px + d * 256f64.ln()) / (d * std::f64::consts::LN_2)
}
