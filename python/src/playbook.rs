//! The whole playbook within a time budget, into a run folder; returns what each step bought.

use std::path::PathBuf;

use fastvision::playbook::{self, PlaybookConfig};
use pyo3::exceptions::{PyRuntimeError, PyValueError};
use pyo3::prelude::*;

use crate::errors::to_py;
use crate::listen;

/// Registers `playbook`.
pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(run_playbook, m)?)?;
    m.add_function(wrap_pyfunction!(resume_playbook, m)?)?;
    Ok(())
}

/// Runs the playbook on `data` within `budget` ("10m", "90s") into the new folder `path`
/// (default `runs/playbook-<time>`); returns (the folder, its steps as JSON).
#[pyfunction]
#[pyo3(signature = (data, budget, path=None, arch="resnet18", size=None, seed=42, valid_pct=0.2, drop_confusing=false, progress=None))]
#[allow(clippy::too_many_arguments)]
fn run_playbook(
    py: Python<'_>,
    data: PathBuf,
    budget: &str,
    path: Option<PathBuf>,
    arch: &str,
    size: Option<u32>,
    seed: u64,
    valid_pct: f64,
    drop_confusing: bool,
    progress: Option<Py<PyAny>>,
) -> PyResult<(String, String)> {
    let budget = humantime::parse_duration(budget.trim()).map_err(|e| {
        PyValueError::new_err(format!(
            "invalid setting: `budget` {budget:?}: {e} (e.g. \"10m\", \"90s\")"
        ))
    })?;
    let mut config = PlaybookConfig::new(data, budget.as_secs_f64());
    config.arch = arch.parse().map_err(to_py)?;
    config.size = size;
    config.seed = seed;
    config.valid_pct = valid_pct;
    config.drop_confusing = drop_confusing;
    let dir = crate::settings::new_run(path, "playbook")?;
    let device = fastvision::device();
    let hint = format!(
        "fastvision.resume_playbook({:?})",
        dir.display().to_string()
    );
    let state = listen::run_in(py, progress, &dir, &hint, |l| {
        playbook::run(&config, &dir, &device, l)
    })?;
    steps(&dir, &state)
}

/// Continues the interrupted playbook in `path` (finished steps kept, an interrupted training
/// resumed from its checkpoint); returns (the folder, its steps as JSON).
#[pyfunction]
#[pyo3(signature = (path, progress=None))]
fn resume_playbook(
    py: Python<'_>,
    path: PathBuf,
    progress: Option<Py<PyAny>>,
) -> PyResult<(String, String)> {
    let device = fastvision::device();
    let hint = format!(
        "fastvision.resume_playbook({:?})",
        path.display().to_string()
    );
    let state = listen::run_in(py, progress, &path, &hint, |l| {
        playbook::resume(&path, &device, l)
    })?;
    steps(&path, &state)
}

/// The folder and the steps' results as JSON.
fn steps(dir: &std::path::Path, state: &playbook::PlaybookState) -> PyResult<(String, String)> {
    let json = serde_json::to_string(&state.results)
        .map_err(|e| PyRuntimeError::new_err(e.to_string()))?;
    Ok((dir.display().to_string(), json))
}
