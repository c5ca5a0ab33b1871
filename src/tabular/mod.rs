//! Structured data: a tabular learner from a CSV file — fastai's processing (Categorify,
//! FillMissing, Normalize), its `TabularModel` with entity embeddings, trained by the same
//! [`Learner`](crate::learner::Learner), with prediction, evaluation, learned-embedding export
//! and permutation importance.

pub mod config;
pub mod data;
pub mod embeddings;
pub mod importance;
pub mod model;
pub mod predict;
pub mod process;
pub mod report;
pub mod run;
pub mod table;

pub use data::{TabBatch, TabularDataLoaders};
pub use model::{TabularModel, TabularModelConfig};
pub use process::{Processor, Target};
pub use run::{TabularConfig, ValidSpec};
pub use table::Table;
