//! The library's error type: every failure names the file or setting at fault.

use std::path::PathBuf;

/// Errors returned by fastvision's library functions.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// An I/O failure on a named path.
    #[error("{path}: {source}")]
    Io {
        /// The file or folder involved.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// A dataset folder is not laid out as expected.
    #[error("{path}: {message}")]
    Dataset {
        /// The folder at fault.
        path: PathBuf,
        /// What is wrong with it.
        message: String,
    },
    /// An image could not be decoded.
    #[error("{path}: {message}")]
    Image {
        /// The image file.
        path: PathBuf,
        /// Why it was refused.
        message: String,
    },
    /// A model bundle, checkpoint or weight file is missing or malformed.
    #[error("{path}: {message}")]
    Model {
        /// The file at fault.
        path: PathBuf,
        /// What is wrong with it.
        message: String,
    },
    /// A download failed or its file did not verify.
    #[error("{url}: {message}")]
    Download {
        /// The address.
        url: String,
        /// What went wrong.
        message: String,
    },
    /// A table (CSV) is malformed at a line and column, or does not fit the model.
    #[error("{path}{location}: {message}")]
    Table {
        /// The file at fault.
        path: PathBuf,
        /// `:LINE` and/or `, column "NAME"` (empty when the whole file is at fault).
        location: String,
        /// What is wrong.
        message: String,
    },
    /// A run failed after its first checkpoint: its folder is kept.
    #[error("{source} (the run folder {} keeps its finished epochs: resume it, or remove it)", run.display())]
    RunKept {
        /// The run folder.
        run: PathBuf,
        /// What went wrong.
        source: Box<Error>,
    },
    /// The requested compute device cannot be used.
    #[error("{0}")]
    Device(String),
    /// A setting is out of range or inconsistent.
    #[error("invalid setting: {0}")]
    Config(String),
}

impl Error {
    /// Wraps an I/O error with the path it concerns.
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io {
            path: path.into(),
            source,
        }
    }

    /// A model/bundle error naming its file.
    pub fn model(path: impl Into<PathBuf>, message: impl Into<String>) -> Self {
        Error::Model {
            path: path.into(),
            message: message.into(),
        }
    }
}

impl Error {
    /// A table error at `line` (1-based, as an editor counts) and `column`, when known.
    pub fn table(
        path: impl Into<PathBuf>,
        line: Option<u64>,
        column: Option<&str>,
        message: impl Into<String>,
    ) -> Self {
        let mut location = String::new();
        if let Some(l) = line {
            location.push_str(&format!(":{l}"));
        }
        if let Some(c) = column {
            location.push_str(&format!(", column \"{c}\""));
        }
        Error::Table {
            path: path.into(),
            location,
            message: message.into(),
        }
    }
}

/// Result alias used throughout the library.
pub type Result<T, E = Error> = std::result::Result<T, E>;
