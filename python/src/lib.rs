//! fastvision's Python package, `fastvision._engine`: thin bindings over the Rust library's
//! public API — the Python layer in `python/fastvision/` speaks fastai's vocabulary over them —
//! and the command line itself for `python -m fastvision`. The GIL is released while the engine
//! works; errors become Python exceptions carrying the library's message.

// The command line, compiled from the binary's own sources: `python -m fastvision` is the same
// program as `fastvision`, not a copy of it.
mod clean;
#[path = "../../src/cli/mod.rs"]
#[allow(dead_code, missing_docs)]
mod cli;
mod ensemble;
mod errors;
mod gan;
mod listen;
mod playbook;
mod plots;
mod settings;
mod tabular;
mod vision;

use pyo3::prelude::*;

/// Runs the command line with `argv` (the program's name first) and returns its exit code.
#[pyfunction]
fn cli_main(py: Python<'_>, argv: Vec<String>) -> u8 {
    py.detach(|| cli::main_with(argv.into_iter().map(Into::into)))
}

/// The compute device the engine uses, in words (the CPU, or a GPU with the `gpu` feature).
#[pyfunction]
fn device_description() -> PyResult<String> {
    let choice = fastvision::backend::DeviceChoice::from_env().map_err(errors::to_py)?;
    Ok(fastvision::backend::select(choice)
        .map_err(errors::to_py)?
        .description)
}

/// The demo dataset's folder: `$FASTVISION_DEMO`, else `data/demo` of the clone the package
/// was built from.
#[pyfunction]
fn demo_path() -> PyResult<String> {
    let path = fastvision::data::demo::demo_path().map_err(errors::to_py)?;
    Ok(path.display().to_string())
}

/// The native module.
#[pymodule]
fn _engine(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(cli_main, m)?)?;
    m.add_function(wrap_pyfunction!(device_description, m)?)?;
    m.add_function(wrap_pyfunction!(demo_path, m)?)?;
    vision::register(m)?;
    plots::register(m)?;
    tabular::register(m)?;
    playbook::register(m)?;
    ensemble::register(m)?;
    gan::register(m)?;
    clean::register(m)?;
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    Ok(())
}
