//! The DDPM U-Net (Ho et al. 2020, appendix B; after PixelCNN++'s backbone): residual
//! blocks with group normalisation and SiLU, a sinusoidal time embedding through an MLP,
//! down- and up-sampling with skip connections, optional self-attention at low resolution,
//! dropout, and an optional class-label embedding added to the time embedding (with a
//! null label for classifier-free guidance).

use burn::config::Config;
use burn::module::{Module, Param};
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::{
    Dropout, DropoutConfig, GroupNorm, GroupNormConfig, Linear, LinearConfig, PaddingConfig2d,
};
use burn::tensor::{Device, Distribution as TensorDistribution, Int, Tensor, activation};

use crate::error::{Error, ensure_nonzero};
use crate::kernels;
use crate::kernels::Run;

/// Sinusoidal embedding of (possibly fractional) time steps (Vaswani et al. 2017, as used
/// by DDPM).
///
/// # Formula
/// ```text
/// emb(t)_i       = sin(t · ω_i),   emb(t)_{i+D/2} = cos(t · ω_i),
/// ω_i            = 10000^(−i / (D/2)),   i = 0 … D/2 − 1
/// ```
/// `t`: `[batch]`; returns `[batch, dim]` (`dim` even).
pub fn timestep_embedding(t: Tensor<1>, dim: usize) -> Tensor<2> {
    let half = dim / 2;
    let device = t.device();
    let scale = (10000f64).ln() / half.max(1) as f64;
    let freqs: Vec<f32> = (0..half)
        .map(|i| (-(i as f64) * scale).exp() as f32)
        .collect();
    let freqs = Tensor::<1>::from_floats(freqs.as_slice(), &device).reshape([1, half]);
    let [b] = t.dims();
    let angles = t.reshape([b, 1]).matmul(freqs);
    Tensor::cat(vec![angles.clone().sin(), angles.cos()], 1)
}

fn conv3(c_in: usize, c_out: usize, device: &Device) -> Conv2d {
    Conv2dConfig::new([c_in, c_out], [3, 3])
        .with_padding(PaddingConfig2d::Explicit(1, 1, 1, 1))
        .init(device)
}

fn group_norm(channels: usize, groups: usize, device: &Device) -> GroupNorm {
    // The largest divisor of `channels` not above `groups`, so any width works.
    let g = (1..=groups.min(channels))
        .rev()
        .find(|g| channels.is_multiple_of(*g))
        .unwrap_or(1);
    GroupNormConfig::new(g, channels).init(device)
}

/// Residual block: `x + Conv(Dropout(SiLU(GN(Conv(SiLU(GN(x))) + Linear(temb)))))`, with a
/// 1×1 convolution on the skip when the channel count changes.
#[derive(Module, Debug)]
pub struct ResBlock {
    norm1: GroupNorm,
    conv1: Conv2d,
    time: Linear,
    norm2: GroupNorm,
    dropout: Dropout,
    conv2: Conv2d,
    skip: Option<Conv2d>,
}

impl ResBlock {
    fn new(c_in: usize, c_out: usize, d_time: usize, config: &UNetConfig, device: &Device) -> Self {
        Self {
            norm1: group_norm(c_in, config.norm_groups, device),
            conv1: conv3(c_in, c_out, device),
            time: LinearConfig::new(d_time, c_out).init(device),
            norm2: group_norm(c_out, config.norm_groups, device),
            dropout: DropoutConfig::new(config.dropout).init(),
            conv2: conv3(c_out, c_out, device),
            skip: (c_in != c_out).then(|| Conv2dConfig::new([c_in, c_out], [1, 1]).init(device)),
        }
    }

    /// # Shapes
    /// - `x`: `[batch, c_in, height, width]`
    /// - `temb`: `[batch, time_dim]`
    /// - output: `[batch, c_out, height, width]`
    fn forward(&self, x: Tensor<4>, temb: Tensor<2>) -> Tensor<4> {
        let h = self
            .conv1
            .run(kernels::group_norm_silu(&self.norm1, x.clone()));
        let [b, c, _, _] = h.dims();
        let h = h + self.time.run(activation::silu(temb)).reshape([b, c, 1, 1]);
        let h = self.conv2.run(
            self.dropout
                .forward(kernels::group_norm_silu(&self.norm2, h)),
        );
        let skip = match &self.skip {
            Some(conv) => conv.run(x),
            None => x,
        };
        skip + h
    }
}

/// Single-head self-attention over the pixels of a feature map, with a residual:
/// `x + W_o · softmax(QᵀK / √c) V`, `Q, K, V` 1×1 projections of `GN(x)`.
#[derive(Module, Debug)]
pub struct AttentionBlock {
    norm: GroupNorm,
    qkv: Linear,
    out: Linear,
}

impl AttentionBlock {
    fn new(channels: usize, groups: usize, device: &Device) -> Self {
        Self {
            norm: group_norm(channels, groups, device),
            qkv: LinearConfig::new(channels, 3 * channels).init(device),
            out: LinearConfig::new(channels, channels).init(device),
        }
    }

    /// # Shapes
    /// - `x`: `[batch, channels, height, width]`
    /// - output: the same
    fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let [b, c, h, w] = x.dims();
        let n = h * w;
        // [b, c, h, w] → [b, n, c]
        let tokens = self.norm.run(x.clone()).reshape([b, c, n]).swap_dims(1, 2);
        let qkv = self.qkv.run(tokens);
        let q = qkv.clone().narrow(2, 0, c);
        let k = qkv.clone().narrow(2, c, c);
        let v = qkv.narrow(2, 2 * c, c);
        let scores = q.matmul(k.swap_dims(1, 2)).div_scalar((c as f64).sqrt());
        let attended = activation::softmax(scores, 2).matmul(v);
        let out = self.out.run(attended).swap_dims(1, 2).reshape([b, c, h, w]);
        x + out
    }
}

/// One resolution level of the down path: residual blocks (each optionally followed by
/// attention) whose output is the level's skip, then a stride-2 convolution unless it is
/// the last level.
#[derive(Module, Debug)]
pub struct DownLevel {
    blocks: Vec<ResBlock>,
    attention: Vec<AttentionBlock>,
    downsample: Option<Conv2d>,
}

/// One resolution level of the up path: a residual block reading the state concatenated
/// with the level's skip, further residual blocks (each block optionally followed by
/// attention), then a nearest-neighbour ×2 upsampling and a 3×3 convolution unless it is
/// the top level.
#[derive(Module, Debug)]
pub struct UpLevel {
    blocks: Vec<ResBlock>,
    attention: Vec<AttentionBlock>,
    upsample: Option<Conv2d>,
}

/// Configuration of a [`UNet`]. The defaults are the small MNIST U-Net of
/// `reference/pytorch/ddpm.py` (base width 64; 32 gives about 0.4 M parameters):
/// two levels (28×28 and 14×14), one residual block per level and in the middle, no
/// attention, no dropout.
#[derive(Config, Debug)]
pub struct UNetConfig {
    /// Image channels (input and output).
    pub channels: usize,
    /// Base width `C`; level `i` has `C · channel_mults[i]` channels.
    #[config(default = 64)]
    pub base_channels: usize,
    /// Width multiplier per resolution level; each level after the first halves the
    /// resolution, so the image size must be divisible by `2^(levels − 1)`.
    #[config(default = "vec![1, 2]")]
    pub channel_mults: Vec<usize>,
    /// Residual blocks per level (on each path).
    #[config(default = 1)]
    pub res_blocks: usize,
    /// Levels (0-based) that get self-attention after each residual block.
    #[config(default = "vec![]")]
    pub attention_levels: Vec<usize>,
    /// Self-attention after the middle residual block.
    #[config(default = false)]
    pub middle_attention: bool,
    /// Dropout inside the residual blocks (DDPM uses 0.1 on CIFAR-10).
    #[config(default = 0.0)]
    pub dropout: f64,
    /// Groups of the group normalisations (at most; a divisor of the width is used).
    #[config(default = 8)]
    pub norm_groups: usize,
    /// Classes of the label the network can be conditioned on; 0 (the default) builds an
    /// unconditional network. With `n > 0` a learned embedding of `n + 1` rows (row `n` is
    /// the null label, "no condition", that classifier-free guidance trains and samples
    /// with) is added to the time embedding.
    #[config(default = 0)]
    pub num_classes: usize,
    /// Exponents `n` of VDM's Fourier features (Kingma et al. 2021, §3.4): for each,
    /// `sin(2ⁿ·2π x)` and `cos(2ⁿ·2π x)` of every input channel are concatenated to the
    /// input, so the network sees the fine detail of `x` that the likelihood of 8-bit data
    /// depends on. Empty (the default) for none; VDM uses `[6, 7]`.
    #[config(default = "vec![]")]
    pub fourier_exponents: Vec<i32>,
}

impl UNetConfig {
    /// Checks that the network takes images of `channels` × `height` × `width`: the same
    /// channel count, and a size its levels can halve.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] naming `unet.channels` or `height/width`.
    pub fn check_images(&self, channels: usize, height: usize, width: usize) -> crate::Result<()> {
        if self.channels != channels {
            return Err(Error::config(
                "unet.channels",
                self.channels,
                format!("the images' channel count {channels}"),
            ));
        }
        let divisor = self.size_divisor();
        if !height.is_multiple_of(divisor) || !width.is_multiple_of(divisor) {
            return Err(Error::config(
                "height/width",
                format!("{height}×{width}"),
                format!(
                    "multiples of {divisor} (the U-Net halves the size {} times; pad the \
                     images or use fewer channel_mults)",
                    self.channel_mults.len() - 1
                ),
            ));
        }
        Ok(())
    }

    /// Checks sizes and the dropout rate (NaN-proof).
    pub fn validate(&self) -> crate::Result<()> {
        ensure_nonzero("channels", self.channels)?;
        ensure_nonzero("base_channels", self.base_channels)?;
        ensure_nonzero("res_blocks", self.res_blocks)?;
        ensure_nonzero("norm_groups", self.norm_groups)?;
        if self.channel_mults.is_empty() || self.channel_mults.contains(&0) {
            return Err(Error::config(
                "channel_mults",
                format!("{:?}", self.channel_mults),
                "at least one level, every multiplier >= 1",
            ));
        }
        if let Some(l) = self
            .attention_levels
            .iter()
            .find(|&&l| l >= self.channel_mults.len())
        {
            return Err(Error::config(
                "attention_levels",
                l,
                format!(
                    "a level below {} (one per channel multiplier)",
                    self.channel_mults.len()
                ),
            ));
        }
        if let Some(n) = self
            .fourier_exponents
            .iter()
            .find(|n| !(-8..=16).contains(*n))
        {
            return Err(Error::config(
                "fourier_exponents",
                n,
                "exponents in −8..=16 (VDM uses 6 and 7 for 8-bit data in [−1, 1]; above 16 \
                 the features of f32 inputs are rounding noise)",
            ));
        }
        if !(0.0..1.0).contains(&self.dropout) {
            return Err(Error::config(
                "dropout",
                self.dropout,
                "a probability in [0, 1)",
            ));
        }
        Ok(())
    }

    /// The factor the image size must be divisible by: `2^(levels − 1)`.
    pub fn size_divisor(&self) -> usize {
        1 << (self.channel_mults.len().saturating_sub(1))
    }

    /// Builds the network.
    pub fn init(&self, device: &Device) -> crate::Result<UNet> {
        self.validate()?;
        let c0 = self.base_channels;
        let d_time = 4 * c0;
        let widths: Vec<usize> = self.channel_mults.iter().map(|m| m * c0).collect();
        let levels = widths.len();
        let attention_at = |level: usize, c: usize| -> Vec<AttentionBlock> {
            if self.attention_levels.contains(&level) {
                (0..self.res_blocks)
                    .map(|_| AttentionBlock::new(c, self.norm_groups, device))
                    .collect()
            } else {
                Vec::new()
            }
        };
        let mut c = c0;
        let mut down = Vec::with_capacity(levels);
        for (i, &w) in widths.iter().enumerate() {
            let blocks = (0..self.res_blocks)
                .map(|b| ResBlock::new(if b == 0 { c } else { w }, w, d_time, self, device))
                .collect();
            c = w;
            let downsample = (i + 1 < levels).then(|| {
                Conv2dConfig::new([c, c], [3, 3])
                    .with_stride([2, 2])
                    .with_padding(PaddingConfig2d::Explicit(1, 1, 1, 1))
                    .init(device)
            });
            down.push(DownLevel {
                blocks,
                attention: attention_at(i, w),
                downsample,
            });
        }
        let middle = ResBlock::new(c, c, d_time, self, device);
        let middle_attention = self
            .middle_attention
            .then(|| AttentionBlock::new(c, self.norm_groups, device));
        let mut up = Vec::with_capacity(levels);
        for (i, &w) in widths.iter().enumerate().rev() {
            let blocks = (0..self.res_blocks)
                .map(|b| ResBlock::new(if b == 0 { c + w } else { w }, w, d_time, self, device))
                .collect();
            c = w;
            up.push(UpLevel {
                blocks,
                attention: attention_at(i, w),
                upsample: (i > 0).then(|| conv3(w, w, device)),
            });
        }
        // N(0, 1) rows, as PyTorch's `nn.Embedding`.
        let label_embedding = (self.num_classes > 0).then(|| {
            Param::from_tensor(Tensor::random(
                [self.num_classes + 1, d_time],
                TensorDistribution::Normal(0.0, 1.0),
                device,
            ))
        });
        Ok(UNet {
            time_in: LinearConfig::new(c0, d_time).init(device),
            label_embedding,
            time_out: LinearConfig::new(d_time, d_time).init(device),
            stem: conv3(
                self.channels * (1 + 2 * self.fourier_exponents.len()),
                c0,
                device,
            ),
            down,
            middle,
            middle_attention,
            up,
            out_norm: group_norm(c, self.norm_groups, device),
            out_conv: conv3(c, self.channels, device),
            base_channels: c0,
            size_divisor: self.size_divisor(),
            num_classes: self.num_classes,
            fourier_exponents: self.fourier_exponents.clone(),
        })
    }
}

/// The DDPM U-Net: `(x_t, t) ↦` a tensor of `x_t`'s shape (ε, x₀ or v, as the diffusion
/// model is parameterised).
///
/// ```
/// use burn::tensor::Tensor;
/// use elbo::nn::UNetConfig;
/// let device = elbo::device::default_device();
/// let net = UNetConfig::new(1).with_base_channels(8).init(&device)?;
/// let x = Tensor::<4>::zeros([2, 1, 12, 12], &device);
/// let t = Tensor::<1>::from_floats([1.0, 500.0], &device);
/// assert_eq!(net.forward(x, t)?.dims(), [2, 1, 12, 12]);
/// # Ok::<(), elbo::Error>(())
/// ```
#[derive(Module, Debug)]
pub struct UNet {
    time_in: Linear,
    /// `[num_classes + 1, d_time]`: one row per class, the last for the null label.
    label_embedding: Option<Param<Tensor<2>>>,
    time_out: Linear,
    stem: Conv2d,
    down: Vec<DownLevel>,
    middle: ResBlock,
    middle_attention: Option<AttentionBlock>,
    up: Vec<UpLevel>,
    out_norm: GroupNorm,
    out_conv: Conv2d,
    #[module(skip)]
    base_channels: usize,
    #[module(skip)]
    size_divisor: usize,
    #[module(skip)]
    num_classes: usize,
    #[module(skip)]
    fourier_exponents: Vec<i32>,
}

impl UNet {
    /// `x` with its Fourier features concatenated along the channels:
    /// `[x, sin(2ⁿ·2π x), cos(2ⁿ·2π x)]` for each configured exponent `n` (the input as it
    /// is when there are none).
    pub fn with_fourier_features(&self, x: Tensor<4>) -> Tensor<4> {
        if self.fourier_exponents.is_empty() {
            return x;
        }
        let mut parts = vec![x.clone()];
        for &n in &self.fourier_exponents {
            let scaled = x
                .clone()
                .mul_scalar(2f64.powi(n) * 2.0 * std::f64::consts::PI);
            parts.push(scaled.clone().sin());
            parts.push(scaled.cos());
        }
        Tensor::cat(parts, 1)
    }

    /// `x_t`: `[batch, channels, H, W]` with `H`, `W` divisible by `2^(levels − 1)`;
    /// `t`: `[batch]` time steps. Returns `[batch, channels, H, W]`.
    ///
    /// # Errors
    /// [`Error::ShapeMismatch`] for a size the levels cannot halve or a `t` of the wrong
    /// length.
    ///
    /// # Shapes
    /// - `x`: `[batch, channels, height, width]`, `height` and `width` divisible by `2^(levels − 1)`
    /// - `t`: `[batch]`
    /// - output: `[batch, channels, height, width]`
    pub fn forward(&self, x: Tensor<4>, t: Tensor<1>) -> crate::Result<Tensor<4>> {
        self.forward_with_label(x, t, None)
    }

    /// Classes of the label the network takes (0 for an unconditional network).
    pub fn num_classes(&self) -> usize {
        self.num_classes
    }

    /// As [`forward`](Self::forward), conditioned on class labels: `labels` is `[batch]`
    /// with values in `0..=num_classes`, where `num_classes` is the null label; `None` is
    /// the null label for every row (and the only choice for an unconditional network).
    ///
    /// # Formula
    /// ```text
    /// temb = MLP(sinusoid(t)) + E[y]        (E: [num_classes + 1, 4·C] learned rows)
    /// ```
    ///
    /// # Errors
    /// As [`forward`](Self::forward); [`Error::ShapeMismatch`] for labels of another length
    /// than the batch; [`Error::InvalidConfig`] for a label out of range, or for labels
    /// given to an unconditional network.
    pub fn forward_with_label(
        &self,
        x: Tensor<4>,
        t: Tensor<1>,
        labels: Option<&Tensor<1, Int>>,
    ) -> crate::Result<Tensor<4>> {
        let [b, _, h, w] = x.dims();
        if !h.is_multiple_of(self.size_divisor)
            || !w.is_multiple_of(self.size_divisor)
            || t.dims() != [b]
        {
            return Err(Error::shape(
                "UNet input",
                format!(
                    "x [batch, channels, H, W] with H, W multiples of {} and t [batch]",
                    self.size_divisor
                ),
                (x.dims(), t.dims()),
            ));
        }
        let temb = timestep_embedding(t, self.base_channels);
        let mut temb = self.time_out.run(activation::silu(self.time_in.run(temb)));
        if let Some(rows) = self.label_rows(labels, b, &x.device())? {
            temb = temb + rows;
        }
        let mut s = self.stem.run(self.with_fourier_features(x));
        let mut skips = Vec::with_capacity(self.down.len());
        for level in &self.down {
            for (i, block) in level.blocks.iter().enumerate() {
                s = block.forward(s, temb.clone());
                if let Some(attention) = level.attention.get(i) {
                    s = attention.forward(s);
                }
            }
            skips.push(s.clone());
            if let Some(conv) = &level.downsample {
                s = conv.run(s);
            }
        }
        s = self.middle.forward(s, temb.clone());
        if let Some(attention) = &self.middle_attention {
            s = attention.forward(s);
        }
        for level in &self.up {
            for (i, block) in level.blocks.iter().enumerate() {
                s = if i == 0 {
                    let skip = skips.pop().expect("one skip per level");
                    block.forward(Tensor::cat(vec![s, skip], 1), temb.clone())
                } else {
                    block.forward(s, temb.clone())
                };
                if let Some(attention) = level.attention.get(i) {
                    s = attention.forward(s);
                }
            }
            if let Some(conv) = &level.upsample {
                s = conv.run(kernels::upsample_nearest2(s));
            }
        }
        Ok(self
            .out_conv
            .run(kernels::group_norm_silu(&self.out_norm, s)))
    }
}

impl UNet {
    /// The label embedding's rows for `labels` (the null row where `None`), or `None` for an
    /// unconditional network.
    fn label_rows(
        &self,
        labels: Option<&Tensor<1, Int>>,
        batch: usize,
        device: &Device,
    ) -> crate::Result<Option<Tensor<2>>> {
        let Some(embedding) = &self.label_embedding else {
            return match labels {
                None => Ok(None),
                Some(_) => Err(Error::config(
                    "labels",
                    "given",
                    "none: this U-Net was built with num_classes = 0 (set UNetConfig::num_classes \
                     to condition it)",
                )),
            };
        };
        let indices = match labels {
            None => Tensor::<1, Int>::full([batch], self.num_classes as i64, device),
            Some(y) => {
                if y.dims() != [batch] {
                    return Err(Error::shape("UNet labels", format!("[{batch}]"), y.dims()));
                }
                let values: Vec<i64> =
                    y.clone()
                        .try_into_vec_as::<i64>()
                        .map_err(|e| Error::NonFinite {
                            context: "reading the labels back from the device".into(),
                            hint: format!("{e:?}"),
                        })?;
                if let Some(bad) = values
                    .iter()
                    .find(|&&v| !(0..=self.num_classes as i64).contains(&v))
                {
                    return Err(Error::config(
                        "labels",
                        bad,
                        format!(
                            "a class in 0..{n}, or {n} for the null label",
                            n = self.num_classes
                        ),
                    ));
                }
                y.clone()
            }
        };
        Ok(Some(embedding.val().select(0, indices)))
    }
}
