//! The `Learner`: model, data, optimizer, recorder and callbacks around one training loop.

use std::any::Any;
use std::path::Path;
use std::time::Instant;

use burn::optim::ModuleOptimizer;
use burn::tensor::{Device, Int, Tensor};

use super::callback::{Callback, FitState, LearnerView, Listen, ParamScheduler};
use super::checkpoint::{self, CheckpointState, DataFingerprint};
use super::data_parallel::{communication_note, communication_seconds};
use super::loss::LossFunc;
use super::metrics::{BatchRecord, EpochMetrics, Recorder};
use super::optimizer::{Adam, AdamConfig, AdamHandles};
use super::param_groups::{Lrs, freeze_to};
use super::precision::{GradScaler, Precision};
use super::schedule::{OneCycle, Schedule, Sgdr};
use super::stage::{Stage, fine_tune_stages};
use super::step::{StepContext, StepKind, StepLoss};
use super::task::{BatchOf, TrainData, Trainable, Validation, broadcast_validation};
use crate::data::DataLoaders;
use crate::data::loader::mix;
use crate::error::{Error, Result};
use crate::models::{ClassifierConfig, ImageClassifier};
use crate::ops::autocast::with_autocast;
use crate::ops::kernels::{FrozenWeights, with_frozen_weights};
use crate::ops::workers::step_on_workers;

/// Trains a model (an [`ImageClassifier`] on [`DataLoaders`] by default, or any [`Trainable`]:
/// a tabular model, a WGAN) with fastai's Adam and callbacks: one fit loop whose step the model
/// owns ([`Trainable::train_step`]).
pub struct Learner<M: Trainable = ImageClassifier> {
    /// The model being trained (on the autodiff device).
    pub model: M,
    /// Training and validation data.
    pub dls: M::Data,
    /// Every batch and epoch recorded so far.
    pub recorder: Recorder,
    /// Callbacks run by every fit, in order.
    pub callbacks: Vec<Box<dyn Callback<BatchOf<M>>>>,
    /// Seed for shuffling, augmentation and dropout.
    pub seed: u64,
    /// Epochs completed over the learner's life.
    pub epochs_done: usize,
    /// Current stage (fit) number, for multi-stage training.
    pub stage: usize,
    /// The training loss (validation always uses plain cross-entropy on unmixed images).
    pub loss_func: LossFunc,
    /// Float precision of the convolutions (and, on the CPU in bf16, the linear layers) (set with [`Learner::set_precision`]).
    precision: Precision,
    /// Loss scaling, in fp16 training.
    scaler: Option<GradScaler>,
    pub(crate) optim: ModuleOptimizer,
    pub(crate) handles: AdamHandles,
    pub(crate) groups: Vec<Vec<String>>,
    pub(crate) device: Device,
}

impl<M: Trainable> Learner<M> {
    /// A learner for `model` (built on `device`, which must have autodiff enabled).
    pub fn new(model: M, dls: M::Data, adam: AdamConfig, device: &Device, seed: u64) -> Self {
        let groups = model.param_groups();
        let (optim, handles) = Adam::module_optimizer(adam, &groups);
        Self {
            model,
            dls,
            recorder: Recorder::default(),
            callbacks: Vec::new(),
            seed,
            epochs_done: 0,
            stage: 0,
            loss_func: LossFunc::default(),
            precision: Precision::Fp32,
            scaler: None,
            optim,
            handles,
            groups,
            device: device.clone(),
        }
    }

    /// Trains and validates in `precision` from now on, `Auto` resolved for this learner's
    /// device (refused where the device cannot).
    pub fn set_precision(&mut self, precision: Precision) -> Result<()> {
        precision.check(&self.device)?;
        let precision = precision.resolve(&self.device);
        self.precision = precision;
        self.scaler = (precision == Precision::Fp16).then(GradScaler::default);
        Ok(())
    }

    /// The float precision of training (never `Auto`: resolved when set).
    pub fn precision(&self) -> Precision {
        self.precision
    }

    /// The loss scaler of fp16 training (its scale and skipped steps), if any.
    pub fn scaler(&self) -> Option<&GradScaler> {
        self.scaler.as_ref()
    }

    /// Adds `listener` (progress, notes) to the callbacks of every fit.
    pub fn add_listener(&mut self, listener: Listen) {
        self.callbacks.push(Box::new(listener));
    }

    /// Runs `f` with `listener` attached, and detaches it afterwards — also when `f` fails or
    /// panics (a learner kept after a panic does not keep a stale listener).
    pub fn with_listener<T>(&mut self, listener: Listen, f: impl FnOnce(&mut Self) -> T) -> T {
        /// Truncates the callbacks back to their length when dropped.
        struct Detach<'a, M: Trainable>(&'a mut Learner<M>, usize);
        impl<M: Trainable> Drop for Detach<'_, M> {
            fn drop(&mut self) {
                self.0.callbacks.truncate(self.1);
            }
        }
        let n = self.callbacks.len();
        self.add_listener(listener);
        let guard = Detach(self, n);
        f(guard.0)
    }

    /// Hands `text` to every callback as a note.
    pub fn note(&mut self, text: &str) {
        self.callbacks.iter_mut().for_each(|cb| cb.note(text));
    }

    /// The optimizer (its state is part of every checkpoint).
    pub fn optimizer(&self) -> &ModuleOptimizer {
        &self.optim
    }

    /// The training device (with autodiff).
    pub fn device(&self) -> &Device {
        &self.device
    }

    /// Number of parameter groups (3 for a ResNet: stem–layer2, layer3–layer4, head).
    pub fn n_groups(&self) -> usize {
        self.groups.len()
    }

    /// Sets the learning-rate spread over the groups; the schedule then scales all of them.
    pub fn set_lrs(&mut self, lrs: Lrs) {
        let per_group = lrs.per_group(self.groups.len());
        for (h, lr) in self.handles.lr_mults.iter().zip(per_group) {
            h.set(lr / lrs.max());
        }
    }

    /// The learning-rate multiplier of each group (1.0 for the head).
    pub fn lr_mults(&self) -> Vec<f64> {
        self.handles.lr_mults.iter().map(|h| h.get()).collect()
    }

    /// Trains only the groups from `n` on (BatchNorm layers stay trainable everywhere).
    pub fn freeze_to(&mut self, n: usize) {
        self.model = freeze_to(self.model.clone(), &self.groups, n);
    }

    /// Trains only the head (and BatchNorm), as fastai's `freeze`.
    pub fn freeze(&mut self) {
        self.freeze_to(self.groups.len() - 1);
    }

    /// Trains every parameter.
    pub fn unfreeze(&mut self) {
        self.freeze_to(0);
    }

    /// fastai's `fit_one_cycle(n_epochs, lr_max)` with its default schedule.
    pub fn fit_one_cycle(&mut self, n_epochs: usize, lrs: impl Into<Lrs>) -> Result<()> {
        let lrs = lrs.into();
        lrs.check("lr_max")?;
        self.set_lrs(lrs);
        self.fit(n_epochs, Schedule::OneCycle(OneCycle::new(lrs.max())))
    }

    /// fastai's `fit_sgdr`: `n_cycles` cosine cycles restarting at `lr_max`.
    pub fn fit_sgdr(
        &mut self,
        n_cycles: usize,
        cycle_len: usize,
        cycle_mult: usize,
        lrs: impl Into<Lrs>,
    ) -> Result<()> {
        let lrs = lrs.into();
        lrs.check("lr_max")?;
        self.set_lrs(lrs);
        let sgdr = Sgdr {
            lr_max: lrs.max(),
            n_cycles,
            cycle_len,
            cycle_mult,
        };
        self.fit(sgdr.n_epochs(), Schedule::Sgdr { sgdr, mom: 0.9 })
    }

    /// fastai's `fit_flat_cos`: flat for 75 % of training, then cosine annealing.
    pub fn fit_flat_cos(&mut self, n_epochs: usize, lrs: impl Into<Lrs>) -> Result<()> {
        let lrs = lrs.into();
        lrs.check("lr")?;
        self.set_lrs(lrs);
        self.fit(
            n_epochs,
            Schedule::FlatCos {
                lr: lrs.max(),
                pct_start: 0.75,
                div_final: 1e5,
                mom: 0.9,
            },
        )
    }

    /// fastai's `fine_tune`: `freeze_epochs` of the head alone (one-cycle, pct_start 0.99), then
    /// `epochs` of the whole model at `slice(base_lr/2/lr_mult, base_lr/2)` (pct_start 0.3, div 5).
    pub fn fine_tune(
        &mut self,
        epochs: usize,
        base_lr: f64,
        freeze_epochs: usize,
        lr_mult: f64,
    ) -> Result<()> {
        Lrs::Single(base_lr).check("base_lr")?;
        Lrs::Single(lr_mult).check("lr_mult")?;
        for stage in fine_tune_stages(epochs, base_lr, freeze_epochs, lr_mult) {
            self.run_stage(&stage, 0)?;
        }
        Ok(())
    }

    /// Runs one stage of a training plan, from epoch `start` of it (resume).
    pub fn run_stage(&mut self, stage: &Stage, start: usize) -> Result<()> {
        if stage.epochs == 0 {
            return Ok(());
        }
        if stage.frozen {
            self.freeze()
        } else {
            self.unfreeze()
        }
        if let Some(size) = stage.size {
            self.resize(size);
        }
        self.set_lrs(stage.lrs);
        self.fit_part_from(stage.epochs, stage.last_epoch_pct, stage.schedule, start)
    }

    /// Rebuilds the loaders at image side `size`; the weights stay (progressive resizing).
    pub fn resize(&mut self, size: u32) {
        self.dls.resize(size);
    }

    /// Trains for `n_epochs` following `schedule`.
    pub fn fit(&mut self, n_epochs: usize, schedule: Schedule) -> Result<()> {
        self.fit_from(n_epochs, schedule, 0)
    }

    /// Continues a fit of `n_epochs` whose first `start` epochs are done (resume): the schedule
    /// restarts at the iteration it had reached.
    pub fn fit_from(&mut self, n_epochs: usize, schedule: Schedule, start: usize) -> Result<()> {
        self.fit_part_from(n_epochs, None, schedule, start)
    }

    /// [`fit_from`](Self::fit_from) whose last epoch trains only `last_epoch_pct` of its
    /// batches (at least one; `None`: all): the schedule spans the batches trained, so a
    /// one-cycle still anneals to its end.
    pub fn fit_part_from(
        &mut self,
        n_epochs: usize,
        last_epoch_pct: Option<f64>,
        schedule: Schedule,
        start: usize,
    ) -> Result<()> {
        super::stage::check_last_epoch_pct(last_epoch_pct)?;
        let ipe = self.dls.n_train_batches();
        if ipe == 0 {
            return Err(Error::Config(format!(
                "the training set ({} items) is smaller than one batch (`bs` {})",
                self.dls.n_train_items(),
                self.dls.batch_size()
            )));
        }
        let mut cbs = std::mem::take(&mut self.callbacks);
        cbs.insert(0, Box::new(ParamScheduler { schedule }));
        let mut st = FitState {
            epoch: start,
            n_epochs,
            iter: start * ipe,
            n_iter: fit_iters(n_epochs, ipe, last_epoch_pct),
            iters_per_epoch: ipe,
            lr: schedule.lr(0.0),
            mom: schedule.mom(0.0),
            ..FitState::default()
        };
        let half = self.precision.half();
        let result = with_autocast(half, || self.run_epochs(&mut cbs, &mut st, start));
        cbs.iter_mut().for_each(|cb| cb.after_fit(&mut st));
        cbs.remove(0);
        self.callbacks = cbs;
        result
    }

    fn run_epochs(
        &mut self,
        cbs: &mut [Box<dyn Callback<BatchOf<M>>>],
        st: &mut FitState,
        start: usize,
    ) -> Result<()> {
        crate::distributed::check_batch(self.dls.batch_size())?;
        cbs.iter_mut().for_each(|cb| cb.before_fit(st));
        let (mut steps, mut step_time, mut comm_time) = (0usize, 0.0, 0.0);
        for epoch in start..st.n_epochs {
            st.epoch = epoch;
            cbs.iter_mut().for_each(|cb| cb.before_epoch(st));
            let t0 = Instant::now();
            self.device.seed(mix(self.seed, self.epochs_done as u64, 1));
            let mut sums = LossSums::default();
            // What a diverged epoch rolls back to (clones share the tensors: no copy).
            let before = (
                self.model.clone(),
                self.optim.clone(),
                self.recorder.batches.len(),
            );
            let comm0 = communication_seconds();
            for mut batch in self.dls.train_batches(self.epochs_done) {
                cbs.iter_mut()
                    .for_each(|cb| cb.before_batch(st, &mut batch));
                let step = self.train_step(&batch, st.lr, st.mom);
                steps += 1;
                if !step.loss.is_finite() && self.scaler().is_none() {
                    self.roll_back(before);
                    return Err(diverged(
                        format!(
                            "the training loss became {} at epoch {}, batch {} of {}",
                            step.loss,
                            self.epochs_done + 1,
                            st.iter % st.iters_per_epoch + 1,
                            st.iters_per_epoch
                        ),
                        st.lr,
                    ));
                }
                st.loss = step.loss;
                cbs.iter_mut().for_each(|cb| cb.after_loss(st, step.loss));
                sums.add(step, M::Data::batch_len(&batch));
                self.recorder.batches.push(BatchRecord {
                    epoch: self.epochs_done,
                    iter: self.recorder.batches.len(),
                    loss: step.loss,
                    lr: st.lr,
                    mom: st.mom,
                    kind: step.kind,
                });
                st.iter += 1;
                cbs.iter_mut().for_each(|cb| cb.after_batch(st));
                if cbs.iter_mut().any(|cb| cb.cancelled()) {
                    // The unfinished epoch is neither validated nor checkpointed: a resumed
                    // run starts it again from the last checkpoint.
                    return Err(Error::Cancelled);
                }
                if st.stop || st.iter >= st.n_iter {
                    break;
                }
            }
            step_time += t0.elapsed().as_secs_f64();
            let comm = communication_seconds() - comm0;
            comm_time += comm;
            let mut m = self.epoch_metrics(&sums, t0);
            if let Some(g) = crate::distributed::group() {
                (m.ranks, m.comm_seconds) = (Some(g.size()), Some(comm));
            }
            if let Some(loss) = m.valid_loss.filter(|l| !l.is_finite()) {
                self.roll_back(before);
                return Err(diverged(
                    format!(
                        "the validation loss after epoch {} is {loss}: the model's outputs are not finite",
                        self.epochs_done + 1,
                    ),
                    st.lr,
                ));
            }
            self.recorder.epochs.push(m.clone());
            self.epochs_done += 1;
            cbs.iter_mut().for_each(|cb| cb.after_epoch(st, &m));
            for cb in cbs.iter_mut() {
                cb.after_epoch_learner(st, &*self)?;
            }
            if st.stop {
                break;
            }
        }
        if let Some(text) = communication_note(steps, step_time, comm_time) {
            cbs.iter_mut().for_each(|cb| cb.note(&text));
        }
        Ok(())
    }

    /// Puts back the model, optimizer and batch record of the start of a diverged epoch, so
    /// that nothing of it is kept in memory either.
    fn roll_back(&mut self, (model, optim, batches): (M, ModuleOptimizer, usize)) {
        self.model = model;
        self.optim = optim;
        self.recorder.batches.truncate(batches);
    }

    /// Validates and makes the epoch's record from its training losses.
    fn epoch_metrics(&self, sums: &LossSums, t0: Instant) -> EpochMetrics {
        let v = self.validate();
        let (real, synthetic) = self.dls.item_counts();
        EpochMetrics {
            epoch: self.epochs_done,
            train_loss: sums.mean(),
            valid_loss: v.loss,
            accuracy: v.accuracy,
            error_rate: v.accuracy.map(|a| 1.0 - a),
            seconds: t0.elapsed().as_secs_f64(),
            stage: self.stage,
            size: self.dls.size(),
            rmse: v.rmse,
            wasserstein: (sums.critic_steps > 0).then(|| -sums.mean()),
            gen_loss: (sums.gen_steps > 0).then(|| sums.gen_sum / sums.gen_steps as f64),
            real,
            synthetic,
            ranks: None,
            comm_seconds: None,
        }
    }

    /// One training step on `batch` (mixed or not), the model's own; returns its loss.
    pub(crate) fn train_step(&mut self, batch: &BatchOf<M>, lr: f64, mom: f64) -> StepLoss {
        let items = M::Data::batch_len(batch);
        self.step_with(lr, mom, items, |model, ctx| model.train_step(batch, ctx))
    }

    /// Runs `step` on the model with this learner's optimizer, loss scaler, loss and device at
    /// `lr` and `mom` on a batch of `items` items, and keeps the model it returns.
    fn step_with<T: Send>(
        &mut self,
        lr: f64,
        mom: f64,
        items: usize,
        step: impl FnOnce(M, &mut StepContext<'_>) -> (M, T) + Send,
    ) -> T {
        let mut ctx = StepContext {
            optim: &mut self.optim,
            handles: &self.handles,
            scaler: &mut self.scaler,
            loss_func: &self.loss_func,
            device: &self.device,
            lr,
            mom,
            iter: self.recorder.batches.len(),
            items,
        };
        let model = self.model.clone();
        let (model, out) = step_on_workers(&self.device, move || {
            let (model, out) = step(model, &mut ctx);
            // burn keeps BatchNorm's running statistics per thread and reads back their average
            // over threads: settled now, the next step starts from this one's on any thread (a
            // pool worker, or a caller that moved to another thread).
            let _ = model.valid();
            (model, out)
        });
        self.model = model;
        out
    }

    /// Loss and metrics on the validation set, in eval mode.
    /// In data-parallel training rank 0 validates and tells the others.
    pub fn validate(&self) -> Validation {
        let group = crate::distributed::group();
        let v = if group.is_none_or(|g| g.rank() == 0) {
            let device = self.device.clone().without_autodiff();
            // The weights do not change while validating: packed once for every batch.
            with_frozen_weights(&FrozenWeights::new(), || {
                with_autocast(self.precision.half(), || {
                    self.model.valid().validate(&self.dls, &device)
                })
            })
        } else {
            Validation::default()
        };
        match group {
            Some(g) => broadcast_validation(v, g),
            None => v,
        }
    }

    /// Restores the state of a checkpoint folder into this learner; returns it.
    pub fn load_checkpoint(&mut self, dir: &std::path::Path) -> Result<CheckpointState> {
        let (model, optim, state) = checkpoint::load(dir, self.model.clone(), self.optim.clone())?;
        self.model = model;
        self.optim = optim;
        self.recorder = state.recorder.clone();
        self.epochs_done = state.epochs_done;
        self.stage = state.stage;
        Ok(state)
    }
}

impl Learner<ImageClassifier> {
    /// Seeds `device`, builds the model from `config` on it (with autodiff) and wraps it.
    pub fn from_config(
        config: &ClassifierConfig,
        dls: DataLoaders,
        device: &Device,
        seed: u64,
    ) -> Result<Self> {
        let device = device.clone().autodiff();
        device.seed(seed);
        let model = config.init(&device)?;
        Ok(Self::new(model, dls, AdamConfig::default(), &device, seed))
    }

    /// One optimizer step on device tensors at learning rate `lr` and momentum `mom`; returns the loss.
    pub fn step_tensors(
        &mut self,
        images: Tensor<4>,
        targets: Tensor<1, Int>,
        lr: f64,
        mom: f64,
    ) -> f64 {
        let (items, half) = (images.dims()[0], self.precision.half());
        self.step_with(lr, mom, items, |model, ctx| {
            let loss = with_autocast(half, || {
                let logits = model.forward(images);
                ctx.loss_func.hard(logits, targets, ctx.device)
            });
            ctx.backward_step(model, loss)
        })
    }
}

/// The error of a fit whose loss stopped being finite (`what`, at learning rate `lr`): nothing of
/// the epoch is kept, the last checkpoint holds the last finite model.
fn diverged(what: String, lr: f64) -> Error {
    Error::Diverged(format!(
        "{what}: training diverged, most likely from a learning rate too high (`lr` was {lr:.2e} at that step); nothing of this epoch was kept"
    ))
}

/// Training iterations of a fit of `n_epochs` of `ipe` batches whose last epoch trains
/// `last_epoch_pct` of its batches (rounded up: at least one).
fn fit_iters(n_epochs: usize, ipe: usize, last_epoch_pct: Option<f64>) -> usize {
    // Rounded up, less a hair: 0.29 of 100 batches is 29, though 0.29 · 100 is 29.000000000000004.
    let last = last_epoch_pct.map_or(ipe, |p| {
        ((p * ipe as f64 - 1e-9).ceil() as usize).clamp(1, ipe)
    });
    n_epochs.saturating_sub(1) * ipe + if n_epochs > 0 { last } else { 0 }
}

/// The training losses of an epoch, by what each step trained.
#[derive(Debug, Default)]
struct LossSums {
    /// Item-weighted sum of the model's (or critic's) step losses, and its items.
    sum: f64,
    items: usize,
    critic_steps: usize,
    gen_sum: f64,
    gen_steps: usize,
}

impl LossSums {
    fn add(&mut self, step: StepLoss, items: usize) {
        match step.kind {
            StepKind::Generator => {
                self.gen_sum += step.loss;
                self.gen_steps += 1;
            }
            kind => {
                self.critic_steps += usize::from(kind == StepKind::Critic);
                self.sum += step.loss * items as f64;
                self.items += items;
            }
        }
    }

    /// Mean loss of the model's (or critic's) steps, per item.
    fn mean(&self) -> f64 {
        if self.items == 0 {
            0.0
        } else {
            self.sum / self.items as f64
        }
    }
}

impl<M: Trainable> LearnerView for Learner<M> {
    fn model(&self) -> &dyn Any {
        &self.model
    }

    fn recorder(&self) -> &Recorder {
        &self.recorder
    }

    fn device(&self) -> &Device {
        &self.device
    }

    fn epochs_done(&self) -> usize {
        self.epochs_done
    }

    fn save_checkpoint(
        &self,
        dir: &Path,
        stage_epochs_done: usize,
        data: Option<DataFingerprint>,
    ) -> Result<()> {
        let state = CheckpointState {
            data,
            epochs_done: self.epochs_done,
            stage: self.stage,
            stage_epochs_done,
            recorder: self.recorder.clone(),
            model_file: String::new(),
            optim_file: String::new(),
        };
        checkpoint::save(dir, &self.model, &self.optim, state)
    }

    fn save_weights(&self, dir: &Path) -> Result<()> {
        crate::weights::save_weights(dir, &self.model)
    }
}
