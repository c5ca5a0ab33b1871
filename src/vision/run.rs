//! The image application's runs: train, resume, the LR range test and show-batch on the
//! `Learner`, each in a `RunDir`; and training in memory for out-of-fold judgements. What a run
//! has to tell the user before or while it trains (the plan, a batch size it chose, the LR it
//! found) reaches the callbacks as notes.

use std::path::{Path, PathBuf};
use std::time::Instant;

use burn::tensor::Device;

use super::config::{DEFAULT_MIN_SCALE, TrainConfig, default_aug, training_memory_estimate};
use super::snapshots;
use crate::data::{
    DataLoaders, ImageFolder, ItemTransform, Normalize, SplitConfig, demo::demo_path,
};
use crate::error::{Error, Result};
use crate::infer::{BundleConfig, Predictor, save_bundle};
use crate::learner::checkpoint;
use crate::learner::learner::Stage;
use crate::learner::lr_find::{LrFind, LrFindConfig};
use crate::learner::{Callback, EpochMetrics, Learner, LossFunc, Lrs};
use crate::models::{Arch, ClassifierConfig};
use crate::report::grid::{Tile, batch_images, image_grid};
use crate::report::html::{self, Section};
use crate::report::plot::plot_lr_find;
use crate::run_dir::{self, RunDir};
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

/// The callbacks of a run, by the name the learner uses.
pub(super) type Callbacks = Vec<Box<dyn Callback>>;

/// Hands `text` to every callback as a note.
pub(super) fn note(callbacks: &mut Callbacks, text: &str) {
    callbacks.iter_mut().for_each(|cb| cb.note(text));
}

/// Everything a run needs, rebuilt identically from its [`TrainConfig`].
pub(super) struct Prepared {
    pub(super) data: ImageFolder,
    pub(super) dls: DataLoaders,
    pub(super) model: ClassifierConfig,
    pub(super) size: u32,
    /// What the user should know before training starts.
    pub(super) notes: Vec<String>,
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
            "{} needs images of at least {} px, this run would use {smallest} px (the data's images are {} px): pass --size {} or more to upscale",
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
    };
    if bs != config.bs {
        notes.push(format!(
            "batch size {bs}: {} training images are fewer than {} (give --bs to choose)",
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
            "--size {largest} with --bs {} needs about {:.1} GB to train {}, but {:.1} GB of memory is free: lower --size or --bs",
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

/// Trains a new run in the folder `run_dir` (which must not exist) and writes its outputs;
/// `callbacks` (e.g. progress) are added to the learner and receive the run's notes.
pub fn train(
    config: &TrainConfig,
    run_dir: &Path,
    device: &Device,
    mut callbacks: Callbacks,
) -> Result<RunSummary> {
    RunDir::refuse_existing(run_dir)?;
    let t0 = Instant::now();
    let p = prepare(config, training_data(config)?)?;
    check_memory(config, &p, device)?;
    let mut learner = build_learner(&p, config, device, true, &mut callbacks)?;
    let run = RunDir::create(run_dir)?;
    let mut config = config.with_absolute_paths();
    let trained = (|| {
        run.write_settings(&config)?;
        run.write_skipped(&p.data.skipped)?;
        if config.lr_auto {
            let found = lr_find_into(&mut learner, &run)?;
            config.lr = Lrs::Single(crate::learner::lr_find::round_lr(found.suggestions.valley));
            config.lr_auto = false;
            note(
                &mut callbacks,
                &format!(
                    "--lr auto: the LR finder suggests {:.2e} (valley); training with it",
                    found.suggestions.valley
                ),
            );
            run.write_settings(&config)?;
        }
        for n in plan_notes(&config).iter().chain(&p.notes) {
            note(&mut callbacks, n);
        }
        learner.checkpoint_dir = Some(run.checkpoint_dir());
        learner.snapshots = snapshots::plan(&config, &run);
        learner.callbacks = config.callbacks();
        learner.callbacks.extend(std::mem::take(&mut callbacks));
        execute(&mut learner, &config.plan(), 0, 0)
    })();
    if let Err(e) = trained {
        return Err(run.fail(e, learner.epochs_done > 0));
    }
    finish(&run, &config, &learner, &p, t0)
}

/// The learner of a run, its body loaded from the pretrained weights when asked (not on resume,
/// where the checkpoint replaces them).
pub(super) fn build_learner(
    p: &Prepared,
    config: &TrainConfig,
    device: &Device,
    load_pretrained: bool,
    callbacks: &mut Callbacks,
) -> Result<Learner> {
    let mut learner = Learner::from_config(&p.model, p.dls.clone(), device, config.seed)?;
    learner.set_precision(config.precision)?;
    learner.loss_func = LossFunc::label_smoothing(config.label_smoothing.unwrap_or(0.0));
    if let (Some(spec), true) = (&config.pretrained, load_pretrained) {
        let path = resolve_pretrained(spec)?;
        let report = load_pretrained_body(&mut learner.model, &path)?;
        note(
            callbacks,
            &format!(
                "pretrained: {} ({} tensors; dropped {} from the old head and BN counters)",
                path.display(),
                report.loaded,
                report.dropped.len()
            ),
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

/// Runs the LR finder on `learner` and writes `lr_find.json` and `lr_find.png` into `run`.
pub fn lr_find_into(learner: &mut Learner, run: &RunDir) -> Result<LrFind> {
    let found = learner.lr_find(LrFindConfig::default())?;
    crate::io::write_json(&run.file(run_dir::LR_FIND), &found)?;
    plot_lr_find(&found, &run.file(run_dir::LR_FIND_PLOT))?;
    Ok(found)
}

/// Trains `config`'s plan on `data` in memory (no run folder, no checkpoints) and returns the
/// trained model as a predictor — for out-of-fold predictions.
pub fn train_in_memory(
    config: &TrainConfig,
    data: ImageFolder,
    device: &Device,
    mut callbacks: Callbacks,
) -> Result<Predictor> {
    let p = prepare(config, data)?;
    check_memory(config, &p, device)?;
    let mut learner = build_learner(&p, config, device, true, &mut callbacks)?;
    learner.callbacks = config.callbacks();
    learner.callbacks.extend(callbacks);
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

/// Resumes the run in `run_dir` from its last checkpoint and finishes it.
pub fn resume(run_dir: &Path, device: &Device, mut callbacks: Callbacks) -> Result<RunSummary> {
    let t0 = Instant::now();
    let run = RunDir::open(run_dir)?;
    let config: TrainConfig = run.read_settings()?;
    let p = prepare(&config, training_data(&config)?)?;
    let mut learner = build_learner(&p, &config, device, false, &mut callbacks)?;
    let ckpt = run.checkpoint_dir();
    let state = learner.load_checkpoint(&ckpt)?;
    learner.checkpoint_dir = Some(ckpt);
    learner.snapshots = snapshots::plan(&config, &run);
    learner.callbacks = config.callbacks();
    learner.callbacks.extend(callbacks);
    execute(
        &mut learner,
        &config.plan(),
        state.stage,
        state.stage_epochs_done,
    )
    .map_err(|e| run.fail(e, true))?;
    finish(&run, &config, &learner, &p, t0)
}

/// Whether `run_dir` holds a committed checkpoint.
pub fn has_checkpoint(run_dir: &Path) -> bool {
    checkpoint::load_state(&run_dir.join(run_dir::CHECKPOINT)).is_ok()
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
    t0: Instant,
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
