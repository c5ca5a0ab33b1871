//! Training: the Learner, its callbacks, schedules, optimizer, metrics and checkpoints.

pub mod callback;
pub mod checkpoint;
#[allow(clippy::module_inception)]
pub mod learner;
pub mod metrics;
pub mod optimizer;
pub mod progress;
pub mod schedule;

pub use callback::{Callback, FitState};
pub use learner::Learner;
pub use metrics::{EpochMetrics, Recorder};
pub use optimizer::{Adam, AdamConfig};
pub use schedule::{OneCycle, Schedule};
