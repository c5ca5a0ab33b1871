//! fastai's `GANLearner.wgan` on the one [`Learner`]: the generator and the critic are one
//! module ([`Wgan`]) whose training step switches between them — `n_crit` critic steps, then one
//! generator step (`FixedGANSwitcher`) — with the critic's weights clipped after each of its
//! steps. The optimizer keeps one Adam state per parameter and each step updates only the net it
//! trains, so it acts as the critic's and the generator's own optimizers.

use std::sync::Arc;

use burn::module::Module;
use burn::tensor::{Device, Int, Tensor, TensorData};
use rand::SeedableRng;
use rand::rngs::StdRng;
use rand::seq::SliceRandom;

use super::data::GanData;
use super::train::{GanConfig, clip_weights, net_configs, noise};
use crate::data::loader::mix;
use crate::error::Result;
use crate::learner::task::{BatchOf, TrainData, Trainable, Validation};
use crate::learner::{AdamConfig, Learner, LossFunc, StepContext, StepKind, StepLoss};
use crate::models::gan::{Critic, Generator};

/// What the WGAN step needs besides the nets: the switch, the clip bound and the noise.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct WganSwitch {
    /// Critic steps per generator step.
    pub n_crit: usize,
    /// Critic weight clipping bound.
    pub clip: f64,
    /// Noise length.
    pub noise: usize,
    /// Whether both nets take the class.
    pub conditional: bool,
}

/// A WGAN's two networks, trained as one model by the [`Learner`].
#[derive(Module, Debug)]
pub struct Wgan {
    /// The generator.
    pub generator: Generator,
    /// The critic.
    pub critic: Critic,
    /// The step's switch and clipping.
    #[module(skip)]
    pub switch: WganSwitch,
}

/// A batch of real images and their classes, with the seed of its noise.
#[derive(Debug, Clone)]
pub struct GanBatch {
    /// Pixels `[n, c, s, s]` in [-1, 1].
    pub images: Vec<f32>,
    /// Class of each image.
    pub labels: Vec<i64>,
    /// Images.
    pub n: usize,
    /// Channels.
    pub channels: usize,
    /// Side.
    pub size: usize,
    /// Seed of the batch's noise.
    pub seed: u64,
}

/// The real images as training batches: reshuffled every epoch (seeded), full batches only.
#[derive(Debug, Clone)]
pub struct GanLoader {
    /// The images, shared.
    pub data: Arc<GanData>,
    /// Batch size.
    pub bs: usize,
    /// Seed of shuffling and noise.
    pub seed: u64,
}

impl TrainData for GanLoader {
    type Batch = GanBatch;
    type Iter = std::vec::IntoIter<GanBatch>;

    fn train_batches(&self, epoch: usize) -> Self::Iter {
        let d = &self.data;
        let mut order: Vec<usize> = (0..d.n).collect();
        order.shuffle(&mut StdRng::seed_from_u64(mix(self.seed, epoch as u64, 7)));
        let len = d.channels * d.size * d.size;
        order
            .chunks_exact(self.bs)
            .enumerate()
            .map(|(b, idx)| GanBatch {
                images: idx
                    .iter()
                    .flat_map(|&i| d.images[i * len..(i + 1) * len].iter().copied())
                    .collect(),
                labels: idx.iter().map(|&i| d.labels[i]).collect(),
                n: idx.len(),
                channels: d.channels,
                size: d.size,
                seed: mix(self.seed, epoch as u64, b as u64 + 1),
            })
            .collect::<Vec<_>>()
            .into_iter()
    }

    fn batch_len(batch: &GanBatch) -> usize {
        batch.n
    }

    fn n_train_batches(&self) -> usize {
        self.data.n / self.bs.max(1)
    }

    fn n_train_items(&self) -> usize {
        self.data.n
    }

    fn batch_size(&self) -> usize {
        self.bs
    }

    fn size(&self) -> u32 {
        self.data.size as u32
    }
}

impl Wgan {
    fn noise(&self, n: usize, seed: u64, device: &Device) -> Tensor<2> {
        let len = self.switch.noise;
        Tensor::from_data(TensorData::new(noise(n, len, seed), [n, len]), device)
    }

    fn classes(&self, batch: &GanBatch, device: &Device) -> Option<Tensor<1, Int>> {
        self.switch
            .conditional
            .then(|| Tensor::from_data(TensorData::new(batch.labels.clone(), [batch.n]), device))
    }

    /// The critic's loss on `batch`: `mean(C(real)) − mean(C(fake))` (the generator's images
    /// detached).
    pub fn critic_loss(&self, batch: &GanBatch, device: &Device) -> Tensor<1> {
        let (c, s) = (batch.channels, batch.size);
        let real = Tensor::from_data(
            TensorData::new(batch.images.clone(), [batch.n, c, s, s]),
            device,
        );
        let y = self.classes(batch, device);
        let z = self.noise(batch.n, batch.seed, device);
        let fake = self.generator.forward(z, y.clone()).detach();
        self.critic.forward(real, y.clone()).mean() - self.critic.forward(fake, y).mean()
    }

    /// The generator's loss for `batch`'s classes: `mean(C(G(z)))`.
    pub fn generator_loss(&self, batch: &GanBatch, device: &Device) -> Tensor<1> {
        let y = self.classes(batch, device);
        let z = self.noise(batch.n, batch.seed, device);
        self.critic
            .forward(self.generator.forward(z, y.clone()), y)
            .mean()
    }
}

impl Trainable for Wgan {
    type Data = GanLoader;

    fn param_groups(&self) -> Vec<Vec<String>> {
        vec![Vec::new()]
    }

    fn train_loss(&self, batch: &GanBatch, _loss_func: &LossFunc, device: &Device) -> Tensor<1> {
        self.critic_loss(batch, device)
    }

    fn validate(&self, _data: &GanLoader, _device: &Device) -> Validation {
        Validation::default()
    }

    fn train_step(self, batch: &BatchOf<Self>, ctx: &mut StepContext<'_>) -> (Self, StepLoss) {
        let n_crit = self.switch.n_crit;
        if ctx.iter % (n_crit + 1) == n_crit {
            let loss = self.generator_loss(batch, ctx.device);
            let (model, loss) = ctx.backward_step_of(self, loss, |m| &m.generator);
            let kind = StepKind::Generator;
            return (model, StepLoss { loss, kind });
        }
        let loss = self.critic_loss(batch, ctx.device);
        let (mut model, loss) = ctx.backward_step_of(self, loss, |m| &m.critic);
        model.critic = clip_weights(model.critic, model.switch.clip);
        let kind = StepKind::Critic;
        (model, StepLoss { loss, kind })
    }
}

/// fastai's `GANLearner.wgan`: both nets built (seeded) for `data`, the critic clipped, Adam
/// with momentum 0 and no weight decay; train it with a constant learning rate of `config.lr`.
pub fn gan_learner(
    config: &GanConfig,
    data: GanData,
    conditional: bool,
    device: &Device,
) -> Result<Learner<Wgan>> {
    config.validate()?;
    let device = device.clone().autodiff();
    device.seed(config.seed);
    let n_classes = if conditional { data.classes.len() } else { 0 };
    let (g, c) = net_configs(config, data.channels, n_classes);
    let model = Wgan {
        generator: g.init(&device)?,
        critic: clip_weights(c.init(&device)?, config.clip),
        switch: WganSwitch {
            n_crit: config.n_crit,
            clip: config.clip,
            noise: config.noise,
            conditional,
        },
    };
    let adam = AdamConfig {
        mom: 0.0,
        wd: 0.0,
        ..AdamConfig::default()
    };
    let loader = GanLoader {
        data: Arc::new(data),
        bs: config.bs,
        seed: config.seed,
    };
    Ok(Learner::new(model, loader, adam, &device, config.seed))
}
