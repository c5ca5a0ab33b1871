//! Callbacks: code that observes and steers every step of `Learner::fit` without editing it.
//! A [`Listener`] observes (progress, notes, a stop), whatever the data; a [`Callback`] may also
//! change each batch (MixUp) and act on the learner after each epoch (checkpoints, snapshots).

use std::any::Any;
use std::path::Path;
use std::sync::{Arc, Mutex};

use burn::tensor::Device;

use super::cancel::Cancel;
use super::metrics::{EpochMetrics, Recorder};
use crate::data::Batch;
use crate::error::Result;

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
    /// Set to end the fit after the current batch (the epoch is validated and recorded).
    pub stop: bool,
}

impl FitState {
    /// Batches the current epoch trains: all of them but in a fit that ends part-way through
    /// its last epoch.
    pub fn epoch_iters(&self) -> usize {
        let done = self.epoch * self.iters_per_epoch;
        self.n_iter.saturating_sub(done).min(self.iters_per_epoch)
    }

    /// Training progress in 0..1 (fastai's `pct_train`).
    pub fn pct_train(&self) -> f64 {
        if self.n_iter == 0 {
            0.0
        } else {
            self.iter as f64 / self.n_iter as f64
        }
    }
}

/// Who listens to training and to the run around it — progress bars, tables, notes, a test's
/// stop — for any kind of data: the one listener type of every run (images, tables, GANs, the
/// playbook). Hooks run in this order: `before_fit`, per epoch `before_epoch`, per batch
/// `after_batch`, then `after_epoch`; finally `after_fit`.
pub trait Listener {
    /// Before the first epoch.
    fn before_fit(&mut self, _state: &mut FitState) {}
    /// Before each epoch.
    fn before_epoch(&mut self, _state: &mut FitState) {}
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
    /// Asked after every batch: `true` ends the fit there (Ctrl-C, a notebook's stop button),
    /// the unfinished epoch dropped and the last checkpoint kept.
    fn cancelled(&mut self) -> bool {
        false
    }
}

/// A listener shared between a run and its caller — the one listener type every run takes
/// (images, tables, GANs, each playbook step): cheap to clone, so one progress display follows
/// a whole playbook, and the caller keeps what it collected.
#[derive(Clone)]
pub struct Listen {
    inner: Arc<Mutex<dyn Listener + Send>>,
    cancel: Option<Cancel>,
}

impl Listen {
    /// Shares `listener`.
    pub fn new(listener: impl Listener + Send + 'static) -> Self {
        Self {
            inner: Arc::new(Mutex::new(listener)),
            cancel: None,
        }
    }

    /// The same listener, whose training also ends (after its batch) once `cancel` is set.
    pub fn cancelled_by(self, cancel: Cancel) -> Self {
        Self {
            cancel: Some(cancel),
            ..self
        }
    }

    /// A listener that ignores everything.
    pub fn none() -> Self {
        Self::new(Silent)
    }

    fn with(&self, f: impl FnOnce(&mut dyn Listener)) {
        // A listener that panicked once still hears the rest.
        let mut guard = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        f(&mut *guard)
    }
}

impl Default for Listen {
    fn default() -> Self {
        Self::none()
    }
}

impl std::fmt::Debug for Listen {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Listen")
    }
}

/// Hears nothing.
struct Silent;

impl Listener for Silent {}

impl Listener for Listen {
    fn before_fit(&mut self, state: &mut FitState) {
        self.with(|l| l.before_fit(state))
    }
    fn before_epoch(&mut self, state: &mut FitState) {
        self.with(|l| l.before_epoch(state))
    }
    fn after_loss(&mut self, state: &mut FitState, loss: f64) {
        self.with(|l| l.after_loss(state, loss))
    }
    fn after_batch(&mut self, state: &mut FitState) {
        self.with(|l| l.after_batch(state))
    }
    fn after_epoch(&mut self, state: &mut FitState, metrics: &EpochMetrics) {
        self.with(|l| l.after_epoch(state, metrics))
    }
    fn after_fit(&mut self, state: &mut FitState) {
        self.with(|l| l.after_fit(state))
    }
    fn note(&mut self, text: &str) {
        self.with(|l| l.note(text))
    }
    fn cancelled(&mut self) -> bool {
        let mut asked = self.cancel.as_ref().is_some_and(Cancel::is_cancelled);
        self.with(|l| asked |= l.cancelled());
        asked
    }
}

impl<B> Callback<B> for Listen {}

/// What a callback sees of the learner after an epoch: its model (downcast to the concrete
/// type), its record, and the means to save it.
pub trait LearnerView {
    /// The model being trained, to downcast (`model().downcast_ref::<ImageClassifier>()`).
    fn model(&self) -> &dyn Any;
    /// Everything recorded so far.
    fn recorder(&self) -> &Recorder;
    /// Epochs completed over the learner's life.
    fn epochs_done(&self) -> usize;
    /// The training device (with autodiff).
    fn device(&self) -> &Device;
    /// Writes a checkpoint (model, optimizer, record) into `dir`, after `stage_epochs_done`
    /// epochs of the stage in progress, recording the classes trained on (`data`).
    fn save_checkpoint(
        &self,
        dir: &Path,
        stage_epochs_done: usize,
        data: Option<super::fingerprint::DataFingerprint>,
    ) -> Result<()>;
    /// Writes the model's weights as `dir/model.safetensors`.
    fn save_weights(&self, dir: &Path) -> Result<()>;
}

/// A listener that may also change each training batch of type `B` before the model sees it
/// (MixUp, CutMix, the LR schedule) and act on the learner after each epoch (checkpoints,
/// snapshots, a GAN's sample grid).
pub trait Callback<B = Batch>: Listener + Send {
    /// Before each training batch is sent to the model; may change the batch or the hyper-parameters.
    fn before_batch(&mut self, _state: &mut FitState, _batch: &mut B) {}
    /// After `after_epoch`, with the learner to save or inspect; an error ends the fit.
    fn after_epoch_learner(&mut self, _state: &FitState, _learner: &dyn LearnerView) -> Result<()> {
        Ok(())
    }
}

/// Sets the learning rate and momentum from a [`Schedule`](super::schedule::Schedule) before each
/// batch (fastai's `ParamScheduler`).
#[derive(Debug, Clone)]
pub struct ParamScheduler {
    /// The schedule, over the whole fit.
    pub schedule: super::schedule::Schedule,
}

impl Listener for ParamScheduler {}

impl<B> Callback<B> for ParamScheduler {
    fn before_batch(&mut self, state: &mut FitState, _batch: &mut B) {
        let pos = state.pct_train();
        state.lr = self.schedule.lr(pos);
        state.mom = self.schedule.mom(pos);
    }
}
