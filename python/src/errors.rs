//! The library's errors as Python exceptions, each carrying the library's message:
//! `FileNotFoundError` for a missing file or folder, `ValueError` for a bad setting or bad
//! data, `KeyboardInterrupt` for a cancelled fit, `OSError`/`RuntimeError` for the rest.

use std::io::ErrorKind;

use fastvision::Error;
use pyo3::PyErr;
use pyo3::exceptions::{
    PyFileExistsError, PyFileNotFoundError, PyKeyboardInterrupt, PyOSError, PyPermissionError,
    PyRuntimeError, PyValueError,
};

/// The Python exception for `e`.
pub fn to_py(e: Error) -> PyErr {
    let message = e.to_string();
    match kind(&e) {
        Kind::NotFound => PyFileNotFoundError::new_err(message),
        Kind::Exists => PyFileExistsError::new_err(message),
        Kind::Permission => PyPermissionError::new_err(message),
        Kind::Os => PyOSError::new_err(message),
        Kind::Value => PyValueError::new_err(message),
        Kind::Cancelled => PyKeyboardInterrupt::new_err(message),
        Kind::Runtime => PyRuntimeError::new_err(message),
    }
}

enum Kind {
    NotFound,
    Exists,
    Permission,
    Os,
    Value,
    Cancelled,
    Runtime,
}

fn kind(e: &Error) -> Kind {
    match e {
        Error::Io { source, .. } => match source.kind() {
            ErrorKind::NotFound => Kind::NotFound,
            ErrorKind::AlreadyExists => Kind::Exists,
            ErrorKind::PermissionDenied => Kind::Permission,
            _ => Kind::Os,
        },
        Error::Model { path, .. } | Error::Dataset { path, .. } | Error::Image { path, .. }
            if !path.exists() =>
        {
            Kind::NotFound
        }
        Error::Model { .. }
        | Error::Dataset { .. }
        | Error::Image { .. }
        | Error::Table { .. }
        | Error::Config(_) => Kind::Value,
        Error::Download { .. } => Kind::Os,
        Error::RunKept { source, .. } => kind(source),
        Error::Cancelled => Kind::Cancelled,
        Error::Device(_) | Error::Diverged(_) => Kind::Runtime,
    }
}
