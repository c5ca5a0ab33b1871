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
    refuse_existing(out)?;
    load_bundle(&single_model(dir)?, device)
}

/// The one model folder an export of `dir` writes: `dir` itself, or for an ensemble folder
/// (a playbook's, say) whose combination uses a single member, that member. An ensemble that
/// combines several models is refused, naming them: export writes one model.
fn single_model(dir: &Path) -> Result<std::path::PathBuf> {
    if !crate::infer::is_ensemble(dir) {
        return Ok(dir.into());
    }
    let file = crate::infer::EnsembleFile::read(dir)?;
    let used: Vec<&std::path::Path> = match file.combination.weights() {
        Some(w) => file
            .members
            .iter()
            .zip(w)
            .filter(|(_, w)| **w > 0.0)
            .map(|(m, _)| m.dir.as_path())
            .collect(),
        None => file.members.iter().map(|m| m.dir.as_path()).collect(),
    };
    match used.as_slice() {
        [one] => Ok(dir.join(one)),
        many => Err(Error::model(
            dir,
            format!(
                "an ensemble of {} models ({}): export writes one model, so export a member folder",
                many.len(),
                many.iter()
                    .map(|p| p.display().to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        )),
    }
}

/// Writes the bundle of the run in `dir` as one self-contained safetensors file `out`: the
/// weights, with the bundle's configuration (architecture, class names, normalisation, input
/// size, TTA transforms) as JSON in the header's metadata. An existing `out` is never replaced.
pub fn export_bundle(dir: &Path, out: &Path, device: &Device) -> Result<()> {
    let (model, config) = load_for_export(dir, out, device)?;
    export_model(&model, &config, out)
}

/// Writes `model` with its bundle configuration as one safetensors file `out`, as
/// [`export_bundle`] does for a run (a model trained in memory, say); never replaces a file.
pub fn export_model(model: &ImageClassifier, config: &BundleConfig, out: &Path) -> Result<()> {
    refuse_existing(out)?;
    let json = serde_json::to_string(config).map_err(|e| Error::model(out, e.to_string()))?;
    let bytes =
        crate::weights::safetensors::weights_bytes(model, &[(EXPORT_CONFIG_KEY, json)], out)?;
    write_new(out, &bytes)
}

/// Writes the run in `dir` as an ONNX file `out` (see [`onnx`]); never replaces a file.
pub fn export_onnx(dir: &Path, out: &Path, device: &Device) -> Result<()> {
    let (model, config) = load_for_export(dir, out, device)?;
    export_model_onnx(&model, &config, out)
}

/// Writes `model` as an ONNX file `out` (see [`onnx`]); never replaces a file.
pub fn export_model_onnx(model: &ImageClassifier, config: &BundleConfig, out: &Path) -> Result<()> {
    refuse_existing(out)?;
    write_new(out, &onnx::onnx_model(model, config)?)
}

/// Refuses an export to a file that exists (an export never replaces one).
fn refuse_existing(out: &Path) -> Result<()> {
    if out.exists() {
        return Err(Error::io(
            out,
            std::io::Error::new(
                std::io::ErrorKind::AlreadyExists,
                "already exists: choose another `out` (it is never overwritten)",
            ),
        ));
    }
    Ok(())
}
