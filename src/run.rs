//! A training run: its folder, configuration, outputs, and resuming it after an interruption.

use std::path::{Path, PathBuf};
use std::time::Instant;

use burn::tensor::Device;
use serde::{Deserialize, Serialize};

use crate::data::{
    AugLevel, DataLoaders, ImageFolder, ItemTransform, Normalize, SplitConfig, demo::demo_path,
    skipped_report,
};
use crate::error::{Error, Result};
use crate::infer::{BundleConfig, save_bundle};
use crate::io::write_atomic;
use crate::learner::checkpoint;
use crate::learner::learner::{Stage, fine_tune_stages};
use crate::learner::lr_find::{LrFind, LrFindConfig};
use crate::learner::schedule::Sgdr;
use crate::learner::{
    Callback, CutMix, EpochMetrics, Learner, LossFunc, Lrs, MixUp, OneCycle, Precision, Schedule,
};
use crate::models::{Arch, ClassifierConfig};
use crate::report::grid::{Tile, batch_images, image_grid};
use crate::report::plot::{plot_losses, plot_lr_find, plot_schedule};
use crate::weights::{load_pretrained_body, resolve_pretrained};

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
    /// Batch size.
    pub bs: usize,
    /// `bs` is a default, not the user's choice: shrink it to fit a dataset smaller than one
    /// batch (see [`fit_batch_size`]) instead of refusing it.
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
    /// Smallest crop area of RandomResizedCrop; `None` = [`default_min_scale`] of the size.
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
    pub sampling: Option<crate::data::sample::Sampling>,
    /// With `--schedule sgdr`: keep the weights at the end of every cycle as an ensemble
    /// (`snapshots/`, Huang et al. 2017).
    #[serde(default)]
    pub snapshots: bool,
    /// Float precision of the convolutions: fp32, or mixed fp16/bf16 on a GPU.
    #[serde(default)]
    pub precision: Precision,
}

/// A progressive-resizing plan for `target` px over `epochs`: start at a quarter of the target
/// (at least 16 px), double each stage; earlier stages get the remainder epochs (they are cheaper).
pub fn progressive_plan(target: u32, epochs: usize) -> (Vec<u32>, Vec<usize>) {
    let mut sizes = Vec::new();
    let mut s = (target / 4).max(16);
    while s < target {
        sizes.push(s);
        s *= 2;
    }
    sizes.push(target);
    let keep = sizes.len().min(epochs.max(1));
    let sizes = sizes.split_off(sizes.len() - keep);
    let n = sizes.len();
    let epochs = (0..n)
        .map(|i| epochs / n + usize::from(i < epochs % n))
        .collect();
    (sizes, epochs)
}

/// RandomResizedCrop's smallest area by image size: fastai's 0.08 from 64 px up; 1.0 (crop-free,
/// as fastai's `aug_transforms`) below, where an 8 % crop keeps a few pixels — on the 28 px demo
/// 0.08 reached 70.2 % and 1.0 reached 82.9 % after 5 epochs.
pub fn default_min_scale(size: u32) -> f64 {
    if size < 64 { 1.0 } else { 0.08 }
}

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
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, clap::ValueEnum)]
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
            precision: Precision::Fp32,
        }
    }
}

impl TrainConfig {
    /// The fits this configuration runs, in order (one set per size when resizing progressively).
    pub fn plan(&self) -> Vec<Stage> {
        if self.sizes.is_empty() {
            return self.plan_for(self.epochs);
        }
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

    /// Checks the settings that clap cannot: progressive sizes and the augmentation parameters.
    pub fn validate(&self) -> Result<()> {
        if self.sizes.len() != self.size_epochs.len() {
            return Err(Error::Config(format!(
                "{} sizes but {} epoch counts: give one epoch count per size (--sizes 32,64 --epochs 2,1)",
                self.sizes.len(),
                self.size_epochs.len()
            )));
        }
        if let Some(&s) = self.sizes.iter().find(|&&s| s < 16) {
            return Err(Error::Config(format!(
                "image size {s} is too small (at least 16)"
            )));
        }
        for (name, v) in [("--mixup", self.mixup), ("--cutmix", self.cutmix)] {
            if v.is_some_and(|a| !(a > 0.0 && a.is_finite())) {
                return Err(Error::Config(format!("{name} needs a positive alpha")));
            }
        }
        if self.mixup.is_some() && self.cutmix.is_some() {
            return Err(Error::Config(
                "--mixup and --cutmix cannot be combined".into(),
            ));
        }
        if self
            .label_smoothing
            .is_some_and(|e| !(0.0..1.0).contains(&e))
        {
            return Err(Error::Config(
                "--label-smoothing needs an epsilon in [0, 1)".into(),
            ));
        }
        if self.snapshots && self.schedule != ScheduleKind::Sgdr {
            return Err(Error::Config(
                "--snapshots keeps the weights at the end of each SGDR cycle: it needs --schedule sgdr".into(),
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
        }]
    }
}

/// What a finished run reports.
#[derive(Debug, Clone)]
pub struct RunSummary {
    /// The run folder.
    pub dir: PathBuf,
    /// Metrics of the last epoch.
    pub last: Option<EpochMetrics>,
    /// Files skipped while reading the data.
    pub skipped: usize,
    /// Wall time of the whole run, seconds.
    pub seconds: f64,
}

/// A run folder name from the current time, `YYYYMMDD-HHMMSS`.
pub fn timestamp_name() -> String {
    let s = humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string();
    s.trim_end_matches('Z')
        .replace(['-', ':'], "")
        .replace('T', "-")
}

/// Everything a run needs, rebuilt identically from its [`TrainConfig`].
struct Prepared {
    data: ImageFolder,
    dls: DataLoaders,
    model: ClassifierConfig,
    size: u32,
}

/// The dataset a configuration names (its folder, or the demo), split as it says.
pub fn load_data(config: &TrainConfig) -> Result<ImageFolder> {
    let root = match &config.data {
        Some(p) => p.clone(),
        None => demo_path()?,
    };
    ImageFolder::from_folder(
        &root,
        SplitConfig {
            valid_pct: config.valid_pct,
            seed: config.split_seed.unwrap_or(config.seed),
        },
    )
}

/// The data a run trains on: [`load_data`] plus, with `--extra-data`, the synthetic images in
/// the training split (never in validation, never in `clean`'s or `interpret`'s data).
pub fn training_data(config: &TrainConfig) -> Result<ImageFolder> {
    let mut data = load_data(config)?;
    if let Some(s) = config.sampling {
        data.train = crate::data::sample::sample_train(&data.train, s, config.seed);
    }
    if let Some(dir) = &config.extra_data {
        crate::data::extra::add_synthetic(&mut data, dir, config.extra_fraction, config.seed)?;
    }
    Ok(data)
}

fn prepare(config: &TrainConfig) -> Result<Prepared> {
    config.validate()?;
    let p = prepare_with(config, training_data(config)?)?;
    if p.data.synthetic > 0 {
        println!(
            "training split: {} real + {} synthetic images (every epoch), validation: {} real",
            p.data.train.len() - p.data.synthetic,
            p.data.synthetic,
            p.data.valid.len()
        );
    }
    Ok(p)
}

/// The batch size to train `n` images with: `bs` when it fits; else, when `auto` (the user gave
/// no batch size), the largest power of two up to half of `n`, at least 2 (so from 4 images up an
/// epoch has two steps or more, and BatchNorm never sees a batch of one: the last partial batch
/// is dropped); `None` when nothing fits (fewer than 2 images, or `bs` was the user's choice).
pub fn fit_batch_size(n: usize, bs: usize, auto: bool) -> Option<usize> {
    if n >= bs {
        return Some(bs);
    }
    if !auto || n < 2 {
        return None;
    }
    let half = (n / 2).max(2);
    Some(1 << half.ilog2())
}

fn prepare_with(config: &TrainConfig, data: ImageFolder) -> Result<Prepared> {
    config.validate()?;
    let root = data.root.clone();
    let size = config.final_size().unwrap_or_else(|| data.min_side.min(64));
    if size < 16 {
        return Err(Error::Config(format!(
            "image size {size} is too small (at least 16)"
        )));
    }
    let smallest = config.sizes.first().copied().unwrap_or(size);
    if smallest < config.arch.min_size() {
        return Err(Error::Config(format!(
            "{} needs images of at least {} px, this run would use {smallest} px (the data's images are {} px): pass --size {} or more to upscale",
            config.arch,
            config.arch.min_size(),
            data.min_side,
            config.arch.min_size()
        )));
    }
    let bs = match fit_batch_size(data.train.len(), config.bs, config.auto_bs) {
        Some(bs) => bs,
        None => {
            return Err(Error::Dataset {
                path: root,
                message: format!(
                    "{} training images: fewer than one batch (--bs {}){}",
                    data.train.len(),
                    config.bs,
                    if config.auto_bs {
                        "; at least 2 are needed"
                    } else {
                        "; a smaller --bs, or none, fits"
                    }
                ),
            });
        }
    };
    if bs != config.bs {
        println!(
            "batch size {bs}: {} training images are fewer than {} (give --bs to choose)",
            data.train.len(),
            config.bs
        );
    }
    let first = config.sizes.first().copied().unwrap_or(size);
    let train_tfm = ItemTransform::train_min_scale(
        first,
        config.min_scale.unwrap_or_else(|| default_min_scale(size)),
    );
    let dls = DataLoaders::with_transforms(
        &data,
        train_tfm,
        ItemTransform::valid(first),
        bs,
        config.seed,
    )
    .with_aug(config.aug.unwrap_or_else(|| default_aug(size)).transforms())
    .with_normalize(match config.arch {
        Arch::EfficientnetLite0 => Normalize::EFFICIENTNET_LITE,
        Arch::InceptionV3 => Normalize::INCEPTION,
        _ => Normalize::IMAGENET,
    });
    let model = ClassifierConfig::new(config.arch, data.vocab.len()).with_width(config.width);
    Ok(Prepared {
        data,
        dls,
        model,
        size,
    })
}

/// Trains a new run under `runs_dir/name` and writes its outputs; `callbacks` (e.g. progress)
/// are added to the learner.
pub fn train(
    config: &TrainConfig,
    run_dir: &Path,
    device: &Device,
    callbacks: Vec<Box<dyn Callback>>,
) -> Result<RunSummary> {
    if run_dir.exists() {
        return Err(Error::Config(format!(
            "run folder {} already exists: choose another --name, or --resume it",
            run_dir.display()
        )));
    }
    let t0 = Instant::now();
    let p = prepare(config)?;
    let mut learner = build_learner(&p, config, device, true)?;
    std::fs::create_dir_all(run_dir).map_err(|e| Error::io(run_dir, e))?;
    let json = serde_json::to_vec_pretty(config).map_err(|e| Error::Config(e.to_string()))?;
    write_atomic(&run_dir.join("train.json"), &json)?;
    write_skipped(run_dir, &p.data)?;
    let mut config = config.clone();
    if config.lr_auto {
        let found = lr_find_into(&mut learner, run_dir)?;
        config.lr = Lrs::Single(found.suggestions.valley);
        config.lr_auto = false;
        println!(
            "--lr auto: the LR finder suggests {:.2e} (valley); training with it",
            found.suggestions.valley
        );
        let json = serde_json::to_vec_pretty(&config).map_err(|e| Error::Config(e.to_string()))?;
        write_atomic(&run_dir.join("train.json"), &json)?;
    }
    learner.checkpoint_dir = Some(run_dir.join("checkpoint"));
    learner.snapshots = snapshot_plan(&config, run_dir);
    learner.callbacks = config.callbacks();
    learner.callbacks.extend(callbacks);
    execute(&mut learner, &config.plan(), 0, 0)?;
    finish(run_dir, &learner, &p, t0)
}

/// The learner of a run, its body loaded from the pretrained weights when asked (not on resume,
/// where the checkpoint replaces them).
fn build_learner(
    p: &Prepared,
    config: &TrainConfig,
    device: &Device,
    load_pretrained: bool,
) -> Result<Learner> {
    let mut learner = Learner::from_config(&p.model, p.dls.clone(), device, config.seed)?;
    learner.set_precision(config.precision)?;
    learner.loss_func = LossFunc::label_smoothing(config.label_smoothing.unwrap_or(0.0));
    if let (Some(spec), true) = (&config.pretrained, load_pretrained) {
        let path = resolve_pretrained(spec)?;
        let report = load_pretrained_body(&mut learner.model, &path)?;
        println!(
            "pretrained: {} ({} tensors; dropped {} from the old head and BN counters)",
            path.display(),
            report.loaded,
            report.dropped.len()
        );
    }
    Ok(learner)
}

/// Runs the stages of `plan` from stage `from_stage`, epoch `from_epoch`.
fn execute(
    learner: &mut Learner,
    plan: &[Stage],
    from_stage: usize,
    from_epoch: usize,
) -> Result<()> {
    for (i, stage) in plan.iter().enumerate().skip(from_stage) {
        learner.stage = i;
        let start = if i == from_stage { from_epoch } else { 0 };
        if start < stage.epochs {
            learner.run_stage(stage, start)?;
        }
    }
    Ok(())
}

/// Runs the LR finder on `learner` and writes `lr_find.json` and `lr_find.png` into `dir`.
pub fn lr_find_into(learner: &mut Learner, dir: &Path) -> Result<LrFind> {
    let found = learner.lr_find(LrFindConfig::default())?;
    let json = serde_json::to_vec_pretty(&found).map_err(|e| Error::Config(e.to_string()))?;
    write_atomic(&dir.join("lr_find.json"), &json)?;
    plot_lr_find(&found, &dir.join("lr_find.png"))?;
    Ok(found)
}

/// `fastvision lr-find`: the range test alone on a new run folder.
pub fn lr_find(config: &TrainConfig, run_dir: &Path, device: &Device) -> Result<LrFind> {
    if run_dir.exists() {
        return Err(Error::Config(format!(
            "run folder {} already exists: choose another --name",
            run_dir.display()
        )));
    }
    let p = prepare(config)?;
    let mut learner = build_learner(&p, config, device, true)?;
    std::fs::create_dir_all(run_dir).map_err(|e| Error::io(run_dir, e))?;
    lr_find_into(&mut learner, run_dir)
}

/// Trains `config`'s plan on `data` in memory (no run folder, no checkpoints) and returns the
/// trained model as a predictor — for out-of-fold predictions.
pub fn train_in_memory(
    config: &TrainConfig,
    data: ImageFolder,
    device: &Device,
    callbacks: Vec<Box<dyn Callback>>,
) -> Result<crate::infer::Predictor> {
    let p = prepare_with(config, data)?;
    let mut learner = build_learner(&p, config, device, true)?;
    learner.callbacks = config.callbacks();
    learner.callbacks.extend(callbacks);
    execute(&mut learner, &config.plan(), 0, 0)?;
    Ok(crate::infer::Predictor::new(
        learner.model.clone(),
        bundle_config(&learner, &p),
        device,
    ))
}

/// Reads the training configuration saved in a run folder.
pub fn load_config(run_dir: &Path) -> Result<TrainConfig> {
    let path = run_dir.join("train.json");
    let bytes = std::fs::read(&path).map_err(|e| Error::io(&path, e))?;
    serde_json::from_slice(&bytes).map_err(|e| Error::model(&path, e.to_string()))
}

/// `fastvision show-batch`: writes `n` augmented training images (one loader batch, epoch 0) as
/// `show_batch.png` in `dir`, each captioned with its class; returns the file.
pub fn show_batch(config: &TrainConfig, dir: &Path, n: usize) -> Result<PathBuf> {
    let config = TrainConfig {
        bs: n.max(1),
        ..config.clone()
    };
    let p = prepare(&config)?;
    let batch = p
        .dls
        .train
        .iter(0)
        .next()
        .ok_or_else(|| Error::Config("the training set yielded no batch".into()))?;
    let tiles: Vec<Tile> = batch_images(&batch, &p.dls.normalize)
        .into_iter()
        .zip(&batch.labels)
        .map(|(image, &l)| Tile {
            image,
            caption: vec![p.dls.vocab[l as usize].clone()],
        })
        .collect();
    std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    let path = dir.join("show_batch.png");
    image_grid(&tiles, 4, 96.max(p.size), &path)?;
    Ok(path)
}

/// Resumes the run in `run_dir` from its last checkpoint and finishes it.
pub fn resume(
    run_dir: &Path,
    device: &Device,
    callbacks: Vec<Box<dyn Callback>>,
) -> Result<RunSummary> {
    let t0 = Instant::now();
    let config = load_config(run_dir)?;
    let p = prepare(&config)?;
    let mut learner = build_learner(&p, &config, device, false)?;
    let ckpt = run_dir.join("checkpoint");
    let state = learner.load_checkpoint(&ckpt)?;
    learner.checkpoint_dir = Some(ckpt);
    learner.snapshots = snapshot_plan(&config, run_dir);
    learner.callbacks = config.callbacks();
    learner.callbacks.extend(callbacks);
    execute(
        &mut learner,
        &config.plan(),
        state.stage,
        state.stage_epochs_done,
    )?;
    finish(run_dir, &learner, &p, t0)
}

/// Whether `run_dir` holds a committed checkpoint.
pub fn has_checkpoint(run_dir: &Path) -> bool {
    checkpoint::load_state(&run_dir.join("checkpoint")).is_ok()
}

fn write_skipped(run_dir: &Path, data: &ImageFolder) -> Result<()> {
    let path = run_dir.join("skipped.txt");
    std::fs::write(&path, skipped_report(&data.skipped)).map_err(|e| Error::io(&path, e))
}

fn bundle_config(learner: &Learner, p: &Prepared) -> BundleConfig {
    BundleConfig {
        model: p.model.clone(),
        size: p.size,
        normalize: p.dls.normalize,
        vocab: p.dls.vocab.clone(),
        train_transform: Some(learner.dls.train.transform().with_size(p.size)),
        aug: learner.dls.train.aug(),
    }
}

/// Where `--snapshots` keeps the weights of each SGDR cycle: `RUN/snapshots/cycle_<i>/`.
fn snapshot_plan(
    config: &TrainConfig,
    run_dir: &Path,
) -> Option<crate::learner::learner::SnapshotPlan> {
    config
        .snapshots
        .then(|| crate::learner::learner::SnapshotPlan {
            at: config.snapshot_epochs(),
            dir: run_dir.join("snapshots"),
        })
}

/// Makes `RUN/snapshots/` an ensemble of the cycles' weights: a bundle per cycle + ensemble.json.
fn finish_snapshots(run_dir: &Path, config: &TrainConfig, bundle: &BundleConfig) -> Result<()> {
    let dir = run_dir.join("snapshots");
    let mut members = Vec::new();
    for cycle in 0..config.snapshot_epochs().len() {
        let cdir = dir.join(format!("cycle_{cycle}"));
        if !cdir.join(crate::weights::WEIGHTS_FILE).is_file() {
            continue;
        }
        crate::infer::bundle::write_bundle_config(&cdir, bundle)?;
        members.push(crate::ensemble::Member {
            dir: format!("cycle_{cycle}").into(),
            arch: config.arch,
            seed: config.seed,
            size: bundle.size,
            sampling: crate::ensemble::Sampling::Snapshot { cycle },
        });
    }
    crate::ensemble::EnsembleFile {
        members,
        combination: crate::ensemble::Combination::Mean,
        fit_items: Vec::new(),
    }
    .write(&dir)
}

fn finish(run_dir: &Path, learner: &Learner, p: &Prepared, t0: Instant) -> Result<RunSummary> {
    let bundle = bundle_config(learner, p);
    save_bundle(run_dir, &learner.model, &bundle)?;
    if let Ok(config) = load_config(run_dir)
        && config.snapshots
    {
        finish_snapshots(run_dir, &config, &bundle)?;
    }
    let log =
        serde_json::to_vec_pretty(&learner.recorder).map_err(|e| Error::Config(e.to_string()))?;
    write_atomic(&run_dir.join("log.json"), &log)?;
    plot_losses(&learner.recorder, &run_dir.join("loss.png"))?;
    plot_schedule(&learner.recorder, &run_dir.join("lr.png"))?;
    crate::report::html::write_report(run_dir)?;
    let mut skipped = p.data.skipped.clone();
    skipped.extend(p.dls.train.failed());
    skipped.extend(p.dls.valid.failed());
    let path = run_dir.join("skipped.txt");
    std::fs::write(&path, skipped_report(&skipped)).map_err(|e| Error::io(&path, e))?;
    Ok(RunSummary {
        dir: run_dir.into(),
        last: learner.recorder.last().cloned(),
        skipped: skipped.len(),
        seconds: t0.elapsed().as_secs_f64(),
    })
}

#[cfg(test)]
mod tests {
    use super::fit_batch_size;

    #[test]
    fn batch_size_fits_small_datasets_only_when_not_chosen() {
        assert_eq!(fit_batch_size(3000, 64, true), Some(64));
        assert_eq!(fit_batch_size(40, 64, true), Some(16));
        assert_eq!(fit_batch_size(63, 64, true), Some(16));
        assert_eq!(fit_batch_size(5, 64, true), Some(2));
        assert_eq!(fit_batch_size(2, 64, true), Some(2));
        assert_eq!(fit_batch_size(1, 64, true), None);
        assert_eq!(fit_batch_size(40, 64, false), None);
    }
}
