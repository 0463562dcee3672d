//! The samplers: ancestral (all `T` reverse steps, Ho et al. Algorithm 2) and DDIM (any
//! increasing subsequence of steps, `η ∈ [0, 1]`, Song et al. 2021 eq. 12), each with a
//! deterministic core that takes its noise.

use burn::tensor::{Device, Distribution as TensorDistribution, Tensor};

use super::model::{Ddpm, Denoiser};

use crate::Result;
use crate::error::{Error, ensure_nonzero};
use crate::progress::progress_bar;

impl<N: Denoiser> Ddpm<N> {
    /// One ancestral step `x_t → x_{t−1} = μ_θ(x_t, t) + σ_t z` (model space), `z` given;
    /// at `t = 1` the mean is returned and `z` ignored (Ho et al. Algorithm 2).
    ///
    /// # Errors
    /// `t` outside `1..=T` or shapes that do not match.
    pub fn reverse_step_with_noise(
        &self,
        x_t: Tensor<2>,
        t: usize,
        noise: Tensor<2>,
    ) -> Result<Tensor<2>> {
        self.schedule.check_step(t)?;
        check_noise(&x_t, &noise)?;
        let b = x_t.dims()[0];
        let p = self.reverse_step_distribution(x_t, &vec![t; b])?;
        if t == 1 {
            return Ok(p.loc());
        }
        p.sample_with_noise(noise)
    }

    /// [`reverse_step_with_noise`](Self::reverse_step_with_noise) with fresh standard
    /// normal noise.
    pub fn reverse_step(&self, x_t: Tensor<2>, t: usize) -> Result<Tensor<2>> {
        let noise = x_t.random_like(TensorDistribution::Normal(0.0, 1.0));
        self.reverse_step_with_noise(x_t, t, noise)
    }

    /// The DDIM step from `x_t` to `x_s` (`0 ≤ s < t`; `s = 0` is the data) as mean and
    /// standard deviation.
    ///
    /// # Formula
    /// ```text
    /// σ   = η √((1 − ᾱ_s)/(1 − ᾱ_t)) √(1 − ᾱ_t/ᾱ_s)
    /// x_s = √ᾱ_s x̂_0 + √(1 − ᾱ_s − σ²) ε̂ + σ z                  (Song et al. 2021, eq. 12)
    /// ```
    /// with `ᾱ_0 = 1`. `η = 0` is deterministic; `η = 1` with `s = t − 1` gives
    /// `σ² = β̃_t` and the same mean as the ancestral step with `σ_t² = β̃_t`.
    pub fn ddim_step_distribution(
        &self,
        x_t: Tensor<2>,
        t: usize,
        s: usize,
        eta: f64,
    ) -> Result<(Tensor<2>, f64)> {
        self.schedule.check_step(t)?;
        if s >= t {
            return Err(Error::config(
                "s",
                s,
                format!("a step below t = {t} (DDIM moves towards the data)"),
            ));
        }
        check_eta(eta)?;
        let b = x_t.dims()[0];
        let (x0, eps) = self.predict_x0_eps(x_t, &vec![t; b])?;
        let a_t = self.schedule.alpha_bar(t);
        let a_s = if s == 0 {
            1.0
        } else {
            self.schedule.alpha_bar(s)
        };
        let sigma = eta * ((1.0 - a_s) / (1.0 - a_t)).sqrt() * (1.0 - a_t / a_s).sqrt();
        let direction = (1.0 - a_s - sigma * sigma).max(0.0).sqrt();
        let mean = x0.mul_scalar(a_s.sqrt()) + eps.mul_scalar(direction);
        Ok((mean, sigma))
    }

    /// One DDIM step `x_t → x_s` with the noise `z` given (ignored when `σ = 0`).
    pub fn ddim_step_with_noise(
        &self,
        x_t: Tensor<2>,
        t: usize,
        s: usize,
        eta: f64,
        noise: Tensor<2>,
    ) -> Result<Tensor<2>> {
        check_noise(&x_t, &noise)?;
        let (mean, sigma) = self.ddim_step_distribution(x_t, t, s, eta)?;
        Ok(if sigma > 0.0 {
            mean + noise.mul_scalar(sigma)
        } else {
            mean
        })
    }

    /// `n` samples by the full ancestral chain (`T` denoiser passes), as images in `[0, 1]`
    /// (`[n, C·H·W]`), with a progress bar when `progress` is set.
    ///
    /// # Errors
    /// `n = 0`, or a denoiser error.
    pub fn sample_ancestral(&self, n: usize, progress: bool, device: &Device) -> Result<Tensor<2>> {
        ensure_nonzero("n", n)?;
        let mut x = Tensor::<2>::random(
            [n, self.dim()],
            TensorDistribution::Normal(0.0, 1.0),
            device,
        );
        let bar = progress_bar(progress, self.steps(), "sampling (ancestral)".into());
        for t in (1..=self.steps()).rev() {
            x = self.reverse_step(x, t)?;
            bar.inc(1);
        }
        bar.finish_and_clear();
        Ok(Self::to_data_space(x.clamp(-1.0, 1.0)))
    }

    /// `n` samples by DDIM over `steps` evenly spaced time steps (ending at `T`) with
    /// stochasticity `eta` (`0` deterministic, `1` ancestral-like), as images in `[0, 1]`.
    ///
    /// # Errors
    /// `n = 0`, `steps` outside `1..=T`, `eta` outside `[0, 1]`.
    pub fn sample_ddim(
        &self,
        n: usize,
        steps: usize,
        eta: f64,
        progress: bool,
        device: &Device,
    ) -> Result<Tensor<2>> {
        ensure_nonzero("n", n)?;
        check_eta(eta)?;
        let taus = self.schedule.subsequence(steps)?;
        let mut x = Tensor::<2>::random(
            [n, self.dim()],
            TensorDistribution::Normal(0.0, 1.0),
            device,
        );
        let bar = progress_bar(progress, taus.len(), "sampling (DDIM)".into());
        for i in (0..taus.len()).rev() {
            let s = if i == 0 { 0 } else { taus[i - 1] };
            let noise = x.random_like(TensorDistribution::Normal(0.0, 1.0));
            x = self.ddim_step_with_noise(x, taus[i], s, eta, noise)?;
            bar.inc(1);
        }
        bar.finish_and_clear();
        Ok(Self::to_data_space(x.clamp(-1.0, 1.0)))
    }
}

fn check_noise(x_t: &Tensor<2>, noise: &Tensor<2>) -> Result<()> {
    if x_t.dims() != noise.dims() {
        return Err(Error::shape(
            "reverse step noise",
            format!("the shape of x_t, {:?}", x_t.dims()),
            noise.dims(),
        ));
    }
    Ok(())
}

fn check_eta(eta: f64) -> Result<()> {
    if !(0.0..=1.0).contains(&eta) {
        return Err(Error::config(
            "eta",
            eta,
            "a number in [0, 1] (0: deterministic DDIM, 1: ancestral-like)",
        ));
    }
    Ok(())
}
