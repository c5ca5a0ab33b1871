//! Inference: the model bundle, prediction and evaluation.

pub mod bundle;
pub mod evaluate;
pub mod predict;
pub mod tta;

pub use bundle::{BundleConfig, export_bundle, load_bundle, save_bundle};
pub use evaluate::{Evaluation, evaluate};
pub use predict::{Prediction, Predictor};
pub use tta::{Inference, Tta};
