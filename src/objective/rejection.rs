//! The correction term of reparameterised rejection sampling (Naesseth et al. 2017).

use burn::tensor::Tensor;

/// `f` per row with the gradient correction `g_cor` of a draw that went through an
/// accept–reject step attached; its value is `f` unchanged.
///
/// When `z = h(ε, θ)` with `ε` the accepted noise of density `π(ε; θ)`,
/// ```text
/// ∇_θ E[f(z)] = E[∇_θ f(h(ε, θ))]  +  E[f(h(ε, θ)) ∇_θ ln π(ε; θ)]
///                      g_rep                     g_cor
/// ```
/// Differentiating `f` gives `g_rep`; the surrogate
/// `f + stop_grad(f) · (ln π − stop_grad(ln π))` has the value `f` and the gradient
/// `g_rep + f ∇ ln π`, so autodiff produces `g_cor` too. `log_accepted` is what
/// [`Distribution::sample_for_gradient`](crate::Distribution::sample_for_gradient) returns
/// beside the draw; with `None` (a plain reparameterisation) this returns `f`.
///
/// # Example
/// ```
/// use burn::tensor::Tensor;
/// use elbo::objective::rejection_corrected;
///
/// let device = elbo::device::default_device().autodiff();
/// let theta = Tensor::<1>::from_floats([2.0], &device).require_grad();
/// let f = Tensor::<1>::from_floats([3.0], &device);
/// let log_pi = theta.clone().mul_scalar(0.5); // ∇_θ ln π = 0.5
/// let surrogate = rejection_corrected(f, Some(log_pi));
/// assert_eq!(surrogate.clone().into_scalar::<f32>(), 3.0);
/// let grads = surrogate.sum().backward();
/// assert_eq!(theta.grad(&grads).unwrap().into_scalar::<f32>(), 1.5); // f · 0.5
/// ```
pub fn rejection_corrected(f: Tensor<1>, log_accepted: Option<Tensor<1>>) -> Tensor<1> {
    match log_accepted {
        None => f,
        Some(log_pi) => {
            let score = log_pi.clone() - log_pi.detach();
            f.clone() + f.detach() * score
        }
    }
}
