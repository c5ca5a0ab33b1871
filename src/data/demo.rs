//! The bundled demo dataset: a stratified Fashion-MNIST subset shipped as PNG class folders.

use std::path::PathBuf;

use crate::error::{Error, Result};

/// Environment variable that overrides where the demo dataset is looked for.
pub const DEMO_ENV: &str = "FASTVISION_DEMO";

/// The demo dataset folder: `$FASTVISION_DEMO` if set, else `data/demo` in the source tree the
/// binary was built from, so `fastvision train` finds it from any working directory.
pub fn demo_path() -> Result<PathBuf> {
    let path = std::env::var_os(DEMO_ENV)
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR"))
                .join("data")
                .join("demo")
        });
    if path.join("train").is_dir() {
        Ok(path)
    } else {
        Err(Error::Dataset {
            path,
            message: format!(
                "demo dataset not found; set {DEMO_ENV} or rebuild it with scripts/make_demo.py"
            ),
        })
    }
}
