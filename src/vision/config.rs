//! The image application's settings: `TrainConfig` (what `train.json` records, so a run can be
//! resumed or reproduced from its folder), the plan of fits it describes, and its validation.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::data::AugLevel;
use crate::data::sample::Sampling;
use crate::error::{Error, Result};
use crate::learner::schedule::Sgdr;
use crate::learner::{Callback, CutMix, Lrs, MixUp, OneCycle, Precision, Schedule};
use crate::learner::{Stage, fine_tune_stages};
use crate::models::Arch;
use crate::models::classifier::MAX_WIDTH;

/// The training settings of a run (the CLI's flags), saved as `train.json` so it can resume.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrainConfig {
    /// Dataset folder; `None` = the bundled demo.
    pub data: Option<PathBuf>,
    /// Body architecture.
    pub arch: Arch,
    /// Body width (64 = torchvision).
    pub width: usize,
    /// Image side; `None` = 64, or the data's smallest side if smaller.
    pub size: Option<u32>,
    /// Epochs.
    pub epochs: usize,
    /// Share in (0, 1] of the last epoch's batches trained (`None`: all): a time budget's plan
    /// ends the fit part-way through its last epoch, the schedule spanning the batches trained.
    #[serde(default)]
    pub last_epoch_pct: Option<f64>,
    /// Batch size.
    pub bs: usize,
    /// `bs` is a default, not the user's choice: shrink it to fit a dataset smaller than one
    /// batch (see [`fit_batch_size`](super::fit_batch_size)) instead of refusing it.
    #[serde(default)]
    pub auto_bs: bool,
    /// Learning rate(s): the schedule's peak, or a range over the parameter groups.
    pub lr: Lrs,
    /// Run the LR finder first and train at its valley suggestion (`--lr auto`).
    #[serde(default)]
    pub lr_auto: bool,
    /// Learning-rate schedule.
    #[serde(default)]
    pub schedule: ScheduleKind,
    /// SGDR: number of cycles.
    #[serde(default = "one")]
    pub cycles: usize,
    /// SGDR: epochs of the first cycle.
    #[serde(default = "one")]
    pub cycle_len: usize,
    /// SGDR: growth of each cycle.
    #[serde(default = "two")]
    pub cycle_mult: usize,
    /// Use fastai's `fine_tune` (frozen epoch, then unfrozen with discriminative LRs).
    #[serde(default)]
    pub fine_tune: bool,
    /// Epochs with the body frozen, for `fine_tune` (fastai: 1).
    #[serde(default = "one")]
    pub freeze_epochs: usize,
    /// Pretrained body weights: a file, or a known name resolved in the cache folder.
    #[serde(default)]
    pub pretrained: Option<String>,
    /// Seed of everything random.
    pub seed: u64,
    /// Validation fraction when the data has no `valid/` folder.
    pub valid_pct: f64,
    /// Smallest crop area of RandomResizedCrop; `None` = [`DEFAULT_MIN_SCALE`].
    #[serde(default)]
    pub min_scale: Option<f64>,
    /// Training augmentation preset; `None` = [`default_aug`] of the size.
    #[serde(default)]
    pub aug: Option<AugLevel>,
    /// MixUp with this α, if any.
    #[serde(default)]
    pub mixup: Option<f64>,
    /// CutMix with this α, if any.
    #[serde(default)]
    pub cutmix: Option<f64>,
    /// Label-smoothing ε of the training loss, if any.
    #[serde(default)]
    pub label_smoothing: Option<f64>,
    /// Progressive resizing: the image side of each stage (empty = one size, `size`).
    #[serde(default)]
    pub sizes: Vec<u32>,
    /// Progressive resizing: the epochs of each stage, matching `sizes`.
    #[serde(default)]
    pub size_epochs: Vec<usize>,
    /// A folder of class folders of synthetic images added to the training split only.
    #[serde(default)]
    pub extra_data: Option<PathBuf>,
    /// Use F × (real training images) of the synthetic ones (seeded); `None` = all of them.
    #[serde(default)]
    pub extra_fraction: Option<f64>,
    /// Seed of the train/valid split when it differs from `seed` (ensemble members vary their
    /// seed but must share one validation split).
    #[serde(default)]
    pub split_seed: Option<u64>,
    /// Train on a bootstrap sample or on K−1 of K folds of the training split (ensembles).
    #[serde(default)]
    pub sampling: Option<Sampling>,
    /// With `--schedule sgdr`: keep the weights at the end of every cycle as an ensemble
    /// (`snapshots/`, Huang et al. 2017).
    #[serde(default)]
    pub snapshots: bool,
    /// Float precision of the convolutions (and, on the CPU in bf16, the linear layers): `Auto` (bf16 on a CPU with AMX, else fp32), fp32,
    /// bf16 (on a GPU, or a CPU with native bf16), fp16 (on a GPU). A run records the one it
    /// resolved to; settings written before this existed trained in fp32.
    #[serde(default = "fp32")]
    pub precision: Precision,
}

/// The largest MixUp/CutMix alpha: Beta(α, α) is already a point mass at ½ long before it.
pub const MAX_ALPHA: f64 = 1000.0;

/// The most epochs a run trains (more would run for months on any machine).
pub const MAX_EPOCHS: usize = 100_000;

/// The smallest image side a run trains at.
pub const MIN_SIZE: u32 = 16;
/// The largest image side a run trains at (a 2048 px batch of one already needs gigabytes).
pub const MAX_SIZE: u32 = 2048;

/// RandomResizedCrop's default smallest area: 1.0 (no random crop, as fastai's `aug_transforms`),
/// at every size, from scratch or pretrained. On the demo, min scale 0.08 / 0.35 / 1.0 reached
/// 70.2 / 73.4 / 82.9 % (ResNet-18, 28 px, 5 epochs), 70.1 / 73.4 / 80.9 % (ResNet-18, 64 px) and
/// 64.8 / 63.7 / 73.2 % (pretrained EfficientNet-Lite0 fine-tuned, 64 px).
pub const DEFAULT_MIN_SCALE: f64 = 1.0;

/// The augmentation preset by image size: fastai's `aug_transforms` from 64 px up; below, flip
/// only — on the 28 px demo (5 epochs) the full set reached 77.3 % against 83.7 % without any.
pub fn default_aug(size: u32) -> AugLevel {
    if size < 64 {
        AugLevel::Light
    } else {
        AugLevel::Default
    }
}

fn one() -> usize {
    1
}

fn two() -> usize {
    2
}

/// The schedules `train --schedule` offers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ScheduleKind {
    /// fastai's fit_one_cycle.
    #[default]
    OneCycle,
    /// Cosine cycles with warm restarts (fit_sgdr).
    Sgdr,
    /// Flat, then cosine (fit_flat_cos).
    FlatCos,
    /// Cosine annealing to 0.
    Cosine,
    /// Constant learning rate.
    Constant,
}

impl Default for TrainConfig {
    fn default() -> Self {
        Self {
            data: None,
            arch: Arch::Resnet18,
            width: 64,
            size: None,
            epochs: 5,
            last_epoch_pct: None,
            bs: 64,
            auto_bs: false,
            lr: Lrs::Single(1e-3),
            lr_auto: false,
            schedule: ScheduleKind::OneCycle,
            cycles: 1,
            cycle_len: 1,
            cycle_mult: 2,
            fine_tune: false,
            freeze_epochs: 1,
            pretrained: None,
            seed: 42,
            valid_pct: 0.2,
            min_scale: None,
            aug: None,
            mixup: None,
            cutmix: None,
            label_smoothing: None,
            sizes: Vec::new(),
            size_epochs: Vec::new(),
            extra_data: None,
            extra_fraction: None,
            split_seed: None,
            sampling: None,
            snapshots: false,
            precision: Precision::Auto,
        }
    }
}

/// The precision of settings that do not name one: runs from before `Auto` trained in fp32.
fn fp32() -> Precision {
    Precision::Fp32
}

impl TrainConfig {
    /// The fits this configuration runs, in order (one set per size when resizing progressively).
    pub fn plan(&self) -> Vec<Stage> {
        let mut stages = if self.sizes.is_empty() {
            self.plan_for(self.epochs)
        } else {
            self.sizes
                .iter()
                .zip(&self.size_epochs)
                .flat_map(|(&size, &epochs)| {
                    self.plan_for(epochs).into_iter().map(move |s| Stage {
                        size: Some(size),
                        ..s
                    })
                })
                .collect()
        };
        if let Some(last) = stages.iter_mut().rev().find(|s| s.epochs > 0) {
            last.last_epoch_pct = self.last_epoch_pct;
        }
        stages
    }

    /// The image side the model ends at (the last progressive size, or `size`).
    pub fn final_size(&self) -> Option<u32> {
        self.sizes.last().copied().or(self.size)
    }

    /// The callbacks this configuration adds to training (MixUp, CutMix).
    pub fn callbacks(&self) -> Vec<Box<dyn Callback>> {
        let mut cbs: Vec<Box<dyn Callback>> = Vec::new();
        if let Some(alpha) = self.mixup {
            cbs.push(Box::new(MixUp {
                alpha,
                seed: self.seed,
            }));
        }
        if let Some(alpha) = self.cutmix {
            cbs.push(Box::new(CutMix {
                alpha,
                seed: self.seed,
            }));
        }
        cbs
    }

    /// The same settings with the data folders as absolute paths, so the run folder's
    /// `train.json` means the same folder from any working directory (`--resume`, ensembles).
    pub fn with_absolute_paths(&self) -> Self {
        let abs = |p: &Option<PathBuf>| {
            p.as_ref()
                .map(|p| std::fs::canonicalize(p).unwrap_or_else(|_| p.clone()))
        };
        Self {
            data: abs(&self.data),
            extra_data: abs(&self.extra_data),
            ..self.clone()
        }
    }

    /// Checks every setting (the library refuses what the CLI's parsers refuse, and what a
    /// hand-edited `train.json` may hold): each message names the setting and its allowed range.
    pub fn validate(&self) -> Result<()> {
        let bad = |m: String| Err(Error::Config(m));
        if self.epochs == 0 && self.schedule != ScheduleKind::Sgdr {
            return bad("`epochs` 0: train at least one epoch".into());
        }
        crate::learner::stage::check_last_epoch_pct(self.last_epoch_pct)?;
        if self.last_epoch_pct.is_some() && self.schedule == ScheduleKind::Sgdr {
            return bad(
                "`last_epoch_pct` with `schedule` sgdr: SGDR's cycles end on whole epochs".into(),
            );
        }
        if self.bs < 2 && !self.auto_bs {
            return bad(format!(
                "`bs` {}: at least 2 (BatchNorm needs two images per batch)",
                self.bs
            ));
        }
        if !(self.valid_pct > 0.0 && self.valid_pct < 1.0) {
            return bad(format!(
                "`valid_pct` {}: a fraction strictly between 0 and 1",
                self.valid_pct
            ));
        }
        for s in self.size.iter().chain(&self.sizes) {
            if !(MIN_SIZE..=MAX_SIZE).contains(s) {
                return bad(format!(
                    "`size` {s}: between {MIN_SIZE} and {MAX_SIZE} pixels"
                ));
            }
        }
        if self.min_scale.is_some_and(|m| !(m > 0.0 && m <= 1.0)) {
            return bad(format!(
                "`min_scale` {}: a fraction in (0, 1]",
                self.min_scale.unwrap_or_default()
            ));
        }
        if self
            .extra_fraction
            .is_some_and(|f| !(f > 0.0 && f.is_finite()))
        {
            return bad("`extra_fraction`: a positive number".into());
        }
        if self.width == 0 || self.width > MAX_WIDTH {
            return bad(format!("`width` {}: between 1 and {MAX_WIDTH}", self.width));
        }
        if self.schedule == ScheduleKind::Sgdr
            && (self.cycles == 0 || self.cycle_len == 0 || self.cycle_mult == 0)
        {
            return bad("`cycles`, `cycle_len` and `cycle_mult`: each at least 1".into());
        }
        let sgdr = Sgdr {
            lr_max: 1.0,
            n_cycles: self.cycles,
            cycle_len: self.cycle_len,
            cycle_mult: self.cycle_mult,
        };
        if self.schedule == ScheduleKind::Sgdr
            && sgdr.checked_epochs().is_none_or(|e| e > MAX_EPOCHS)
        {
            return bad(format!(
                "`cycles` {}, `cycle_len` {} and `cycle_mult` {} make {} epochs: at most {MAX_EPOCHS}",
                self.cycles,
                self.cycle_len,
                self.cycle_mult,
                sgdr.checked_epochs()
                    .map_or_else(|| "more than 2^64".to_string(), |e| e.to_string())
            ));
        }
        let total = self
            .size_epochs
            .iter()
            .try_fold(self.epochs, |t, &e| t.checked_add(e));
        if total.is_none_or(|e| e > MAX_EPOCHS) {
            return bad(format!(
                "`epochs` {} (with `size_epochs` {:?}): at most {MAX_EPOCHS} in all",
                self.epochs, self.size_epochs
            ));
        }
        self.lr.check("lr")?;
        if self.sizes.len() != self.size_epochs.len() {
            return Err(Error::Config(format!(
                "{} sizes but {} epoch counts: `sizes` and `size_epochs` need one epoch count per size",
                self.sizes.len(),
                self.size_epochs.len()
            )));
        }
        for (name, v) in [("`mixup`", self.mixup), ("`cutmix`", self.cutmix)] {
            if let Some(a) = v.filter(|a| !(*a > 0.0 && *a <= MAX_ALPHA)) {
                return Err(Error::Config(format!(
                    "{name} {a}: an alpha in (0, {MAX_ALPHA}] (fastai's is 0.4)"
                )));
            }
        }
        if self.mixup.is_some() && self.cutmix.is_some() {
            return Err(Error::Config(
                "`mixup` and `cutmix` cannot be combined".into(),
            ));
        }
        if self
            .label_smoothing
            .is_some_and(|e| !(0.0..1.0).contains(&e))
        {
            return Err(Error::Config(
                "`label_smoothing` needs an epsilon in [0, 1)".into(),
            ));
        }
        if self.snapshots && self.schedule != ScheduleKind::Sgdr {
            return Err(Error::Config(
                "`snapshots` keeps the weights at the end of each SGDR cycle: it needs `schedule` sgdr".into(),
            ));
        }
        Ok(())
    }

    /// The epochs (counted in the SGDR fit) at which each cycle ends, for `--snapshots`.
    pub fn snapshot_epochs(&self) -> Vec<usize> {
        if !self.snapshots {
            return Vec::new();
        }
        (0..self.cycles)
            .scan(0, |end, i| {
                *end += self.cycle_len * self.cycle_mult.pow(i as u32);
                Some(*end)
            })
            .collect()
    }

    /// The fits of one size, `epochs` long.
    fn plan_for(&self, epochs: usize) -> Vec<Stage> {
        if self.fine_tune {
            return fine_tune_stages(epochs, self.lr.max(), self.freeze_epochs, 100.0);
        }
        let lr = self.lr.max();
        let (epochs, schedule) = match self.schedule {
            ScheduleKind::OneCycle => (epochs, Schedule::OneCycle(OneCycle::new(lr))),
            ScheduleKind::Sgdr => {
                let sgdr = Sgdr {
                    lr_max: lr,
                    n_cycles: self.cycles,
                    cycle_len: self.cycle_len,
                    cycle_mult: self.cycle_mult,
                };
                (sgdr.n_epochs(), Schedule::Sgdr { sgdr, mom: 0.9 })
            }
            ScheduleKind::FlatCos => (
                epochs,
                Schedule::FlatCos {
                    lr,
                    pct_start: 0.75,
                    div_final: 1e5,
                    mom: 0.9,
                },
            ),
            ScheduleKind::Cosine => (epochs, Schedule::Cosine { lr, mom: 0.9 }),
            ScheduleKind::Constant => (epochs, Schedule::Constant { lr, mom: 0.9 }),
        };
        vec![Stage {
            epochs,
            schedule,
            lrs: self.lr,
            frozen: false,
            size: None,
            last_epoch_pct: None,
        }]
    }
}
