//! Runs: the one driver every training run goes through (refuse or create the run folder,
//! prepare, LR range test, settings, train, fail with the folder kept or removed, finish,
//! resume), given a [`Recipe`] — an image classifier, a tabular model, one GAN net, each
//! playbook step — and the one epoch plan (stages of size × epochs × LR) they share.

pub mod driver;
pub mod plan;
pub mod recipe;

pub use driver::{has_checkpoint, lr_find_into, resume, train, train_or_resume};
pub use plan::{EpochPlan, most_epochs, split_epochs};
pub use recipe::Recipe;
