//! Named pretrained weights (`--pretrained resnet50`) resolved to files in a local cache folder.

use std::path::PathBuf;

use super::hub;
use crate::error::{Error, Result};

/// Where named weights are looked for: `$FASTVISION_HOME`, else `~/.cache/fastvision`.
pub fn cache_dir() -> PathBuf {
    if let Some(home) = std::env::var_os("FASTVISION_HOME") {
        return PathBuf::from(home);
    }
    let home = std::env::var_os("HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("."));
    home.join(".cache").join("fastvision")
}

/// Resolves `spec` — a path to a weight file, or a known name — to an existing file. A known name
/// whose file is not in [`cache_dir`] is downloaded there first ([`hub::Checkpoint::fetch`]);
/// offline, or for a checkpoint without a download address, the error says which file to put
/// where, and where it is published.
pub fn resolve_pretrained(spec: &str) -> Result<PathBuf> {
    let as_path = PathBuf::from(spec);
    if as_path.is_file() {
        return Ok(as_path);
    }
    let Some(checkpoint) = hub::find(spec) else {
        let names: Vec<&str> = hub::CATALOG.iter().map(|c| c.name).collect();
        return Err(Error::model(
            as_path,
            format!(
                "no such file, and not a known weight name ({})",
                names.join(", ")
            ),
        ));
    };
    checkpoint.fetch(&cache_dir())
}
