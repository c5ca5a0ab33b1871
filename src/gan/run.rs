//! A GAN run folder: one WGAN per class (`runs/NAME/<class>/`, fastai's way) or one conditional
//! WGAN for all classes (`runs/NAME/conditional/`), each net folder with its weights, settings,
//! `log.json`, `losses.png`, `samples/epoch_NNN.png` and a checkpoint; resumable net by net.

use std::path::{Path, PathBuf};

use burn::tensor::Device;
use serde::{Deserialize, Serialize};

use super::data::GanData;
use super::outputs::EpochOutputs;
use super::step::{GanBatch, Wgan, gan_learner};
use super::train::{GanConfig, net_configs};
use crate::data::{ImageFolder, SplitConfig};
use crate::error::{Error, Result};
use crate::io::{read_json, write_json};
use crate::learner::{Callback, Learner, Listen, Listener, Lrs, Schedule, Stage};
use crate::models::gan::Generator;
use crate::run::Recipe;
use crate::run_dir::RunDir;
use crate::weights::{WEIGHTS_FILE, load_weights, save_weights};

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
    load_dataset(config.data.as_deref())
}

fn load_dataset(data: Option<&Path>) -> Result<ImageFolder> {
    let root = match data {
        Some(p) => p.to_path_buf(),
        None => crate::data::demo::demo_path()?,
    };
    ImageFolder::from_folder(&root, SplitConfig::default())
}

/// The settings of one net of a GAN run (its folder's `train.json`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NetSettings {
    /// Dataset folder; `None` = the bundled demo.
    pub data: Option<PathBuf>,
    /// The classes it learns (one for a per-class net).
    pub classes: Vec<String>,
    /// Conditional on the class.
    pub conditional: bool,
    /// The WGAN recipe.
    pub gan: GanConfig,
}

/// One WGAN net's run: its [`NetSettings`] as a [`Recipe`] for the run driver.
#[derive(Debug, Clone)]
pub struct GanNetRecipe(pub NetSettings);

impl Recipe for GanNetRecipe {
    type Model = Wgan;
    type Settings = NetSettings;
    type Prepared = GanData;
    type Summary = PathBuf;

    fn from_settings(settings: NetSettings) -> Self {
        Self(settings)
    }

    fn settings(&self) -> &NetSettings {
        &self.0
    }

    fn with_absolute_paths(mut self) -> Self {
        self.0.data = self.0.data.map(|p| std::fs::canonicalize(&p).unwrap_or(p));
        self
    }

    fn prepare(&self, _device: &Device, listen: &mut Listen) -> Result<GanData> {
        let s = &self.0;
        s.gan.validate()?;
        let data = load_dataset(s.data.as_deref())?;
        let real = GanData::load(&data, &s.classes, s.gan.size, s.gan.bs)?;
        listen.note(&format!(
            "{} real images of {}, {} px, {}",
            real.n,
            s.classes.join(", "),
            real.size,
            crate::text::count(real.channels, "channel")
        ));
        Ok(real)
    }

    fn learner(
        &self,
        p: &GanData,
        device: &Device,
        _fresh: bool,
        _listen: &mut Listen,
    ) -> Result<Learner<Wgan>> {
        gan_learner(&self.0.gan, p.clone(), self.0.conditional, device)
    }

    fn plan(&self) -> Vec<Stage> {
        let lr = self.0.gan.lr;
        vec![Stage {
            epochs: self.0.gan.epochs,
            schedule: Schedule::Constant { lr, mom: 0.0 },
            lrs: Lrs::Single(lr),
            frozen: false,
            size: None,
            last_epoch_pct: None,
        }]
    }

    fn callbacks(&self, run: &RunDir, p: &GanData) -> Vec<Box<dyn Callback<GanBatch>>> {
        vec![Box::new(EpochOutputs {
            dir: run.path().to_path_buf(),
            seed: self.0.gan.seed,
            classes: if self.0.conditional {
                p.classes.len()
            } else {
                0
            },
            channels: p.channels,
            size: p.size,
        })]
    }

    fn finish(
        &self,
        run: &RunDir,
        learner: &Learner<Wgan>,
        p: &GanData,
        seconds: f64,
    ) -> Result<PathBuf> {
        let dir = run.path();
        save_weights(dir, &learner.model.generator)?;
        save_weights(&dir.join(CRITIC_DIR), &learner.model.critic)?;
        let info = NetInfo {
            gan: self.0.gan.clone(),
            classes: self.0.classes.clone(),
            channels: p.channels,
            conditional: self.0.conditional,
            n_real: p.n,
            seconds,
        };
        write_json(&dir.join(NET_FILE), &info)?;
        Ok(dir.to_path_buf())
    }
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

/// Trains (or, with `resume`, finishes) every net of the run in `run_dir`, each as a run of its
/// own in the run folder; returns the net folders. `listen` hears every net's notes, epochs and
/// steps.
pub fn train(
    config: &GanRunConfig,
    run_dir: &Path,
    resume: bool,
    device: &Device,
    mut listen: Listen,
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
                    "`classes`: \"{c}\" is not a class of {} (classes: {})",
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
                        "class \"{c}\" has {n} training images, fewer than one batch (`bs` {}); lower `bs` or add images",
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
            listen.note(&format!("{}: already trained", dir.display()));
            done.push(dir);
            continue;
        }
        listen.note(&format!("{}:", dir.display()));
        let recipe = GanNetRecipe(NetSettings {
            data: config.data.clone(),
            classes,
            conditional: config.conditional,
            gan: config.gan.clone(),
        });
        if crate::run::has_checkpoint(&dir) {
            listen.note("  resuming from its checkpoint");
            // The run's settings rule its nets (a resume may ask for more epochs).
            RunDir::open(&dir)?.write_settings(recipe.settings())?;
        }
        done.push(crate::run::train_or_resume(
            recipe,
            &dir,
            device,
            listen.clone(),
        )?);
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
            "no trained generator here (finish it by resuming the GAN run)",
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
