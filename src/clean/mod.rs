//! Interpretation and data cleaning: per-image losses, confusing images, quarantine with a
//! journal, and the local review page.

pub mod confusing;
pub mod dataset;
pub mod interpret;
pub mod journal;
pub mod report;
pub mod safe_path;
pub mod server;

pub use confusing::{Flag, flags, out_of_fold};
pub use dataset::{Split, items_in_vocab, run_dataset};
pub use interpret::{ClassReport, ImageLoss, Interpretation, interpret};
pub use journal::{Journal, QUARANTINE_DIR};
pub use report::{InterpretOptions, InterpretReport, interpret_run};
pub use server::{ReviewItem, ReviewServer};
