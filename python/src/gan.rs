//! Wasserstein GANs that learn each class of a dataset, and the synthetic images they write.

use std::path::PathBuf;

use fastvision::gan::GanConfig;
use fastvision::gan::run::{self as gan_run, GanRunConfig};
use fastvision::gan::sample;
use pyo3::prelude::*;

use crate::errors::to_py;
use crate::listen;

/// Registers `train_gan` and `gan_sample`.
pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(train_gan, m)?)?;
    m.add_function(wrap_pyfunction!(gan_sample, m)?)?;
    Ok(())
}

/// Trains a WGAN per class of `data` (`None` = the demo; `classes` = some of them; one
/// `conditional` net for all) into the new folder `path` (default `runs/gan-<time>`); returns
/// (the folder, its net folders).
#[pyfunction]
#[pyo3(signature = (data=None, epochs=10, size=32, bs=64, lr=2e-4, n_crit=5, classes=None, conditional=false, seed=0, path=None, progress=None))]
#[allow(clippy::too_many_arguments)]
fn train_gan(
    py: Python<'_>,
    data: Option<PathBuf>,
    epochs: usize,
    size: usize,
    bs: usize,
    lr: f64,
    n_crit: usize,
    classes: Option<Vec<String>>,
    conditional: bool,
    seed: u64,
    path: Option<PathBuf>,
    progress: Option<Py<PyAny>>,
) -> PyResult<(String, Vec<String>)> {
    let config = GanRunConfig {
        data,
        classes,
        conditional,
        gan: GanConfig {
            size,
            bs,
            lr,
            n_crit,
            epochs,
            seed,
            ..GanConfig::default()
        },
    };
    let dir = crate::settings::new_run(path, "gan")?;
    let device = fastvision::device();
    let hint = format!("`fastvision gan train --resume {}`", dir.display());
    let nets = listen::run_in(py, progress, &dir, &hint, |l| {
        gan_run::train(&config, &dir, false, &device, l)
    })?;
    Ok((
        dir.display().to_string(),
        nets.iter().map(|n| n.display().to_string()).collect(),
    ))
}

/// Writes `n` synthetic images per class from the GAN run `run` into `out` (class folders, as
/// `extra_data` takes them); returns how many.
#[pyfunction]
#[pyo3(signature = (run, n, out, seed=0))]
fn gan_sample(py: Python<'_>, run: PathBuf, n: usize, out: PathBuf, seed: u64) -> PyResult<usize> {
    let device = fastvision::device();
    let m = py
        .detach(|| sample::sample(&run, n, seed, &out, &device))
        .map_err(to_py)?;
    Ok(m.classes.iter().map(|c| c.1).sum())
}
