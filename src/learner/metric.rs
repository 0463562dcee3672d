//! [`ElboMetric`]: the bound, the KL (in total or of one group) and the reconstruction term
//! as burn-train numeric metrics.

use std::sync::Arc;

use burn::tensor::TensorReadError;
use burn::train::metric::state::{FormatOptions, NumericMetricState};
use burn::train::metric::{
    Metric, MetricAttributes, MetricMetadata, MetricName, Numeric, NumericAttributes, NumericEntry,
    SerializedEntry,
};

/// One step's figures, each the mean over the batch's examples, in nats.
#[derive(Clone, Debug, PartialEq)]
pub struct ElboFigures {
    /// −ELBO (or −IWAE_k for the IWAE objectives).
    pub neg_elbo: f64,
    /// KL summed over groups (0 for the IWAE objectives).
    pub kl: f64,
    /// The reconstruction term `−E_q log p(x|z)` = −ELBO − KL.
    pub reconstruction: f64,
    /// KL of each latent group, top first (empty for the IWAE objectives).
    pub kl_groups: Vec<f64>,
    /// Examples in the batch.
    pub batch_size: usize,
}

/// Which figure an [`ElboMetric`] follows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ElboFigure {
    /// −ELBO, nats per example.
    NegElbo,
    /// KL summed over groups.
    Kl,
    /// `−E_q log p(x|z)`.
    Reconstruction,
    /// The KL of one latent group (0 = top); 0 when the model has fewer groups.
    KlGroup(usize),
}

/// A numeric burn-train metric over [`ElboFigures`]: its epoch value is the mean over
/// examples (batches weighted by their size).
///
/// ```
/// use elbo::learner::{ElboFigure, ElboMetric};
/// use burn::train::metric::Metric;
///
/// assert_eq!(ElboMetric::new(ElboFigure::KlGroup(2)).name().as_str(), "KL group 2");
/// ```
#[derive(Clone)]
pub struct ElboMetric {
    figure: ElboFigure,
    name: Arc<String>,
    state: NumericMetricState,
}

impl ElboMetric {
    /// A metric following `figure`.
    pub fn new(figure: ElboFigure) -> Self {
        let name = match figure {
            ElboFigure::NegElbo => "-ELBO".to_string(),
            ElboFigure::Kl => "KL".to_string(),
            ElboFigure::Reconstruction => "Reconstruction".to_string(),
            ElboFigure::KlGroup(g) => format!("KL group {g}"),
        };
        Self {
            figure,
            name: Arc::new(name),
            state: NumericMetricState::default(),
        }
    }

    fn format(&self) -> FormatOptions {
        FormatOptions::new(self.name.clone())
            .unit("nats")
            .precision(3)
    }
}

impl Metric for ElboMetric {
    type Input = ElboFigures;

    fn name(&self) -> MetricName {
        self.name.clone()
    }

    fn attributes(&self) -> MetricAttributes {
        NumericAttributes {
            unit: Some("nats".into()),
            higher_is_better: false,
        }
        .into()
    }

    fn update(
        &mut self,
        figures: &ElboFigures,
        _metadata: &MetricMetadata,
    ) -> Result<SerializedEntry, TensorReadError> {
        let value = match self.figure {
            ElboFigure::NegElbo => figures.neg_elbo,
            ElboFigure::Kl => figures.kl,
            ElboFigure::Reconstruction => figures.reconstruction,
            ElboFigure::KlGroup(g) => figures.kl_groups.get(g).copied().unwrap_or(0.0),
        };
        self.state.update(value, figures.batch_size);
        Ok(self.state.compute_update(self.format()))
    }

    fn compute(&mut self) -> Result<SerializedEntry, TensorReadError> {
        Ok(self.state.compute_final(self.format()))
    }

    fn clear(&mut self) {
        self.state.reset();
    }
}

impl Numeric for ElboMetric {
    fn value(&self) -> Option<NumericEntry> {
        Some(self.state.current_value())
    }

    fn running_value(&self) -> Option<NumericEntry> {
        Some(self.state.running_value())
    }

    fn final_value(&self) -> NumericEntry {
        self.state.final_value()
    }
}
