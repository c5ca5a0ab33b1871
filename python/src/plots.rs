//! Plots of an interpretation as PNG bytes, for a notebook to show: the confusion matrix and
//! the top losses.

use fastvision::report::plot::{plot_confusion, plot_confusion_normalized};
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;

use crate::errors::to_py;
use crate::settings::{read, scratch};

/// Registers the plotting functions.
pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(plot_confusion_matrix, m)?)?;
    m.add_function(wrap_pyfunction!(plot_top_losses, m)?)?;
    Ok(())
}

/// A confusion matrix (rows: actual) as a PNG: counts, or with `normalize` each row's fractions.
#[pyfunction]
fn plot_confusion_matrix(
    py: Python<'_>,
    matrix: Vec<Vec<usize>>,
    vocab: Vec<String>,
    normalize: bool,
) -> PyResult<Vec<u8>> {
    let k = vocab.len();
    if matrix.len() != k || matrix.iter().any(|r| r.len() != k) {
        return Err(PyValueError::new_err(format!(
            "a confusion matrix of {k} classes is {k}×{k}"
        )));
    }
    let dir = scratch()?;
    let png = dir.path().join("confusion.png");
    py.detach(|| {
        if normalize {
            let rows: Vec<Vec<f64>> = matrix
                .iter()
                .map(|r| {
                    let n = r.iter().sum::<usize>().max(1) as f64;
                    r.iter().map(|&v| v as f64 / n).collect()
                })
                .collect();
            plot_confusion_normalized(&rows, &vocab, &png)
        } else {
            plot_confusion(&matrix, &vocab, &png)
        }
    })
    .map_err(to_py)?;
    read(&png)
}

/// Images with their losses (JSON, as an interpretation lists them) as a PNG grid captioned
/// "predicted / actual" and "loss / probability".
#[pyfunction]
fn plot_top_losses(py: Python<'_>, images: &str, vocab: Vec<String>) -> PyResult<Vec<u8>> {
    let images: Vec<fastvision::interpret::ImageLoss> = serde_json::from_str(images)
        .map_err(|e| PyValueError::new_err(format!("not a list of image losses: {e}")))?;
    if let Some(bad) = images
        .iter()
        .find(|im| im.actual >= vocab.len() || im.predicted >= vocab.len())
    {
        return Err(PyValueError::new_err(format!(
            "{}: a class index outside the {} classes",
            bad.path.display(),
            vocab.len()
        )));
    }
    let dir = scratch()?;
    let png = dir.path().join("top_losses.png");
    py.detach(|| fastvision::interpret::plot_top_losses(&images, &vocab, &png))
        .map_err(to_py)?;
    read(&png)
}
