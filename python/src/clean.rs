//! Cleaning: training images that are probably mislabelled (judged out of fold), and a journal
//! that quarantines or relabels them and undoes it.

use std::path::{Path, PathBuf};

use fastvision::clean::{self, Journal};
use fastvision::vision::TrainConfig;
use pyo3::exceptions::{PyRuntimeError, PyValueError};
use pyo3::prelude::*;

use crate::errors::to_py;
use crate::listen;
use crate::vision::DataLoaders;

/// Registers `find_confusing` and `Cleaner`.
pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(find_confusing, m)?)?;
    m.add_class::<Cleaner>()?;
    Ok(())
}

/// The training images of `dls` a model trained without them (`folds` folds, `epochs` each)
/// predicts wrongly with probability above `threshold`, largest loss first, as JSON.
#[pyfunction]
#[pyo3(signature = (dls, epochs=3, folds=2, threshold=0.8, arch="resnet18", lr=1e-3, progress=None))]
#[allow(clippy::too_many_arguments)]
fn find_confusing(
    py: Python<'_>,
    dls: &DataLoaders,
    epochs: usize,
    folds: usize,
    threshold: f32,
    arch: &str,
    lr: f64,
    progress: Option<Py<PyAny>>,
) -> PyResult<String> {
    let config = TrainConfig {
        epochs,
        arch: arch.parse().map_err(to_py)?,
        lr: fastvision::learner::Lrs::Single(lr),
        ..dls.config.clone()
    };
    let data = dls.data.clone();
    let device = fastvision::device();
    let interp = listen::run(py, progress, |l| {
        clean::out_of_fold(&config, &data, folds, &device, l)
    })?;
    serde_json::to_string(&clean::flags(&interp, threshold))
        .map_err(|e| PyRuntimeError::new_err(e.to_string()))
}

/// Moves files of a dataset folder out of training (quarantine) or to another class, each move
/// journaled in the folder so that it can be undone.
#[pyclass(module = "fastvision._engine", frozen)]
struct Cleaner {
    journal: Journal,
}

impl Cleaner {
    /// `path` relative to the dataset folder (refused outside it).
    fn relative(&self, path: &Path) -> PyResult<String> {
        self.journal.relative(path).ok_or_else(|| {
            PyValueError::new_err(format!(
                "{}: not inside the dataset folder {}",
                path.display(),
                self.journal.root().display()
            ))
        })
    }
}

/// An entry of the journal as JSON.
fn entry(e: &clean::journal::Entry) -> PyResult<String> {
    serde_json::to_string(e).map_err(|e| PyRuntimeError::new_err(e.to_string()))
}

#[pymethods]
impl Cleaner {
    /// The cleaner of the dataset folder `root`.
    #[new]
    fn new(root: PathBuf) -> PyResult<Self> {
        Ok(Self {
            journal: Journal::new(&root).map_err(to_py)?,
        })
    }

    /// Moves `path` into the quarantine folder; returns the journal entry (JSON).
    fn quarantine(&self, path: PathBuf) -> PyResult<String> {
        let rel = self.relative(&path)?;
        entry(&self.journal.quarantine(&rel).map_err(to_py)?)
    }

    /// Moves `path` into the class folder `label`; returns the journal entry (JSON).
    fn relabel(&self, path: PathBuf, label: &str) -> PyResult<String> {
        let rel = self.relative(&path)?;
        entry(&self.journal.relabel(&rel, label).map_err(to_py)?)
    }

    /// Undoes the last move; returns its entry (JSON), or `None` when there is nothing to undo.
    fn undo(&self) -> PyResult<Option<String>> {
        self.journal
            .undo_last()
            .map_err(to_py)?
            .map(|e| entry(&e))
            .transpose()
    }

    /// Undoes every move; returns how many.
    fn undo_all(&self) -> PyResult<usize> {
        Ok(self.journal.undo_all().map_err(to_py)?.len())
    }
}
