//! Ensembles of diverse models: members trained as ordinary runs (different architectures,
//! seeds, bootstrap samples or folds, or the snapshots of one SGDR run), combined into one
//! predictor, with a report of how each member, the ensemble and every pair compare.

pub mod combine;
pub mod folder;
pub mod report;
pub mod sample;
pub mod train;
pub mod weights;

pub use combine::Combination;
pub use folder::{EnsembleFile, Member, Sampling, is_ensemble};
