//! The model bundle: `model.safetensors` plus `config.json` (architecture, size, normalisation,
//! vocab) — everything `predict` and `evaluate` need to rebuild a trained model.

use std::path::Path;

use burn::module::Module;
use burn::store::{ModuleSnapshot, SafetensorsStore};
use burn::tensor::Device;
use serde::{Deserialize, Serialize};

use crate::data::{AugTransforms, ItemTransform, Normalize};
use crate::error::{Error, Result};
use crate::models::{ClassifierConfig, ImageClassifier};

/// Weight file of a bundle.
pub const WEIGHTS_FILE: &str = "model.safetensors";
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

/// Writes `model` and `config` into `dir` (created if needed).
pub fn save_bundle(dir: &Path, model: &ImageClassifier, config: &BundleConfig) -> Result<()> {
    std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    let weights = dir.join(WEIGHTS_FILE);
    let mut store = SafetensorsStore::from_file(&weights).overwrite(true);
    model
        .save_into(&mut store)
        .map_err(|e| Error::model(&weights, e.to_string()))?;
    let json = serde_json::to_vec_pretty(config).map_err(|e| Error::model(dir, e.to_string()))?;
    crate::learner::checkpoint::write_atomic(&dir.join(CONFIG_FILE), &json)
}

/// Metadata key under which an exported single-file model keeps its [`BundleConfig`] (JSON).
pub const EXPORT_CONFIG_KEY: &str = "fastvision.bundle";

/// Writes the bundle of the run in `dir` as one self-contained safetensors file `out`: the
/// weights, with the bundle's configuration (architecture, class names, normalisation, input
/// size, TTA transforms) as JSON in the header's metadata. An existing `out` is never replaced.
pub fn export_bundle(dir: &Path, out: &Path, device: &Device) -> Result<()> {
    if out.exists() {
        return Err(Error::model(
            out,
            "already exists: choose another --out (it is never overwritten)",
        ));
    }
    let (model, config) = load_bundle(dir, device)?;
    let json = serde_json::to_string(&config).map_err(|e| Error::model(dir, e.to_string()))?;
    let tmp = out.with_file_name(format!(
        ".{}.tmp",
        out.file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default()
    ));
    let mut store = SafetensorsStore::from_file(&tmp)
        .overwrite(true)
        .metadata(EXPORT_CONFIG_KEY, json);
    model
        .save_into(&mut store)
        .map_err(|e| Error::model(out, e.to_string()))?;
    std::fs::rename(&tmp, out).map_err(|e| Error::io(out, e))
}

/// The string metadata in the header of the safetensors file `path` (its `__metadata__`).
fn safetensors_metadata(path: &Path) -> Result<std::collections::HashMap<String, String>> {
    use std::io::Read;
    let bad = |m: &str| Error::model(path, format!("not a safetensors file: {m}"));
    let mut file = std::fs::File::open(path).map_err(|e| Error::io(path, e))?;
    let mut len = [0u8; 8];
    file.read_exact(&mut len)
        .map_err(|_| bad("shorter than its header"))?;
    let len = u64::from_le_bytes(len);
    if len > 100 << 20 {
        return Err(bad("header larger than 100 MB"));
    }
    let mut header = vec![0u8; len as usize];
    file.read_exact(&mut header)
        .map_err(|_| bad("truncated header"))?;
    let header: serde_json::Value =
        serde_json::from_slice(&header).map_err(|e| bad(&e.to_string()))?;
    Ok(header
        .get("__metadata__")
        .and_then(|m| serde_json::from_value(m.clone()).ok())
        .unwrap_or_default())
}

/// Reads the configuration of the bundle at `path`: a run folder (its `config.json`) or a
/// single file written by [`export_bundle`].
pub fn load_bundle_config(path: &Path) -> Result<BundleConfig> {
    if path.is_file() {
        let meta = safetensors_metadata(path)?;
        let json = meta.get(EXPORT_CONFIG_KEY).ok_or_else(|| {
            Error::model(path, "a safetensors file without a fastvision configuration (make one with `fastvision export RUN`)")
        })?;
        return serde_json::from_str(json).map_err(|e| {
            Error::model(
                path,
                format!("its fastvision configuration is unreadable: {e}"),
            )
        });
    }
    let dir = path;
    let path = dir.join(CONFIG_FILE);
    let bytes = std::fs::read(&path).map_err(|e| Error::io(&path, e))?;
    serde_json::from_slice(&bytes)
        .map_err(|e| Error::model(&path, format!("not a fastvision bundle config: {e}")))
}

/// Rebuilds the model of the bundle at `path` (a run folder or an exported file) on `device`,
/// in eval mode.
pub fn load_bundle(path: &Path, device: &Device) -> Result<(ImageClassifier, BundleConfig)> {
    let config = load_bundle_config(path)?;
    let mut model = config.model.init(device)?;
    let weights = if path.is_file() {
        path.to_path_buf()
    } else {
        path.join(WEIGHTS_FILE)
    };
    if !weights.is_file() {
        return Err(Error::model(&weights, "weight file missing"));
    }
    let mut store = SafetensorsStore::from_file(&weights);
    let result = model
        .load_from(&mut store)
        .map_err(|e| Error::model(&weights, e.to_string()))?;
    if !result.missing.is_empty() || !result.errors.is_empty() {
        return Err(Error::model(
            &weights,
            format!("does not match config.json: {result}"),
        ));
    }
    Ok((model.valid(), config))
}
