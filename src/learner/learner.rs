//! The `Learner`: model, data, optimizer, recorder and callbacks around one training loop.

use std::path::PathBuf;
use std::time::Instant;

use burn::optim::{GradientsParams, ModuleOptimizer};
use burn::tensor::{Device, Int, Tensor};

use super::callback::{Callback, FitState, ParamScheduler};
use super::checkpoint::{self, CheckpointState};
use super::loss::LossFunc;
use super::metrics::{BatchRecord, EpochMetrics, Recorder};
use super::optimizer::{Adam, AdamConfig, AdamHandles};
use super::param_groups::{Lrs, freeze_to};
use super::precision::{GradScaler, Precision};
use super::schedule::{OneCycle, Schedule, Sgdr};
use super::task::{BatchOf, TrainData, Trainable, Validation};
use crate::data::DataLoaders;
use crate::data::loader::mix;
use crate::error::{Error, Result};
use crate::models::{ClassifierConfig, ImageClassifier};
use crate::ops::autocast::with_autocast;

/// Trains a model (an [`ImageClassifier`] on [`DataLoaders`] by default, or any [`Trainable`])
/// with fastai's Adam and callbacks.
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
    /// Where to write a checkpoint after every epoch, if anywhere.
    pub checkpoint_dir: Option<PathBuf>,
    /// The training loss (validation always uses plain cross-entropy on unmixed images).
    pub loss_func: LossFunc,
    /// Where and after which epochs of a fit to keep the weights (SGDR snapshots), if anywhere.
    pub snapshots: Option<SnapshotPlan>,
    /// Float precision of the convolutions (set with [`Learner::set_precision`]).
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
            checkpoint_dir: None,
            loss_func: LossFunc::default(),
            snapshots: None,
            precision: Precision::Fp32,
            scaler: None,
            optim,
            handles,
            groups,
            device: device.clone(),
        }
    }

    /// Trains and validates in `precision` from now on (refused where the device cannot).
    pub fn set_precision(&mut self, precision: Precision) -> Result<()> {
        precision.check(&self.device)?;
        self.precision = precision;
        self.scaler = (precision == Precision::Fp16).then(GradScaler::default);
        Ok(())
    }

    /// The float precision of training.
    pub fn precision(&self) -> Precision {
        self.precision
    }

    /// The loss scaler of fp16 training (its scale and skipped steps), if any.
    pub fn scaler(&self) -> Option<&GradScaler> {
        self.scaler.as_ref()
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
        self.fit_from(stage.epochs, stage.schedule, start)
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
        let ipe = self.dls.n_train_batches();
        if ipe == 0 {
            return Err(Error::Config(format!(
                "the training set ({} items) is smaller than one batch ({})",
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
            n_iter: n_epochs * ipe,
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
        cbs.iter_mut().for_each(|cb| cb.before_fit(st));
        for epoch in start..st.n_epochs {
            st.epoch = epoch;
            cbs.iter_mut().for_each(|cb| cb.before_epoch(st));
            let t0 = Instant::now();
            self.device.seed(mix(self.seed, self.epochs_done as u64, 1));
            let (mut loss_sum, mut n) = (0.0, 0usize);
            for mut batch in self.dls.train_batches(self.epochs_done) {
                cbs.iter_mut()
                    .for_each(|cb| cb.before_batch(st, &mut batch));
                let loss = self.train_step(&batch, st.lr, st.mom);
                st.loss = loss;
                cbs.iter_mut().for_each(|cb| cb.after_loss(st, loss));
                let len = M::Data::batch_len(&batch);
                loss_sum += loss * len as f64;
                n += len;
                self.recorder.batches.push(BatchRecord {
                    epoch: self.epochs_done,
                    iter: self.recorder.batches.len(),
                    loss,
                    lr: st.lr,
                    mom: st.mom,
                });
                st.iter += 1;
                cbs.iter_mut().for_each(|cb| cb.after_batch(st));
                if st.stop {
                    break;
                }
            }
            let v = self.validate();
            let (real, synthetic) = self.dls.item_counts();
            let m = EpochMetrics {
                epoch: self.epochs_done,
                train_loss: if n > 0 { loss_sum / n as f64 } else { f64::NAN },
                valid_loss: v.loss,
                accuracy: v.accuracy,
                error_rate: 1.0 - v.accuracy,
                seconds: t0.elapsed().as_secs_f64(),
                stage: self.stage,
                size: self.dls.size(),
                rmse: v.rmse,
                real,
                synthetic,
            };
            self.recorder.epochs.push(m.clone());
            self.epochs_done += 1;
            cbs.iter_mut().for_each(|cb| cb.after_epoch(st, &m));
            if let Some(dir) = &self.checkpoint_dir {
                let state = CheckpointState {
                    epochs_done: self.epochs_done,
                    stage: self.stage,
                    stage_epochs_done: epoch + 1,
                    recorder: self.recorder.clone(),
                    model_file: String::new(),
                    optim_file: String::new(),
                };
                checkpoint::save(dir, &self.model, &self.optim, state)?;
            }
            if let Some(plan) = &self.snapshots
                && let Some(i) = plan.at.iter().position(|&e| e == epoch + 1)
            {
                crate::weights::save_weights(&plan.dir.join(format!("cycle_{i}")), &self.model)?;
            }
            if st.stop {
                break;
            }
        }
        Ok(())
    }

    /// One optimizer step on `batch` (mixed or not); returns the batch loss.
    pub(crate) fn train_step(&mut self, batch: &BatchOf<M>, lr: f64, mom: f64) -> f64 {
        let loss = self.model.train_loss(batch, &self.loss_func, &self.device);
        self.step_loss(loss, lr, mom)
    }

    /// Back-propagates `loss` (scaled, in fp16) and steps the optimizer; returns the loss value.
    /// An fp16 step whose gradients overflow is skipped, as PyTorch's `GradScaler` does.
    fn step_loss(&mut self, loss: Tensor<1>, lr: f64, mom: f64) -> f64 {
        let value = f64::from(loss.clone().into_scalar::<f32>());
        let scale = self.scaler.as_ref().map_or(1.0, |s| s.scale);
        let loss = if scale == 1.0 {
            loss
        } else {
            loss.mul_scalar(scale)
        };
        let grads = GradientsParams::from_grads(loss.backward(), &self.model);
        if let Some(scaler) = &mut self.scaler {
            let finite = super::precision::grads_finite(&self.model, &grads);
            scaler.update(finite);
            if !finite {
                return value;
            }
        }
        self.handles.grad_scale.set(1.0 / scale);
        self.handles.mom.set(mom);
        self.model = crate::ops::profile::timed(crate::ops::profile::Op::OptimizerStep, || {
            self.optim.step(lr, self.model.clone(), grads)
        });
        value
    }

    /// Loss and metrics on the validation set, in eval mode.
    pub fn validate(&self) -> Validation {
        let device = self.device.clone().without_autodiff();
        with_autocast(self.precision.half(), || {
            self.model.valid().validate(&self.dls, &device)
        })
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
        let loss = with_autocast(self.precision.half(), || {
            let logits = self.model.forward(images);
            self.loss_func.hard(logits, targets, &self.device)
        });
        self.step_loss(loss, lr, mom)
    }
}

/// Snapshots of the weights during a fit: after each epoch count in `at`, the weights go to
/// `dir/cycle_<i>/model.safetensors` (snapshot ensembles).
#[derive(Debug, Clone, PartialEq)]
pub struct SnapshotPlan {
    /// Epochs of the fit after which to keep the weights (the ends of the SGDR cycles).
    pub at: Vec<usize>,
    /// The folder of the snapshots.
    pub dir: PathBuf,
}

/// One fit of a training plan: its epochs, schedule, learning-rate spread and whether the body is frozen.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Stage {
    /// Epochs of this fit.
    pub epochs: usize,
    /// Its schedule (peak = `lrs.max()`).
    pub schedule: Schedule,
    /// Learning rates of the groups.
    pub lrs: Lrs,
    /// Whether only the head (and BatchNorm) trains.
    pub frozen: bool,
    /// Image side of this stage (progressive resizing); `None` keeps the current one.
    #[serde(default)]
    pub size: Option<u32>,
}

/// fastai's `fine_tune` recipe as two stages.
pub fn fine_tune_stages(
    epochs: usize,
    base_lr: f64,
    freeze_epochs: usize,
    lr_mult: f64,
) -> Vec<Stage> {
    let frozen = OneCycle {
        pct_start: 0.99,
        ..OneCycle::new(base_lr)
    };
    let half = base_lr / 2.0;
    let unfrozen = OneCycle {
        pct_start: 0.3,
        div: 5.0,
        ..OneCycle::new(half)
    };
    vec![
        Stage {
            epochs: freeze_epochs,
            schedule: Schedule::OneCycle(frozen),
            lrs: Lrs::UpTo(base_lr),
            frozen: true,
            size: None,
        },
        Stage {
            epochs,
            schedule: Schedule::OneCycle(unfrozen),
            lrs: Lrs::Range(half / lr_mult, half),
            frozen: false,
            size: None,
        },
    ]
}
