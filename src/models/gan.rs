//! fastai's GAN networks: `basic_generator` (noise → transposed conv + BN + ReLU blocks → Tanh)
//! and `basic_critic` (stride-2 convs + BN + LeakyReLU 0.2 → one score), with an optional class
//! condition: a class embedding concatenated to the noise, and a projection term in the critic
//! (Miyato & Koyama 2018: score += ⟨embed(y), Σ_spatial features⟩).

use burn::config::Config;
use burn::module::Module;
use burn::nn::conv::{Conv2d, Conv2dConfig, ConvTranspose2d, ConvTranspose2dConfig};
use burn::nn::{
    BatchNorm, BatchNormConfig, Embedding, EmbeddingConfig, Initializer, PaddingConfig2d,
};
use burn::tensor::activation::{leaky_relu, relu};
use burn::tensor::{Device, Int, Tensor};

use crate::error::{Error, Result};

/// fastai's `kaiming_normal_` (gain √2, fan in), the init of its `ConvLayer` before a ReLU.
fn kaiming() -> Initializer {
    Initializer::KaimingNormal {
        gain: std::f64::consts::SQRT_2,
        fan_out_only: false,
    }
}

/// Checks a GAN image side: a power of two from 16 px.
pub fn check_size(size: usize) -> Result<()> {
    if size < 16 || !size.is_power_of_two() {
        return Err(Error::Config(format!(
            "GAN `size` {size}: must be a power of two from 16 (16, 32, 64, 128…)"
        )));
    }
    Ok(())
}

/// Settings of fastai's `basic_generator` (defaults: noise 100, 64 features, 1 extra layer).
#[derive(Config, Debug, PartialEq)]
pub struct GeneratorConfig {
    /// Output side (a power of two ≥ 16).
    pub size: usize,
    /// Output channels (1 grayscale, 3 colour).
    pub channels: usize,
    /// Noise length (fastai's `in_sz`: 100).
    #[config(default = 100)]
    pub noise: usize,
    /// Feature width scale (fastai: 64).
    #[config(default = 64)]
    pub n_features: usize,
    /// Extra 3×3 blocks at the last resolution before the output (fastai's `n_extra_layers`).
    #[config(default = 1)]
    pub n_extra_layers: usize,
    /// Classes for a conditional generator (0 = unconditional).
    #[config(default = 0)]
    pub n_classes: usize,
    /// Width of the class embedding concatenated to the noise.
    #[config(default = 50)]
    pub class_emb: usize,
}

/// Transposed conv (no bias) → BatchNorm → ReLU: fastai's `ConvLayer(transpose=True)`.
#[derive(Module, Debug)]
pub struct UpBlock {
    /// The transposed convolution.
    pub conv: ConvTranspose2d,
    /// Its BatchNorm.
    pub bn: BatchNorm,
}

/// The generator: `[n, noise]` (+ class) → images `[n, channels, size, size]` in [-1, 1].
#[derive(Module, Debug)]
pub struct Generator {
    /// Class embedding (conditional only).
    pub embed: Option<Embedding>,
    /// Up-sampling blocks, from 1×1 to size/2, then the extra blocks.
    pub blocks: Vec<UpBlock>,
    /// The last transposed convolution (to `channels`, no bias), followed by Tanh.
    pub out: ConvTranspose2d,
}

impl GeneratorConfig {
    /// Builds the generator; errors on a size that is not a power of two ≥ 16.
    pub fn init(&self, device: &Device) -> Result<Generator> {
        check_size(self.size)?;
        let mut ftrs = self.n_features / 2;
        let mut cur = 4;
        while cur < self.size {
            cur *= 2;
            ftrs *= 2;
        }
        let up = |i: usize, o: usize, k: usize, s: usize, p: usize| UpBlock {
            conv: ConvTranspose2dConfig::new([i, o], [k, k])
                .with_stride([s, s])
                .with_padding([p, p])
                .with_bias(false)
                .with_initializer(kaiming())
                .init(device),
            bn: BatchNormConfig::new(o).init(device),
        };
        let cond = if self.n_classes > 0 {
            self.class_emb
        } else {
            0
        };
        let mut blocks = vec![up(self.noise + cond, ftrs, 4, 1, 0)];
        let mut cur = 4;
        while cur < self.size / 2 {
            blocks.push(up(ftrs, ftrs / 2, 4, 2, 1));
            ftrs /= 2;
            cur *= 2;
        }
        for _ in 0..self.n_extra_layers {
            blocks.push(up(ftrs, ftrs, 3, 1, 1));
        }
        let out = ConvTranspose2dConfig::new([ftrs, self.channels], [4, 4])
            .with_stride([2, 2])
            .with_padding([1, 1])
            .with_bias(false)
            .init(device);
        let embed = (self.n_classes > 0)
            .then(|| EmbeddingConfig::new(self.n_classes, self.class_emb).init(device));
        fits(Generator { embed, blocks, out }, device, "the generator")
    }
}

/// `net` if its weights (with their gradients and Adam's moments) fit in memory; burn allocates
/// parameters lazily, so nothing is allocated before this check.
fn fits<M: burn::module::Module>(net: M, device: &Device, what: &str) -> Result<M> {
    let params = net.num_params();
    crate::backend::check_fits(
        device,
        16.0 * params as f64,
        &format!("{what} ({params} weights)"),
        "`n_features`, `noise` or `size`",
    )?;
    Ok(net)
}

impl Generator {
    /// Images from noise `[n, noise]` and, for a conditional generator, classes `[n]`.
    pub fn forward(&self, noise: Tensor<2>, classes: Option<Tensor<1, Int>>) -> Tensor<4> {
        let [n, _] = noise.dims();
        let z = match (&self.embed, classes) {
            (Some(e), Some(y)) => {
                let d = e.weight.dims()[1];
                let emb = e.forward(y.reshape([n, 1])).reshape([n, d]);
                Tensor::cat(vec![noise, emb], 1)
            }
            _ => noise,
        };
        let c = z.dims()[1];
        let mut x = z.reshape([n, c, 1, 1]);
        for b in &self.blocks {
            x = relu(b.bn.forward(b.conv.forward(x)));
        }
        self.out.forward(x).tanh()
    }
}

/// Settings of fastai's `basic_critic` (defaults: 64 features, 1 extra layer, LeakyReLU 0.2).
#[derive(Config, Debug, PartialEq)]
pub struct CriticConfig {
    /// Input side (a power of two ≥ 16).
    pub size: usize,
    /// Input channels.
    pub channels: usize,
    /// Feature width (fastai: 64).
    #[config(default = 64)]
    pub n_features: usize,
    /// Extra 3×3 blocks after the first convolution (fastai's `n_extra_layers`).
    #[config(default = 1)]
    pub n_extra_layers: usize,
    /// Classes for a projection critic (0 = unconditional).
    #[config(default = 0)]
    pub n_classes: usize,
}

/// Conv (no bias) → BatchNorm → LeakyReLU 0.2.
#[derive(Module, Debug)]
pub struct DownBlock {
    /// The convolution.
    pub conv: Conv2d,
    /// Its BatchNorm.
    pub bn: BatchNorm,
}

/// The critic: images → one score each (fastai's WGAN: lower for real images).
#[derive(Module, Debug)]
pub struct Critic {
    /// First stride-2 convolution (bias, no BatchNorm).
    pub first: Conv2d,
    /// Extra blocks, then stride-2 blocks down to 4×4.
    pub blocks: Vec<DownBlock>,
    /// The 4×4 convolution to one score.
    pub out: Conv2d,
    /// Class embedding of the projection term (conditional only).
    pub embed: Option<Embedding>,
}

impl CriticConfig {
    /// Builds the critic; errors on a size that is not a power of two ≥ 16.
    pub fn init(&self, device: &Device) -> Result<Critic> {
        check_size(self.size)?;
        let conv = |i: usize, o: usize, k: usize, s: usize, p: usize, bias: bool| {
            Conv2dConfig::new([i, o], [k, k])
                .with_stride([s, s])
                .with_padding(PaddingConfig2d::Explicit(p, p, p, p))
                .with_bias(bias)
                .init(device)
        };
        let block = |i, o, k, s, p| DownBlock {
            conv: conv(i, o, k, s, p, false),
            bn: BatchNormConfig::new(o).init(device),
        };
        let first = conv(self.channels, self.n_features, 4, 2, 1, true);
        let mut ftrs = self.n_features;
        let mut cur = self.size / 2;
        let mut blocks: Vec<DownBlock> = (0..self.n_extra_layers)
            .map(|_| block(ftrs, ftrs, 3, 1, 1))
            .collect();
        while cur > 4 {
            blocks.push(block(ftrs, ftrs * 2, 4, 2, 1));
            ftrs *= 2;
            cur /= 2;
        }
        let out = Conv2dConfig::new([ftrs, 1], [4, 4])
            .with_initializer(kaiming())
            .init(device);
        let embed = (self.n_classes > 0).then(|| {
            EmbeddingConfig::new(self.n_classes, ftrs)
                .with_initializer(Initializer::Normal {
                    mean: 0.0,
                    std: 0.01,
                })
                .init(device)
        });
        fits(
            Critic {
                first,
                blocks,
                out,
                embed,
            },
            device,
            "the critic",
        )
    }
}

impl Critic {
    /// Scores `[n]` of images `[n, c, size, size]` (with their classes for a projection critic).
    pub fn forward(&self, x: Tensor<4>, classes: Option<Tensor<1, Int>>) -> Tensor<1> {
        let n = x.dims()[0];
        let mut h = leaky_relu(crate::ops::conv2d_module(&self.first, x), 0.2);
        for b in &self.blocks {
            h = leaky_relu(b.bn.forward(crate::ops::conv2d_module(&b.conv, h)), 0.2);
        }
        let score = crate::ops::conv2d_module(&self.out, h.clone()).reshape([n]);
        match (&self.embed, classes) {
            (Some(e), Some(y)) => {
                let [_, c, hh, ww] = h.dims();
                let pooled = h.reshape([n, c, hh * ww]).sum_dim(2).reshape([n, c]);
                let emb = e.forward(y.reshape([n, 1])).reshape([n, c]);
                score + (pooled * emb).sum_dim(1).reshape([n])
            }
            _ => score,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shapes_at_32_and_64_px_with_1_and_3_channels() {
        let device = crate::device();
        for size in [32, 64] {
            for ch in [1, 3] {
                for classes in [0, 4] {
                    let g = GeneratorConfig::new(size, ch)
                        .with_n_features(8)
                        .with_n_classes(classes)
                        .init(&device)
                        .unwrap();
                    let c = CriticConfig::new(size, ch)
                        .with_n_features(8)
                        .with_n_classes(classes)
                        .init(&device)
                        .unwrap();
                    let y = (classes > 0).then(|| Tensor::<1, Int>::from_ints([0, 3, 1], &device));
                    let img = g.forward(Tensor::ones([3, 100], &device), y.clone());
                    assert_eq!(img.dims(), [3, ch, size, size]);
                    let lo = img.clone().min().into_scalar::<f32>();
                    let hi = img.clone().max().into_scalar::<f32>();
                    assert!((-1.0..=1.0).contains(&lo) && (-1.0..=1.0).contains(&hi));
                    assert_eq!(c.forward(img, y).dims(), [3]);
                }
            }
        }
        assert!(GeneratorConfig::new(48, 3).init(&device).is_err());
        assert!(CriticConfig::new(8, 3).init(&device).is_err());
    }
}
