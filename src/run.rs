//! A training run: its folder, configuration, outputs, and resuming it after an interruption.

use std::path::{Path, PathBuf};
use std::time::Instant;

use burn::tensor::Device;
use serde::{Deserialize, Serialize};

use crate::data::{
    DataLoaders, ImageFolder, ItemTransform, SplitConfig, demo::demo_path, skipped_report,
};
use crate::error::{Error, Result};
use crate::infer::{BundleConfig, save_bundle};
use crate::learner::checkpoint::{self, write_atomic};
use crate::learner::{Callback, EpochMetrics, Learner, OneCycle, Schedule};
use crate::models::{Arch, ClassifierConfig};
use crate::report::plot::plot_losses;

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
    /// Peak learning rate of the one-cycle schedule.
    pub lr: f64,
    /// Seed of everything random.
    pub seed: u64,
    /// Validation fraction when the data has no `valid/` folder.
    pub valid_pct: f64,
    /// Smallest crop area of RandomResizedCrop (fastai: 0.08).
    pub min_scale: f64,
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
            lr: 1e-3,
            seed: 42,
            valid_pct: 0.2,
            min_scale: 0.08,
        }
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

fn prepare(config: &TrainConfig) -> Result<Prepared> {
    let root = match &config.data {
        Some(p) => p.clone(),
        None => demo_path()?,
    };
    let data = ImageFolder::from_folder(
        &root,
        SplitConfig {
            valid_pct: config.valid_pct,
            seed: config.seed,
        },
    )?;
    let size = config.size.unwrap_or_else(|| data.min_side.min(64));
    if size < 16 {
        return Err(Error::Config(format!(
            "image size {size} is too small (at least 16)"
        )));
    }
    let train_tfm = match ItemTransform::train(size) {
        ItemTransform::RandomResizedCrop { ratio, flip, .. } => ItemTransform::RandomResizedCrop {
            size,
            min_scale: config.min_scale,
            ratio,
            flip,
        },
        other => other,
    };
    let dls = DataLoaders::with_transforms(
        &data,
        train_tfm,
        ItemTransform::valid(size),
        config.bs,
        config.seed,
    );
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
    std::fs::create_dir_all(run_dir).map_err(|e| Error::io(run_dir, e))?;
    let json = serde_json::to_vec_pretty(config).map_err(|e| Error::Config(e.to_string()))?;
    write_atomic(&run_dir.join("train.json"), &json)?;
    write_skipped(run_dir, &p.data)?;
    let mut learner = Learner::from_config(&p.model, p.dls.clone(), device, config.seed)?;
    learner.checkpoint_dir = Some(run_dir.join("checkpoint"));
    learner.callbacks = callbacks;
    learner.fit(config.epochs, schedule(config))?;
    finish(run_dir, &learner, &p, t0)
}

/// Resumes the run in `run_dir` from its last checkpoint and finishes it.
pub fn resume(
    run_dir: &Path,
    device: &Device,
    callbacks: Vec<Box<dyn Callback>>,
) -> Result<RunSummary> {
    let t0 = Instant::now();
    let path = run_dir.join("train.json");
    let bytes = std::fs::read(&path).map_err(|e| Error::io(&path, e))?;
    let config: TrainConfig =
        serde_json::from_slice(&bytes).map_err(|e| Error::model(&path, e.to_string()))?;
    let p = prepare(&config)?;
    let mut learner = Learner::from_config(&p.model, p.dls.clone(), device, config.seed)?;
    let ckpt = run_dir.join("checkpoint");
    let state = learner.load_checkpoint(&ckpt)?;
    learner.checkpoint_dir = Some(ckpt);
    learner.callbacks = callbacks;
    if state.stage_epochs_done < config.epochs {
        learner.fit_from(config.epochs, schedule(&config), state.stage_epochs_done)?;
    }
    finish(run_dir, &learner, &p, t0)
}

/// Whether `run_dir` holds a committed checkpoint.
pub fn has_checkpoint(run_dir: &Path) -> bool {
    checkpoint::load_state(&run_dir.join("checkpoint")).is_ok()
}

fn schedule(config: &TrainConfig) -> Schedule {
    Schedule::OneCycle(OneCycle::new(config.lr))
}

fn write_skipped(run_dir: &Path, data: &ImageFolder) -> Result<()> {
    let path = run_dir.join("skipped.txt");
    std::fs::write(&path, skipped_report(&data.skipped)).map_err(|e| Error::io(&path, e))
}

fn finish(run_dir: &Path, learner: &Learner, p: &Prepared, t0: Instant) -> Result<RunSummary> {
    let bundle = BundleConfig {
        model: p.model.clone(),
        size: p.size,
        normalize: p.dls.normalize,
        vocab: p.dls.vocab.clone(),
    };
    save_bundle(run_dir, &learner.model, &bundle)?;
    let log =
        serde_json::to_vec_pretty(&learner.recorder).map_err(|e| Error::Config(e.to_string()))?;
    write_atomic(&run_dir.join("log.json"), &log)?;
    plot_losses(&learner.recorder, &run_dir.join("loss.png"))?;
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
