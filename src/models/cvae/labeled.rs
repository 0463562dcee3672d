//! Distributions that carry the class labels of their rows, the one-hot code, and the
//! label-independent prior.

use burn::module::Module;
use burn::tensor::{Device, Int, Tensor};

use crate::data::LabeledBatch;
use crate::traits::{Distribution, KlDivergence, Posterior, Prior};

/// The one-hot code of `labels` (`[batch]`, classes in `0..classes`): `[batch, classes]`
/// with a 1 in column `y_i` of row `i`.
///
/// ```
/// use burn::tensor::{Int, Tensor};
/// let device = elbo::device::default_device();
/// let y = Tensor::<1, Int>::from_ints([2, 0], &device);
/// let code = elbo::models::cvae::one_hot(&y, 3);
/// assert_eq!(code.try_into_vec_as::<f32>().unwrap(), vec![0.0, 0.0, 1.0, 1.0, 0.0, 0.0]);
/// ```
pub fn one_hot(labels: &Tensor<1, Int>, classes: usize) -> Tensor<2> {
    let batch = labels.dims()[0];
    let device = labels.device();
    let columns = Tensor::<1, Int>::arange(0..classes as i64, &device).reshape([1, classes]);
    labels.clone().reshape([batch, 1]).equal(columns).float()
}

/// A distribution over flat rows `[batch, d]` that carries the class label of each row:
/// its values are [`LabeledBatch`]es whose `x` is the distribution's value and whose `y`
/// is the labels it was built with.
///
/// # Formula
/// ```text
/// log p((x, y)) = log p(x)        (the label is given, not modelled)
/// ```
/// As the posterior `q(z | x, y)` it hands the decoder the label with every draw of `z`;
/// as the likelihood `p(x | z, y)` it scores a labelled batch by its images.
#[derive(Clone, Debug)]
pub struct Labeled<Q> {
    /// The distribution of the rows.
    pub inner: Q,
    /// The label of each row, `[batch]`.
    pub y: Tensor<1, Int>,
}

impl<Q: Distribution<Value = Tensor<2>>> Labeled<Q> {
    fn with(&self, x: Tensor<2>) -> LabeledBatch {
        LabeledBatch {
            x,
            y: self.y.clone(),
        }
    }
}

impl<Q: Distribution<Value = Tensor<2>>> Distribution for Labeled<Q> {
    type Value = LabeledBatch;

    fn log_prob(&self, value: &LabeledBatch) -> Tensor<1> {
        self.inner.log_prob(&value.x)
    }

    fn sample(&self) -> LabeledBatch {
        self.with(self.inner.sample())
    }

    fn sample_for_gradient(&self) -> (LabeledBatch, Option<Tensor<1>>) {
        let (x, log_accepted) = self.inner.sample_for_gradient();
        (self.with(x), log_accepted)
    }

    fn mean(&self) -> LabeledBatch {
        self.with(self.inner.mean())
    }

    fn batch_size(&self) -> usize {
        self.inner.batch_size()
    }

    fn repeat_rows(&self, k: usize) -> Self {
        Self {
            inner: self.inner.repeat_rows(k),
            y: if k == 1 {
                self.y.clone()
            } else {
                self.y.clone().repeat_dim(0, k)
            },
        }
    }
}

impl<Q: Posterior<Value = Tensor<2>>> Posterior for Labeled<Q> {
    fn mode(&self) -> LabeledBatch {
        self.with(self.inner.mode())
    }

    fn detach(&self) -> Self {
        Self {
            inner: self.inner.detach(),
            y: self.y.clone(),
        }
    }
}

impl<Q: KlDivergence<P>, P> KlDivergence<LabelPrior<P>> for Labeled<Q> {
    /// `KL(q(z | x, y) ‖ p(z))`: the prior does not depend on the label.
    fn kl(&self, other: &LabelPrior<P>) -> Tensor<1> {
        self.inner.kl(&other.inner)
    }
}

/// A prior over latents that does not depend on the label, `p(z | y) = p(z)`, whose draws
/// carry labels for the decoder.
///
/// [`sample`](Prior::sample) of `n` rows gives row `i` the class `⌊i · classes / n⌋`: the
/// classes in equal blocks in order, so `n = classes · m` draws laid out `m` to a row make
/// a grid with one row per class. [`sample_for`](Self::sample_for) takes the labels.
#[derive(Module, Debug)]
pub struct LabelPrior<P> {
    /// The prior over `z`.
    pub inner: P,
    /// Number of classes.
    pub classes: usize,
}

impl<P: Prior<Value = Tensor<2>>> LabelPrior<P> {
    /// One draw of `z` for each of `labels` (`[n]`), labelled with them.
    pub fn sample_for(&self, labels: Tensor<1, Int>) -> LabeledBatch {
        let n = labels.dims()[0];
        let device = labels.device();
        LabeledBatch {
            x: self.inner.sample(n, &device),
            y: labels,
        }
    }
}

impl<P: Prior<Value = Tensor<2>>> Prior for LabelPrior<P> {
    type Value = LabeledBatch;

    fn log_prob(&self, z: &LabeledBatch) -> Tensor<1> {
        self.inner.log_prob(&z.x)
    }

    fn sample(&self, n: usize, device: &Device) -> LabeledBatch {
        let classes = self.classes.max(1);
        let labels: Vec<i64> = (0..n).map(|i| (i * classes / n.max(1)) as i64).collect();
        let labels = Tensor::from_data(burn::tensor::TensorData::new(labels, [n]), device);
        self.sample_for(labels)
    }
}
