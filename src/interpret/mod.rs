//! Interpretation of a trained model on labelled images (fastai's
//! `ClassificationInterpretation`): per-image losses, top losses, confusion matrix, most-confused
//! pairs and per-class precision / recall / F1, written into the run folder with its report
//! section.

pub mod dataset;
pub mod interpretation;
pub mod report;

pub use dataset::{Split, items_in_vocab, run_dataset};
pub use interpretation::{ClassReport, ImageLoss, Interpretation, image_losses, interpret};
pub use report::{
    InterpretOptions, InterpretReport, interpret_folder, interpret_run, plot_top_losses,
};
