//! Export: a run's model as one self-contained safetensors file, its bundle configuration in
//! the header's metadata, that `predict` and `evaluate` load like a run folder.

use std::path::Path;

use burn::store::{ModuleSnapshot, SafetensorsStore};
use burn::tensor::Device;

use super::bundle::{BundleConfig, load_bundle};
use crate::error::{Error, Result};
use crate::io::write_new;
use crate::models::ImageClassifier;

/// Metadata key under which an exported single-file model keeps its [`BundleConfig`] (JSON).
pub const EXPORT_CONFIG_KEY: &str = "fastvision.bundle";

/// The model and configuration of the run in `dir`, after checking that `out` does not exist
/// yet (an export never replaces a file).
fn load_for_export(
    dir: &Path,
    out: &Path,
    device: &Device,
) -> Result<(ImageClassifier, BundleConfig)> {
    if out.exists() {
        return Err(Error::model(
            out,
            "already exists: choose another --out (it is never overwritten)",
        ));
    }
    load_bundle(dir, device)
}

/// Writes the bundle of the run in `dir` as one self-contained safetensors file `out`: the
/// weights, with the bundle's configuration (architecture, class names, normalisation, input
/// size, TTA transforms) as JSON in the header's metadata. An existing `out` is never replaced.
pub fn export_bundle(dir: &Path, out: &Path, device: &Device) -> Result<()> {
    let (model, config) = load_for_export(dir, out, device)?;
    let json = serde_json::to_string(&config).map_err(|e| Error::model(dir, e.to_string()))?;
    let mut store = SafetensorsStore::from_bytes(None).metadata(EXPORT_CONFIG_KEY, json);
    model
        .save_into(&mut store)
        .map_err(|e| Error::model(out, e.to_string()))?;
    let bytes = store
        .get_bytes()
        .map_err(|e| Error::model(out, e.to_string()))?;
    write_new(out, &bytes)
}

/// Writes the run in `dir` as an ONNX file `out` (see [`super::onnx`]); never replaces a file.
pub fn export_onnx(dir: &Path, out: &Path, device: &Device) -> Result<()> {
    let (model, config) = load_for_export(dir, out, device)?;
    write_new(out, &super::onnx::onnx_model(&model, &config)?)
}

/// The string metadata in the header of the safetensors file `path` (its `__metadata__`).
pub(crate) fn safetensors_metadata(
    path: &Path,
) -> Result<std::collections::HashMap<String, String>> {
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
