//! The image application's runs: its [`Recipe`] for the run driver (train, resume), show-batch,
//! and training in memory for out-of-fold judgements. What a run has to tell the user before or
//! while it trains (the plan, a batch size it chose, the LR it found) reaches the listener as
//! notes.

use std::path::{Path, PathBuf};

use burn::tensor::Device;

use super::config::TrainConfig;
pub use super::prepare::{
    Prepared, check_memory, fit_batch_size, load_data, prepare, training_data,
};
use super::snapshots;
use crate::data::ImageFolder;
use crate::error::{Error, Result};
use crate::infer::{BundleConfig, Predictor, save_bundle};
use crate::learner::checkpoint::DataFingerprint;
use crate::learner::{Callback, EpochMetrics, Learner, Listen, Listener, LossFunc, Lrs, Stage};
use crate::models::ImageClassifier;
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

/// One line per fit of the plan, for the user before training starts.
fn plan_notes(config: &TrainConfig) -> Vec<String> {
    config
        .plan()
        .iter()
        .enumerate()
        .map(|(i, stage)| {
            format!(
                "stage {}: {}, {}, lr {}{}{}",
                i + 1,
                crate::run::plan::length_text(stage.length()),
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

    fn fingerprint(&self, p: &Prepared) -> Option<(PathBuf, DataFingerprint)> {
        let mut counts = vec![0; p.data.vocab.len()];
        for item in &p.data.train {
            counts[item.label] += 1;
        }
        Some((
            p.data.root.clone(),
            DataFingerprint {
                classes: p.data.vocab.clone(),
                counts,
            },
        ))
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
    let mut config = config.clone();
    // The run records the precision `Auto` meant here, so a resume keeps it.
    config.precision = config.precision.resolve(device);
    crate::run::train(VisionRecipe(config), run_dir, device, listen)
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
