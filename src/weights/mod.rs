//! Weights on disk: a model's own safetensors file, and the import of pretrained weights (torch
//! checkpoints: `.pth` zip and legacy, `.pth.tar` training checkpoints with a `state_dict`,
//! `module.` prefixes; safetensors) mapped onto our models, with the named-checkpoint hub.

pub mod hub;
pub mod import;
pub mod resolve;
pub mod safetensors;

pub use import::{ImportReport, load_pretrained_body};
pub use resolve::{cache_dir, resolve_pretrained};
pub use safetensors::{WEIGHTS_FILE, load_weights, safetensors_metadata, save_weights};
