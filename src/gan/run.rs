//! A GAN run folder: one WGAN per class (`runs/NAME/<class>/`, fastai's way) or one conditional
//! WGAN for all classes (`runs/NAME/conditional/`), each net folder with its weights, settings,
//! `log.json`, `losses.png`, `samples/epoch_NNN.png` and a checkpoint; resumable net by net.

use std::path::{Path, PathBuf};
use std::time::Instant;

use burn::tensor::Device;
use serde::{Deserialize, Serialize};

use super::data::GanData;
use super::train::{GanConfig, WganTrainer, net_configs};
use crate::data::{ImageFolder, SplitConfig};
use crate::error::{Error, Result};
use crate::io::{read_json, write_json};
use crate::learner::Callback;
use crate::models::gan::Generator;
use crate::run_dir::RunDir;
use crate::weights::{WEIGHTS_FILE, load_weights, save_weights};

/// Hands `text` to every callback as a note.
fn note(callbacks: &mut [Box<dyn Callback>], text: String) {
    callbacks.iter_mut().for_each(|cb| cb.note(&text));
}

/// The settings of a whole GAN run (`gan.json`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GanRunConfig {
    /// Dataset folder; `None` = the bundled demo.
    pub data: Option<PathBuf>,
    /// Classes to learn; `None` = all.
    pub classes: Option<Vec<String>>,
    /// One conditional WGAN for all classes instead of one per class.
    pub conditional: bool,
    /// The WGAN recipe.
    pub gan: GanConfig,
}

/// What a trained net folder says about its generator (`net.json`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NetInfo {
    /// The WGAN recipe it was trained with.
    pub gan: GanConfig,
    /// The classes it generates (one for a per-class net).
    pub classes: Vec<String>,
    /// 1 (grayscale) or 3.
    pub channels: usize,
    /// Conditional on the class.
    pub conditional: bool,
    /// Real training images it learned from.
    pub n_real: usize,
    /// Wall time of its training, seconds.
    pub seconds: f64,
}

/// File names of a net folder.
pub const NET_FILE: &str = "net.json";
/// The run's settings.
pub const RUN_FILE: &str = "gan.json";
/// The critic's weights (the generator's are `model.safetensors`).
pub const CRITIC_DIR: &str = "critic";

/// The dataset of a run (train/valid split as image training splits it).
pub fn dataset(config: &GanRunConfig) -> Result<ImageFolder> {
    let root = match &config.data {
        Some(p) => p.clone(),
        None => crate::data::demo::demo_path()?,
    };
    ImageFolder::from_folder(&root, SplitConfig::default())
}

/// The net folders of the run `run_dir` for `classes`, with the classes each learns.
fn nets(config: &GanRunConfig, vocab: &[String]) -> Vec<(String, Vec<String>)> {
    let classes = config.classes.clone().unwrap_or_else(|| vocab.to_vec());
    if config.conditional {
        vec![("conditional".into(), classes)]
    } else {
        classes.into_iter().map(|c| (c.clone(), vec![c])).collect()
    }
}

/// A folder name for a class (its name, with path separators replaced).
pub fn folder_name(class: &str) -> String {
    class
        .chars()
        .map(|c| {
            if matches!(c, '/' | '\\' | ':') {
                '_'
            } else {
                c
            }
        })
        .collect()
}

/// Trains (or, with `resume`, finishes) every net of the run in `run_dir`; returns the net
/// folders. `callbacks` see every epoch and step (progress) and get the run's notes.
pub fn train(
    config: &GanRunConfig,
    run_dir: &Path,
    resume: bool,
    device: &Device,
    callbacks: &mut [Box<dyn Callback>],
) -> Result<Vec<PathBuf>> {
    if !resume {
        RunDir::refuse_existing(run_dir)?;
    }
    config.gan.validate()?;
    let data = dataset(config)?;
    if let Some(classes) = &config.classes {
        for c in classes {
            if !data.vocab.contains(c) {
                return Err(Error::Config(format!(
                    "--classes: \"{c}\" is not a class of {} (classes: {})",
                    data.root.display(),
                    data.vocab.join(", ")
                )));
            }
        }
    }
    let plan = nets(config, &data.vocab);
    // Refuse a class too small for one batch before any training starts.
    for (_, classes) in &plan {
        for c in classes {
            let label = data.vocab.iter().position(|v| v == c).unwrap_or(0);
            let n = data.train.iter().filter(|i| i.label == label).count();
            if n < config.gan.bs {
                return Err(Error::Dataset {
                    path: data.root.join(c),
                    message: format!(
                        "class \"{c}\" has {n} training images, fewer than one batch ({}); lower --bs or add images",
                        config.gan.bs
                    ),
                });
            }
        }
    }
    let run = if resume {
        RunDir::open(run_dir)?
    } else {
        RunDir::create(run_dir)?
    };
    if !resume {
        write_json(&run.file(RUN_FILE), config)?;
    }
    let mut done = Vec::new();
    for (folder, classes) in plan {
        let dir = run.file(&folder_name(&folder));
        if dir.join(WEIGHTS_FILE).is_file() && dir.join(NET_FILE).is_file() {
            note(callbacks, format!("{}: already trained", dir.display()));
            done.push(dir);
            continue;
        }
        let t0 = Instant::now();
        let real = GanData::load(&data, &classes, config.gan.size, config.gan.bs)?;
        note(
            callbacks,
            format!(
                "{}: {} real images of {}, {} px, {} channel{}",
                dir.display(),
                real.n,
                classes.join(", "),
                real.size,
                real.channels,
                if real.channels == 1 { "" } else { "s" }
            ),
        );
        let mut trainer = WganTrainer::new(config.gan.clone(), real, config.conditional, device)?;
        let ckpt = dir.join(crate::run_dir::CHECKPOINT);
        if crate::learner::checkpoint::load_state(&ckpt.join("generator")).is_ok() {
            trainer.load_checkpoint(&ckpt)?;
            note(
                callbacks,
                format!("  resuming after epoch {}", trainer.epochs_done()),
            );
        }
        note(
            callbacks,
            format!(
                "{:>5}  {:>12}  {:>10}  {:>5}",
                "epoch", "wasserstein", "gen_loss", "time"
            ),
        );
        trainer.fit(Some(&dir), callbacks)?;
        save_weights(&dir, &trainer.generator)?;
        save_weights(&dir.join(CRITIC_DIR), &trainer.critic)?;
        let info = NetInfo {
            gan: config.gan.clone(),
            classes,
            channels: trainer.data.channels,
            conditional: config.conditional,
            n_real: trainer.data.n,
            seconds: t0.elapsed().as_secs_f64(),
        };
        write_json(&dir.join(NET_FILE), &info)?;
        done.push(dir);
    }
    Ok(done)
}

/// Reads `gan.json` of a run.
pub fn load_config(run_dir: &Path) -> Result<GanRunConfig> {
    read_json(&run_dir.join(RUN_FILE))
}

/// The trained generators of a run: each net folder's generator (eval mode) and its info.
pub fn load_generators(run_dir: &Path, device: &Device) -> Result<Vec<(Generator, NetInfo)>> {
    load_config(run_dir)?;
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(run_dir)
        .map_err(|e| Error::io(run_dir, e))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_dir() && p.join(NET_FILE).is_file())
        .collect();
    dirs.sort();
    if dirs.is_empty() {
        return Err(Error::model(
            run_dir,
            "no trained generator here (finish it with `fastvision gan train --resume`)",
        ));
    }
    let mut out = Vec::new();
    for dir in dirs {
        let info: NetInfo = read_json(&dir.join(NET_FILE))?;
        let n_classes = if info.conditional {
            info.classes.len()
        } else {
            0
        };
        let (g, _) = net_configs(&info.gan, info.channels, n_classes);
        let generator = load_weights(g.init(device)?, &dir.join(WEIGHTS_FILE), NET_FILE)?;
        out.push((burn::module::Module::valid(&generator), info));
    }
    Ok(out)
}
