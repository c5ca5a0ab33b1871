//! The image application: settings and their plan (`config`), and runs on the `Learner` in a
//! `RunDir` — train, resume, show-batch (`run`), the LR range test and measuring the machine
//! (`lr_find`) — with SGDR snapshots kept as an ensemble folder (`snapshots`).

pub mod config;
pub mod lr_find;
pub mod run;
pub mod snapshots;

pub use config::{DEFAULT_MIN_SCALE, ScheduleKind, TrainConfig, default_aug, progressive_plan};
pub use lr_find::{Measured, lr_find, measure};
pub use run::{
    RunSummary, data_config, fit_batch_size, has_checkpoint, load_config, load_data, lr_find_into,
    resume, show_batch, train, train_in_memory, training_data,
};
