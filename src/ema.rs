//! An exponential moving average of a module's weights (Polyak averaging), which DDPM
//! samples from (Ho et al. 2020, appendix B: decay 0.9999).

use std::collections::HashMap;

use burn::module::{Module, ModuleMapper, ModuleVisitor, Param, ParamId};
use burn::tensor::Tensor;

use crate::Result;
use crate::error::Error;

/// The running average `θ̄` of a module's float parameters.
///
/// # Formula
/// ```text
/// θ̄ ← d · θ̄ + (1 − d) · θ          after every optimizer step, θ̄_0 = θ_0
/// ```
/// Parameters are matched by their id, which an optimizer step keeps, so `update` can be
/// given the model after each step. Running statistics (batch norm) are float state and are
/// averaged the same way.
///
/// ```
/// use burn::module::Module;
/// use burn::nn::LinearConfig;
/// use elbo::Ema;
/// let device = elbo::device::default_device();
/// let model = LinearConfig::new(2, 2).init(&device);
/// let mut ema = Ema::new(&model, 0.5)?;
/// // Moving the model to zero weights halves the average's.
/// let zero = model.clone().map(&mut elbo::ema::Zero);
/// ema.update(&zero);
/// let w0: Vec<f32> = model.weight.val().into_data().to_vec().unwrap();
/// let w1: Vec<f32> = ema.model().weight.val().into_data().to_vec().unwrap();
/// assert!(w0.iter().zip(&w1).all(|(a, b)| (0.5 * a - b).abs() < 1e-6));
/// # Ok::<(), elbo::Error>(())
/// ```
#[derive(Clone, Debug)]
pub struct Ema<M> {
    average: M,
    decay: f64,
}

impl<M: Module> Ema<M> {
    /// Starts the average at `model`'s weights with decay `d ∈ [0, 1)`.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] for a decay outside `[0, 1)`.
    pub fn new(model: &M, decay: f64) -> Result<Self> {
        if !(0.0..1.0).contains(&decay) {
            return Err(Error::config(
                "ema_decay",
                decay,
                "a number in [0, 1) (DDPM uses 0.9999; 0.999 for short runs)",
            ));
        }
        Ok(Self {
            average: model.clone().map(&mut Detach),
            decay,
        })
    }

    /// One averaging step towards `model`'s current weights.
    pub fn update(&mut self, model: &M) {
        let mut current = Collect::default();
        model.visit(&mut current);
        let mut blend = Blend {
            current: current.values,
            decay: self.decay,
        };
        self.average = self.average.clone().map(&mut blend);
    }

    /// The averaged module.
    pub fn model(&self) -> &M {
        &self.average
    }

    /// The averaged module, by value.
    pub fn into_model(self) -> M {
        self.average
    }
}

/// Every float parameter, flattened, by id.
#[derive(Default)]
struct Collect {
    values: HashMap<ParamId, Tensor<1>>,
}

impl ModuleVisitor for Collect {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        let value = param.val().detach();
        let n = value.shape().num_elements();
        self.values.insert(param.id, value.reshape([n]));
    }
}

struct Blend {
    current: HashMap<ParamId, Tensor<1>>,
    decay: f64,
}

impl ModuleMapper for Blend {
    fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
        let Some(current) = self.current.remove(&param.id) else {
            return param;
        };
        let decay = self.decay;
        param.map(|average| {
            let dims = average.dims();
            let current = current.reshape(dims).to_device(&average.device());
            (average.mul_scalar(decay) + current.mul_scalar(1.0 - decay)).detach()
        })
    }
}

struct Detach;

impl ModuleMapper for Detach {
    fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
        param.map(|t| t.detach())
    }
}

/// A [`ModuleMapper`] that sets every float parameter to zero.
pub struct Zero;

impl ModuleMapper for Zero {
    fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
        param.map(|t| t.zeros_like())
    }
}
