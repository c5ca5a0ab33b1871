//! What a run's labels mean: the class list and the training images per class, recorded in every
//! checkpoint so that a resume on relabelled data is refused.

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// The class list a run trains on and how many training items each class has: what a resume
/// must find again for its labels to mean what they meant.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DataFingerprint {
    /// Class names in label order.
    pub classes: Vec<String>,
    /// Training items per class, in the same order.
    pub counts: Vec<usize>,
}

impl DataFingerprint {
    /// Refuses data whose classes are not the checkpoint's (`self`): a resume would train on
    /// permuted or missing labels. Changed counts alone are said in the returned note.
    pub fn check_resume(&self, now: &DataFingerprint, data: &Path) -> Result<Option<String>> {
        if self.classes != now.classes {
            return Err(Error::Dataset {
                path: data.into(),
                message: format!(
                    "its classes changed since the run's checkpoint, so resuming would train on \
                     other labels: the run trained on [{}], the folder now has [{}]; restore the \
                     folder or train a new run",
                    self.classes.join(", "),
                    now.classes.join(", ")
                ),
            });
        }
        Ok((self.counts != now.counts).then(|| {
            format!(
                "the data changed since the checkpoint (training items per class: {:?} then, {:?} now); training goes on with the data as it is",
                self.counts, now.counts
            )
        }))
    }
}
