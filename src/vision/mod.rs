//! The image application: settings and their plan (`config`), and runs on the `Learner` in a
//! `RunDir` — train, resume, LR range test, show-batch (`run`) — with SGDR snapshots kept as an
//! ensemble folder (`snapshots`).

pub mod config;
pub mod run;
pub mod snapshots;

pub use config::{DEFAULT_MIN_SCALE, ScheduleKind, TrainConfig, default_aug, progressive_plan};
pub use run::{
    Measured, RunSummary, data_config, fit_batch_size, has_checkpoint, load_config, load_data,
    lr_find, lr_find_into, measure, resume, show_batch, train, train_in_memory, training_data,
};
