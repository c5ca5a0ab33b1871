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

/// Registers `train_ensemble`.
pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(train_ensemble, m)?)?;
    Ok(())
}

/// Trains an ensemble on `dls`: each of `members` ("resnet18", "resnet34@64") × `seeds`
/// seeds, varied by `variation` ("none", "bagging", "folds"), into the new folder `path`
/// (default `runs/ensemble-<time>`); returns (the folder, its report as text).
#[pyfunction]
#[pyo3(signature = (dls, members, seeds=1, epochs=5, lr=1e-3, variation="none", folds=5, path=None, progress=None))]
#[allow(clippy::too_many_arguments)]
fn train_ensemble(
    py: Python<'_>,
    dls: &DataLoaders,
    members: Vec<String>,
    seeds: usize,
    epochs: usize,
    lr: f64,
    variation: &str,
    folds: usize,
    path: Option<PathBuf>,
    progress: Option<Py<PyAny>>,
) -> PyResult<(String, String)> {
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
    let base = TrainConfig {
        epochs,
        lr: Lrs::Single(lr),
        ..dls.config.clone()
    };
    let archs = members
        .iter()
        .map(|m| train::parse_member(m))
        .collect::<fastvision::Result<Vec<_>>>()
        .map_err(to_py)?;
    let planned = train::plan(&base, &archs, seeds, variation).map_err(to_py)?;
    let dir = crate::settings::new_run(path, "ensemble")?;
    let device = fastvision::device();
    let hint = format!("`fastvision ensemble train --resume {}`", dir.display());
    let text = listen::run_in(py, progress, &dir, &hint, |l| {
        train::train(Some(planned), &dir, &device, l)?;
        let r = report::report(&dir, &device)?;
        report::write(&dir, &r)?;
        Ok(report::to_text(&r))
    })?;
    Ok((dir.display().to_string(), text))
}
