//! Ensembles of diverse models: members trained as ordinary runs (different architectures,
//! seeds, bootstrap samples or folds, or the snapshots of one SGDR run), combined into one
//! predictor, with a report of how each member, the ensemble and every pair compare; and
//! hyper-parameter trials, planned as the members of one folder.

pub mod folder;
pub mod report;
pub mod select;
pub mod train;
pub mod trials;
pub mod weights;

pub use crate::data::sample::{self, Sampling};
pub use crate::infer::combine::{self, Combination};
pub use crate::infer::ensemble::{EnsembleFile, Member, is_ensemble};
