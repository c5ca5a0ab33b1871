//! Settings given as Python strings ("resnet34", "flip"), read with the library's own names.

use pyo3::PyResult;
use pyo3::exceptions::PyValueError;
use serde::de::DeserializeOwned;

/// `value` as the setting `name` of type `T`, by its serialized name; a `ValueError` naming the
/// setting otherwise.
pub fn parse<T: DeserializeOwned>(name: &str, value: &str) -> PyResult<T> {
    serde_json::from_value(serde_json::Value::String(value.to_string()))
        .map_err(|e| PyValueError::new_err(format!("invalid setting: `{name}` {value:?}: {e}")))
}

/// A fresh temporary folder (removed when dropped) for files the library writes (plots).
pub fn scratch() -> PyResult<tempfile::TempDir> {
    tempfile::tempdir().map_err(|e| pyo3::exceptions::PyOSError::new_err(e.to_string()))
}

/// The bytes of `path` (a plot just written).
pub fn read(path: &std::path::Path) -> PyResult<Vec<u8>> {
    std::fs::read(path)
        .map_err(|e| pyo3::exceptions::PyOSError::new_err(format!("{}: {e}", path.display())))
}

/// The folder of a new run: `path`, or `runs/<kind>-<time>`.
pub fn new_run(path: Option<std::path::PathBuf>, kind: &str) -> PyResult<std::path::PathBuf> {
    match path {
        Some(p) => Ok(p),
        None => fastvision::run_dir::run_path(Some(&format!(
            "{kind}-{}",
            fastvision::run_dir::timestamp_name()
        )))
        .map_err(crate::errors::to_py),
    }
}
