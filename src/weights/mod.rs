//! Import of pretrained weights: torch checkpoints (`.pth` zip and legacy, `.pth.tar` training
//! checkpoints with a `state_dict`, `module.` prefixes) and safetensors, mapped onto our models.

pub mod hub;
pub mod import;
pub mod resolve;

pub use import::{ImportReport, load_pretrained_body};
pub use resolve::{cache_dir, resolve_pretrained};
