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

/// Result alias used throughout the library.
pub type Result<T, E = Error> = std::result::Result<T, E>;
