"""Reference small DDPM on 28x28 MNIST (PyTorch, CPU).

Diffusion: T=1000, linear betas 1e-4..0.02, epsilon prediction, loss = MSE(eps_hat, eps),
data scaled to [-1, 1], Adam lr 2e-4. Reverse step: ancestral DDPM update with sigma_t^2 = beta_t.

U-Net (base width C, default C=64 -> ~1.6M params; --ch 32 gives the 32/64 variant, ~0.4M):
  time embedding: sinusoidal(C) -> Linear(C, 4C) SiLU Linear(4C, 4C)
  ResBlock(i->o): GN(8,i) SiLU Conv3x3(i->o) + Linear(4C->o)(SiLU(temb)) ; GN(8,o) SiLU Conv3x3(o->o);
                  skip = Conv1x1(i->o) if i != o else identity
  conv_in 3x3 1->C                      [28x28]
  down1   ResBlock(C->C)         = h1   [28x28]
  down    Conv3x3 stride 2 (C->C)       [14x14]
  down2   ResBlock(C->2C)        = h2   [14x14]
  mid     ResBlock(2C->2C)              [14x14]
  up2     ResBlock(cat(mid,h2) 4C->2C)  [14x14]
  up      nearest x2 + Conv3x3 (2C->2C) [28x28]
  up1     ResBlock(cat(up,h1) 3C->C)    [28x28]
  out     GN(8,C) SiLU Conv3x3(C->1)

Modes:
  --bench          median train-step time at batch 64 and time per reverse (sampling) step at batch 16
  --train STEPS    optional: a short training run printing the loss
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
from cpu_quiet import quiet_run  # noqa: E402


def seed_everything(seed):
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def timestep_embedding(t, dim):
    half = dim // 2
    freqs = torch.exp(-math.log(10000.0) * torch.arange(half, dtype=torch.float32) / half)
    args = t.float()[:, None] * freqs[None]
    return torch.cat([torch.sin(args), torch.cos(args)], dim=1)


class ResBlock(nn.Module):
    def __init__(self, cin, cout, tdim, groups=8):
        super().__init__()
        self.norm1 = nn.GroupNorm(groups, cin)
        self.conv1 = nn.Conv2d(cin, cout, 3, padding=1)
        self.temb = nn.Linear(tdim, cout)
        self.norm2 = nn.GroupNorm(groups, cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, padding=1)
        self.skip = nn.Conv2d(cin, cout, 1) if cin != cout else nn.Identity()

    def forward(self, x, temb):
        h = self.conv1(F.silu(self.norm1(x)))
        h = h + self.temb(F.silu(temb))[:, :, None, None]
        h = self.conv2(F.silu(self.norm2(h)))
        return h + self.skip(x)


class SmallUNet(nn.Module):
    def __init__(self, ch=64):
        super().__init__()
        self.ch = ch
        td = 4 * ch
        self.t1 = nn.Linear(ch, td)
        self.t2 = nn.Linear(td, td)
        self.conv_in = nn.Conv2d(1, ch, 3, padding=1)
        self.down1 = ResBlock(ch, ch, td)
        self.down = nn.Conv2d(ch, ch, 3, stride=2, padding=1)
        self.down2 = ResBlock(ch, 2 * ch, td)
        self.mid = ResBlock(2 * ch, 2 * ch, td)
        self.up2 = ResBlock(4 * ch, 2 * ch, td)
        self.up = nn.Conv2d(2 * ch, 2 * ch, 3, padding=1)
        self.up1 = ResBlock(3 * ch, ch, td)
        self.norm_out = nn.GroupNorm(8, ch)
        self.conv_out = nn.Conv2d(ch, 1, 3, padding=1)

    def forward(self, x, t):
        temb = self.t2(F.silu(self.t1(timestep_embedding(t, self.ch))))
        h1 = self.down1(self.conv_in(x), temb)
        h2 = self.down2(self.down(h1), temb)
        h = self.mid(h2, temb)
        h = self.up2(torch.cat([h, h2], 1), temb)
        h = self.up(F.interpolate(h, scale_factor=2, mode="nearest"))
        h = self.up1(torch.cat([h, h1], 1), temb)
        return self.conv_out(F.silu(self.norm_out(h)))


class Diffusion:
    def __init__(self, T=1000, beta_start=1e-4, beta_end=0.02):
        self.T = T
        self.betas = torch.linspace(beta_start, beta_end, T, dtype=torch.float64)
        self.alphas = 1.0 - self.betas
        self.abar = torch.cumprod(self.alphas, 0)
        self.sqrt_abar = self.abar.sqrt().float()
        self.sqrt_1m_abar = (1.0 - self.abar).sqrt().float()
        self.coef_eps = (self.betas / (1.0 - self.abar).sqrt()).float()
        self.inv_sqrt_alpha = (1.0 / self.alphas.sqrt()).float()
        self.sigma = self.betas.sqrt().float()

    def loss(self, model, x0):
        t = torch.randint(0, self.T, (x0.shape[0],))
        eps = torch.randn_like(x0)
        xt = self.sqrt_abar[t][:, None, None, None] * x0 + self.sqrt_1m_abar[t][:, None, None, None] * eps
        return F.mse_loss(model(xt, t), eps)

    @torch.no_grad()
    def reverse_step(self, model, xt, t):
        tt = torch.full((xt.shape[0],), t, dtype=torch.long)
        eps_hat = model(xt, tt)
        mean = self.inv_sqrt_alpha[t] * (xt - self.coef_eps[t] * eps_hat)
        if t == 0:
            return mean
        return mean + self.sigma[t] * torch.randn_like(xt)


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", default=None, help="MNIST IDX dir (default: $ELBO_MNIST_DIR or the repository's data/mnist-10k)")
    p.add_argument("--bench", action="store_true")
    p.add_argument("--train", type=int, default=0, metavar="STEPS")
    p.add_argument("--ch", type=int, default=64, help="base width C (64 -> 64/128 channels; 32 -> 32/64)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--lr", type=float, default=2e-4)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--train-batch", type=int, default=64)
    p.add_argument("--sample-batch", type=int, default=16)
    p.add_argument("--bench-warmup", type=int, default=5)
    p.add_argument("--bench-steps", type=int, default=50)
    p.add_argument("--bench-sample-steps", type=int, default=100)
    args = p.parse_args()

    torch.set_num_threads(args.threads)
    seed_everything(args.seed)
    print(f"torch {torch.__version__}, threads {torch.get_num_threads()}, seed {args.seed}")
    data = load_mnist(args.data)
    train_x = torch.from_numpy(data["train_x"].astype(np.float32)[:, None] / 127.5 - 1.0)
    diff = Diffusion()
    model = SmallUNet(args.ch)
    print(f"U-Net base width {args.ch}: params {sum(p.numel() for p in model.parameters())}")
    opt = torch.optim.Adam(model.parameters(), lr=args.lr)

    if args.train:
        t0 = time.perf_counter()
        for step in range(1, args.train + 1):
            idx = torch.randint(0, train_x.shape[0], (args.train_batch,))
            loss = diff.loss(model, train_x[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            if step % 50 == 0 or step == 1:
                print(f"step {step:5d} loss {loss.item():.4f}  ({time.perf_counter() - t0:.1f} s)")

    if args.bench:
        seed_everything(args.seed)
        model = SmallUNet(args.ch)
        opt = torch.optim.Adam(model.parameters(), lr=args.lr)
        g = torch.Generator().manual_seed(123)
        batches = [train_x[torch.randint(0, train_x.shape[0], (args.train_batch,), generator=g)] for _ in range(8)]
        def run_train():
            times = []
            for i in range(args.bench_warmup + args.bench_steps):
                t0 = time.perf_counter()
                loss = diff.loss(model, batches[i % len(batches)])
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                dt = time.perf_counter() - t0
                if i >= args.bench_warmup:
                    times.append(dt)
            return times
        times, c = quiet_run(run_train)
        print(f"bench ddpm train step (batch {args.train_batch}, {args.bench_steps} steps after "
              f"{args.bench_warmup} warm-up): median {statistics.median(times) * 1e3:.2f} ms, "
              f"mean {statistics.fmean(times) * 1e3:.2f} ms, min {min(times) * 1e3:.2f} ms {c.tag()}")
        model.eval()
        def run_sample():
            xt = torch.randn(args.sample_batch, 1, 28, 28)
            times = []
            for i in range(args.bench_warmup + args.bench_sample_steps):
                t = diff.T - 1 - i
                t0 = time.perf_counter()
                xt = diff.reverse_step(model, xt, t)
                dt = time.perf_counter() - t0
                if i >= args.bench_warmup:
                    times.append(dt)
            return times
        times, c = quiet_run(run_sample)
        print(f"bench ddpm reverse step (batch {args.sample_batch}, {args.bench_sample_steps} steps after "
              f"{args.bench_warmup} warm-up): median {statistics.median(times) * 1e3:.2f} ms, "
              f"mean {statistics.fmean(times) * 1e3:.2f} ms, min {min(times) * 1e3:.2f} ms; "
              f"full 1000-step sample of {args.sample_batch} images ~ {statistics.median(times) * diff.T:.1f} s "
              f"{c.tag()}")


if __name__ == "__main__":
    main()
