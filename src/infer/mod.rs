//! Inference: the model bundle, prediction and evaluation.

pub mod bundle;
pub mod combine;
pub mod ensemble;
pub mod evaluate;
pub mod export;
pub mod predict;
pub mod tta;

pub use bundle::{BundleConfig, load_bundle, save_bundle};
pub use combine::Combination;
pub use ensemble::{EnsembleFile, Member, is_ensemble};
pub use evaluate::{Evaluation, evaluate};
pub use export::{export_bundle, export_model, export_model_onnx, export_onnx, onnx};
pub use predict::{Prediction, Predictor};
pub use tta::{Inference, Tta};
