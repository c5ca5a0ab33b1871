//! Ensembles of diverse models: members trained into one folder, reported and combined.

use std::path::PathBuf;

use fastvision::ensemble::report;
use fastvision::ensemble::train::{self, Variation};
use fastvision::learner::Lrs;
use fastvision::vision::TrainConfig;
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;

use crate::errors::to_py;
use crate::listen;
use crate::vision::DataLoaders;

/// Registers the parts of an ensemble or trials' training: the plan, every member in turn or
/// one member (a cluster's task), the ensemble file and report.
pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(plan_ensemble, m)?)?;
    m.add_function(wrap_pyfunction!(train_ensemble_member, m)?)?;
    m.add_function(wrap_pyfunction!(finish_ensemble, m)?)?;
    m.add_function(wrap_pyfunction!(plan_trials, m)?)?;
    m.add_function(wrap_pyfunction!(train_planned, m)?)?;
    Ok(())
}

/// The members of an ensemble (`plan_ensemble`'s arguments).
#[allow(clippy::too_many_arguments)]
fn planned(
    dls: &DataLoaders,
    members: &[String],
    seeds: usize,
    epochs: usize,
    lr: f64,
    variation: &str,
    folds: usize,
) -> PyResult<Vec<train::PlannedMember>> {
    let variation = match variation {
        "none" => Variation::None,
        "bagging" => Variation::Bagging,
        "folds" => Variation::Folds(folds),
        other => {
            return Err(PyValueError::new_err(format!(
                "invalid setting: `variation` {other:?}: \"none\", \"bagging\" or \"folds\""
            )));
        }
    };
    let base = base(dls, epochs, lr)?;
    let archs = members
        .iter()
        .map(|m| train::parse_member(m))
        .collect::<fastvision::Result<Vec<_>>>()
        .map_err(to_py)?;
    train::plan(&base, &archs, seeds, variation).map_err(to_py)
}

/// `dls`'s settings with `epochs` of one-cycle at `lr`, the data path made absolute (so that a
/// process started elsewhere finds it).
fn base(dls: &DataLoaders, epochs: usize, lr: f64) -> PyResult<TrainConfig> {
    let mut base = TrainConfig {
        epochs,
        lr: Lrs::Single(lr),
        ..dls.config.clone()
    };
    if let Some(data) = base.data.as_mut() {
        *data = std::path::absolute(&*data).map_err(|e| to_py(fastvision::Error::io(&*data, e)))?;
    }
    Ok(base)
}

/// Creates the folder `path` (default `runs/trials-<time>`) with one member per trial and
/// trains nothing: `trials` is a JSON list of objects, each the settings it changes from
/// `dls`'s with `epochs` and `lr`. Returns (the folder, absolute, and the member folders) —
/// for `train_ensemble_member` on each, then `finish_ensemble`.
#[pyfunction]
#[pyo3(signature = (dls, trials, epochs=5, lr=1e-3, path=None))]
fn plan_trials(
    dls: &DataLoaders,
    trials: &str,
    epochs: usize,
    lr: f64,
    path: Option<PathBuf>,
) -> PyResult<(String, Vec<String>)> {
    let list: Vec<fastvision::ensemble::trials::Trial> = serde_json::from_str(trials)
        .map_err(|e| PyValueError::new_err(format!("invalid setting: `trials`: {e}")))?;
    let planned =
        fastvision::ensemble::trials::plan(&base(dls, epochs, lr)?, &list).map_err(to_py)?;
    let dir = crate::settings::new_run(path, "trials")?;
    let dir = std::path::absolute(&dir).map_err(|e| to_py(fastvision::Error::io(&dir, e)))?;
    train::create(&planned, &dir).map_err(to_py)?;
    let dirs = planned
        .iter()
        .map(|m| m.dir.display().to_string())
        .collect();
    Ok((dir.display().to_string(), dirs))
}

/// Creates the ensemble folder `path` with the plan of `train_ensemble`'s members and trains
/// nothing; returns (the folder, absolute, and the number of members) — for members trained
/// elsewhere (`train_ensemble_member`, one task each), then `finish_ensemble`.
#[pyfunction]
#[pyo3(signature = (dls, members, seeds=1, epochs=5, lr=1e-3, variation="none", folds=5, path=None))]
#[allow(clippy::too_many_arguments)]
fn plan_ensemble(
    dls: &DataLoaders,
    members: Vec<String>,
    seeds: usize,
    epochs: usize,
    lr: f64,
    variation: &str,
    folds: usize,
    path: Option<PathBuf>,
) -> PyResult<(String, usize)> {
    let planned = planned(dls, &members, seeds, epochs, lr, variation, folds)?;
    let dir = crate::settings::new_run(path, "ensemble")?;
    let dir = std::path::absolute(&dir).map_err(|e| to_py(fastvision::Error::io(&dir, e)))?;
    train::create(&planned, &dir).map_err(to_py)?;
    Ok((dir.display().to_string(), planned.len()))
}

/// Trains member `index` of the ensemble folder `path` (resumed from its checkpoint; nothing
/// when it is finished); returns (accuracy, seconds) when it trained.
#[pyfunction]
#[pyo3(signature = (path, index, progress=None))]
fn train_ensemble_member(
    py: Python<'_>,
    path: PathBuf,
    index: usize,
    progress: Option<Py<PyAny>>,
) -> PyResult<Option<(f64, f64)>> {
    let device = fastvision::device();
    listen::run(py, progress, |l| {
        train::train_member(&path, index, &device, l)
    })
}

/// Writes the ensemble file of the folder `path` once every member is trained, and its report;
/// returns the report as text.
#[pyfunction]
fn finish_ensemble(py: Python<'_>, path: PathBuf) -> PyResult<String> {
    let device = fastvision::device();
    listen::run(py, None, |_| {
        train::finish(&path)?;
        let r = report::report(&path, &device)?;
        report::write(&path, &r)?;
        Ok(report::to_text(&r))
    })
}

/// Trains every member of the folder `path` made by `plan_ensemble` or `plan_trials` (in turn,
/// resuming an interrupted one, skipping finished ones), writes its ensemble file and report;
/// returns the report as text.
#[pyfunction]
#[pyo3(signature = (path, progress=None))]
fn train_planned(py: Python<'_>, path: PathBuf, progress: Option<Py<PyAny>>) -> PyResult<String> {
    let device = fastvision::device();
    let hint = format!("`fastvision ensemble train --resume {}`", path.display());
    listen::run_in(py, progress, &path, &hint, |l| {
        train::train(None, &path, &device, l)?;
        let r = report::report(&path, &device)?;
        report::write(&path, &r)?;
        Ok(report::to_text(&r))
    })
}
