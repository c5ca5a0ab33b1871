//! Training: the Learner, its callbacks, schedules, optimizer, metrics and checkpoints.

pub mod callback;
pub mod cancel;
pub mod checkpoint;
pub mod data_parallel;
pub mod fingerprint;
#[allow(clippy::module_inception)]
pub mod learner;
pub mod loss;
pub mod lr_find;
pub mod metrics;
pub mod mixup;
pub mod optimizer;
pub mod param_groups;
pub mod precision;
pub mod schedule;
pub mod stage;
pub mod step;
pub mod task;

pub use callback::{Callback, FitState, LearnerView, Listen, Listener};
pub use cancel::Cancel;
pub use checkpoint::Checkpoint;
pub use learner::Learner;
pub use loss::LossFunc;
pub use metrics::{EpochMetrics, Recorder};
pub use mixup::{CutMix, MixUp};
pub use optimizer::{Adam, AdamConfig};
pub use param_groups::Lrs;
pub use precision::{GradScaler, Precision};
pub use schedule::{OneCycle, Schedule};
pub use stage::{Stage, fine_tune_stages};
pub use step::{StepContext, StepKind, StepLoss};
pub use task::{TrainData, Trainable, Validation};
