"""Reference MLP VAE on a 10k MNIST subset (PyTorch, CPU).

Architecture (the classic PyTorch-examples VAE):
  encoder 784 -> 400 (ReLU) -> mu[20], logvar[20]
  decoder 20 -> 400 (ReLU) -> 784 Bernoulli logits
Training data are dynamically binarized: x ~ Bernoulli(pixel/255), resampled each batch.
Loss = -ELBO = sum_pixels BCE(logits, x) + KL(q(z|x) || N(0, I)); reported per image, in nats.

Modes (combinable; run from the repository root, or pass --data):
  --train EPOCHS   train, print per-epoch train -ELBO and wall time, save checkpoint
  --eval K         importance-sampled test NLL (nats) with K samples on the 2000 test
                   images, fixed seeded binarization; loads the checkpoint unless
                   --train ran in the same call
  --bench          (a) median train-step time, batch 128, 200 steps after 20 warm-up
                   (b) importance-sampling eval throughput at K=1000 (test images/s)
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
from mnist_idx import load_mnist, write_idx_gz  # noqa: E402
from cpu_quiet import quiet_run  # noqa: E402

X_DIM, H_DIM, Z_DIM = 784, 400, 20
LOG_2PI = math.log(2.0 * math.pi)
HERE = os.path.dirname(os.path.abspath(__file__))
DEFAULT_CKPT = os.path.join(HERE, "out", "mlp_vae.pt")


def seed_everything(seed):
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


class MlpVae(nn.Module):
    def __init__(self, x_dim=X_DIM, h_dim=H_DIM, z_dim=Z_DIM):
        super().__init__()
        self.enc_hidden = nn.Linear(x_dim, h_dim)
        self.enc_mu = nn.Linear(h_dim, z_dim)
        self.enc_logvar = nn.Linear(h_dim, z_dim)
        self.dec_hidden = nn.Linear(z_dim, h_dim)
        self.dec_out = nn.Linear(h_dim, x_dim)

    def encode(self, x):
        h = F.relu(self.enc_hidden(x))
        return self.enc_mu(h), self.enc_logvar(h)

    def decode(self, z):
        return self.dec_out(F.relu(self.dec_hidden(z)))

    def forward(self, x):
        mu, logvar = self.encode(x)
        eps = torch.randn_like(mu)
        z = mu + eps * torch.exp(0.5 * logvar)
        return self.decode(z), mu, logvar


def neg_elbo_sum(logits, x, mu, logvar):
    """Sum over the batch of -ELBO (nats)."""
    rec = F.binary_cross_entropy_with_logits(logits, x, reduction="sum")
    kl = -0.5 * torch.sum(1.0 + logvar - mu.pow(2) - logvar.exp())
    return rec + kl


def to_unit(images_u8):
    """uint8 [N,28,28] -> float32 [N,784] in [0,1]."""
    return torch.from_numpy(images_u8.reshape(images_u8.shape[0], -1).astype(np.float32) / 255.0)


def fixed_binarization(x_unit, seed):
    g = torch.Generator().manual_seed(seed)
    return torch.bernoulli(x_unit, generator=g)


def train(model, train_x, epochs, batch_size, lr, log=print):
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    n = train_x.shape[0]
    history = []
    total_t0 = time.perf_counter()
    for epoch in range(1, epochs + 1):
        model.train()
        t0 = time.perf_counter()
        perm = torch.randperm(n)
        total = 0.0
        for start in range(0, n, batch_size):  # keeps the final partial batch (62 x 128 + 64)
            idx = perm[start:start + batch_size]
            x = torch.bernoulli(train_x[idx])
            logits, mu, logvar = model(x)
            loss_sum = neg_elbo_sum(logits, x, mu, logvar)
            opt.zero_grad(set_to_none=True)
            (loss_sum / x.shape[0]).backward()
            opt.step()
            total += loss_sum.item()
        dt = time.perf_counter() - t0
        history.append((epoch, total / n, dt))
        log(f"epoch {epoch:3d}  train -ELBO {total / n:9.3f} nats  epoch time {dt:7.3f} s")
    total_dt = time.perf_counter() - total_t0
    log(f"trained {epochs} epochs in {total_dt:.2f} s wall ({total_dt / max(epochs, 1):.3f} s/epoch)")
    return history, total_dt


@torch.no_grad()
def log_weights(model, x, k, sample_chunk):
    """log w_k = log p(x|z_k) + log p(z_k) - log q(z_k|x), shape [k, B]."""
    mu, logvar = model.encode(x)
    std = torch.exp(0.5 * logvar)
    B = x.shape[0]
    out = []
    done = 0
    while done < k:
        s = min(sample_chunk, k - done)
        eps = torch.randn(s, B, Z_DIM)
        z = mu.unsqueeze(0) + std.unsqueeze(0) * eps                     # [s,B,Z]
        logits = model.decode(z.reshape(s * B, Z_DIM)).reshape(s, B, X_DIM)
        log_px_z = -F.binary_cross_entropy_with_logits(
            logits, x.unsqueeze(0).expand(s, B, X_DIM), reduction="none").sum(-1)
        log_pz = -0.5 * (z.pow(2) + LOG_2PI).sum(-1)
        log_qz_x = -0.5 * (eps.pow(2) + LOG_2PI + logvar.unsqueeze(0)).sum(-1)
        out.append(log_px_z + log_pz - log_qz_x)
        done += s
    return torch.cat(out, 0)


@torch.no_grad()
def importance_nll(model, x_bin, k, image_chunk=50, sample_chunk=200, seed=0):
    """Per-image NLL estimate -log (1/K sum_k w_k), in nats. Returns tensor [N]."""
    model.eval()
    torch.manual_seed(seed)
    nll = []
    for start in range(0, x_bin.shape[0], image_chunk):
        x = x_bin[start:start + image_chunk]
        lw = log_weights(model, x, k, sample_chunk)
        nll.append(-(torch.logsumexp(lw, 0) - math.log(k)))
    return torch.cat(nll)


def bench(model, train_x, test_bin, batch_size, lr, warmup, steps, eval_images, eval_k, log=print):
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    model.train()
    g = torch.Generator().manual_seed(123)
    batches = [torch.bernoulli(train_x[torch.randint(0, train_x.shape[0], (batch_size,), generator=g)],
                               generator=g) for _ in range(16)]
    def run_steps():
        times = []
        for i in range(warmup + steps):
            x = batches[i % len(batches)]
            t0 = time.perf_counter()
            logits, mu, logvar = model(x)
            loss = neg_elbo_sum(logits, x, mu, logvar) / x.shape[0]
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            dt = time.perf_counter() - t0
            if i >= warmup:
                times.append(dt)
        return times
    times, c = quiet_run(run_steps, log=log)
    med = statistics.median(times)
    log(f"bench train step (batch {batch_size}, {steps} steps after {warmup} warm-up, binarization excluded): "
        f"median {med * 1e3:.3f} ms, mean {statistics.fmean(times) * 1e3:.3f} ms, "
        f"min {min(times) * 1e3:.3f} ms, p90 {sorted(times)[int(0.9 * len(times))] * 1e3:.3f} ms {c.tag()}")
    # (b) importance-sampling eval throughput
    xs = test_bin[:eval_images]
    importance_nll(model, xs[:50], eval_k)  # warm-up
    def run_eval():
        t0 = time.perf_counter()
        importance_nll(model, xs, eval_k)
        return time.perf_counter() - t0
    dt, c = quiet_run(run_eval, log=log)
    log(f"bench IS eval (K={eval_k}, {eval_images} test images, image_chunk=50, sample_chunk=200): "
        f"{dt:.3f} s -> {eval_images / dt:.2f} images/s ({eval_images * eval_k / dt / 1e3:.1f}k decoder samples/s) {c.tag()}")
    return med, eval_images / dt


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", default=None, help="MNIST IDX dir (default: $ELBO_MNIST_DIR or the repository's data/mnist-10k)")
    p.add_argument("--train", type=int, default=0, metavar="EPOCHS")
    p.add_argument("--eval", type=int, default=0, metavar="K")
    p.add_argument("--bench", action="store_true")
    p.add_argument("--ckpt", default=DEFAULT_CKPT, help="checkpoint path (written by --train, read by --eval)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--test-bin-seed", type=int, default=1234, help="seed of the fixed test binarization")
    p.add_argument("--batch", type=int, default=128)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--bench-warmup", type=int, default=20)
    p.add_argument("--bench-steps", type=int, default=200)
    p.add_argument("--bench-eval-images", type=int, default=500)
    p.add_argument("--bench-eval-k", type=int, default=1000)
    p.add_argument("--dump-test-bin", default=None, metavar="PATH.gz",
                   help="write the fixed binarized test images (0/1 uint8) as gzipped IDX for other implementations")
    args = p.parse_args()

    torch.set_num_threads(args.threads)
    seed_everything(args.seed)
    print(f"torch {torch.__version__}, numpy {np.__version__}, threads {torch.get_num_threads()}, seed {args.seed}")

    data = load_mnist(args.data)
    train_x = to_unit(data["train_x"])
    test_x = to_unit(data["test_x"])
    test_bin = fixed_binarization(test_x, args.test_bin_seed)
    print(f"train {tuple(train_x.shape)}, test {tuple(test_x.shape)}, test-binarization seed {args.test_bin_seed}, "
          f"mean binarized test pixel {test_bin.mean().item():.5f}")
    if args.dump_test_bin:
        write_idx_gz(args.dump_test_bin, test_bin.numpy().reshape(-1, 28, 28).astype(np.uint8))
        print(f"wrote {args.dump_test_bin}")

    model = MlpVae()
    print(f"params {sum(p.numel() for p in model.parameters())}")

    if args.train:
        init_state = {k: v.clone() for k, v in model.state_dict().items()}
        rng_state = torch.get_rng_state()

        def do_train():  # restart from the same init and RNG state on a re-measure
            model.load_state_dict(init_state)
            torch.set_rng_state(rng_state)
            return train(model, train_x, args.train, args.batch, args.lr)
        _, c = quiet_run(do_train)
        print(f"train timing {c.tag()}")
        os.makedirs(os.path.dirname(args.ckpt) or ".", exist_ok=True)
        torch.save({"state_dict": model.state_dict(), "epochs": args.train, "seed": args.seed}, args.ckpt)
        print(f"saved checkpoint ({args.train} epochs)")
        # single-sample test -ELBO for reference
        model.eval()
        with torch.no_grad():
            torch.manual_seed(args.seed + 1)
            logits, mu, logvar = model(test_bin)
            print(f"test -ELBO (1 sample, fixed binarization): {neg_elbo_sum(logits, test_bin, mu, logvar).item() / test_bin.shape[0]:.3f} nats")

    if args.eval:
        if not args.train:
            ck = torch.load(args.ckpt, map_location="cpu")
            model.load_state_dict(ck["state_dict"])
            print(f"loaded checkpoint trained for {ck['epochs']} epochs (seed {ck['seed']})")
        def do_eval():
            t0 = time.perf_counter()
            nll = importance_nll(model, test_bin, args.eval, seed=args.seed + 2)
            return nll, time.perf_counter() - t0
        (nll, dt), c = quiet_run(do_eval)
        se = nll.std().item() / math.sqrt(nll.numel())
        print(f"test NLL (importance sampling, K={args.eval}, {nll.numel()} images): {nll.mean().item():.3f} nats "
              f"(+/- {se:.3f} s.e. over images), eval time {dt:.2f} s, {nll.numel() / dt:.2f} images/s {c.tag()}")

    if args.bench:
        seed_everything(args.seed)
        bench(MlpVae(), train_x, test_bin, args.batch, args.lr, args.bench_warmup, args.bench_steps,
              args.bench_eval_images, args.bench_eval_k)


if __name__ == "__main__":
    main()
