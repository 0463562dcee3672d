//! What the benches share: the timed training step.

use burn::module::Module;
use burn::optim::{AdamConfig, GradientsParams};
use criterion::Criterion;
use elbo::LatentVariableModel;
use elbo::objective::ElboObjective;

/// Benches `name`: forward, backward and an Adam step of `model` (on an autodiff device)
/// on rotating `batches`, ending on a device sync (the loss of the step just taken).
pub fn bench_train_step<M>(c: &mut Criterion, name: &str, model: M, batches: &[M::Input])
where
    M: Module + LatentVariableModel,
{
    let mut model = Some(model);
    let mut optimizer = AdamConfig::new().with_epsilon(1e-8).init();
    let objective = ElboObjective::default();
    let mut i = 0;
    c.bench_function(name, |b| {
        b.iter(|| {
            let m = model.take().unwrap();
            let x = &batches[i % batches.len()];
            i += 1;
            let loss = objective.loss(&m.elbo(x).unwrap(), 0);
            let grads = GradientsParams::from_grads(loss.backward(), &m);
            let m = optimizer.step(1e-3, m, grads);
            let _: f32 = loss.into_scalar();
            model = Some(m);
        })
    });
}
