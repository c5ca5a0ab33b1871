//! Export: a run's model as one self-contained safetensors file, its bundle configuration in
//! the header's metadata, that `predict` and `evaluate` load like a run folder.

use std::path::Path;

use burn::tensor::Device;

pub mod onnx;

use super::bundle::{BundleConfig, EXPORT_CONFIG_KEY, load_bundle};
use crate::error::{Error, Result};
use crate::io::write_new;
use crate::models::ImageClassifier;

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
    let bytes =
        crate::weights::safetensors::weights_bytes(&model, &[(EXPORT_CONFIG_KEY, json)], out)?;
    write_new(out, &bytes)
}

/// Writes the run in `dir` as an ONNX file `out` (see [`onnx`]); never replaces a file.
pub fn export_onnx(dir: &Path, out: &Path, device: &Device) -> Result<()> {
    let (model, config) = load_for_export(dir, out, device)?;
    write_new(out, &onnx::onnx_model(&model, &config)?)
}
