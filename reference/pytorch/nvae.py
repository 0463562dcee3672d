"""Reference NVAE-style hierarchical VAE on 28x28 MNIST (PyTorch, CPU): the twin of our
preset NvaeConfig::mnist_small() (src/models/nvae/).

Architecture (every conv is a "spectral" conv: a Conv2d plus a stored power-iteration
vector u, as src/nn/spectral_conv.rs; k x k convs use 'same' padding unless noted):
  input flat [B, 784] in {0, 1} -> [B, 1, 28, 28] -> 2x - 1
  bottom-up: stem Conv3x3(1->16) [28x28]
             preprocess: EncoderCell(16->16, downsample) [14x14]
             scale 0 (16 ch, 14x14): group 0 EncoderCell, group 1 EncoderCell
             scale 1 (32 ch, 7x7):   group 2 EncoderCell(16->32, downsample) + EncoderCell,
                                     group 3 EncoderCell
  top-down:  learned top [32, 7, 7], then 4 latent groups of 4 channels (coarsest first):
             group 0 (7x7):   prior N(0, I); posterior ELU -> Conv1x1 -> ELU -> Conv3x3
             group 1 (7x7):   DecoderCell(32); prior ELU -> Conv1x1; residual-normal posterior
             group 2 (14x14): DecoderCell(32->16, upsample) + DecoderCell(16); as group 1
             group 3 (14x14): DecoderCell(16); as group 1
             each group: state <- Conv1x1(cat[state, z])
             postprocess: DecoderCell(16, upsample) [28x28]; image head ELU -> Conv3x3(16->1)
  EncoderCell: skip(x) + 0.1 SE(Conv3x3(SiLU(BN(Conv3x3(SiLU(BN(x)))))))
  DecoderCell: skip(x) + 0.1 SE(BN(Conv1x1(SiLU(BN(DWConv5x5(SiLU(BN(Conv1x1_x3(BN(x))))))))))
  BN momentum 0.05, eps 1e-5; means and log-scales soft-clamped 5 tanh(x/5).
Loss = -ELBO per image averaged (Bernoulli logits, KL per group summed, beta = 1)
       + 1e-2 sum_convs sigma_max(W) (one power iteration per conv per step)
       + 1e-2 sum_BN max_c |gamma_c|;  Adam 1e-3.

Parameter count: 112,533 trainable tensors' elements. burn's Module::num_params also counts
RunningState buffers (BN running mean and variance, each conv's u), which gives the 116,222
of docs/results.md; both are printed at start-up.

Modes:
  --bench          median train-step time, batch 64, 200 steps after 20 warm-up
  --train EPOCHS   optional: train (Adam 1e-3, beta 1, penalties on) and print per-epoch
                   train -ELBO, KL and wall time (not the example's AdamW/warm-up schedule)
  --bench-eval N   importance-sampled evaluation throughput at K = 1000 (--eval-k) on N test
                   images, bottom-up once per image chunk (as elbo's log_likelihood)
"""
import argparse
import math
import os
import random
import statistics
import sys
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from mnist_idx import load_mnist  # noqa: E402
from cpu_quiet import quiet_run, wait_for_quiet  # noqa: E402

# NvaeConfig::mnist_small() (config.rs)
IMAGE_CHANNELS, HEIGHT, WIDTH = 1, 28, 28
CHANNELS = 16            # at the finest scale, doubled at each coarser one
SCALES = 2
GROUPS_PER_SCALE = 2
LATENT_CHANNELS = 4
CELLS_PER_GROUP = 1
PREPROCESS_CELLS = 0
POSTPROCESS_CELLS = 0
EXPANSION = 3
SPECTRAL_REG = 1e-2
BN_REG = 1e-2
# cells.rs
RESIDUAL_SCALE = 0.1
BN_MOMENTUM = 0.05       # same convention as PyTorch: running = (1 - m) running + m batch
# latent.rs
SOFT_CLAMP = 5.0
# What our side reports for this preset (derived from model.rs / cells.rs, see the docstring).
RUST_TRAINABLE = 112_533
RUST_NUM_PARAMS = 116_222


def seed_everything(seed):
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def channels_at(scale):
    """NvaeConfig::channels_at."""
    return CHANNELS << scale


def size_at(scale):
    """NvaeConfig::size_at: (h, w) at scale s (0 = finest, half the image)."""
    return HEIGHT >> (scale + 1), WIDTH >> (scale + 1)


def group_shape(group):
    """NvaeConfig::group_shape: [Z, h, w] of top-down group l (0 = coarsest)."""
    scale = SCALES - 1 - group // GROUPS_PER_SCALE
    h, w = size_at(scale)
    return LATENT_CHANNELS, h, w


def normalize(x):
    """spectral_conv.rs normalize: x / max(|x|, 1e-12)."""
    return x / x.pow(2).sum().sqrt().clamp_min(1e-12)


class SpectralConv2d(nn.Conv2d):
    """SpectralConv2d: a Conv2d (PyTorch's default init = burn's Kaiming-uniform, with bias)
    plus the running left singular vector u of W reshaped to [out, in/groups * kh * kw]."""

    def __init__(self, c_in, c_out, k, stride=1, padding=0, groups=1):
        super().__init__(c_in, c_out, k, stride=stride, padding=padding, groups=groups)
        self.register_buffer("u", normalize(torch.randn(c_out)))

    def spectral_norm(self):
        """SpectralConv2d::spectral_norm with power_iterations = 1 (power_iteration, then
        spectral_norm_estimate): v = norm(W^T u), u = norm(W v), u stored, sigma = u^T W v
        with the gradient u v^T."""
        w = self.weight.reshape(self.weight.shape[0], -1)
        with torch.no_grad():
            wd = w.detach()
            u = normalize(self.u)
            v = normalize(wd.t() @ u)
            u = normalize(wd @ v)
            self.u.copy_(u)
        return (u @ w @ v).reshape(1)


def conv(c_in, c_out, k):
    """cells.rs conv: k x k, stride 1, 'same' padding k/2."""
    return SpectralConv2d(c_in, c_out, k, padding=k // 2)


def batch_norm(channels):
    """cells.rs batch_norm (burn BatchNorm: gamma 1, beta 0, eps 1e-5)."""
    return nn.BatchNorm2d(channels, eps=1e-5, momentum=BN_MOMENTUM)


class SqueezeExcitation(nn.Module):
    """cells.rs SqueezeExcitation: x * sigmoid(W2 relu(W1 mean_hw(x))), hidden max(c/16, 4)."""

    def __init__(self, channels):
        super().__init__()
        hidden = max(channels // 16, 4)
        self.squeeze = nn.Linear(channels, hidden)
        self.excite = nn.Linear(hidden, channels)

    def forward(self, x):
        b, c = x.shape[:2]
        gate = torch.sigmoid(self.excite(F.relu(self.squeeze(x.mean(dim=(2, 3))))))
        return x * gate.reshape(b, c, 1, 1)


class EncoderCell(nn.Module):
    """cells.rs EncoderCell: skip(x) + 0.1 SE(Conv3x3(SiLU(BN(Conv3x3(SiLU(BN(x))))))).
    Downsampling: first conv stride 2, skip Conv2x2 stride 2; else skip Conv1x1 if the
    channel count changes, identity otherwise."""

    def __init__(self, c_in, c_out, downsample):
        super().__init__()
        self.bn1 = batch_norm(c_in)
        if downsample:
            self.conv1 = SpectralConv2d(c_in, c_out, 3, stride=2, padding=1)
        else:
            self.conv1 = conv(c_in, c_out, 3)
        self.bn2 = batch_norm(c_out)
        self.conv2 = conv(c_out, c_out, 3)
        self.se = SqueezeExcitation(c_out)
        if downsample:
            self.skip = SpectralConv2d(c_in, c_out, 2, stride=2)
        elif c_in != c_out:
            self.skip = conv(c_in, c_out, 1)
        else:
            self.skip = None

    def forward(self, x):
        y = self.conv1(F.silu(self.bn1(x)))
        y = self.conv2(F.silu(self.bn2(y)))
        y = self.se(y)
        skip = x if self.skip is None else self.skip(x)
        return skip + y * RESIDUAL_SCALE


class DecoderCell(nn.Module):
    """cells.rs DecoderCell:
    skip(x) + 0.1 SE(BN(Conv1x1(SiLU(BN(DWConv5x5(SiLU(BN(Conv1x1_expand(BN(x)))))))))),
    after a nearest-neighbour 2x upsampling when `upsample`; skip Conv1x1 if the channel
    count changes."""

    def __init__(self, c_in, c_out, expansion, upsample):
        super().__init__()
        wide = c_in * expansion
        self.bn0 = batch_norm(c_in)
        self.expand = conv(c_in, wide, 1)
        self.bn1 = batch_norm(wide)
        self.depthwise = SpectralConv2d(wide, wide, 5, padding=2, groups=wide)
        self.bn2 = batch_norm(wide)
        self.project = conv(wide, c_out, 1)
        self.bn3 = batch_norm(c_out)
        self.se = SqueezeExcitation(c_out)
        self.skip = conv(c_in, c_out, 1) if c_in != c_out else None
        self.upsample = upsample

    def forward(self, x):
        if self.upsample:
            x = F.interpolate(x, scale_factor=2, mode="nearest")  # kernels::upsample_nearest2
        y = self.expand(self.bn0(x))
        y = self.depthwise(F.silu(self.bn1(y)))
        y = self.project(F.silu(self.bn2(y)))
        y = self.se(self.bn3(y))
        skip = x if self.skip is None else self.skip(x)
        return skip + y * RESIDUAL_SCALE


class DecoderGroup(nn.Module):
    """model.rs DecoderGroup: cells, prior head (None for the top group), encoder combiner,
    posterior head, decoder combiner."""

    def __init__(self, cells, c, z, has_prior):
        super().__init__()
        self.cells = nn.ModuleList(cells)
        self.prior_head = conv(c, 2 * z, 1) if has_prior else None
        self.encoder_combiner = conv(c, c, 1)
        self.posterior_head = conv(c, 2 * z, 3)
        self.decoder_combiner = conv(c + z, c, 1)


def soft_clamp(x):
    """latent.rs soft_clamp: 5 tanh(x / 5)."""
    return SOFT_CLAMP * torch.tanh(x / SOFT_CLAMP)


def split_params(params):
    """latent.rs split_params: first Z channels, last Z channels, each soft-clamped."""
    z = params.shape[1] // 2
    return soft_clamp(params[:, :z]), soft_clamp(params[:, z:])


def kl_normal(mu1, lv1, mu2, lv2):
    """DiagNormal KL (diag_normal.rs): 1/2 sum [e^d - d - 1 + (mu1 - mu2)^2 e^-lv2], d = lv1 - lv2,
    summed over [Z, h, w], shape [B]."""
    d = lv1 - lv2
    terms = d.exp() - d + (mu1 - mu2).pow(2) * (-lv2).exp()
    return (0.5 * (terms - 1.0)).flatten(1).sum(1)


def normal_log_prob(z, mu, lv):
    """DiagNormal::log_prob summed over [Z, h, w], shape [B]."""
    terms = -0.5 * (math.log(2.0 * math.pi) + lv + (z - mu).pow(2) * (-lv).exp())
    return terms.flatten(1).sum(1)


@torch.no_grad()
def importance_log_likelihood(model, x, k, sample_chunk):
    """log_likelihood with Nvae's visit_log_importance_weights: the bottom-up tower once per
    batch, then top-down passes of sample_chunk draws per example; log-mean-exp over the
    K weights, [B]."""
    b = x.shape[0]
    features = model.bottom_up(x.reshape(b, IMAGE_CHANNELS, HEIGHT, WIDTH))
    chunks = []
    done = 0
    while done < k:
        s = min(sample_chunk, k - done)
        repeated = [f.repeat(s, 1, 1, 1) for f in features]   # row j*B + i: draw j of image i
        logits, log_ratios = model.top_down(repeated, b * s, log_weights=True)
        xs = x.repeat(s, 1)
        log_w = -F.binary_cross_entropy_with_logits(logits.reshape(b * s, -1), xs, reduction="none").sum(1)
        log_w = log_w + sum(log_ratios)
        chunks.append(torch.logsumexp(log_w.reshape(s, b), 0))
        done += s
    return torch.logsumexp(torch.stack(chunks), 0) - math.log(k)


class Nvae(nn.Module):
    def __init__(self):
        """model.rs Nvae::new."""
        super().__init__()
        c0 = channels_at(0)
        z = LATENT_CHANNELS
        n = CELLS_PER_GROUP
        self.stem = conv(IMAGE_CHANNELS, c0, 3)
        self.preprocess = nn.ModuleList(
            [EncoderCell(c0, c0, False) for _ in range(PREPROCESS_CELLS)] + [EncoderCell(c0, c0, True)])
        self.encoder_groups = nn.ModuleList()
        for scale in range(SCALES):
            c = channels_at(scale)
            for g in range(GROUPS_PER_SCALE):
                cells = []
                if scale > 0 and g == 0:
                    cells.append(EncoderCell(channels_at(scale - 1), c, True))
                cells += [EncoderCell(c, c, False) for _ in range(n)]
                self.encoder_groups.append(nn.ModuleList(cells))
        top_scale = SCALES - 1
        h_top, w_top = size_at(top_scale)
        self.top = nn.Parameter(torch.randn(channels_at(top_scale), h_top, w_top))
        self.decoder_groups = nn.ModuleList()
        for group in range(SCALES * GROUPS_PER_SCALE):
            scale = SCALES - 1 - group // GROUPS_PER_SCALE
            c = channels_at(scale)
            first_of_scale = group % GROUPS_PER_SCALE == 0
            cells = []
            if group > 0:
                if first_of_scale:
                    cells.append(DecoderCell(channels_at(scale + 1), c, EXPANSION, True))
                cells += [DecoderCell(c, c, EXPANSION, False) for _ in range(n)]
            self.decoder_groups.append(DecoderGroup(cells, c, z, has_prior=group > 0))
        self.postprocess = nn.ModuleList(
            [DecoderCell(c0, c0, EXPANSION, True)]
            + [DecoderCell(c0, c0, EXPANSION, False) for _ in range(POSTPROCESS_CELLS)])
        self.image_head = conv(c0, IMAGE_CHANNELS, 3)  # Bernoulli: one logit per pixel

    def bottom_up(self, images):
        """Nvae::bottom_up: encoder features of each group, top group first."""
        s = self.stem(images * 2.0 - 1.0)
        for cell in self.preprocess:
            s = cell(s)
        features = []
        for group in self.encoder_groups:
            for cell in group:
                s = cell(s)
            features.append(s)
        return features[::-1]

    def top_down(self, features, batch, log_weights=False):
        """Nvae::top_down with features (posterior draws): returns the image logits and the
        KL of each group (with log_weights: log p(z_l) - log q(z_l) at the draw), [B]
        each, top group first."""
        s = self.top.unsqueeze(0).expand(batch, *self.top.shape)
        kls = []
        for l, group in enumerate(self.decoder_groups):
            for cell in group.cells:
                s = cell(s)
            if group.prior_head is None:
                shape = (batch,) + group_shape(l)
                p_mu, p_lv = s.new_zeros(shape), s.new_zeros(shape)
            else:
                mu, log_sigma = split_params(group.prior_head(F.elu(s)))
                p_mu, p_lv = mu, 2.0 * log_sigma                        # latent.rs normal
            f = features[l]
            if l == 0:
                f = F.elu(group.encoder_combiner(F.elu(f)))
                mu, log_sigma = split_params(group.posterior_head(f))
                q_mu, q_lv = mu, 2.0 * log_sigma
            else:
                f = f + group.encoder_combiner(s)
                d_mu, d_log_sigma = split_params(group.posterior_head(f))
                q_mu, q_lv = p_mu + d_mu, p_lv + 2.0 * d_log_sigma      # latent.rs residual_normal
            z = q_mu + (0.5 * q_lv).exp() * torch.randn_like(q_mu)      # DiagNormal::sample
            if log_weights:
                # log p(z_l | z_<l) - log q(z_l | z_<l, x), as Nvae::log_weights_given_features
                kls.append(normal_log_prob(z, p_mu, p_lv) - normal_log_prob(z, q_mu, q_lv))
            else:
                kls.append(kl_normal(q_mu, q_lv, p_mu, p_lv))
            s = group.decoder_combiner(torch.cat([s, z], 1))
        for cell in self.postprocess:
            s = cell(s)
        return self.image_head(F.elu(s)), kls

    def elbo(self, x):
        """Nvae::elbo: (log p(x|z) [B], [KL_l [B]] top group first) for flat x [B, 784]."""
        b = x.shape[0]
        features = self.bottom_up(x.reshape(b, IMAGE_CHANNELS, HEIGHT, WIDTH))
        logits, kls = self.top_down(features, b)
        # Bernoulli::log_prob: sum_i x_i l_i - softplus(l_i)
        rec = -F.binary_cross_entropy_with_logits(logits.reshape(b, -1), x, reduction="none").sum(1)
        return rec, kls

    def convs(self):
        return [m for m in self.modules() if isinstance(m, SpectralConv2d)]

    def batch_norms(self):
        return [m for m in self.modules() if isinstance(m, nn.BatchNorm2d)]

    def spectral_penalty(self):
        """Nvae::spectral_penalty: sum over all convs of the power-iteration sigma_max."""
        return torch.cat([c.spectral_norm() for c in self.convs()]).sum()

    def batch_norm_penalty(self):
        """Nvae::batch_norm_penalty: sum over all BNs of max_c |gamma_c|."""
        return torch.stack([bn.weight.abs().max() for bn in self.batch_norms()]).sum()

    def penalty(self):
        """Nvae::penalty."""
        return SPECTRAL_REG * self.spectral_penalty() + BN_REG * self.batch_norm_penalty()


def count_parameters(model):
    """(trainable elements, the same plus the buffers burn's num_params visits as
    RunningState: BN running mean/var and each conv's u; not num_batches_tracked)."""
    trainable = sum(p.numel() for p in model.parameters())
    buffers = sum(b.numel() for name, b in model.named_buffers() if not name.endswith("num_batches_tracked"))
    return trainable, trainable + buffers


def to_unit(images_u8):
    """uint8 [N,28,28] -> float32 [N,784] in [0,1]."""
    return torch.from_numpy(images_u8.reshape(images_u8.shape[0], -1).astype(np.float32) / 255.0)


def train_step(model, opt, x):
    """ElboObjective::loss (beta 1, no balancing) + Nvae::penalty, backward, Adam step.
    Returns (sum over the batch of -ELBO, sum of KL)."""
    rec, kls = model.elbo(x)
    kl = torch.stack(kls).sum(0)
    loss = -rec.mean() + kl.mean() + model.penalty()
    opt.zero_grad(set_to_none=True)
    loss.backward()
    opt.step()
    return (kl - rec).sum().item(), kl.sum().item()


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", default=None, help="MNIST IDX dir (default: $ELBO_MNIST_DIR or the repository's data/mnist-10k)")
    p.add_argument("--bench", action="store_true")
    p.add_argument("--train", type=int, default=0, metavar="EPOCHS")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--bench-warmup", type=int, default=20)
    p.add_argument("--bench-steps", type=int, default=200)
    p.add_argument("--bench-eval", type=int, default=0, metavar="N",
                   help="time importance-sampled evaluation (K = --eval-k) of N test images "
                        "(fixed-seed binarisation), in eval mode, chunks of --image-chunk images "
                        "x --sample-chunk draws, as elbo's log_likelihood")
    p.add_argument("--eval-k", type=int, default=1000)
    p.add_argument("--image-chunk", type=int, default=5)
    p.add_argument("--sample-chunk", type=int, default=40)
    args = p.parse_args()

    torch.set_num_threads(args.threads)
    seed_everything(args.seed)
    print(f"torch {torch.__version__}, threads {torch.get_num_threads()}, seed {args.seed}")
    data = load_mnist(args.data)
    train_x = to_unit(data["train_x"])
    model = Nvae()
    trainable, with_buffers = count_parameters(model)
    print(f"parameters: {trainable}")
    print(f"parameters + BN running stats + spectral u buffers (what burn's num_params counts): {with_buffers}")
    if (trainable, with_buffers) != (RUST_TRAINABLE, RUST_NUM_PARAMS):
        print(f"WARNING: expected {RUST_TRAINABLE} and {RUST_NUM_PARAMS} (the Rust mnist_small)")
    model.train()
    opt = torch.optim.Adam(model.parameters(), lr=args.lr)

    if args.train:
        n = train_x.shape[0]
        wait_for_quiet()
        t_all = time.perf_counter()
        for epoch in range(1, args.train + 1):
            t0 = time.perf_counter()
            perm = torch.randperm(n)
            total, total_kl = 0.0, 0.0
            for s in range(0, n, args.batch):
                neg_elbo, kl = train_step(model, opt, torch.bernoulli(train_x[perm[s:s + args.batch]]))
                total += neg_elbo
                total_kl += kl
            print(f"epoch {epoch:3d}  train -ELBO {total / n:9.3f} nats  KL {total_kl / n:8.3f}  "
                  f"epoch time {time.perf_counter() - t0:7.3f} s")
        print(f"trained {args.train} epochs in {time.perf_counter() - t_all:.2f} s wall")

    if args.bench:
        seed_everything(args.seed)
        model = Nvae().train()
        opt = torch.optim.Adam(model.parameters(), lr=args.lr)
        # The images of benches/common mnist_train_batches: row j of batch i is training
        # image (997 i + 31 j) mod N, binarised dynamically (here once, seeded).
        g = torch.Generator().manual_seed(123)
        n = train_x.shape[0]
        batches = [torch.bernoulli(train_x[torch.tensor([(i * 997 + j * 31) % n for j in range(args.batch)])],
                                   generator=g) for i in range(16)]

        def run_steps():
            times = []
            for i in range(args.bench_warmup + args.bench_steps):
                x = batches[i % len(batches)]
                t0 = time.perf_counter()
                train_step(model, opt, x)
                dt = time.perf_counter() - t0
                if i >= args.bench_warmup:
                    times.append(dt)
            return times
        times, c = quiet_run(run_steps)
        print(f"bench nvae train step (batch {args.batch}, {args.bench_steps} steps after {args.bench_warmup} warm-up, "
              f"binarization excluded): median {statistics.median(times) * 1e3:.3f} ms, "
              f"mean {statistics.fmean(times) * 1e3:.3f} ms, min {min(times) * 1e3:.3f} ms, "
              f"p90 {sorted(times)[int(0.9 * len(times))] * 1e3:.3f} ms {c.tag()}")

    if args.bench_eval:
        seed_everything(args.seed)
        model = Nvae().eval()
        test_x = to_unit(data["test_x"])[: args.bench_eval]
        x_bin = torch.bernoulli(test_x, generator=torch.Generator().manual_seed(0))

        def run_eval():
            t0 = time.perf_counter()
            for start in range(0, x_bin.shape[0], args.image_chunk):
                importance_log_likelihood(model, x_bin[start:start + args.image_chunk],
                                          args.eval_k, args.sample_chunk)
            return time.perf_counter() - t0
        importance_log_likelihood(model, x_bin[:1], 40, 40)  # warm-up
        dt, c = quiet_run(run_eval)
        print(f"bench nvae IS eval (K={args.eval_k}, {x_bin.shape[0]} test images, chunks "
              f"{args.image_chunk}x{args.sample_chunk}): {dt:.2f} s -> {x_bin.shape[0] / dt:.3f} images/s "
              f"{c.tag()}")


if __name__ == "__main__":
    main()
