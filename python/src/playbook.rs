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
    m.add_function(wrap_pyfunction!(start_playbook, m)?)?;
    m.add_function(wrap_pyfunction!(playbook_main, m)?)?;
    m.add_function(wrap_pyfunction!(playbook_beside, m)?)?;
    m.add_function(wrap_pyfunction!(playbook_beside_steps, m)?)?;
    m.add_function(wrap_pyfunction!(new_playbook_folder, m)?)?;
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
    let config = config(data, budget, arch, size, seed, valid_pct, drop_confusing, 1)?;
    let dir = crate::settings::new_run(path, "playbook")?;
    let device = fastvision::device();
    let state = listen::run_in(py, progress, &dir, &resume_hint(&dir), |l| {
        playbook::run(&config, &dir, &device, l)
    })?;
    steps(&dir, &state)
}

/// The absolute path of a new playbook folder, `runs/playbook-<time>` here: named where the
/// playbook is started, not on the worker that plans it.
#[pyfunction]
fn new_playbook_folder() -> PyResult<String> {
    let dir = crate::settings::new_run(None, "playbook")?;
    std::path::absolute(&dir)
        .map(|d| d.display().to_string())
        .map_err(|e| PyValueError::new_err(format!("{}: {e}", dir.display())))
}

/// Measures, plans for `workers` runs at once and creates the playbook folder `path`, running
/// no step; returns (the folder, the plan as lines of text).
#[pyfunction]
#[pyo3(signature = (data, budget, workers, path, arch="resnet18", size=None, seed=42, valid_pct=0.2, drop_confusing=false))]
#[allow(clippy::too_many_arguments)]
fn start_playbook(
    py: Python<'_>,
    data: PathBuf,
    budget: &str,
    workers: usize,
    path: PathBuf,
    arch: &str,
    size: Option<u32>,
    seed: u64,
    valid_pct: f64,
    drop_confusing: bool,
) -> PyResult<(String, Vec<String>)> {
    let config = config(
        data,
        budget,
        arch,
        size,
        seed,
        valid_pct,
        drop_confusing,
        workers,
    )?;
    let dir = path;
    let device = fastvision::device();
    let state = listen::run(py, None, |mut l| {
        playbook::start(&config, &dir, &device, &mut l)
    })?;
    Ok((dir.display().to_string(), playbook::plan_text(&state.plan)))
}

/// Runs the main model's steps of the playbook folder `path` made by `start_playbook`, up to
/// those beside it.
#[pyfunction]
#[pyo3(signature = (path, progress=None))]
fn playbook_main(py: Python<'_>, path: PathBuf, progress: Option<Py<PyAny>>) -> PyResult<()> {
    let device = fastvision::device();
    let hint = format!(
        "fastvision.ray.resume_playbook({:?})",
        path.display().to_string()
    );
    listen::run_in(py, progress, &path, &hint, |l| {
        playbook::run_main(&path, &device, l).map(|_| ())
    })
}

/// Runs step `index` of the playbook folder `path`, one that trains beside the main model (its
/// result kept when it ran before); returns (its accuracy, seconds).
#[pyfunction]
#[pyo3(signature = (path, index, progress=None))]
fn playbook_beside(
    py: Python<'_>,
    path: PathBuf,
    index: usize,
    progress: Option<Py<PyAny>>,
) -> PyResult<(Option<f64>, f64)> {
    let device = fastvision::device();
    listen::run(py, progress, |l| {
        let r = playbook::run_beside(&path, index, &device, l)?;
        Ok((r.accuracy, r.seconds))
    })
}

/// The indices of the steps of the playbook folder `path` that train beside its main model.
#[pyfunction]
fn playbook_beside_steps(py: Python<'_>, path: PathBuf) -> PyResult<Vec<usize>> {
    listen::run(py, None, |_| playbook::beside_steps(&path))
}

/// The playbook's settings, each checked.
#[allow(clippy::too_many_arguments)]
fn config(
    data: PathBuf,
    budget: &str,
    arch: &str,
    size: Option<u32>,
    seed: u64,
    valid_pct: f64,
    drop_confusing: bool,
    workers: usize,
) -> PyResult<PlaybookConfig> {
    let budget = humantime::parse_duration(budget.trim()).map_err(|e| {
        PyValueError::new_err(format!(
            "invalid setting: `budget` {budget:?}: {e} (e.g. \"10m\", \"90s\")"
        ))
    })?;
    if workers == 0 {
        return Err(PyValueError::new_err(
            "invalid setting: `workers` 0: at least one run must train",
        ));
    }
    let mut config = PlaybookConfig::new(data, budget.as_secs_f64());
    config.arch = arch.parse().map_err(to_py)?;
    config.size = size;
    config.seed = seed;
    config.valid_pct = valid_pct;
    config.drop_confusing = drop_confusing;
    config.workers = workers;
    Ok(config)
}

/// What continues the playbook in `dir`.
fn resume_hint(dir: &std::path::Path) -> String {
    format!(
        "fastvision.resume_playbook({:?})",
        dir.display().to_string()
    )
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
    let state = listen::run_in(py, progress, &path, &resume_hint(&path), |l| {
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
