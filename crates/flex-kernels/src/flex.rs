//! The kernels on burn's flex tensors, with and without autodiff: taking the primitives
//! out of [`Tensor`]s, running the slice kernels, and recording the autodiff nodes whose
//! backward passes call the slice kernels again.

use std::fmt::Debug;
use std::marker::PhantomData;

use burn::backend::autodiff::NodeId;
use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::NoCheckpointing;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::backend::flex::FlexTensor;
use burn::backend::tensor::FloatTensor;
use burn::backend::{Autodiff, Flex};
use burn::tensor::{DType, Tensor, TensorData};

use super::batch_norm::{self, ChannelShape};
use super::bernoulli;
use super::conv::{ConvShape, channel_sums};
use super::conv2d;
use super::depthwise::{self, DepthwiseShape};
use super::elu as elu_kernel;
use super::group_norm::{self, GroupShape};
use super::linear::{self};
use super::tanh as tanh_kernel;
use super::upsample;

/// An autodiff tensor on flex (no gradient checkpointing).
type AutodiffTensor = FloatTensor<Autodiff<Flex>>;

/// `t`'s flex primitive, if `t` is an f32 tensor on flex without autodiff.
fn flex_of<const D: usize>(t: &Tensor<D>) -> Option<FlexTensor> {
    (t.dtype() == DType::F32)
        .then(|| t.clone().try_into_primitive::<Flex>().ok())
        .flatten()
        .map(|p| p.to_contiguous())
}

/// `t`'s autodiff primitive, if `t` is an f32 tensor on flex with autodiff.
fn autodiff_of<const D: usize>(t: &Tensor<D>) -> Option<AutodiffTensor> {
    (t.dtype() == DType::F32)
        .then(|| t.clone().try_into_primitive::<Autodiff<Flex>>().ok())
        .flatten()
}

/// The contiguous f32 values of a flex tensor.
fn values(t: &FlexTensor) -> &[f32] {
    t.as_slice::<f32>()
        .expect("the kernels keep f32 tensors in contiguous layout")
}

/// The f32 values of a flex tensor as a vector: its own buffer when the tensor is
/// contiguous and not shared, else a copy.
fn into_values(t: FlexTensor) -> Vec<f32> {
    t.into_data()
        .try_into_vec::<f32>()
        .expect("the kernels' gradients are f32")
}

fn tensor_of(values: Vec<f32>, shape: &[usize]) -> FlexTensor {
    FlexTensor::from_data(TensorData::new(values, shape.to_vec()))
}

fn contiguous(t: &AutodiffTensor) -> FlexTensor {
    t.primitive().to_contiguous()
}

/// The input dimensions `[B, C_in, H_in, W_in]` and output dimensions of `s`.
fn conv_dims(s: &ConvShape) -> ([usize; 4], [usize; 4]) {
    (
        [s.batch, s.c_in, s.h_in, s.w_in],
        [s.batch, s.c_out, s.h_out, s.w_out],
    )
}

/// The state of a layer whose autodiff parents are `(x, weight)` or `(x, weight, bias)`,
/// and its backward pass: register the gradients of the parents in `nodes` that need one.
trait WeightedLayer: Clone + Debug + Send + 'static {
    fn gradients(&self, dy: &FlexTensor, nodes: [Option<NodeId>; 3], grads: &mut Gradients);
}

/// The autodiff node of a [`WeightedLayer`] with or without a bias.
#[derive(Debug)]
struct WeightedBackward<S>(PhantomData<S>);

impl<S: WeightedLayer> Backward<Flex, 3> for WeightedBackward<S> {
    type State = S;

    fn backward(self, ops: Ops<S, 3>, grads: &mut Gradients, _: &mut Checkpointer) {
        let dy = grads.consume::<Flex>(&ops.node).to_contiguous();
        ops.state
            .gradients(&dy, ops.parents.map(|n| n.map(|n| n.id)), grads);
    }
}

impl<S: WeightedLayer> Backward<Flex, 2> for WeightedBackward<S> {
    type State = S;

    fn backward(self, ops: Ops<S, 2>, grads: &mut Gradients, _: &mut Checkpointer) {
        let dy = grads.consume::<Flex>(&ops.node).to_contiguous();
        let [x, w] = ops.parents.map(|n| n.map(|n| n.id));
        ops.state.gradients(&dy, [x, w, None], grads);
    }
}

/// `y`, computed from `x`, `w` and `b`, as an autodiff tensor whose backward pass is
/// `state`'s.
fn record<S: WeightedLayer>(
    state: S,
    x: &AutodiffTensor,
    w: &AutodiffTensor,
    b: Option<&AutodiffTensor>,
    y: FlexTensor,
) -> AutodiffTensor {
    let node = WeightedBackward::<S>(PhantomData);
    match b {
        Some(b) => match node
            .prepare::<NoCheckpointing>([x.node(), w.node(), b.node()])
            .compute_bound()
            .stateful()
        {
            OpsKind::Tracked(prep) => prep.finish(state, y),
            OpsKind::UnTracked(prep) => prep.finish(y),
        },
        None => match node
            .prepare::<NoCheckpointing>([x.node(), w.node()])
            .compute_bound()
            .stateful()
        {
            OpsKind::Tracked(prep) => prep.finish(state, y),
            OpsKind::UnTracked(prep) => prep.finish(y),
        },
    }
}

/// A convolution (`transposed = false`: `x` in `s`'s input space) or the transposed
/// convolution whose adjoint `s` is (`x` in `s`'s output space), on flex; `None` when the
/// tensors are not all f32 flex tensors of one kind (plain or autodiff).
pub(super) fn conv(
    s: ConvShape,
    transposed: bool,
    x: &Tensor<4>,
    weight: &Tensor<4>,
    bias: Option<Tensor<1>>,
) -> Option<Tensor<4>> {
    if let (Some(x), Some(w)) = (flex_of(x), flex_of(weight)) {
        let b = match &bias {
            Some(b) => Some(flex_of(b)?),
            None => None,
        };
        let y = conv_forward(&s, transposed, &x, &w, b.as_ref());
        return Some(Tensor::from_primitive::<Flex>(y));
    }
    let (x, w) = (autodiff_of(x)?, autodiff_of(weight)?);
    let b = match &bias {
        Some(b) => Some(autodiff_of(b)?),
        None => None,
    };
    let state = ConvState {
        shape: s,
        transposed,
        x: contiguous(&x),
        weight: contiguous(&w),
    };
    let y = conv_forward(
        &s,
        transposed,
        &state.x,
        &state.weight,
        b.as_ref().map(contiguous).as_ref(),
    );
    let y = record(state, &x, &w, b.as_ref(), y);
    Some(Tensor::from_primitive::<Autodiff<Flex>>(y))
}

fn conv_forward(
    s: &ConvShape,
    transposed: bool,
    x: &FlexTensor,
    w: &FlexTensor,
    bias: Option<&FlexTensor>,
) -> FlexTensor {
    let (input_dims, output_dims) = conv_dims(s);
    if transposed {
        let mut z = conv2d::backward_input(s, values(x), values(w));
        if let Some(bias) = bias {
            let pixels = s.h_in * s.w_in;
            for image in z.chunks_mut(s.c_in * pixels) {
                for (plane, &b) in image.chunks_mut(pixels).zip(values(bias)) {
                    plane.iter_mut().for_each(|v| *v += b);
                }
            }
        }
        tensor_of(z, &input_dims)
    } else {
        let y = conv2d::forward(s, values(x), values(w), bias.map(values));
        tensor_of(y, &output_dims)
    }
}

/// What the backward pass of [`conv`] needs.
#[derive(Clone, Debug)]
struct ConvState {
    shape: ConvShape,
    transposed: bool,
    x: FlexTensor,
    weight: FlexTensor,
}

impl WeightedLayer for ConvState {
    fn gradients(&self, dy: &FlexTensor, nodes: [Option<NodeId>; 3], grads: &mut Gradients) {
        conv_gradients(self, dy, nodes, grads);
    }
}

/// Registers the gradients of the parents that need one (`nodes`: x, weight, bias).
fn conv_gradients(
    state: &ConvState,
    dy: &FlexTensor,
    nodes: [Option<NodeId>; 3],
    grads: &mut Gradients,
) {
    let s = &state.shape;
    let (input_dims, output_dims) = conv_dims(s);
    let weight_dims = [s.c_out, s.c_in, s.kernel[0], s.kernel[1]];
    let [node_x, node_w, node_b] = nodes;
    let (dy, x, w) = (values(dy), values(&state.x), values(&state.weight));
    if !state.transposed {
        let (dx, dw_db) = match (node_x, node_w.is_some() || node_b.is_some()) {
            (Some(_), true) => {
                let (dx, dw, db) = conv2d::backward(s, x, dy, w, node_b.is_some());
                (Some(dx), Some((dw, db)))
            }
            (Some(_), false) => (Some(conv2d::backward_input(s, dy, w)), None),
            (None, true) => (
                None,
                Some(conv2d::backward_weight(s, x, dy, node_b.is_some())),
            ),
            (None, false) => (None, None),
        };
        if let (Some(id), Some(dx)) = (node_x, dx) {
            grads.register::<Flex>(id, tensor_of(dx, &input_dims));
        }
        if let Some((dw, db)) = dw_db {
            if let Some(id) = node_w {
                grads.register::<Flex>(id, tensor_of(dw, &weight_dims));
            }
            if let (Some(id), Some(db)) = (node_b, db) {
                grads.register::<Flex>(id, tensor_of(db, &[s.c_out]));
            }
        }
    } else {
        // z = Sᵀ x for the convolution S of `s`; the output gradient dz lives in S's
        // input space and x in its output space.
        match (node_x, node_w) {
            (Some(id_x), Some(id_w)) => {
                // Both read the patches of dz: one pass makes both.
                let (dx, dw) = conv2d::forward_and_backward_weight(s, dy, w, x);
                grads.register::<Flex>(id_x, tensor_of(dx, &output_dims));
                grads.register::<Flex>(id_w, tensor_of(dw, &weight_dims));
            }
            (Some(id), None) => {
                let dx = conv2d::forward(s, dy, w, None);
                grads.register::<Flex>(id, tensor_of(dx, &output_dims));
            }
            (None, Some(id)) => {
                let (dw, _) = conv2d::backward_weight(s, dy, x, false);
                grads.register::<Flex>(id, tensor_of(dw, &weight_dims));
            }
            (None, None) => {}
        }
        if let Some(id) = node_b {
            let db = channel_sums(dy, s.batch, s.c_in, s.h_in * s.w_in);
            grads.register::<Flex>(id, tensor_of(db, &[s.c_in]));
        }
    }
}

/// A depthwise convolution on flex; `None` when the tensors are not all f32 flex tensors
/// of one kind (plain or autodiff).
pub(super) fn depthwise_conv(
    s: DepthwiseShape,
    x: &Tensor<4>,
    weight: &Tensor<4>,
    bias: Option<Tensor<1>>,
) -> Option<Tensor<4>> {
    let output_dims = [s.batch, s.channels, s.h_out(), s.w_out()];
    if let (Some(x), Some(w)) = (flex_of(x), flex_of(weight)) {
        let b = match &bias {
            Some(b) => Some(flex_of(b)?),
            None => None,
        };
        let y = depthwise::forward(&s, values(&x), values(&w), b.as_ref().map(values));
        return Some(Tensor::from_primitive::<Flex>(tensor_of(y, &output_dims)));
    }
    let (x, w) = (autodiff_of(x)?, autodiff_of(weight)?);
    let b = match &bias {
        Some(b) => Some(autodiff_of(b)?),
        None => None,
    };
    let state = DepthwiseState {
        shape: s,
        x: contiguous(&x),
        weight: contiguous(&w),
    };
    let y = depthwise::forward(
        &s,
        values(&state.x),
        values(&state.weight),
        b.as_ref().map(contiguous).as_ref().map(values),
    );
    let y = record(state, &x, &w, b.as_ref(), tensor_of(y, &output_dims));
    Some(Tensor::from_primitive::<Autodiff<Flex>>(y))
}

/// What the backward pass of [`depthwise_conv`] needs.
#[derive(Clone, Debug)]
struct DepthwiseState {
    shape: DepthwiseShape,
    x: FlexTensor,
    weight: FlexTensor,
}

impl WeightedLayer for DepthwiseState {
    fn gradients(&self, dy: &FlexTensor, nodes: [Option<NodeId>; 3], grads: &mut Gradients) {
        let s = &self.shape;
        let [node_x, node_w, node_b] = nodes;
        let (dy, x, w) = (values(dy), values(&self.x), values(&self.weight));
        if let Some(id) = node_x {
            let dx = depthwise::backward_input(s, dy, w);
            grads.register::<Flex>(id, tensor_of(dx, &[s.batch, s.channels, s.h_in, s.w_in]));
        }
        if node_w.is_some() || node_b.is_some() {
            let (dw, db) = depthwise::backward_weight(s, x, dy, node_b.is_some());
            if let Some(id) = node_w {
                let [kh, kw] = s.kernel;
                grads.register::<Flex>(id, tensor_of(dw, &[s.channels, 1, kh, kw]));
            }
            if let (Some(id), Some(db)) = (node_b, db) {
                grads.register::<Flex>(id, tensor_of(db, &[s.channels]));
            }
        }
    }
}

/// Batch normalisation with the running statistics (inference), then SiLU with `silu`, on
/// flex; `None` unless every tensor is an f32 flex tensor without autodiff.
pub(super) fn batch_norm_inference<const D: usize>(
    s: ChannelShape,
    x: &Tensor<D>,
    [gamma, beta, mean, var]: [&Tensor<1>; 4],
    epsilon: f64,
    silu: bool,
) -> Option<Tensor<D>> {
    let x = flex_of(x)?;
    let (a, b) = inference_coefficients([gamma, beta, mean, var], epsilon)?;
    let y = batch_norm::normalise(&s, values(&x), &a, &b, silu);
    let dims = x.layout().shape().to_vec();
    Some(Tensor::from_primitive::<Flex>(tensor_of(y, &dims)))
}

/// The per-channel affine map `(a, b)` of a batch normalisation in inference mode from
/// its `[gamma, beta, running mean, running variance]`; `None` when they are not all f32
/// flex tensors.
fn inference_coefficients(
    [gamma, beta, mean, var]: [&Tensor<1>; 4],
    epsilon: f64,
) -> Option<(Vec<f32>, Vec<f32>)> {
    let [gamma, beta, mean, var] = [gamma, beta, mean, var].map(flex_of);
    Some(batch_norm::affine_coefficients(
        values(&gamma?),
        values(&beta?),
        values(&mean?),
        values(&var?),
        epsilon,
    ))
}

/// A depthwise convolution between two batch normalisations in inference mode, each
/// followed by SiLU, the input optionally upsampled by 2 ([`depthwise::forward_between`]),
/// on flex without autodiff; `None` when the tensors are not all f32 flex tensors without
/// autodiff. `norms` are each normalisation's `[gamma, beta, running mean, running
/// variance]` and epsilon, the one before the convolution first.
pub(super) fn depthwise_between_norms(
    s: DepthwiseShape,
    x: &Tensor<4>,
    weight: &Tensor<4>,
    bias: Option<Tensor<1>>,
    norms: [([&Tensor<1>; 4], f64); 2],
    upsample: bool,
) -> Option<Tensor<4>> {
    let (x, w) = (flex_of(x)?, flex_of(weight)?);
    let b = match &bias {
        Some(b) => Some(flex_of(b)?),
        None => None,
    };
    let [(pre, pre_eps), (post, post_eps)] = norms;
    let (pre_a, pre_b) = inference_coefficients(pre, pre_eps)?;
    let (post_a, post_b) = inference_coefficients(post, post_eps)?;
    let y = depthwise::forward_between(
        &s,
        values(&x),
        values(&w),
        b.as_ref().map(values),
        [
            depthwise::NormSilu {
                a: &pre_a,
                b: &pre_b,
            },
            depthwise::NormSilu {
                a: &post_a,
                b: &post_b,
            },
        ],
        upsample,
    );
    let dims = [s.batch, s.channels, s.h_out(), s.w_out()];
    Some(Tensor::from_primitive::<Flex>(tensor_of(y, &dims)))
}

/// Batch normalisation with the batch's statistics (training), then SiLU with `silu`, on
/// flex with autodiff; returns the output and the batch's mean and biased variance per
/// channel (for the running statistics), or `None` when the tensors are not all f32
/// autodiff tensors on flex.
pub(super) fn batch_norm_train<const D: usize>(
    s: ChannelShape,
    x: &Tensor<D>,
    gamma: &Tensor<1>,
    beta: &Tensor<1>,
    epsilon: f64,
    silu: bool,
) -> Option<(Tensor<D>, Vec<f32>, Vec<f32>)> {
    let dims = x.dims().to_vec();
    let (x, g, b) = (autodiff_of(x)?, autodiff_of(gamma)?, autodiff_of(beta)?);
    let (xs, gs, bs) = (contiguous(&x), contiguous(&g), contiguous(&b));
    let (mean, var) = batch_norm::statistics(&s, values(&xs));
    let (a, shift) =
        batch_norm::affine_coefficients(values(&gs), values(&bs), &mean, &var, epsilon);
    let y = tensor_of(
        batch_norm::normalise(&s, values(&xs), &a, &shift, silu),
        &dims,
    );
    let inv_std = var
        .iter()
        .map(|&v| (1.0 / (v as f64 + epsilon).sqrt()) as f32)
        .collect();
    let y = match BatchNormBackward
        .prepare::<NoCheckpointing>([x.node(), g.node(), b.node()])
        .compute_bound()
        .stateful()
    {
        OpsKind::Tracked(prep) => prep.finish(
            BatchNormState {
                shape: s,
                silu,
                dims,
                x: xs,
                gamma: gs,
                beta: bs,
                mean: mean.clone(),
                inv_std,
            },
            y,
        ),
        OpsKind::UnTracked(prep) => prep.finish(y),
    };
    Some((Tensor::from_primitive::<Autodiff<Flex>>(y), mean, var))
}

/// The autodiff node of [`batch_norm_train`]: parents `(x, γ, β)`.
#[derive(Debug)]
struct BatchNormBackward;

#[derive(Clone, Debug)]
struct BatchNormState {
    shape: ChannelShape,
    silu: bool,
    dims: Vec<usize>,
    x: FlexTensor,
    gamma: FlexTensor,
    beta: FlexTensor,
    mean: Vec<f32>,
    inv_std: Vec<f32>,
}

impl Backward<Flex, 3> for BatchNormBackward {
    type State = BatchNormState;

    fn backward(self, ops: Ops<BatchNormState, 3>, grads: &mut Gradients, _: &mut Checkpointer) {
        let [node_x, node_g, node_b] = ops.parents;
        let st = &ops.state;
        // The output gradient becomes the input gradient in place.
        let mut grad = into_values(grads.consume::<Flex>(&ops.node));
        let (dg, db) = batch_norm::backward(
            &st.shape,
            values(&st.x),
            values(&st.gamma),
            values(&st.beta),
            &st.mean,
            &st.inv_std,
            &mut grad,
            st.silu,
        );
        if let Some(node) = node_x {
            grads.register::<Flex>(node.id, tensor_of(grad, &st.dims));
        }
        if let Some(node) = node_g {
            grads.register::<Flex>(node.id, tensor_of(dg, &[st.shape.channels]));
        }
        if let Some(node) = node_b {
            grads.register::<Flex>(node.id, tensor_of(db, &[st.shape.channels]));
        }
    }
}

/// `x W + b` over the last dimension of `x` (`[.., d_in]`) on flex; `None` when the tensors
/// are not all f32 flex tensors of one kind.
pub(super) fn linear<const D: usize>(
    x: &Tensor<D>,
    weight: &Tensor<2>,
    bias: Option<Tensor<1>>,
) -> Option<Tensor<D>> {
    let [d_in, d_out] = weight.dims();
    let mut dims = x.dims();
    dims[D - 1] = d_out;
    if let (Some(x), Some(w)) = (flex_of(x), flex_of(weight)) {
        let b = match &bias {
            Some(b) => Some(flex_of(b)?),
            None => None,
        };
        let y = linear::forward(values(&x), values(&w), b.as_ref().map(values), d_in, d_out);
        return Some(Tensor::from_primitive::<Flex>(tensor_of(y, &dims)));
    }
    let (x, w) = (autodiff_of(x)?, autodiff_of(weight)?);
    let b = match &bias {
        Some(b) => Some(autodiff_of(b)?),
        None => None,
    };
    let state = LinearState {
        x: contiguous(&x),
        weight: contiguous(&w),
    };
    let y = linear::forward(
        values(&state.x),
        values(&state.weight),
        b.as_ref().map(contiguous).as_ref().map(values),
        d_in,
        d_out,
    );
    let y = record(state, &x, &w, b.as_ref(), tensor_of(y, &dims));
    Some(Tensor::from_primitive::<Autodiff<Flex>>(y))
}

/// What the backward pass of [`linear`] needs.
#[derive(Clone, Debug)]
struct LinearState {
    x: FlexTensor,
    weight: FlexTensor,
}

impl WeightedLayer for LinearState {
    fn gradients(&self, dy: &FlexTensor, nodes: [Option<NodeId>; 3], grads: &mut Gradients) {
        linear_gradients(self, dy, nodes, grads);
    }
}

/// Registers the gradients of the parents that need one (`nodes`: x, weight, bias).
fn linear_gradients(
    state: &LinearState,
    dy: &FlexTensor,
    nodes: [Option<NodeId>; 3],
    grads: &mut Gradients,
) {
    let w_dims = state.weight.layout().shape().to_vec();
    let (d_in, d_out) = (w_dims[0], w_dims[1]);
    let [node_x, node_w, node_b] = nodes;
    let (dy, x, w) = (values(dy), values(&state.x), values(&state.weight));
    if let Some(id) = node_x {
        let dx = linear::backward_input(dy, w, d_in, d_out);
        grads.register::<Flex>(id, tensor_of(dx, &state.x.layout().shape().to_vec()));
    }
    if node_w.is_some() || node_b.is_some() {
        let (dw, db) = linear::backward_weight(x, dy, d_in, d_out);
        if let Some(id) = node_w {
            grads.register::<Flex>(id, tensor_of(dw, &w_dims));
        }
        if let Some(id) = node_b {
            grads.register::<Flex>(id, tensor_of(db, &[d_out]));
        }
    }
}

/// Nearest-neighbour upsampling by 2 on flex; `None` when `x` is not an f32 flex tensor
/// (plain or autodiff).
pub(super) fn upsample_nearest2(x: &Tensor<4>) -> Option<Tensor<4>> {
    let [b, c, h, w] = x.dims();
    let out_dims = [b, c, 2 * h, 2 * w];
    if let Some(x) = flex_of(x) {
        let y = upsample::forward(values(&x), h, w);
        return Some(Tensor::from_primitive::<Flex>(tensor_of(y, &out_dims)));
    }
    let x = autodiff_of(x)?;
    let y = tensor_of(upsample::forward(values(&contiguous(&x)), h, w), &out_dims);
    let y = match UpsampleBackward
        .prepare::<NoCheckpointing>([x.node()])
        .compute_bound()
        .stateful()
    {
        OpsKind::Tracked(prep) => prep.finish([b, c, h, w], y),
        OpsKind::UnTracked(prep) => prep.finish(y),
    };
    Some(Tensor::from_primitive::<Autodiff<Flex>>(y))
}

/// The autodiff node of [`upsample_nearest2`]; its state is the input's dimensions.
#[derive(Debug)]
struct UpsampleBackward;

impl Backward<Flex, 1> for UpsampleBackward {
    type State = [usize; 4];

    fn backward(self, ops: Ops<[usize; 4], 1>, grads: &mut Gradients, _: &mut Checkpointer) {
        let [node] = ops.parents;
        let dy = grads.consume::<Flex>(&ops.node).to_contiguous();
        if let Some(node) = node {
            let [_, _, h, w] = ops.state;
            let dx = upsample::backward(values(&dy), h, w);
            grads.register::<Flex>(node.id, tensor_of(dx, &ops.state));
        }
    }
}

/// Group normalisation (then SiLU with `silu`) on flex; `None` when the tensors are not
/// all f32 flex tensors of one kind.
pub(super) fn group_norm<const D: usize>(
    s: GroupShape,
    x: &Tensor<D>,
    gamma: &Tensor<1>,
    beta: &Tensor<1>,
    epsilon: f64,
    silu: bool,
) -> Option<Tensor<D>> {
    let dims = x.dims().to_vec();
    if let (Some(x), Some(g), Some(b)) = (flex_of(x), flex_of(gamma), flex_of(beta)) {
        let f = group_norm::forward(&s, values(&x), values(&g), values(&b), epsilon, silu);
        return Some(Tensor::from_primitive::<Flex>(tensor_of(f.y, &dims)));
    }
    let (x, g, b) = (autodiff_of(x)?, autodiff_of(gamma)?, autodiff_of(beta)?);
    let (xs, gs, bs) = (contiguous(&x), contiguous(&g), contiguous(&b));
    let f = group_norm::forward(&s, values(&xs), values(&gs), values(&bs), epsilon, silu);
    let y = tensor_of(f.y, &dims);
    let y = match GroupNormBackward
        .prepare::<NoCheckpointing>([x.node(), g.node(), b.node()])
        .compute_bound()
        .stateful()
    {
        OpsKind::Tracked(prep) => prep.finish(
            GroupNormState {
                shape: s,
                silu,
                dims,
                x: xs,
                gamma: gs,
                beta: bs,
                mean: f.mean,
                inv_std: f.inv_std,
            },
            y,
        ),
        OpsKind::UnTracked(prep) => prep.finish(y),
    };
    Some(Tensor::from_primitive::<Autodiff<Flex>>(y))
}

/// The autodiff node of [`group_norm`]: parents `(x, γ, β)`.
#[derive(Debug)]
struct GroupNormBackward;

#[derive(Clone, Debug)]
struct GroupNormState {
    shape: GroupShape,
    silu: bool,
    dims: Vec<usize>,
    x: FlexTensor,
    gamma: FlexTensor,
    beta: FlexTensor,
    mean: Vec<f32>,
    inv_std: Vec<f32>,
}

impl Backward<Flex, 3> for GroupNormBackward {
    type State = GroupNormState;

    fn backward(self, ops: Ops<GroupNormState, 3>, grads: &mut Gradients, _: &mut Checkpointer) {
        let [node_x, node_g, node_b] = ops.parents;
        let st = &ops.state;
        // The output gradient becomes the input gradient in place.
        let mut grad = into_values(grads.consume::<Flex>(&ops.node));
        let (dg, db) = group_norm::backward(
            &st.shape,
            values(&st.x),
            values(&st.gamma),
            values(&st.beta),
            &st.mean,
            &st.inv_std,
            &mut grad,
            st.silu,
        );
        if let Some(node) = node_x {
            grads.register::<Flex>(node.id, tensor_of(grad, &st.dims));
        }
        if let Some(node) = node_g {
            grads.register::<Flex>(node.id, tensor_of(dg, &[st.shape.channels]));
        }
        if let Some(node) = node_b {
            grads.register::<Flex>(node.id, tensor_of(db, &[st.shape.channels]));
        }
    }
}

/// The Bernoulli log-likelihood of `x` under `logits` per row, on flex; `None` when the
/// tensors are not both f32 flex tensors of one kind.
pub(super) fn bernoulli_log_prob(logits: &Tensor<2>, x: &Tensor<2>) -> Option<Tensor<1>> {
    let [rows, n] = logits.dims();
    if let (Some(l), Some(x)) = (flex_of(logits), flex_of(x)) {
        let out = bernoulli::log_prob(values(&l), values(&x), n);
        return Some(Tensor::from_primitive::<Flex>(tensor_of(out, &[rows])));
    }
    let (l, x) = (autodiff_of(logits)?, autodiff_of(x)?);
    let state = BernoulliState {
        n,
        logits: contiguous(&l),
        x: contiguous(&x),
    };
    let out = tensor_of(
        bernoulli::log_prob(values(&state.logits), values(&state.x), n),
        &[rows],
    );
    let out = match BernoulliBackward
        .prepare::<NoCheckpointing>([l.node(), x.node()])
        .compute_bound()
        .stateful()
    {
        OpsKind::Tracked(prep) => prep.finish(state, out),
        OpsKind::UnTracked(prep) => prep.finish(out),
    };
    Some(Tensor::from_primitive::<Autodiff<Flex>>(out))
}

/// The autodiff node of [`bernoulli_log_prob`]: parents `(logits, x)`.
#[derive(Debug)]
struct BernoulliBackward;

#[derive(Clone, Debug)]
struct BernoulliState {
    n: usize,
    logits: FlexTensor,
    x: FlexTensor,
}

impl Backward<Flex, 2> for BernoulliBackward {
    type State = BernoulliState;

    fn backward(self, ops: Ops<BernoulliState, 2>, grads: &mut Gradients, _: &mut Checkpointer) {
        let [node_l, node_x] = ops.parents;
        let st = &ops.state;
        let g = grads.consume::<Flex>(&ops.node).to_contiguous();
        let (dl, dx) = bernoulli::backward(
            values(&st.logits),
            values(&st.x),
            st.n,
            values(&g),
            node_x.is_some(),
        );
        let dims = [g.layout().shape()[0], st.n];
        if let Some(node) = node_l {
            grads.register::<Flex>(node.id, tensor_of(dl, &dims));
        }
        if let (Some(node), Some(dx)) = (node_x, dx) {
            grads.register::<Flex>(node.id, tensor_of(dx, &dims));
        }
    }
}

/// The exponential linear unit on flex; `None` when `x` is not an f32 flex tensor (plain
/// or autodiff).
pub(super) fn elu<const D: usize>(x: &Tensor<D>, alpha: f32) -> Option<Tensor<D>> {
    let dims = x.dims().to_vec();
    if let Some(x) = flex_of(x) {
        let y = elu_kernel::forward(values(&x), alpha);
        return Some(Tensor::from_primitive::<Flex>(tensor_of(y, &dims)));
    }
    let x = autodiff_of(x)?;
    let y = tensor_of(elu_kernel::forward(values(&contiguous(&x)), alpha), &dims);
    let y = match EluBackward
        .prepare::<NoCheckpointing>([x.node()])
        .compute_bound()
        .stateful()
    {
        OpsKind::Tracked(prep) => prep.finish((y.clone(), alpha), y),
        OpsKind::UnTracked(prep) => prep.finish(y),
    };
    Some(Tensor::from_primitive::<Autodiff<Flex>>(y))
}

/// The autodiff node of [`elu`]; its state is the output and `α`.
#[derive(Debug)]
struct EluBackward;

impl Backward<Flex, 1> for EluBackward {
    type State = (FlexTensor, f32);

    fn backward(self, ops: Ops<(FlexTensor, f32), 1>, grads: &mut Gradients, _: &mut Checkpointer) {
        let [node] = ops.parents;
        let (y, alpha) = &ops.state;
        let dims = y.layout().shape().to_vec();
        let mut grad = into_values(grads.consume::<Flex>(&ops.node));
        if let Some(node) = node {
            elu_kernel::backward(&mut grad, values(y), *alpha);
            grads.register::<Flex>(node.id, tensor_of(grad, &dims));
        }
    }
}

/// `c · tanh(x / c)` on flex (`c = 1`: the hyperbolic tangent); `None` when `x` is not an
/// f32 flex tensor (plain or autodiff).
pub(super) fn tanh<const D: usize>(x: &Tensor<D>, c: f32) -> Option<Tensor<D>> {
    let dims = x.dims().to_vec();
    if let Some(x) = flex_of(x) {
        let y = tanh_kernel::forward(values(&x), c);
        return Some(Tensor::from_primitive::<Flex>(tensor_of(y, &dims)));
    }
    let x = autodiff_of(x)?;
    let y = tensor_of(tanh_kernel::forward(values(&contiguous(&x)), c), &dims);
    let y = match TanhBackward
        .prepare::<NoCheckpointing>([x.node()])
        .compute_bound()
        .stateful()
    {
        OpsKind::Tracked(prep) => prep.finish((y.clone(), c), y),
        OpsKind::UnTracked(prep) => prep.finish(y),
    };
    Some(Tensor::from_primitive::<Autodiff<Flex>>(y))
}

/// The autodiff node of [`tanh`]; its state is the output and `c`.
#[derive(Debug)]
struct TanhBackward;

impl Backward<Flex, 1> for TanhBackward {
    type State = (FlexTensor, f32);

    fn backward(self, ops: Ops<(FlexTensor, f32), 1>, grads: &mut Gradients, _: &mut Checkpointer) {
        let [node] = ops.parents;
        let (y, c) = &ops.state;
        let dims = y.layout().shape().to_vec();
        let mut grad = into_values(grads.consume::<Flex>(&ops.node));
        if let Some(node) = node {
            tanh_kernel::backward(&mut grad, values(y), *c);
            grads.register::<Flex>(node.id, tensor_of(grad, &dims));
        }
    }
}
