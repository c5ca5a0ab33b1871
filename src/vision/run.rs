//! The image application's runs: its [`Recipe`] for the run driver (train, resume), show-batch,
//! and training in memory for out-of-fold judgements. What a run has to tell the user before or
//! while it trains (the plan, a batch size it chose, the LR it found) reaches the listener as
//! notes.

use std::path::{Path, PathBuf};

use burn::tensor::Device;

use super::config::{DEFAULT_MIN_SCALE, TrainConfig, default_aug, training_memory_estimate};
use super::snapshots;
use crate::data::{
    DataLoaders, ImageFolder, ItemTransform, Normalize, SplitConfig, demo::demo_path,
};
use crate::error::{Error, Result};
use crate::infer::{BundleConfig, Predictor, save_bundle};
use crate::learner::{Callback, EpochMetrics, Learner, Listen, Listener, LossFunc, Lrs, Stage};
use crate::models::{ClassifierConfig, ImageClassifier};
use crate::report::grid::{Tile, batch_images, image_grid};
use crate::report::html::{self, Section};
use crate::run::Recipe;
use crate::run::driver::execute;
use crate::run_dir::RunDir;
use crate::weights::{load_pretrained_body, resolve_pretrained};

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

/// Everything a run needs, rebuilt identically from its [`TrainConfig`].
pub struct Prepared {
    /// The dataset, split.
    pub data: ImageFolder,
    /// Its loaders at the first stage's size.
    pub dls: DataLoaders,
    /// The model to build.
    pub model: ClassifierConfig,
    /// The final image side.
    pub size: u32,
    /// What the user should know before training starts.
    pub notes: Vec<String>,
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

/// The data a run trains on: [`load_data`], its training split drawn as `sampling` says
/// (ensembles), plus with `--extra-data` the synthetic images in the training split (never in
/// validation, never in `clean`'s or `interpret`'s data).
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

/// Validates `config` (the one place it is) and prepares its data, loaders and model.
pub(super) fn prepare(config: &TrainConfig, data: ImageFolder) -> Result<Prepared> {
    config.validate()?;
    let mut notes = Vec::new();
    if data.synthetic > 0 {
        notes.push(format!(
            "training split: {} real + {} synthetic images (every epoch), validation: {} real",
            data.train.len() - data.synthetic,
            data.synthetic,
            data.valid.len()
        ));
    }
    if !data.nested.is_empty() {
        let shown: Vec<String> = data
            .nested
            .iter()
            .take(5)
            .map(|p| p.display().to_string())
            .collect();
        notes.push(format!(
            "{} folder{} inside class folders: their images take the class's label ({}{})",
            data.nested.len(),
            if data.nested.len() == 1 { "" } else { "s" },
            shown.join(", "),
            if data.nested.len() > 5 { ", …" } else { "" }
        ));
    }
    let root = data.root.clone();
    if data.vocab.len() < 2 {
        return Err(Error::Dataset {
            path: root,
            message: format!(
                "one class folder ({}): a classifier needs at least two",
                data.vocab.join(", ")
            ),
        });
    }
    let size = config.final_size().unwrap_or_else(|| data.min_side.min(64));
    if size < 16 {
        return Err(Error::Config(format!(
            "image size {size} is too small (at least 16)"
        )));
    }
    let smallest = config.sizes.first().copied().unwrap_or(size);
    if smallest < config.arch.min_size() {
        return Err(Error::Config(format!(
            "{} needs images of at least {} px, this run would use {smallest} px (the data's images are {} px): use `size` {} or more to upscale",
            config.arch,
            config.arch.min_size(),
            data.min_side,
            config.arch.min_size()
        )));
    }
    let Some(bs) = fit_batch_size(data.train.len(), config.bs, config.auto_bs) else {
        return Err(Error::Dataset {
            path: root,
            message: format!(
                "{} training images: fewer than one batch (`bs` {}){}",
                data.train.len(),
                config.bs,
                if config.auto_bs {
                    "; at least 2 are needed"
                } else {
                    "; a smaller `bs`, or none, fits"
                }
            ),
        });
    };
    if bs != config.bs {
        notes.push(format!(
            "batch size {bs}: {} training images are fewer than {} (set `bs` to choose)",
            data.train.len(),
            config.bs
        ));
    }
    let first = config.sizes.first().copied().unwrap_or(size);
    let train_tfm =
        ItemTransform::train_min_scale(first, config.min_scale.unwrap_or(DEFAULT_MIN_SCALE));
    let dls = DataLoaders::with_transforms(
        &data,
        train_tfm,
        ItemTransform::valid(first),
        bs,
        config.seed,
    )
    .with_aug(config.aug.unwrap_or_else(|| default_aug(size)).transforms())
    .with_normalize({
        let (mean, std) = config.arch.spec().stats;
        Normalize { mean, std }
    });
    let model = ClassifierConfig::new(config.arch, data.vocab.len()).with_width(config.width);
    Ok(Prepared {
        data,
        dls,
        model,
        size,
        notes,
    })
}

/// Memory the system can still give this process, in bytes (Linux's `MemAvailable`; `None`
/// elsewhere).
fn available_memory() -> Option<f64> {
    let text = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = text.lines().find(|l| l.starts_with("MemAvailable:"))?;
    let kb: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024.0)
}

/// Refuses, before anything is written, a batch and image size whose training would not fit in
/// the memory the CPU backend has left (a GPU's own memory is not known here).
pub(super) fn check_memory(config: &TrainConfig, p: &Prepared, device: &Device) -> Result<()> {
    if crate::backend::backend_of(device) != "flex" {
        return Ok(());
    }
    let largest = config
        .sizes
        .iter()
        .copied()
        .max()
        .unwrap_or(p.size)
        .max(p.size);
    let need =
        training_memory_estimate(config.arch, config.width, p.dls.train.batch_size(), largest);
    match available_memory() {
        Some(have) if need > have => Err(Error::Config(format!(
            "`size` {largest} with `bs` {} needs about {:.1} GB to train {}, but {:.1} GB of memory is free: lower `size` or `bs`",
            p.dls.train.batch_size(),
            need / 1e9,
            config.arch,
            have / 1e9
        ))),
        _ => Ok(()),
    }
}

/// One line per fit of the plan, for the user before training starts.
fn plan_notes(config: &TrainConfig) -> Vec<String> {
    config
        .plan()
        .iter()
        .enumerate()
        .map(|(i, stage)| {
            format!(
                "stage {}: {} epochs, {}, lr {}{}{}",
                i + 1,
                stage.epochs,
                stage.schedule,
                stage.lrs,
                if stage.frozen { ", body frozen" } else { "" },
                stage.size.map(|s| format!(", {s} px")).unwrap_or_default()
            )
        })
        .collect()
}

/// An image classifier's run: its [`TrainConfig`] as a [`Recipe`] for the run driver.
#[derive(Debug, Clone)]
pub struct VisionRecipe(pub TrainConfig);

impl Recipe for VisionRecipe {
    type Model = ImageClassifier;
    type Settings = TrainConfig;
    type Prepared = Prepared;
    type Summary = RunSummary;

    fn from_settings(settings: TrainConfig) -> Self {
        Self(settings)
    }

    fn settings(&self) -> &TrainConfig {
        &self.0
    }

    fn with_absolute_paths(self) -> Self {
        Self(self.0.with_absolute_paths())
    }

    fn prepare(&self, device: &Device, _listen: &mut Listen) -> Result<Prepared> {
        let p = prepare(&self.0, training_data(&self.0)?)?;
        check_memory(&self.0, &p, device)?;
        Ok(p)
    }

    fn learner(
        &self,
        p: &Prepared,
        device: &Device,
        fresh: bool,
        listen: &mut Listen,
    ) -> Result<Learner> {
        build_learner(p, &self.0, device, fresh, listen)
    }

    fn lr_auto(&self) -> bool {
        self.0.lr_auto
    }

    fn set_found_lr(&mut self, lr: f64) {
        self.0.lr = Lrs::Single(lr);
        self.0.lr_auto = false;
    }

    fn plan(&self) -> Vec<Stage> {
        self.0.plan()
    }

    fn notes(&self, p: &Prepared) -> Vec<String> {
        plan_notes(&self.0)
            .into_iter()
            .chain(p.notes.clone())
            .collect()
    }

    fn start(&self, run: &RunDir, p: &Prepared) -> Result<()> {
        run.write_skipped(&p.data.skipped)
    }

    fn callbacks(&self, run: &RunDir, _p: &Prepared) -> Vec<Box<dyn Callback>> {
        let mut cbs = self.0.callbacks();
        if let Some(s) = snapshots::callback(&self.0, run) {
            cbs.push(Box::new(s));
        }
        cbs
    }

    fn finish(
        &self,
        run: &RunDir,
        learner: &Learner,
        p: &Prepared,
        seconds: f64,
    ) -> Result<RunSummary> {
        finish(run, &self.0, learner, p, seconds)
    }
}

/// Trains a new run of `config` in the folder `run_dir` (which must not exist) and writes its
/// outputs; `listen` hears the run's notes, epochs and batches.
pub fn train(
    config: &TrainConfig,
    run_dir: &Path,
    device: &Device,
    listen: Listen,
) -> Result<RunSummary> {
    crate::run::train(VisionRecipe(config.clone()), run_dir, device, listen)
}

/// Resumes the run in `run_dir` from its last checkpoint and finishes it.
pub fn resume(run_dir: &Path, device: &Device, listen: Listen) -> Result<RunSummary> {
    crate::run::resume::<VisionRecipe>(run_dir, device, listen)
}

/// The learner of a run, its body loaded from the pretrained weights when asked (not on resume,
/// where the checkpoint replaces them).
pub(super) fn build_learner(
    p: &Prepared,
    config: &TrainConfig,
    device: &Device,
    load_pretrained: bool,
    listen: &mut Listen,
) -> Result<Learner> {
    let mut learner = Learner::from_config(&p.model, p.dls.clone(), device, config.seed)?;
    learner.set_precision(config.precision)?;
    learner.loss_func = LossFunc::label_smoothing(config.label_smoothing.unwrap_or(0.0));
    if let (Some(spec), true) = (&config.pretrained, load_pretrained) {
        let path = resolve_pretrained(spec)?;
        let report = load_pretrained_body(&mut learner.model, &path)?;
        listen.note(&format!(
            "pretrained: {} ({} tensors; dropped {} from the old head and BN counters)",
            path.display(),
            report.loaded,
            report.dropped.len()
        ));
    }
    Ok(learner)
}

/// Trains `config`'s plan on `data` in memory (no run folder, no checkpoints) and returns the
/// trained model as a predictor — for out-of-fold predictions.
pub fn train_in_memory(
    config: &TrainConfig,
    data: ImageFolder,
    device: &Device,
    mut listen: Listen,
) -> Result<Predictor> {
    let p = prepare(config, data)?;
    check_memory(config, &p, device)?;
    let mut learner = build_learner(&p, config, device, true, &mut listen)?;
    learner.callbacks = config.callbacks();
    learner.add_listener(listen);
    execute(&mut learner, &config.plan(), 0, 0)?;
    Ok(Predictor::new(
        learner.model.clone(),
        bundle_config(&learner, &p),
        device,
    ))
}

/// Reads the training configuration saved in a run folder.
pub fn load_config(run_dir: &Path) -> Result<TrainConfig> {
    RunDir::open(run_dir)?.read_settings()
}

/// The training configuration that says where a run's data is: a run folder's own, or for an
/// ensemble folder its first member's (for snapshots, the run's, one folder up).
pub fn data_config(dir: &Path) -> Result<TrainConfig> {
    if !crate::infer::is_ensemble(dir) {
        return load_config(dir);
    }
    let file = crate::infer::EnsembleFile::read(dir)?;
    let first = dir.join(
        file.members
            .first()
            .map(|m| m.dir.clone())
            .unwrap_or_default(),
    );
    load_config(&first)
        .or_else(|_| load_config(dir.parent().unwrap_or(dir)))
        .map_err(|e| {
            Error::model(
                &first,
                format!("cannot find the data the members trained on: {e}"),
            )
        })
}

/// The augmented training images' grid.
pub const SHOW_BATCH_PLOT: &str = "show_batch.png";

/// `fastvision show-batch`: writes `n` augmented training images (one loader batch, epoch 0) as
/// `show_batch.png` in the run folder `dir` (new, or a run's), each captioned with its class;
/// returns the file.
pub fn show_batch(config: &TrainConfig, dir: &Path, n: usize) -> Result<PathBuf> {
    let config = TrainConfig {
        bs: n.max(1),
        ..config.clone()
    };
    let p = prepare(&config, training_data(&config)?)?;
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
    let run = if dir.is_dir() {
        RunDir::open(dir)?
    } else {
        RunDir::create(dir)?
    };
    let path = run.file(SHOW_BATCH_PLOT);
    image_grid(&tiles, 4, 96.max(p.size), &path)?;
    run.add_section(Section::new(
        35,
        "show_batch",
        html::image(SHOW_BATCH_PLOT, "Augmented batch", 2),
    ))?;
    Ok(path)
}

/// The bundle configuration of a trained learner.
pub(super) fn bundle_config(learner: &Learner, p: &Prepared) -> BundleConfig {
    BundleConfig {
        model: p.model.clone(),
        size: p.size,
        normalize: p.dls.normalize,
        vocab: p.dls.vocab.clone(),
        train_transform: Some(learner.dls.train.transform().with_size(p.size)),
        aug: learner.dls.train.aug(),
    }
}

/// Writes the model bundle, SGDR snapshots as an ensemble, and the run folder's shared outputs.
fn finish(
    run: &RunDir,
    config: &TrainConfig,
    learner: &Learner,
    p: &Prepared,
    seconds: f64,
) -> Result<RunSummary> {
    let bundle = bundle_config(learner, p);
    save_bundle(run.path(), &learner.model, &bundle)?;
    if config.snapshots {
        snapshots::finish(run, config, &bundle)?;
    }
    run.finish(&learner.recorder, config)?;
    let mut skipped = p.data.skipped.clone();
    skipped.extend(p.dls.train.failed());
    skipped.extend(p.dls.valid.failed());
    run.write_skipped(&skipped)?;
    Ok(RunSummary {
        dir: run.path().into(),
        last: learner.recorder.last().cloned(),
        skipped: skipped.len(),
        seconds,
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
