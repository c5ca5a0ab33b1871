//! The image application: settings and their plan (`config`), a learner kept in memory between
//! fits as a notebook drives one (`learner`), and runs on the `Learner` in a
//! `RunDir` — train, resume, show-batch (`run`), the LR range test and measuring the machine
//! (`lr_find`) — with SGDR snapshots kept as an ensemble folder (`snapshots`).

pub mod config;
pub mod learner;
pub mod lr_find;
pub mod prepare;
pub mod run;
pub mod snapshots;

pub use crate::run::{has_checkpoint, lr_find_into};
pub use config::{DEFAULT_MIN_SCALE, ScheduleKind, TrainConfig, default_aug};
pub use learner::VisionLearner;
pub use lr_find::{Measured, lr_find, measure};
pub use run::{
    RunSummary, VisionRecipe, data_config, fit_batch_size, load_config, load_data, resume,
    show_batch, train, train_in_memory, training_data,
};
