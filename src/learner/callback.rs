//! Callbacks: code that observes and steers every step of `Learner::fit` without editing it.

use crate::data::Batch;

use super::metrics::EpochMetrics;

/// Where training stands, shared with every callback; callbacks may change `lr`, `mom` and `stop`.
#[derive(Debug, Clone, Default)]
pub struct FitState {
    /// Epoch being run (0-based, counting epochs of this fit).
    pub epoch: usize,
    /// Epochs in this fit.
    pub n_epochs: usize,
    /// Training iterations done in this fit.
    pub iter: usize,
    /// Training iterations in this fit.
    pub n_iter: usize,
    /// Batches per training epoch.
    pub iters_per_epoch: usize,
    /// Learning rate for the next step (of the top parameter group).
    pub lr: f64,
    /// Momentum for the next step.
    pub mom: f64,
    /// Loss of the last training batch.
    pub loss: f64,
    /// Set to end the fit after the current batch.
    pub stop: bool,
}

impl FitState {
    /// Training progress in 0..1 (fastai's `pct_train`).
    pub fn pct_train(&self) -> f64 {
        if self.n_iter == 0 {
            0.0
        } else {
            self.iter as f64 / self.n_iter as f64
        }
    }
}

/// Hooks called by `Learner::fit`, in this order: `before_fit`, then per epoch `before_epoch`,
/// per batch `before_batch` → `after_loss` → `after_batch`, then `after_epoch`; finally `after_fit`.
pub trait Callback<B = Batch> {
    /// Before the first epoch.
    fn before_fit(&mut self, _state: &mut FitState) {}
    /// Before each epoch.
    fn before_epoch(&mut self, _state: &mut FitState) {}
    /// Before each training batch is sent to the model; may change the batch or the hyper-parameters.
    fn before_batch(&mut self, _state: &mut FitState, _batch: &mut B) {}
    /// After the loss is computed, before the backward pass.
    fn after_loss(&mut self, _state: &mut FitState, _loss: f64) {}
    /// After the optimizer step.
    fn after_batch(&mut self, _state: &mut FitState) {}
    /// After validation, with the epoch's metrics.
    fn after_epoch(&mut self, _state: &mut FitState, _metrics: &EpochMetrics) {}
    /// After the last epoch (or a stop).
    fn after_fit(&mut self, _state: &mut FitState) {}
    /// Something the user should know, from the code that runs the training (a plan, a choice
    /// made for them, a suggestion found); the library never prints it itself.
    fn note(&mut self, _text: &str) {}
}

/// Sets the learning rate and momentum from a [`Schedule`](super::schedule::Schedule) before each
/// batch (fastai's `ParamScheduler`).
#[derive(Debug, Clone)]
pub struct ParamScheduler {
    /// The schedule, over the whole fit.
    pub schedule: super::schedule::Schedule,
}

impl<B> Callback<B> for ParamScheduler {
    fn before_batch(&mut self, state: &mut FitState, _batch: &mut B) {
        let pos = state.pct_train();
        state.lr = self.schedule.lr(pos);
        state.mom = self.schedule.mom(pos);
    }
}
