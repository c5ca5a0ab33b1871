//! Tables: `TabularLearner`, a tabular model in memory between fits, from a CSV file (the
//! Python layer writes a DataFrame to one first).

use std::path::PathBuf;
use std::sync::Mutex;

use fastvision::learner::{Learner, Listen};
use fastvision::run::Recipe;
use fastvision::tabular::run::{Prepared, TabularRecipe};
use fastvision::tabular::{TabularConfig, TabularModel, ValidSpec};
use numpy::{PyArray1, PyArray2};
use pyo3::exceptions::PyRuntimeError;
use pyo3::prelude::*;

use crate::listen;

/// Registers the tabular classes and functions.
pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<TabularLearner>()?;
    m.add_function(wrap_pyfunction!(tabular_learner, m)?)?;
    Ok(())
}

/// A tabular learner and its data.
struct Inner {
    recipe: TabularRecipe,
    prepared: Prepared,
    learner: Learner<TabularModel>,
}

/// A tabular model (embeddings for categories, an MLP) kept in memory between fits.
#[pyclass(module = "fastvision._engine", frozen)]
pub struct TabularLearner {
    inner: Mutex<Inner>,
}

impl TabularLearner {
    /// The learner; a `RuntimeError` while another thread trains it.
    fn lock(&self) -> PyResult<std::sync::MutexGuard<'_, Inner>> {
        crate::vision::busy(self.inner.try_lock())
    }

    /// Runs `f` on the learner, the GIL released, progress and interrupts through `progress`.
    fn run<T: Send>(
        &self,
        py: Python<'_>,
        progress: Option<Py<PyAny>>,
        f: impl FnOnce(&mut Inner, Listen) -> fastvision::Result<T> + Send,
    ) -> PyResult<T> {
        let mut inner = self.lock()?;
        let inner: &mut Inner = &mut inner;
        listen::run(py, progress, |l| f(inner, l))
    }
}

#[pymethods]
impl TabularLearner {
    /// fastai's `fit_one_cycle(n_epoch, lr_max)`.
    #[pyo3(signature = (n_epoch, lr_max=1e-2, progress=None))]
    fn fit_one_cycle(
        &self,
        py: Python<'_>,
        n_epoch: usize,
        lr_max: f64,
        progress: Option<Py<PyAny>>,
    ) -> PyResult<()> {
        self.run(py, progress, |inner, l| {
            inner
                .learner
                .with_listener(l, |learner| learner.fit_one_cycle(n_epoch, lr_max))
        })
    }

    /// (validation loss, accuracy for classification, RMSE for regression).
    fn validate(&self, py: Python<'_>) -> PyResult<(Option<f64>, Option<f64>, Option<f64>)> {
        let v = self.run(py, None, |inner, _| Ok(inner.learner.validate()))?;
        Ok((v.loss, v.accuracy, v.rmse))
    }

    /// Whether the target is a number to regress (else classes).
    #[getter]
    fn is_regression(&self) -> PyResult<bool> {
        Ok(self.lock()?.prepared.processor.target.is_regression())
    }

    /// Class names of the target (empty for regression).
    #[getter]
    fn vocab(&self) -> PyResult<Vec<String>> {
        Ok(match &self.lock()?.prepared.processor.target {
            fastvision::tabular::Target::Classification { vocab, .. } => vocab.clone(),
            fastvision::tabular::Target::Regression { .. } => Vec::new(),
        })
    }

    /// Categorical and continuous columns, as chosen or given.
    #[getter]
    fn columns(&self) -> PyResult<(Vec<String>, Vec<String>)> {
        let inner = self.lock()?;
        let p = &inner.prepared.processor;
        Ok((p.cat_names.clone(), p.cont_names.clone()))
    }

    /// Outputs and targets of the validation rows: class probabilities (or values) and
    /// class indices (or values).
    fn get_preds<'py>(&self, py: Python<'py>) -> crate::vision::Preds<'py, f32> {
        let (out, targets) = self.run(py, None, |inner, _| {
            let device = inner.learner.device().clone().without_autodiff();
            let model = fastvision::burn::module::Module::valid(&inner.learner.model);
            let (out, processed) = fastvision::tabular::predict::predict_table(
                &model,
                &inner.prepared.processor,
                &inner.prepared.valid,
                true,
                &device,
            )?;
            let targets: Vec<f32> = if processed.y_value.is_empty() {
                processed.y_class.iter().map(|&c| c as f32).collect()
            } else {
                processed.y_value
            };
            Ok((out, targets))
        })?;
        let out =
            PyArray2::from_vec2(py, &out).map_err(|e| PyRuntimeError::new_err(e.to_string()))?;
        Ok((out, PyArray1::from_vec(py, targets)))
    }

    /// Writes a run folder at `path` (a new folder): the weights and the fitted processing,
    /// what `fastvision tabular predict` and `evaluate` load.
    fn export(&self, py: Python<'_>, path: PathBuf) -> PyResult<()> {
        self.run(py, None, |inner, _| {
            fastvision::run_dir::RunDir::refuse_existing(&path)?;
            let run = fastvision::run_dir::RunDir::create(&path)?;
            run.write_settings(inner.recipe.settings())?;
            inner
                .recipe
                .finish(&run, &inner.learner, &inner.prepared, 0.0)?;
            Ok(())
        })
    }
}

/// A tabular learner for the CSV file `csv`, predicting column `y`; `cat_names`/`cont_names`
/// name column roles (the rest are inferred as fastai's `cont_cat_split` does).
#[pyfunction]
#[pyo3(signature = (csv, y, cat_names=None, cont_names=None, valid_pct=0.2, valid_col=None, bs=64, layers=None, seed=42, y_range=None, regression=None, progress=None))]
#[allow(clippy::too_many_arguments)]
fn tabular_learner(
    py: Python<'_>,
    csv: PathBuf,
    y: String,
    cat_names: Option<Vec<String>>,
    cont_names: Option<Vec<String>>,
    valid_pct: f64,
    valid_col: Option<String>,
    bs: usize,
    layers: Option<Vec<usize>>,
    seed: u64,
    y_range: Option<(f64, f64)>,
    regression: Option<bool>,
    progress: Option<Py<PyAny>>,
) -> PyResult<TabularLearner> {
    let mut config = TabularConfig::new(csv, y);
    config.cat = cat_names.unwrap_or_default();
    config.cont = cont_names.unwrap_or_default();
    config.valid = match valid_col {
        Some(c) => ValidSpec::Column(c),
        None => ValidSpec::Pct(valid_pct),
    };
    config.bs = bs;
    if let Some(l) = layers {
        config.layers = l;
    }
    config.seed = seed;
    config.y_range = y_range;
    config.regression = regression;
    let recipe = TabularRecipe(config).with_absolute_paths();
    let device = fastvision::device();
    let inner = listen::run(py, progress, |mut l| {
        let prepared = recipe.prepare(&device, &mut l)?;
        let learner = recipe.learner(&prepared, &device, true, &mut l)?;
        Ok(Inner {
            recipe,
            prepared,
            learner,
        })
    })?;
    Ok(TabularLearner {
        inner: Mutex::new(inner),
    })
}
