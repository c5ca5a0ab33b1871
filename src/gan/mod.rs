//! A Wasserstein GAN (fastai's `GANLearner.wgan`) that learns each class — or all classes with
//! one conditional GAN — and writes synthetic training images, with GAN-test / GAN-train scores
//! and `train --extra-data` to use them.

pub mod data;
pub mod outputs;
pub mod run;
pub mod sample;
pub mod score;
pub mod step;
pub mod train;

pub use crate::data::extra;
pub use run::{GanRunConfig, NetInfo};
pub use step::{Wgan, gan_learner};
pub use train::GanConfig;
