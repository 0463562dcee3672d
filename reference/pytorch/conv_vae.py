"""Reference small convolutional VAE on 28x28 MNIST (PyTorch, CPU).

Architecture (all convs kernel 4, stride 2, padding 1):
  encoder: Conv2d(1->32) ReLU [14x14] -> Conv2d(32->64) ReLU [7x7] -> flatten 3136
           -> Linear(3136->32) = mu, Linear(3136->32) = logvar
  decoder: Linear(32->3136) ReLU -> reshape 64x7x7 -> ConvTranspose2d(64->32) ReLU [14x14]
           -> ConvTranspose2d(32->1) [28x28] = Bernoulli logits
Loss and data handling as in mlp_vae.py (dynamic binarization, -ELBO per image, Adam 1e-3).

Modes:
  --bench          median train-step time, batch 128, 200 steps after 20 warm-up
  --train EPOCHS   optional: train and print per-epoch train -ELBO and wall time
"""
import argparse
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

Z_DIM = 32


def seed_everything(seed):
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


class ConvVae(nn.Module):
    def __init__(self, z_dim=Z_DIM):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 32, 4, 2, 1)
        self.conv2 = nn.Conv2d(32, 64, 4, 2, 1)
        self.enc_mu = nn.Linear(64 * 7 * 7, z_dim)
        self.enc_logvar = nn.Linear(64 * 7 * 7, z_dim)
        self.dec_fc = nn.Linear(z_dim, 64 * 7 * 7)
        self.deconv1 = nn.ConvTranspose2d(64, 32, 4, 2, 1)
        self.deconv2 = nn.ConvTranspose2d(32, 1, 4, 2, 1)

    def encode(self, x):
        h = F.relu(self.conv2(F.relu(self.conv1(x)))).flatten(1)
        return self.enc_mu(h), self.enc_logvar(h)

    def decode(self, z):
        h = F.relu(self.dec_fc(z)).view(-1, 64, 7, 7)
        return self.deconv2(F.relu(self.deconv1(h)))

    def forward(self, x):
        mu, logvar = self.encode(x)
        z = mu + torch.randn_like(mu) * torch.exp(0.5 * logvar)
        return self.decode(z), mu, logvar


def neg_elbo_sum(logits, x, mu, logvar):
    rec = F.binary_cross_entropy_with_logits(logits, x, reduction="sum")
    kl = -0.5 * torch.sum(1.0 + logvar - mu.pow(2) - logvar.exp())
    return rec + kl


def to_unit(images_u8):
    return torch.from_numpy(images_u8.astype(np.float32)[:, None] / 255.0)  # [N,1,28,28]


def train_step(model, opt, x):
    logits, mu, logvar = model(x)
    loss_sum = neg_elbo_sum(logits, x, mu, logvar)
    opt.zero_grad(set_to_none=True)
    (loss_sum / x.shape[0]).backward()
    opt.step()
    return loss_sum.item()


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", default=None, help="MNIST IDX dir (default: $ELBO_MNIST_DIR or the repository's data/mnist-10k)")
    p.add_argument("--bench", action="store_true")
    p.add_argument("--train", type=int, default=0, metavar="EPOCHS")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--batch", type=int, default=128)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--bench-warmup", type=int, default=20)
    p.add_argument("--bench-steps", type=int, default=200)
    args = p.parse_args()

    torch.set_num_threads(args.threads)
    seed_everything(args.seed)
    print(f"torch {torch.__version__}, threads {torch.get_num_threads()}, seed {args.seed}")
    data = load_mnist(args.data)
    train_x = to_unit(data["train_x"])
    model = ConvVae()
    print(f"params {sum(p.numel() for p in model.parameters())}")
    opt = torch.optim.Adam(model.parameters(), lr=args.lr)

    if args.train:
        n = train_x.shape[0]
        wait_for_quiet()
        t_all = time.perf_counter()
        for epoch in range(1, args.train + 1):
            t0 = time.perf_counter()
            perm = torch.randperm(n)
            total = 0.0
            for s in range(0, n, args.batch):
                total += train_step(model, opt, torch.bernoulli(train_x[perm[s:s + args.batch]]))
            print(f"epoch {epoch:3d}  train -ELBO {total / n:9.3f} nats  epoch time {time.perf_counter() - t0:7.3f} s")
        print(f"trained {args.train} epochs in {time.perf_counter() - t_all:.2f} s wall")

    if args.bench:
        seed_everything(args.seed)
        model = ConvVae()
        opt = torch.optim.Adam(model.parameters(), lr=args.lr)
        g = torch.Generator().manual_seed(123)
        batches = [torch.bernoulli(train_x[torch.randint(0, train_x.shape[0], (args.batch,), generator=g)],
                                   generator=g) for _ in range(16)]
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
        print(f"bench conv train step (batch {args.batch}, {args.bench_steps} steps after {args.bench_warmup} warm-up, "
              f"binarization excluded): median {statistics.median(times) * 1e3:.3f} ms, "
              f"mean {statistics.fmean(times) * 1e3:.3f} ms, min {min(times) * 1e3:.3f} ms, "
              f"p90 {sorted(times)[int(0.9 * len(times))] * 1e3:.3f} ms {c.tag()}")


if __name__ == "__main__":
    main()
