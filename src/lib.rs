//! fastvision: train image classifiers with the fastai playbook, in Rust, on burn.
//!
//! The library does the work; the `fastvision` binary is a thin CLI over it. Tensors live on a
//! burn [`Device`](burn::tensor::Device): the backend (flex on the CPU by default, libtorch with
//! the `tch` feature, a GPU through wgpu with `gpu`) is chosen at run time, in one place,
//! [`backend`] ([`device`]).

// Outside tests, the library neither unwraps nor expects: an error is returned, or the site says
// why the value cannot be missing (`allow` with a reason).
#![cfg_attr(not(test), warn(clippy::unwrap_used, clippy::expect_used))]
// Every public item says what it is and why, in one line at least.
#![warn(missing_docs)]

pub mod backend;
pub mod bench;
pub mod clean;
pub mod data;
pub mod distributed;
pub mod ensemble;
pub mod error;
pub mod gan;
pub mod infer;
pub mod interpret;
pub mod io;
pub mod learner;
pub mod models;
pub mod ops;
pub mod playbook;
pub mod report;

pub mod run;
pub mod run_dir;
pub mod tabular;
pub mod text;
pub mod vision;
pub mod weights;

pub use backend::device;
pub use burn;
pub use error::{Error, Result};

/// The types most programs need.
pub mod prelude {
    pub use crate::data::{DataLoaders, ImageFolder, ItemTransform, SplitConfig};
    pub use crate::error::{Error, Result};
    pub use crate::infer::{Predictor, load_bundle, save_bundle};
    pub use crate::learner::{Callback, Learner, OneCycle, Schedule};
    pub use crate::models::{Arch, ClassifierConfig, ImageClassifier};
}
