//! fastai's `GANLearner.wgan`: a critic and a generator trained in turn (5 critic batches, then
//! 1 generator batch: `FixedGANSwitcher`), critic loss `mean(C(real)) − mean(C(fake))`, generator
//! loss `mean(C(fake))`, every critic weight clipped to [−0.01, 0.01] after each critic step,
//! fastai's Adam with momentum 0 at a constant 2e-4 and no weight decay.

use std::path::Path;
use std::time::Instant;

use burn::module::{Module, ModuleMapper, Param};
use burn::optim::{GradientsParams, ModuleOptimizer};
use burn::tensor::{Device, Int, Tensor, TensorData};
use rand::SeedableRng;
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand_distr::{Distribution, StandardNormal};
use serde::{Deserialize, Serialize};

use super::data::{GanData, to_rgb};
use crate::data::loader::mix;
use crate::error::{Error, Result};
use crate::io::write_atomic;
use crate::learner::checkpoint::{self, CheckpointState};
use crate::learner::{Adam, AdamConfig, Callback, FitState, Recorder};
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
    /// Checks every setting; each message names the flag and its allowed range.
    pub fn validate(&self) -> Result<()> {
        let bad = |m: String| Err(Error::Config(m));
        crate::models::gan::check_size(self.size)?;
        if self.bs < 2 {
            return bad(format!(
                "--bs {}: at least 2 (the critic's BatchNorm needs two images per batch)",
                self.bs
            ));
        }
        if self.epochs == 0 {
            return bad("--epochs 0: train at least one epoch".into());
        }
        if self.n_crit == 0 {
            return bad("--n-crit 0: at least one critic step per generator step".into());
        }
        if !(self.lr > 0.0 && self.lr.is_finite()) {
            return bad(format!("--lr {}: a positive learning rate", self.lr));
        }
        if !(self.clip > 0.0 && self.clip.is_finite()) {
            return bad(format!("--clip {}: a positive clipping bound", self.clip));
        }
        if self.n_features == 0 || self.noise == 0 {
            return bad("--n-features and the noise length: at least 1".into());
        }
        Ok(())
    }
}

/// One step of the loop.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GanStep {
    /// Epoch.
    pub epoch: usize,
    /// Whether it trained the generator (else the critic).
    pub generator: bool,
    /// Its loss: the critic's `mean(C(real)) − mean(C(fake))` or the generator's `mean(C(fake))`.
    pub loss: f64,
}

/// The summary of one epoch.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GanEpoch {
    /// Epoch (0-based).
    pub epoch: usize,
    /// Mean Wasserstein estimate `mean(C(fake)) − mean(C(real))` over its critic steps.
    pub wasserstein: f64,
    /// Mean generator loss over its generator steps (none when the epoch had none).
    pub gen_loss: Option<f64>,
    /// Wall time, seconds.
    pub seconds: f64,
}

/// A GAN run's `log.json`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct GanLog {
    /// Every step.
    pub steps: Vec<GanStep>,
    /// Every epoch.
    pub epochs: Vec<GanEpoch>,
}

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

/// A generator and critic with their optimizers, trained on one set of real images.
pub struct WganTrainer {
    /// The generator (autodiff device).
    pub generator: Generator,
    /// The critic (autodiff device).
    pub critic: Critic,
    /// What was recorded so far.
    pub log: GanLog,
    /// Settings.
    pub config: GanConfig,
    /// Real images.
    pub data: GanData,
    /// Whether both nets are conditioned on the class.
    pub conditional: bool,
    g_opt: ModuleOptimizer,
    c_opt: ModuleOptimizer,
    device: Device,
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

fn optimizer() -> ModuleOptimizer {
    let adam = AdamConfig {
        mom: 0.0,
        wd: 0.0,
        ..AdamConfig::default()
    };
    Adam::module_optimizer(adam, &[Vec::new()]).0
}

impl WganTrainer {
    /// Builds both networks (seeded) for `data`; conditional nets take the class of each image.
    pub fn new(
        config: GanConfig,
        data: GanData,
        conditional: bool,
        device: &Device,
    ) -> Result<Self> {
        config.validate()?;
        let device = device.clone().autodiff();
        device.seed(config.seed);
        let n_classes = if conditional { data.classes.len() } else { 0 };
        let (g, c) = net_configs(&config, data.channels, n_classes);
        Ok(Self {
            generator: g.init(&device)?,
            critic: clip_weights(c.init(&device)?, config.clip),
            log: GanLog::default(),
            config,
            data,
            conditional,
            g_opt: optimizer(),
            c_opt: optimizer(),
            device,
        })
    }

    /// Epochs trained so far.
    pub fn epochs_done(&self) -> usize {
        self.log.epochs.len()
    }

    fn batch(&self, idx: &[usize]) -> (Tensor<4>, Tensor<1, Int>) {
        let (c, s) = (self.data.channels, self.data.size);
        let len = c * s * s;
        let mut px = Vec::with_capacity(idx.len() * len);
        for &i in idx {
            px.extend_from_slice(&self.data.images[i * len..(i + 1) * len]);
        }
        let labels: Vec<i64> = idx.iter().map(|&i| self.data.labels[i]).collect();
        (
            Tensor::from_data(TensorData::new(px, [idx.len(), c, s, s]), &self.device),
            Tensor::from_data(TensorData::new(labels, [idx.len()]), &self.device),
        )
    }

    fn classes(&self, y: &Tensor<1, Int>) -> Option<Tensor<1, Int>> {
        self.conditional.then(|| y.clone())
    }

    /// One critic step on real images `x` (classes `y`); returns its loss.
    pub fn critic_step(&mut self, x: Tensor<4>, y: Tensor<1, Int>, seed: u64) -> f64 {
        let n = x.dims()[0];
        let z = Tensor::from_data(
            TensorData::new(noise(n, self.config.noise, seed), [n, self.config.noise]),
            &self.device,
        );
        let fake = self.generator.forward(z, self.classes(&y)).detach();
        let real_pred = self.critic.forward(x, self.classes(&y)).mean();
        let fake_pred = self.critic.forward(fake, self.classes(&y)).mean();
        let loss = real_pred - fake_pred;
        let value = f64::from(loss.clone().into_scalar::<f32>());
        let grads = GradientsParams::from_grads(loss.backward(), &self.critic);
        let critic = self.c_opt.step(self.config.lr, self.critic.clone(), grads);
        self.critic = clip_weights(critic, self.config.clip);
        value
    }

    /// One generator step on `n` images of classes `y`; returns its loss.
    pub fn generator_step(&mut self, y: Tensor<1, Int>, seed: u64) -> f64 {
        let n = y.dims()[0];
        let z = Tensor::from_data(
            TensorData::new(noise(n, self.config.noise, seed), [n, self.config.noise]),
            &self.device,
        );
        let fake = self.generator.forward(z, self.classes(&y));
        let loss = self.critic.forward(fake, self.classes(&y)).mean();
        let value = f64::from(loss.clone().into_scalar::<f32>());
        let grads = GradientsParams::from_grads(loss.backward(), &self.generator);
        self.generator = self
            .g_opt
            .step(self.config.lr, self.generator.clone(), grads);
        value
    }

    /// Trains up to `config.epochs`, writing a checkpoint, the log, `losses.png` and a sample
    /// grid after every epoch into `dir` (when given). `callbacks` see each epoch begin and each
    /// step end (the loss of the step), and get each epoch's line as a note.
    pub fn fit(&mut self, dir: Option<&Path>, callbacks: &mut [Box<dyn Callback>]) -> Result<()> {
        let bs = self.config.bs;
        let n_batches = self.data.n / bs;
        if n_batches == 0 {
            return Err(Error::Config(format!(
                "{} real images are fewer than one batch ({bs})",
                self.data.n
            )));
        }
        let mut phase = 0usize;
        for epoch in self.epochs_done()..self.config.epochs {
            let t0 = Instant::now();
            let mut order: Vec<usize> = (0..self.data.n).collect();
            order.shuffle(&mut StdRng::seed_from_u64(mix(
                self.config.seed,
                epoch as u64,
                7,
            )));
            let mut st = FitState {
                epoch,
                n_epochs: self.config.epochs,
                iters_per_epoch: n_batches,
                n_iter: n_batches * self.config.epochs,
                iter: epoch * n_batches,
                lr: self.config.lr,
                ..FitState::default()
            };
            callbacks.iter_mut().for_each(|cb| cb.before_epoch(&mut st));
            let (mut wass, mut nw, mut gl, mut ng) = (0.0, 0usize, 0.0, 0usize);
            for b in 0..n_batches {
                let (x, y) = self.batch(&order[b * bs..(b + 1) * bs]);
                let seed = mix(self.config.seed, epoch as u64, b as u64 + 1);
                let generator = phase == self.config.n_crit;
                let loss = if generator {
                    phase = 0;
                    let l = self.generator_step(y, seed);
                    gl += l;
                    ng += 1;
                    l
                } else {
                    phase += 1;
                    let l = self.critic_step(x, y, seed);
                    wass -= l;
                    nw += 1;
                    l
                };
                self.log.steps.push(GanStep {
                    epoch,
                    generator,
                    loss,
                });
                st.loss = loss;
                st.iter += 1;
                callbacks.iter_mut().for_each(|cb| cb.after_batch(&mut st));
            }
            let e = GanEpoch {
                epoch,
                wasserstein: wass / nw.max(1) as f64,
                gen_loss: (ng > 0).then(|| gl / ng as f64),
                seconds: t0.elapsed().as_secs_f64(),
            };
            let line = format!(
                "{:>5}  {:>12.6}  {:>10}  {:02}:{:02}",
                e.epoch,
                e.wasserstein,
                e.gen_loss.map_or("-".into(), |g| format!("{g:.6}")),
                e.seconds as u64 / 60,
                e.seconds as u64 % 60
            );
            callbacks.iter_mut().for_each(|cb| cb.note(&line));
            self.log.epochs.push(e);
            if let Some(dir) = dir {
                self.save_epoch(dir)?;
            }
        }
        Ok(())
    }

    /// Generated images `[n, c, s, s]` in [-1, 1] (generator in eval mode) for classes `y`.
    pub fn generate(&self, n: usize, classes: Option<Vec<i64>>, seed: u64) -> Vec<f32> {
        generate(
            &self.generator,
            self.config.noise,
            n,
            classes,
            seed,
            &self.device,
        )
    }

    fn save_epoch(&self, dir: &Path) -> Result<()> {
        let samples = dir.join("samples");
        std::fs::create_dir_all(&samples).map_err(|e| Error::io(&samples, e))?;
        let n = 64;
        let classes = self.conditional.then(|| {
            (0..n)
                .map(|i| (i % self.data.classes.len()) as i64)
                .collect()
        });
        let px = self.generate(n, classes, mix(self.config.seed, 0xFACE, 0));
        let epoch = self.epochs_done() - 1;
        write_grid(
            &px,
            n,
            self.data.channels,
            self.data.size,
            &samples.join(format!("epoch_{epoch:03}.png")),
        )?;
        // Written before the checkpoint: a checkpoint of epoch N always finds the log of epoch N.
        write_atomic(
            &dir.join(crate::run_dir::LOG),
            &serde_json::to_vec(&self.log).map_err(|e| Error::model(dir, e.to_string()))?,
        )?;
        plot_gan_losses(&self.log, &dir.join("losses.png"))?;
        self.save_checkpoint(&dir.join(crate::run_dir::CHECKPOINT))
    }

    fn save_checkpoint(&self, dir: &Path) -> Result<()> {
        let state = |model_file: &str| CheckpointState {
            epochs_done: self.epochs_done(),
            stage: 0,
            stage_epochs_done: self.epochs_done(),
            recorder: Recorder::default(),
            model_file: model_file.into(),
            optim_file: String::new(),
        };
        checkpoint::save(&dir.join("critic"), &self.critic, &self.c_opt, state(""))?;
        checkpoint::save(
            &dir.join("generator"),
            &self.generator,
            &self.g_opt,
            state(""),
        )
    }

    /// Restores the last checkpoint in `dir` (the run folder's `checkpoint/`), with the run's
    /// `log.json` up to that epoch.
    pub fn load_checkpoint(&mut self, dir: &Path) -> Result<()> {
        let (critic, c_opt, _) =
            checkpoint::load(&dir.join("critic"), self.critic.clone(), self.c_opt.clone())?;
        let (generator, g_opt, state) = checkpoint::load(
            &dir.join("generator"),
            self.generator.clone(),
            self.g_opt.clone(),
        )?;
        let run_dir = dir.parent().unwrap_or(dir);
        let mut log: GanLog = crate::io::read_json(&run_dir.join(crate::run_dir::LOG))?;
        log.epochs.truncate(state.epochs_done);
        log.steps.retain(|s| s.epoch < state.epochs_done);
        (
            self.critic,
            self.c_opt,
            self.generator,
            self.g_opt,
            self.log,
        ) = (critic, c_opt, generator, g_opt, log);
        Ok(())
    }
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
pub fn plot_gan_losses(log: &GanLog, path: &Path) -> Result<()> {
    let (mut w, mut g) = (Vec::new(), Vec::new());
    for (i, s) in log.steps.iter().enumerate() {
        if s.generator {
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
