//! Data cleaning: confusing images (in-sample or out of fold), quarantine with a journal that
//! `clean --undo` replays backwards, and the local review page.

mod accept;
pub mod confusing;
pub mod journal;
pub mod safe_path;
pub mod server;

pub use confusing::{Flag, flags, out_of_fold};
pub use journal::{Journal, QUARANTINE_DIR};
pub use server::{ReviewItem, ReviewServer};
