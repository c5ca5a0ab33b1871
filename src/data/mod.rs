//! Data: sources, split, decoding, item transforms, the parallel loader and the demo dataset.

pub mod augment;
pub mod decode;
pub mod demo;
pub mod extra;
pub mod loader;
pub mod sample;
pub mod source;
pub mod split;
pub mod transform;

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

pub use augment::{AugLevel, AugTransforms};
pub use loader::{Batch, DataLoader, DataLoaders, Mix};
pub use source::{ImageFolder, SplitConfig};
pub use transform::{ItemTransform, Normalize};

/// One labelled image file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Item {
    /// The image file.
    pub path: PathBuf,
    /// Index of its class in the vocab.
    pub label: usize,
}

/// A file left out of the dataset, with the reason.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Skipped {
    /// The file.
    pub path: PathBuf,
    /// Why it was left out.
    pub reason: String,
}

impl Skipped {
    /// Records that `path` was skipped because of `reason`.
    pub fn new(path: &Path, reason: &str) -> Self {
        Self {
            path: path.into(),
            reason: reason.into(),
        }
    }
}

/// Formats skipped files one per line (`path: reason`), as written to `skipped.txt`; control
/// characters in a name (a newline, say) are escaped, so one file is always one line.
pub fn skipped_report(skipped: &[Skipped]) -> String {
    skipped
        .iter()
        .map(|s| {
            format!(
                "{}: {}\n",
                one_line(&s.path.display().to_string()),
                one_line(&s.reason)
            )
        })
        .collect()
}

/// `text` with its control characters escaped (`\n`, `\u{1b}`), to fit on one line.
pub fn one_line(text: &str) -> String {
    text.chars()
        .map(|c| {
            if c.is_control() {
                c.escape_default().to_string()
            } else {
                c.to_string()
            }
        })
        .collect()
}
