//! A learner held in memory between calls, as a notebook drives one (fastai's `vision_learner`):
//! fits one after another on the same weights, then predictions, interpretation and exports —
//! no run folder. Runs that must survive the process go through [`train`](super::train).

use std::path::Path;

use burn::module::Module;
use burn::tensor::Device;

use super::config::TrainConfig;
use super::prepare::{Prepared, check_memory, prepare};
use super::run::{build_learner, bundle_config};
use crate::data::ImageFolder;
use crate::data::decode::decode_rgb;
use crate::error::{Error, Result};
use crate::infer::{BundleConfig, Inference, Predictor, export_model, export_model_onnx};
use crate::learner::{Learner, Listen};
use crate::report::grid::{Tile, image_grid};

/// An image classifier's learner and the data it was prepared from, kept in memory.
pub struct VisionLearner {
    /// The learner: call its fits (`fit_one_cycle`, `fine_tune`, …) directly.
    pub learner: Learner,
    /// The settings it was built from (`epochs`, `lr` and the schedule are the caller's).
    pub config: TrainConfig,
    /// The data, loaders and model configuration.
    pub prepared: Prepared,
}

impl VisionLearner {
    /// Prepares `data` as `config` says and builds the learner on `device` (its body loaded from
    /// `config.pretrained` when set; MixUp/CutMix attached when asked). What the user should
    /// know (a batch size chosen, files skipped, weights loaded) goes to `listen` as notes.
    pub fn new(
        config: &TrainConfig,
        data: ImageFolder,
        device: &Device,
        listen: &mut Listen,
    ) -> Result<Self> {
        use crate::learner::Listener;
        let config = config.with_absolute_paths();
        let prepared = prepare(&config, data)?;
        check_memory(&config, &prepared, device)?;
        for n in &prepared.notes {
            listen.note(n);
        }
        let mut learner = build_learner(&prepared, &config, device, true, listen)?;
        learner.callbacks = config.callbacks();
        Ok(Self {
            learner,
            config,
            prepared,
        })
    }

    /// Runs `fit` (one of the learner's fits, or the LR range test) with `listen` hearing its
    /// epochs and batches and able to cancel it, and detaches it afterwards, whether the fit
    /// finished, failed, was cancelled or panicked.
    pub fn fit_with<T>(
        &mut self,
        listen: Listen,
        fit: impl FnOnce(&mut Learner) -> Result<T>,
    ) -> Result<T> {
        self.learner.with_listener(listen, fit)
    }

    /// What a bundle of the current weights records (architecture, classes, size, transforms).
    pub fn bundle_config(&self) -> BundleConfig {
        bundle_config(&self.learner, &self.prepared)
    }

    /// A predictor of the current weights (a copy: later fits do not change it), in the
    /// learner's precision.
    pub fn predictor(&self) -> Predictor {
        let mut p = Predictor::new(
            self.learner.model.clone(),
            self.bundle_config(),
            self.learner.device(),
        );
        // The learner's precision was checked on this device when it was set.
        let _ = p.set_precision(self.learner.precision());
        p
    }

    /// Probabilities of every validation image by `how` (plain, TTA, ten-crop) and their
    /// classes, in the validation set's order (fastai's `get_preds` / `tta`). Unreadable images
    /// are left out, as the loaders leave them out.
    pub fn get_preds(&self, how: Inference) -> (Vec<Vec<f32>>, Vec<usize>) {
        let items = &self.prepared.data.valid;
        let out = self.predictor().infer(items, self.config.bs, how);
        items
            .iter()
            .zip(out.probs)
            .filter_map(|(item, p)| Some((p?, item.label)))
            .unzip()
    }

    /// Writes `n` validation images as a PNG grid at `path`, each captioned with its actual and
    /// predicted class (fastai's `show_results`).
    pub fn show_results(&self, n: usize, path: &Path) -> Result<()> {
        let items = &self.prepared.data.valid[..n.min(self.prepared.data.valid.len())];
        let images = items
            .iter()
            .map(|item| {
                decode_rgb(&item.path).map_err(|message| Error::Image {
                    path: item.path.clone(),
                    message,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        let probs = self.predictor().probs_of_images(&images);
        let vocab = &self.prepared.dls.vocab;
        let tiles: Vec<Tile> = images
            .into_iter()
            .zip(items)
            .zip(probs)
            .map(|((image, item), p)| {
                let predicted = (0..p.len()).max_by(|&a, &b| p[a].total_cmp(&p[b]));
                Tile {
                    image,
                    caption: vec![
                        format!("actual: {}", vocab[item.label]),
                        format!("pred: {}", predicted.map_or("?", |i| vocab[i].as_str())),
                    ],
                }
            })
            .collect();
        image_grid(&tiles, 3, 128, path)
    }

    /// Writes the current weights as one self-contained safetensors file `out` (what
    /// `Predictor::open_bundle` loads); never replaces a file.
    pub fn export(&self, out: &Path) -> Result<()> {
        export_model(&self.learner.model.valid(), &self.bundle_config(), out)
    }

    /// Writes the current weights as an ONNX file `out`; never replaces a file.
    pub fn export_onnx(&self, out: &Path) -> Result<()> {
        export_model_onnx(&self.learner.model.valid(), &self.bundle_config(), out)
    }
}
