//! Training progress and interrupts for Python: a [`Listener`] that hands every event to a
//! Python progress object (a notebook's live bar and table, or text) and that polls Python's
//! signal handlers after every batch, so Ctrl-C or a notebook's stop button ends the fit after
//! its batch and raises `KeyboardInterrupt`.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use fastvision::learner::{EpochMetrics, FitState, Listen, Listener};
use pyo3::prelude::*;

use crate::errors::to_py;

/// The shortest interval between two batch updates sent to Python (a progress bar needs no more).
const BATCH_EVERY: Duration = Duration::from_millis(200);

/// Hands training events to an optional Python progress object; keeps the first exception
/// (an interrupt, an error of the progress object) and cancels training when one is raised.
struct PyListener {
    progress: Option<Py<PyAny>>,
    caught: Arc<Mutex<Option<PyErr>>>,
    last_batch: Option<Instant>,
}

impl PyListener {
    /// Calls `progress.<method>(*args)` with the GIL; an exception is kept (training stops).
    fn call<A>(&mut self, method: &str, args: A)
    where
        A: for<'py> pyo3::call::PyCallArgs<'py>,
    {
        let Some(progress) = &self.progress else {
            return;
        };
        Python::attach(|py| {
            if let Err(e) = progress.bind(py).call_method1(method, args) {
                keep(&self.caught, e);
            }
        });
    }
}

/// Keeps `e` unless an earlier exception is kept already.
fn keep(caught: &Mutex<Option<PyErr>>, e: PyErr) {
    let mut slot = caught.lock().unwrap_or_else(|p| p.into_inner());
    if slot.is_none() {
        *slot = Some(e);
    }
}

impl Listener for PyListener {
    fn before_fit(&mut self, state: &mut FitState) {
        self.call(
            "before_fit",
            (state.n_epochs, state.iters_per_epoch, state.n_iter),
        );
    }

    fn after_batch(&mut self, state: &mut FitState) {
        let end_of_epoch = state.iter == state.n_iter
            || state.iters_per_epoch > 0 && state.iter.is_multiple_of(state.iters_per_epoch);
        if end_of_epoch || self.last_batch.is_none_or(|t| t.elapsed() >= BATCH_EVERY) {
            self.last_batch = Some(Instant::now());
            self.call("after_batch", (state.iter, state.loss));
        }
    }

    fn after_epoch(&mut self, _state: &mut FitState, metrics: &EpochMetrics) {
        let json = serde_json::to_string(metrics).unwrap_or_default();
        self.call("after_epoch", (json,));
    }

    fn after_fit(&mut self, _state: &mut FitState) {
        self.call("after_fit", ());
    }

    fn note(&mut self, text: &str) {
        self.call("note", (text.to_string(),));
    }

    fn cancelled(&mut self) -> bool {
        if self.caught.lock().map(|c| c.is_some()).unwrap_or(true) {
            return true;
        }
        Python::attach(|py| match py.check_signals() {
            Ok(()) => false,
            Err(e) => {
                keep(&self.caught, e);
                true
            }
        })
    }
}

/// Runs `work` (the engine, with the GIL released) with a listener that reports to `progress`;
/// an exception raised meanwhile (Ctrl-C as `KeyboardInterrupt`, an error of `progress`) is
/// raised once `work` has stopped, else the engine's error as its Python exception.
pub fn run<T: Send>(
    py: Python<'_>,
    progress: Option<Py<PyAny>>,
    work: impl FnOnce(Listen) -> fastvision::Result<T> + Send,
) -> PyResult<T> {
    let caught = Arc::new(Mutex::new(None));
    let listener = PyListener {
        progress,
        caught: caught.clone(),
        last_batch: None,
    };
    let out = py.detach(|| work(Listen::new(listener)));
    let kept = caught.lock().unwrap_or_else(|p| p.into_inner()).take();
    match (out, kept) {
        (_, Some(e)) => Err(e),
        (Ok(v), None) => Ok(v),
        (Err(e), None) => Err(to_py(e)),
    }
}

/// [`run`] for work that writes the folder `dir`: a stop (`KeyboardInterrupt`) says that the
/// folder keeps what is done and how `resume` continues it.
pub fn run_in<T: Send>(
    py: Python<'_>,
    progress: Option<Py<PyAny>>,
    dir: &std::path::Path,
    resume: &str,
    work: impl FnOnce(Listen) -> fastvision::Result<T> + Send,
) -> PyResult<T> {
    run(py, progress, work).map_err(|e| {
        if e.is_instance_of::<pyo3::exceptions::PyKeyboardInterrupt>(py) && dir.exists() {
            pyo3::exceptions::PyKeyboardInterrupt::new_err(format!(
                "stopped: {} keeps what is done; {resume} continues it",
                dir.display()
            ))
        } else {
            e
        }
    })
}
