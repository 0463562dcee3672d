//! Each path of the kernels against burn's own `forward` on the same layer, on the flex
//! device: the forward pass alone (no autodiff) and a training pass (forward on an autodiff
//! device, then the backward pass to the input and every parameter). One layer shape per
//! path, taken from the models that use it (elbo's conv VAE, DDPM U-Net, MLP VAE and NVAE).
//!
//! ```text
//! cargo bench -p flex-kernels --bench layers            # every row
//! cargo bench -p flex-kernels --bench layers -- winograd  # rows whose name contains it
//! ```
//! Prints one markdown table of medians (of 7 timed runs after 2 untimed ones) and the
//! speed-up of the kernel over burn. It takes about a minute on 2 cores; run it on an
//! otherwise idle machine.

#![allow(clippy::disallowed_methods)] // burn's `forward` is what the kernels are timed against

use std::time::Instant;

use burn::nn::conv::{Conv2dConfig, ConvTranspose2dConfig};
use burn::nn::{BatchNormConfig, GroupNormConfig, LinearConfig, PaddingConfig2d};
use burn::tensor::{Device, Distribution, Tensor, activation};
use flex_kernels::Run;

/// The median wall time of `f` in milliseconds over 7 runs, after 2 untimed ones. Every
/// `f` below reads its result back to the host, so the time includes all the work.
fn median_ms(mut f: impl FnMut()) -> f64 {
    for _ in 0..2 {
        f();
    }
    let mut times: Vec<f64> = (0..7)
        .map(|_| {
            let started = Instant::now();
            f();
            started.elapsed().as_secs_f64() * 1e3
        })
        .collect();
    times.sort_by(f64::total_cmp);
    times[times.len() / 2]
}

/// A layer of one shape, run by the kernel or by burn.
struct Row {
    /// Which path the kernel takes, and the layer.
    name: &'static str,
    /// The layer's shape in words.
    shape: &'static str,
    /// Sets the layer and its input up on a device (autodiff with `train`) and returns the
    /// timed pass: by the kernel (`true`) or burn.
    setup: Setup,
}

/// `(kernel, device, train)` → the timed pass.
type Setup = Box<dyn Fn(bool, &Device, bool) -> Box<dyn FnMut() -> f32>>;

/// The pass `Σ f(layer, x) · r` for a layer initialised on the device and a normal input
/// `x` of `dims` (`r` fixed, of `out_dims`), set up once; with `train`, the backward pass
/// to `x` and the layer's parameters runs too.
fn timed<M: 'static, const D: usize>(
    init: impl Fn(&Device) -> M + 'static,
    dims: [usize; D],
    forward: impl Fn(&M, Tensor<D>, bool) -> Tensor<D> + Copy + 'static,
    out_dims: [usize; D],
) -> Setup {
    Box::new(move |kernel, device, train| {
        let layer = init(device);
        let x = Tensor::<D>::random(dims, Distribution::Normal(0.0, 1.0), device);
        let x = if train { x.require_grad() } else { x };
        let r = Tensor::<D>::random(out_dims, Distribution::Normal(0.0, 1.0), device);
        Box::new(move || {
            let y = (forward(&layer, x.clone(), kernel) * r.clone()).sum();
            if train {
                let _grads = y.clone().backward();
            }
            y.into_scalar::<f32>()
        })
    })
}

/// A row for a `c_in → c_out` convolution with a `kernel`×`kernel` kernel, padding 1 and
/// `stride`, on `batch` images of `size`×`size`.
fn conv_row(
    name: &'static str,
    shape: &'static str,
    [c_in, c_out]: [usize; 2],
    kernel: usize,
    stride: usize,
    [batch, size]: [usize; 2],
) -> Row {
    let out = (size + 2 - kernel) / stride + 1;
    Row {
        name,
        shape,
        setup: timed(
            move |d| {
                Conv2dConfig::new([c_in, c_out], [kernel, kernel])
                    .with_stride([stride, stride])
                    .with_padding(PaddingConfig2d::Explicit(1, 1, 1, 1))
                    .init(d)
            },
            [batch, c_in, size, size],
            |c, x, k| if k { c.run(x) } else { c.forward(x) },
            [batch, c_out, out, out],
        ),
    }
}

fn rows() -> Vec<Row> {
    vec![
        conv_row(
            "im2col: conv 1→32",
            "4×4, stride 2, 128 × 1×28×28",
            [1, 32],
            4,
            2,
            [128, 28],
        ),
        conv_row(
            "channels-last: conv 32→64",
            "4×4, stride 2, 128 × 32×14×14",
            [32, 64],
            4,
            2,
            [128, 14],
        ),
        Row {
            name: "channels-last: transposed conv 64→32",
            shape: "4×4, stride 2, 128 × 64×7×7",
            setup: timed(
                |d| {
                    ConvTranspose2dConfig::new([64, 32], [4, 4])
                        .with_stride([2, 2])
                        .with_padding([1, 1])
                        .init(d)
                },
                [128, 64, 7, 7],
                |c, x, k| if k { c.run(x) } else { c.forward(x) },
                [128, 32, 14, 14],
            ),
        },
        conv_row(
            "winograd: conv 32→32",
            "3×3, stride 1, 64 × 32×28×28",
            [32, 32],
            3,
            1,
            [64, 28],
        ),
        conv_row(
            "shifted planes: conv 32→1",
            "3×3, stride 1, 64 × 32×28×28",
            [32, 1],
            3,
            1,
            [64, 28],
        ),
        Row {
            name: "linear 784→400",
            shape: "128 × 784",
            setup: timed(
                |d| LinearConfig::new(784, 400).init(d),
                [128, 784],
                |l, x, k| if k { l.run(x) } else { l.forward(x) },
                [128, 400],
            ),
        },
        Row {
            name: "group norm + SiLU",
            shape: "8 groups, 64 × 32×28×28",
            setup: timed(
                |d| GroupNormConfig::new(8, 32).init(d),
                [64, 32, 28, 28],
                |n, x, k| {
                    if k {
                        flex_kernels::group_norm_silu(n, x)
                    } else {
                        activation::silu(n.forward(x))
                    }
                },
                [64, 32, 28, 28],
            ),
        },
        Row {
            name: "depthwise conv, 48 channels",
            shape: "5×5, stride 1, 64 × 48×28×28",
            setup: timed(
                |d| {
                    Conv2dConfig::new([48, 48], [5, 5])
                        .with_groups(48)
                        .with_padding(PaddingConfig2d::Explicit(2, 2, 2, 2))
                        .init(d)
                },
                [64, 48, 28, 28],
                |c, x, k| if k { c.run(x) } else { c.forward(x) },
                [64, 48, 28, 28],
            ),
        },
        Row {
            name: "batch norm + SiLU",
            shape: "64 × 48×28×28",
            setup: timed(
                |d| BatchNormConfig::new(48).init(d),
                [64, 48, 28, 28],
                |n, x, k| {
                    if k {
                        flex_kernels::batch_norm_silu(n, x)
                    } else {
                        activation::silu(n.forward(x))
                    }
                },
                [64, 48, 28, 28],
            ),
        },
        Row {
            name: "batch norm + SiLU, depthwise conv, batch norm + SiLU",
            shape: "48 channels, 5×5, 64 × 48×28×28",
            setup: timed(
                |d| {
                    let conv = Conv2dConfig::new([48, 48], [5, 5])
                        .with_groups(48)
                        .with_padding(PaddingConfig2d::Explicit(2, 2, 2, 2))
                        .init(d);
                    let norm = || BatchNormConfig::new(48).init(d);
                    (norm(), conv, norm())
                },
                [64, 48, 28, 28],
                |(pre, conv, post), x, k| {
                    if k {
                        flex_kernels::batch_norm_silu_depthwise(pre, conv, post, x, false)
                    } else {
                        activation::silu(
                            post.forward(conv.forward(activation::silu(pre.forward(x)))),
                        )
                    }
                },
                [64, 48, 28, 28],
            ),
        },
        Row {
            name: "ELU",
            shape: "64 × 16×28×28",
            setup: timed(
                |_| (),
                [64, 16, 28, 28],
                |_, x, k| {
                    if k {
                        flex_kernels::elu(x, 1.0)
                    } else {
                        activation::elu(x, 1.0)
                    }
                },
                [64, 16, 28, 28],
            ),
        },
        Row {
            name: "tanh",
            shape: "64 × 16×28×28",
            setup: timed(
                |_| (),
                [64, 16, 28, 28],
                |_, x, k| if k { flex_kernels::tanh(x) } else { x.tanh() },
                [64, 16, 28, 28],
            ),
        },
    ]
}

fn main() {
    flex_kernels::retain_freed_memory();
    let filter: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .collect();
    let device = Device::flex();
    let train = device.clone().autodiff();
    println!(
        "| path and layer | shape | forward: burn | kernel | speed-up | forward + backward: burn | kernel | speed-up |"
    );
    println!("| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |");
    for row in rows() {
        if !filter.is_empty() && !filter.iter().any(|f| row.name.contains(f.as_str())) {
            continue;
        }
        let [fwd_burn, fwd_kernel, step_burn, step_kernel] = [
            (false, &device, false),
            (true, &device, false),
            (false, &train, true),
            (true, &train, true),
        ]
        .map(|(kernel, d, train)| {
            let mut pass = (row.setup)(kernel, d, train);
            median_ms(|| {
                std::hint::black_box(pass());
            })
        });
        println!(
            "| {} | {} | {fwd_burn:.2} ms | {fwd_kernel:.2} ms | {:.1}× | {step_burn:.2} ms | {step_kernel:.2} ms | {:.1}× |",
            row.name,
            row.shape,
            fwd_burn / fwd_kernel,
            step_burn / step_kernel,
        );
    }
}
