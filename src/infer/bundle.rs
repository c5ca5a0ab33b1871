//! The model bundle: `model.safetensors` plus `config.json` (architecture, size, normalisation,
//! vocab) — everything `predict` and `evaluate` need to rebuild a trained model.

use std::path::Path;

use burn::module::Module;
use burn::tensor::Device;
use serde::{Deserialize, Serialize};

use crate::data::{AugTransforms, ItemTransform, Normalize};
use crate::error::{Error, Result};
use crate::models::{ClassifierConfig, ImageClassifier};
use crate::weights::{load_weights, save_weights};

/// Metadata key under which an exported single-file model keeps its [`BundleConfig`] (JSON).
pub const EXPORT_CONFIG_KEY: &str = "fastvision.bundle";

pub use crate::weights::WEIGHTS_FILE;
/// Configuration file of a bundle.
pub const CONFIG_FILE: &str = "config.json";

/// What a bundle says about its model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BundleConfig {
    /// Architecture, classes and head.
    pub model: ClassifierConfig,
    /// Image side the model was trained at.
    pub size: u32,
    /// Normalisation of its inputs.
    pub normalize: Normalize,
    /// Class names, in label order.
    pub vocab: Vec<String>,
    /// The training item transform (test-time augmentation reuses it).
    #[serde(default)]
    pub train_transform: Option<ItemTransform>,
    /// The training augmentation (test-time augmentation reuses it).
    #[serde(default)]
    pub aug: Option<AugTransforms>,
}

impl BundleConfig {
    /// Whether the model trained with random augmentation, which test-time augmentation replays:
    /// without it (`aug` none: the whole image, resized, no flip) every TTA pass is the same view.
    pub fn augments(&self) -> bool {
        let fixed_view = match self.train_transform {
            Some(ItemTransform::ResizeCenterCrop { .. }) => true,
            Some(ItemTransform::RandomResizedCrop {
                min_scale, flip, ..
            }) => min_scale >= 1.0 && !flip,
            None => false,
        };
        self.aug.is_some() || !fixed_view
    }

    /// Refuses a configuration no model can be built from (a hand-edited `config.json`, say):
    /// the error names `path`, the file it came from.
    pub fn validate(&self, path: &Path) -> Result<()> {
        let bad = |m: String| Err(Error::model(path, m));
        if !(16..=2048).contains(&self.size) {
            return bad(format!(
                "\"size\": {} is not an image side between 16 and 2048",
                self.size
            ));
        }
        if self.model.n_classes < 2 {
            return bad(format!(
                "\"n_classes\": {} (at least 2)",
                self.model.n_classes
            ));
        }
        if self.vocab.len() != self.model.n_classes {
            return bad(format!(
                "{} class names (\"vocab\") for a head of {} classes (\"n_classes\")",
                self.vocab.len(),
                self.model.n_classes
            ));
        }
        // The same bounds the model is built with, said as this file's fields.
        self.model.check().map_err(|e| e.in_file(path))?;
        if !(0.0..1.0).contains(&self.model.ps) {
            return bad(format!(
                "\"ps\": {} is not a dropout probability",
                self.model.ps
            ));
        }
        let norm_ok = self.normalize.std.iter().all(|s| *s > 0.0 && s.is_finite())
            && self.normalize.mean.iter().all(|m| m.is_finite());
        if !norm_ok {
            return bad("\"normalize\": std must be positive and every value finite".into());
        }
        Ok(())
    }
}

/// Writes `model` and `config` into `dir` (created if needed).
pub fn save_bundle(dir: &Path, model: &ImageClassifier, config: &BundleConfig) -> Result<()> {
    save_weights(dir, model)?;
    write_bundle_config(dir, config)
}

/// Writes `config.json` beside weights already in `dir` (e.g. an SGDR snapshot's).
pub fn write_bundle_config(dir: &Path, config: &BundleConfig) -> Result<()> {
    let json = serde_json::to_vec_pretty(config).map_err(|e| Error::model(dir, e.to_string()))?;
    crate::io::write_atomic(&dir.join(CONFIG_FILE), &json)
}

/// Reads the configuration of the bundle at `path`: a run folder (its `config.json`) or a
/// single file written by [`export_bundle`](super::export_bundle).
pub fn load_bundle_config(path: &Path) -> Result<BundleConfig> {
    if path.is_file() {
        let meta = crate::weights::safetensors_metadata(path)?;
        let json = meta.get(EXPORT_CONFIG_KEY).ok_or_else(|| {
            Error::model(
                path,
                "a safetensors file without fastvision's configuration (export a run to make one)",
            )
        })?;
        let config: BundleConfig = serde_json::from_str(json)
            .map_err(|e| Error::model(path, format!("its configuration is unreadable: {e}")))?;
        config.validate(path)?;
        return Ok(config);
    }
    let dir = path;
    let path = dir.join(CONFIG_FILE);
    let bytes = crate::io::read_limited(&path, crate::io::MAX_JSON_BYTES, "a model configuration")?;
    let config: BundleConfig = serde_json::from_slice(&bytes)
        .map_err(|e| Error::model(&path, format!("not a bundle configuration: {e}")))?;
    config.validate(&path)?;
    Ok(config)
}

/// Rebuilds the model of the bundle at `path` (a run folder or an exported file) on `device`,
/// in eval mode.
pub fn load_bundle(path: &Path, device: &Device) -> Result<(ImageClassifier, BundleConfig)> {
    let config = load_bundle_config(path)?;
    let model = config.model.init(device)?;
    let weights = if path.is_file() {
        path.to_path_buf()
    } else {
        path.join(WEIGHTS_FILE)
    };
    let model = load_weights(model, &weights, "config.json")?;
    if !crate::learner::precision::params_finite(&model) {
        return Err(Error::model(
            &weights,
            "its weights are not finite (a diverged or damaged model): it cannot predict",
        ));
    }
    Ok((model.valid(), config))
}
