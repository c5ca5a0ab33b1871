//! A model's own weights as one safetensors file (`model.safetensors`), for bundles, snapshots,
//! GAN nets and tabular models; and the string metadata of such a file's header.

use std::collections::HashMap;
use std::path::Path;

use burn::module::Module;
use burn::store::{ModuleSnapshot, SafetensorsStore};

use crate::error::{Error, Result};

/// The weight file of a bundle, snapshot or net folder.
pub const WEIGHTS_FILE: &str = "model.safetensors";

/// The bytes of `model`'s weights as a safetensors file, with `metadata` in its header.
pub fn weights_bytes<M: Module>(
    model: &M,
    metadata: &[(&str, String)],
    what: &Path,
) -> Result<Vec<u8>> {
    let mut store = SafetensorsStore::from_bytes(None);
    for (k, v) in metadata {
        store = store.metadata(*k, v.clone());
    }
    model
        .save_into(&mut store)
        .map_err(|e| Error::model(what, e.to_string()))?;
    store
        .get_bytes()
        .map_err(|e| Error::model(what, e.to_string()))
}

/// Writes any model's weights as `model.safetensors` in `dir` (created if needed), replacing
/// the folder's previous weights atomically; streamed to disk, never whole in memory.
pub fn save_weights<M: Module>(dir: &Path, model: &M) -> Result<()> {
    std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    let path = dir.join(WEIGHTS_FILE);
    crate::io::write_atomic_with(&path, |tmp| {
        let mut store = SafetensorsStore::from_file(tmp).overwrite(true);
        model
            .save_into(&mut store)
            .map_err(|e| Error::model(&path, e.to_string()))
    })
}

/// Loads `weights` (a safetensors file) strictly into `model`: every tensor present and matching
/// (`what` names the configuration it should match, for the error).
pub fn load_weights<M: Module>(mut model: M, weights: &Path, what: &str) -> Result<M> {
    if !weights.is_file() {
        return Err(Error::model(weights, "weight file missing"));
    }
    let mut store = SafetensorsStore::from_file(weights);
    let result = model
        .load_from(&mut store)
        .map_err(|e| Error::model(weights, e.to_string()))?;
    if !result.missing.is_empty() || !result.errors.is_empty() {
        return Err(Error::model(
            weights,
            format!("does not match {what}: {result}"),
        ));
    }
    Ok(model)
}

/// The string metadata in the header of the safetensors file `path` (its `__metadata__`).
pub fn safetensors_metadata(path: &Path) -> Result<HashMap<String, String>> {
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
