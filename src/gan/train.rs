//! A WGAN's settings (fastai's `GANLearner.wgan` recipe: 5 critic batches per generator batch,
//! critic weights clipped to [−0.01, 0.01], Adam with momentum 0 at a constant 2e-4, no weight
//! decay), its networks, noise, sampling and per-epoch outputs; the step itself is
//! [`super::step`].

use std::path::Path;

use burn::module::{Module, ModuleMapper, Param};
use burn::tensor::{Device, Int, Tensor, TensorData};
use rand::SeedableRng;
use rand::rngs::StdRng;
use rand_distr::{Distribution, StandardNormal};
use serde::{Deserialize, Serialize};

use super::data::to_rgb;
use crate::data::loader::mix;
use crate::error::{Error, Result};
use crate::learner::{Recorder, StepKind};
use crate::models::gan::{Critic, CriticConfig, Generator, GeneratorConfig};
use crate::report::grid::{Tile, image_grid};
use crate::report::plot::plot_lines;

/// Settings of a WGAN run (fastai's recipe as defaults).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GanConfig {
    /// Image side (power of two ≥ 16).
    pub size: usize,
    /// Batch size (fastai: 64).
    pub bs: usize,
    /// Learning rate of both optimizers (fastai: 2e-4), constant.
    pub lr: f64,
    /// Critic weight clipping (fastai: 0.01).
    pub clip: f64,
    /// Critic batches per generator batch (fastai's `FixedGANSwitcher`: 5).
    pub n_crit: usize,
    /// Epochs (passes over the real images).
    pub epochs: usize,
    /// Seed of initialisation, shuffling, noise and the sample grid.
    pub seed: u64,
    /// Feature width of both networks (fastai: 64).
    pub n_features: usize,
    /// Extra layers of both networks (fastai's examples: 1).
    pub n_extra_layers: usize,
    /// Noise length (fastai: 100).
    pub noise: usize,
}

impl Default for GanConfig {
    fn default() -> Self {
        Self {
            size: 32,
            bs: 64,
            lr: 2e-4,
            clip: 0.01,
            n_crit: 5,
            epochs: 10,
            seed: 0,
            n_features: 64,
            n_extra_layers: 1,
            noise: 100,
        }
    }
}

impl GanConfig {
    /// Checks every setting; each message names the setting and its allowed range.
    pub fn validate(&self) -> Result<()> {
        let bad = |m: String| Err(Error::Config(m));
        crate::models::gan::check_size(self.size)?;
        if self.bs < 2 {
            return bad(format!(
                "`bs` {}: at least 2 (the critic's BatchNorm needs two images per batch)",
                self.bs
            ));
        }
        if self.epochs == 0 {
            return bad("`epochs` 0: train at least one epoch".into());
        }
        if self.n_crit == 0 {
            return bad("`n_crit` 0: at least one critic step per generator step".into());
        }
        if !(self.lr > 0.0 && self.lr.is_finite()) {
            return bad(format!("`lr` {}: a positive learning rate", self.lr));
        }
        if !(self.clip > 0.0 && self.clip.is_finite()) {
            return bad(format!("`clip` {}: a positive clipping bound", self.clip));
        }
        if self.n_features == 0 || self.noise == 0 {
            return bad("`n_features` and `noise`: at least 1".into());
        }
        for (name, v, max) in [
            ("n_features", self.n_features, MAX_FEATURES),
            ("noise", self.noise, MAX_FEATURES),
            ("n_extra_layers", self.n_extra_layers, 64),
            ("epochs", self.epochs, 100_000),
            ("n_crit", self.n_crit, 1_000),
        ] {
            if v > max {
                return bad(format!("`{name}` {v}: at most {max}"));
            }
        }
        Ok(())
    }
}

/// The most features of the first critic layer, and noise channels, a GAN is built with
/// (DCGAN's are 64 and 100).
pub const MAX_FEATURES: usize = 4096;

/// Clamps every float parameter to [−c, c] (WGAN weight clipping), keeping them trainable leaves.
struct Clip(f64);

impl ModuleMapper for Clip {
    fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
        let c = self.0;
        param.map(|t| t.clamp(-c, c).detach().require_grad())
    }
}

/// Clips every parameter of `critic` to [−c, c].
pub fn clip_weights(critic: Critic, c: f64) -> Critic {
    critic.map(&mut Clip(c))
}

/// Standard-normal noise `[n, len]` from a seed (not from the device's global RNG).
pub fn noise(n: usize, len: usize, seed: u64) -> Vec<f32> {
    let mut rng = StdRng::seed_from_u64(seed);
    (0..n * len)
        .map(|_| StandardNormal.sample(&mut rng))
        .collect()
}

/// The network settings of a run.
pub fn net_configs(
    config: &GanConfig,
    channels: usize,
    n_classes: usize,
) -> (GeneratorConfig, CriticConfig) {
    (
        GeneratorConfig::new(config.size, channels)
            .with_noise(config.noise)
            .with_n_features(config.n_features)
            .with_n_extra_layers(config.n_extra_layers)
            .with_n_classes(n_classes),
        CriticConfig::new(config.size, channels)
            .with_n_features(config.n_features)
            .with_n_extra_layers(config.n_extra_layers)
            .with_n_classes(n_classes),
    )
}

/// Images from a generator (eval mode) for `n` noise vectors drawn from `seed`.
pub fn generate(
    generator: &Generator,
    noise_len: usize,
    n: usize,
    classes: Option<Vec<i64>>,
    seed: u64,
    device: &Device,
) -> Vec<f32> {
    let device = device.clone().without_autodiff();
    let g = generator.valid();
    let mut out = Vec::new();
    for start in (0..n).step_by(256) {
        let m = (n - start).min(256);
        let z = Tensor::from_data(
            TensorData::new(
                noise(m, noise_len, mix(seed, start as u64, 3)),
                [m, noise_len],
            ),
            &device,
        );
        let y = classes.as_ref().map(|c| {
            Tensor::<1, Int>::from_data(TensorData::new(c[start..start + m].to_vec(), [m]), &device)
        });
        let px: Vec<f32> = g
            .forward(z, y)
            .into_data()
            .convert::<f32>()
            .try_to_vec::<f32>()
            .unwrap_or_default();
        out.extend(px);
    }
    out
}

/// Writes a square-ish grid of `n` generated images.
pub fn write_grid(px: &[f32], n: usize, channels: usize, size: usize, path: &Path) -> Result<()> {
    let len = channels * size * size;
    let tiles: Vec<Tile> = px
        .chunks(len)
        .take(n)
        .map(|p| Tile {
            image: to_rgb(p, channels, size),
            caption: Vec::new(),
        })
        .collect();
    let cols = (n as f64).sqrt().ceil() as usize;
    image_grid(&tiles, cols, (size as u32).max(48), path)
}

/// `losses.png`: the critic's Wasserstein estimate and the generator's loss per step.
pub fn plot_gan_losses(log: &Recorder, path: &Path) -> Result<()> {
    let (mut w, mut g) = (Vec::new(), Vec::new());
    for (i, s) in log.batches.iter().enumerate() {
        if s.kind == StepKind::Generator {
            g.push((i as f64, s.loss));
        } else {
            w.push((i as f64, -s.loss));
        }
    }
    plot_lines(
        &[("critic: Wasserstein estimate", w), ("generator loss", g)],
        ("WGAN losses", "step"),
        path,
    )
}
