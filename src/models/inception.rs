//! torchvision-layout Inception-v3 body (Szegedy et al. 2016): the same parameter names and
//! shapes as torchvision's `Inception3` (`Conv2d_1a_3x3`, `Mixed_5b.branch1x1`, …; BasicConv2d =
//! conv without bias + BatchNorm ε 1e-3 + ReLU), cut before its pooling so fastai's head goes on
//! top. No auxiliary classifier (fastai and timm leave it out too). Inputs ≥ 75 px.
#![allow(non_snake_case)]

use burn::config::Config;
use burn::module::Module;
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::pool::{AvgPool2dConfig, MaxPool2dConfig};
use burn::nn::{BatchNorm, BatchNormConfig, Initializer, PaddingConfig2d};
use burn::tensor::{Device, Tensor};

use crate::error::{Error, Result};
use crate::ops::{Activation, conv_bn};

/// Smallest input side the stem and the stride-2 reductions allow.
pub const MIN_SIZE: u32 = 75;

/// Channels of the feature map at full width.
pub const FEATURES: usize = 2048;

/// Conv (no bias) + BatchNorm (ε 1e-3) + ReLU: torchvision's `BasicConv2d`.
#[derive(Module, Debug)]
pub struct BasicConv2d {
    /// The convolution.
    pub conv: Conv2d,
    /// Its batch norm.
    pub bn: BatchNorm,
}

impl BasicConv2d {
    fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        conv_bn(&self.conv, &self.bn, x, Activation::Relu)
    }
}

/// Builds BasicConv2d layers at a width divisor (1 = torchvision).
#[derive(Debug, Clone)]
struct Maker<'a> {
    div: usize,
    device: &'a Device,
}

impl Maker<'_> {
    /// `c_in → c_out` (full-width counts; the image's 3 channels are never divided), kernel
    /// `(kh, kw)`, stride `s`, padding `(ph, pw)`.
    fn conv(
        &self,
        c_in: usize,
        c_out: usize,
        k: (usize, usize),
        s: usize,
        p: (usize, usize),
    ) -> BasicConv2d {
        let ci = if c_in == 3 { 3 } else { c_in / self.div };
        BasicConv2d {
            conv: Conv2dConfig::new([ci, c_out / self.div], [k.0, k.1])
                .with_stride([s, s])
                .with_padding(PaddingConfig2d::Explicit(p.0, p.1, p.0, p.1))
                .with_bias(false)
                // torchvision's init: truncated normal, std 0.1 (N(0, 0.1) here).
                .with_initializer(Initializer::Normal {
                    mean: 0.0,
                    std: 0.1,
                })
                .init(self.device),
            bn: BatchNormConfig::new(c_out / self.div)
                .with_epsilon(1e-3)
                .init(self.device),
        }
    }
    fn k1(&self, i: usize, o: usize) -> BasicConv2d {
        self.conv(i, o, (1, 1), 1, (0, 0))
    }
}

fn avg_pool_3x3(x: Tensor<4>) -> Tensor<4> {
    AvgPool2dConfig::new([3, 3])
        .with_strides([1, 1])
        .with_padding(PaddingConfig2d::Explicit(1, 1, 1, 1))
        .with_count_include_pad(true)
        .init()
        .forward(x)
}

fn max_pool_3x3_s2(x: Tensor<4>) -> Tensor<4> {
    let pool = MaxPool2dConfig::new([3, 3]).with_strides([2, 2]).init();
    crate::ops::max_pool2d_module(&pool, x)
}

/// 35×35 block: 1×1, 5×5, double 3×3 and pooled branches.
#[derive(Module, Debug)]
pub struct InceptionA {
    /// torchvision's `branch1x1`.
    pub branch1x1: BasicConv2d,
    /// torchvision's `branch5x5_1`.
    pub branch5x5_1: BasicConv2d,
    /// torchvision's `branch5x5_2`.
    pub branch5x5_2: BasicConv2d,
    /// torchvision's `branch3x3dbl_1`.
    pub branch3x3dbl_1: BasicConv2d,
    /// torchvision's `branch3x3dbl_2`.
    pub branch3x3dbl_2: BasicConv2d,
    /// torchvision's `branch3x3dbl_3`.
    pub branch3x3dbl_3: BasicConv2d,
    /// torchvision's `branch_pool`.
    pub branch_pool: BasicConv2d,
}

impl InceptionA {
    fn new(m: &Maker, c_in: usize, pool_features: usize) -> Self {
        Self {
            branch1x1: m.k1(c_in, 64),
            branch5x5_1: m.k1(c_in, 48),
            branch5x5_2: m.conv(48, 64, (5, 5), 1, (2, 2)),
            branch3x3dbl_1: m.k1(c_in, 64),
            branch3x3dbl_2: m.conv(64, 96, (3, 3), 1, (1, 1)),
            branch3x3dbl_3: m.conv(96, 96, (3, 3), 1, (1, 1)),
            branch_pool: m.k1(c_in, pool_features),
        }
    }
    fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let a = self.branch1x1.forward(x.clone());
        let b = self
            .branch5x5_2
            .forward(self.branch5x5_1.forward(x.clone()));
        let c = self.branch3x3dbl_3.forward(
            self.branch3x3dbl_2
                .forward(self.branch3x3dbl_1.forward(x.clone())),
        );
        let d = self.branch_pool.forward(avg_pool_3x3(x));
        Tensor::cat(vec![a, b, c, d], 1)
    }
}

/// Grid reduction 35 → 17.
#[derive(Module, Debug)]
pub struct InceptionB {
    /// torchvision's `branch3x3`.
    pub branch3x3: BasicConv2d,
    /// torchvision's `branch3x3dbl_1`.
    pub branch3x3dbl_1: BasicConv2d,
    /// torchvision's `branch3x3dbl_2`.
    pub branch3x3dbl_2: BasicConv2d,
    /// torchvision's `branch3x3dbl_3`.
    pub branch3x3dbl_3: BasicConv2d,
}

impl InceptionB {
    fn new(m: &Maker, c_in: usize) -> Self {
        Self {
            branch3x3: m.conv(c_in, 384, (3, 3), 2, (0, 0)),
            branch3x3dbl_1: m.k1(c_in, 64),
            branch3x3dbl_2: m.conv(64, 96, (3, 3), 1, (1, 1)),
            branch3x3dbl_3: m.conv(96, 96, (3, 3), 2, (0, 0)),
        }
    }
    fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let a = self.branch3x3.forward(x.clone());
        let b = self.branch3x3dbl_3.forward(
            self.branch3x3dbl_2
                .forward(self.branch3x3dbl_1.forward(x.clone())),
        );
        Tensor::cat(vec![a, b, max_pool_3x3_s2(x)], 1)
    }
}

/// 17×17 block with factorised 7×7 convolutions.
#[derive(Module, Debug)]
pub struct InceptionC {
    /// torchvision's `branch1x1`.
    pub branch1x1: BasicConv2d,
    /// torchvision's `branch7x7_1`.
    pub branch7x7_1: BasicConv2d,
    /// torchvision's `branch7x7_2`.
    pub branch7x7_2: BasicConv2d,
    /// torchvision's `branch7x7_3`.
    pub branch7x7_3: BasicConv2d,
    /// torchvision's `branch7x7dbl_1`.
    pub branch7x7dbl_1: BasicConv2d,
    /// torchvision's `branch7x7dbl_2`.
    pub branch7x7dbl_2: BasicConv2d,
    /// torchvision's `branch7x7dbl_3`.
    pub branch7x7dbl_3: BasicConv2d,
    /// torchvision's `branch7x7dbl_4`.
    pub branch7x7dbl_4: BasicConv2d,
    /// torchvision's `branch7x7dbl_5`.
    pub branch7x7dbl_5: BasicConv2d,
    /// torchvision's `branch_pool`.
    pub branch_pool: BasicConv2d,
}

impl InceptionC {
    fn new(m: &Maker, c_in: usize, c7: usize) -> Self {
        let (h, v) = (((1, 7), (0, 3)), ((7, 1), (3, 0)));
        Self {
            branch1x1: m.k1(c_in, 192),
            branch7x7_1: m.k1(c_in, c7),
            branch7x7_2: m.conv(c7, c7, h.0, 1, h.1),
            branch7x7_3: m.conv(c7, 192, v.0, 1, v.1),
            branch7x7dbl_1: m.k1(c_in, c7),
            branch7x7dbl_2: m.conv(c7, c7, v.0, 1, v.1),
            branch7x7dbl_3: m.conv(c7, c7, h.0, 1, h.1),
            branch7x7dbl_4: m.conv(c7, c7, v.0, 1, v.1),
            branch7x7dbl_5: m.conv(c7, 192, h.0, 1, h.1),
            branch_pool: m.k1(c_in, 192),
        }
    }
    fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let a = self.branch1x1.forward(x.clone());
        let b = [&self.branch7x7_1, &self.branch7x7_2, &self.branch7x7_3]
            .iter()
            .fold(x.clone(), |h, l| l.forward(h));
        let c = [
            &self.branch7x7dbl_1,
            &self.branch7x7dbl_2,
            &self.branch7x7dbl_3,
            &self.branch7x7dbl_4,
            &self.branch7x7dbl_5,
        ]
        .iter()
        .fold(x.clone(), |h, l| l.forward(h));
        let d = self.branch_pool.forward(avg_pool_3x3(x));
        Tensor::cat(vec![a, b, c, d], 1)
    }
}

/// Grid reduction 17 → 8.
#[derive(Module, Debug)]
pub struct InceptionD {
    /// torchvision's `branch3x3_1`.
    pub branch3x3_1: BasicConv2d,
    /// torchvision's `branch3x3_2`.
    pub branch3x3_2: BasicConv2d,
    /// torchvision's `branch7x7x3_1`.
    pub branch7x7x3_1: BasicConv2d,
    /// torchvision's `branch7x7x3_2`.
    pub branch7x7x3_2: BasicConv2d,
    /// torchvision's `branch7x7x3_3`.
    pub branch7x7x3_3: BasicConv2d,
    /// torchvision's `branch7x7x3_4`.
    pub branch7x7x3_4: BasicConv2d,
}

impl InceptionD {
    fn new(m: &Maker, c_in: usize) -> Self {
        Self {
            branch3x3_1: m.k1(c_in, 192),
            branch3x3_2: m.conv(192, 320, (3, 3), 2, (0, 0)),
            branch7x7x3_1: m.k1(c_in, 192),
            branch7x7x3_2: m.conv(192, 192, (1, 7), 1, (0, 3)),
            branch7x7x3_3: m.conv(192, 192, (7, 1), 1, (3, 0)),
            branch7x7x3_4: m.conv(192, 192, (3, 3), 2, (0, 0)),
        }
    }
    fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let a = self
            .branch3x3_2
            .forward(self.branch3x3_1.forward(x.clone()));
        let b = [
            &self.branch7x7x3_1,
            &self.branch7x7x3_2,
            &self.branch7x7x3_3,
            &self.branch7x7x3_4,
        ]
        .iter()
        .fold(x.clone(), |h, l| l.forward(h));
        Tensor::cat(vec![a, b, max_pool_3x3_s2(x)], 1)
    }
}

/// 8×8 block with expanded 1×3 / 3×1 branches.
#[derive(Module, Debug)]
pub struct InceptionE {
    /// torchvision's `branch1x1`.
    pub branch1x1: BasicConv2d,
    /// torchvision's `branch3x3_1`.
    pub branch3x3_1: BasicConv2d,
    /// torchvision's `branch3x3_2a`.
    pub branch3x3_2a: BasicConv2d,
    /// torchvision's `branch3x3_2b`.
    pub branch3x3_2b: BasicConv2d,
    /// torchvision's `branch3x3dbl_1`.
    pub branch3x3dbl_1: BasicConv2d,
    /// torchvision's `branch3x3dbl_2`.
    pub branch3x3dbl_2: BasicConv2d,
    /// torchvision's `branch3x3dbl_3a`.
    pub branch3x3dbl_3a: BasicConv2d,
    /// torchvision's `branch3x3dbl_3b`.
    pub branch3x3dbl_3b: BasicConv2d,
    /// torchvision's `branch_pool`.
    pub branch_pool: BasicConv2d,
}

impl InceptionE {
    fn new(m: &Maker, c_in: usize) -> Self {
        Self {
            branch1x1: m.k1(c_in, 320),
            branch3x3_1: m.k1(c_in, 384),
            branch3x3_2a: m.conv(384, 384, (1, 3), 1, (0, 1)),
            branch3x3_2b: m.conv(384, 384, (3, 1), 1, (1, 0)),
            branch3x3dbl_1: m.k1(c_in, 448),
            branch3x3dbl_2: m.conv(448, 384, (3, 3), 1, (1, 1)),
            branch3x3dbl_3a: m.conv(384, 384, (1, 3), 1, (0, 1)),
            branch3x3dbl_3b: m.conv(384, 384, (3, 1), 1, (1, 0)),
            branch_pool: m.k1(c_in, 192),
        }
    }
    fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let a = self.branch1x1.forward(x.clone());
        let b = self.branch3x3_1.forward(x.clone());
        let b = Tensor::cat(
            vec![
                self.branch3x3_2a.forward(b.clone()),
                self.branch3x3_2b.forward(b),
            ],
            1,
        );
        let c = self
            .branch3x3dbl_2
            .forward(self.branch3x3dbl_1.forward(x.clone()));
        let c = Tensor::cat(
            vec![
                self.branch3x3dbl_3a.forward(c.clone()),
                self.branch3x3dbl_3b.forward(c),
            ],
            1,
        );
        let d = self.branch_pool.forward(avg_pool_3x3(x));
        Tensor::cat(vec![a, b, c, d], 1)
    }
}

/// Settings of the body: a width divisor (1 = torchvision; 8 only for small test fixtures).
#[derive(Config, Debug, PartialEq)]
pub struct InceptionV3Config {
    /// Every channel count (but the image's) divided by this.
    #[config(default = 1)]
    pub width_div: usize,
}

/// torchvision's `Inception3` up to `Mixed_7c` (output `[n, 2048/width_div, h, w]`).
#[derive(Module, Debug)]
pub struct InceptionV3 {
    /// torchvision's `Conv2d_1a_3x3`.
    pub Conv2d_1a_3x3: BasicConv2d,
    /// torchvision's `Conv2d_2a_3x3`.
    pub Conv2d_2a_3x3: BasicConv2d,
    /// torchvision's `Conv2d_2b_3x3`.
    pub Conv2d_2b_3x3: BasicConv2d,
    /// torchvision's `Conv2d_3b_1x1`.
    pub Conv2d_3b_1x1: BasicConv2d,
    /// torchvision's `Conv2d_4a_3x3`.
    pub Conv2d_4a_3x3: BasicConv2d,
    /// torchvision's `Mixed_5b`.
    pub Mixed_5b: InceptionA,
    /// torchvision's `Mixed_5c`.
    pub Mixed_5c: InceptionA,
    /// torchvision's `Mixed_5d`.
    pub Mixed_5d: InceptionA,
    /// torchvision's `Mixed_6a`.
    pub Mixed_6a: InceptionB,
    /// torchvision's `Mixed_6b`.
    pub Mixed_6b: InceptionC,
    /// torchvision's `Mixed_6c`.
    pub Mixed_6c: InceptionC,
    /// torchvision's `Mixed_6d`.
    pub Mixed_6d: InceptionC,
    /// torchvision's `Mixed_6e`.
    pub Mixed_6e: InceptionC,
    /// torchvision's `Mixed_7a`.
    pub Mixed_7a: InceptionD,
    /// torchvision's `Mixed_7b`.
    pub Mixed_7b: InceptionE,
    /// torchvision's `Mixed_7c`.
    pub Mixed_7c: InceptionE,
}

impl InceptionV3Config {
    /// Channels of the feature map.
    pub fn out_channels(&self) -> usize {
        FEATURES / self.width_div
    }

    /// Builds the body; the divisor must divide every channel count (1, 2, 4 or 8).
    pub fn init(&self, device: &Device) -> Result<InceptionV3> {
        if ![1, 2, 4, 8].contains(&self.width_div) {
            return Err(Error::Config(format!(
                "Inception-v3 width divisor {} (1, 2, 4 or 8)",
                self.width_div
            )));
        }
        let m = Maker {
            div: self.width_div,
            device,
        };
        Ok(InceptionV3 {
            Conv2d_1a_3x3: m.conv(3, 32, (3, 3), 2, (0, 0)),
            Conv2d_2a_3x3: m.conv(32, 32, (3, 3), 1, (0, 0)),
            Conv2d_2b_3x3: m.conv(32, 64, (3, 3), 1, (1, 1)),
            Conv2d_3b_1x1: m.k1(64, 80),
            Conv2d_4a_3x3: m.conv(80, 192, (3, 3), 1, (0, 0)),
            Mixed_5b: InceptionA::new(&m, 192, 32),
            Mixed_5c: InceptionA::new(&m, 256, 64),
            Mixed_5d: InceptionA::new(&m, 288, 64),
            Mixed_6a: InceptionB::new(&m, 288),
            Mixed_6b: InceptionC::new(&m, 768, 128),
            Mixed_6c: InceptionC::new(&m, 768, 160),
            Mixed_6d: InceptionC::new(&m, 768, 160),
            Mixed_6e: InceptionC::new(&m, 768, 192),
            Mixed_7a: InceptionD::new(&m, 768),
            Mixed_7b: InceptionE::new(&m, 1280),
            Mixed_7c: InceptionE::new(&m, 2048),
        })
    }
}

impl InceptionV3 {
    /// The feature map of a batch normalised to [-1, 1] (`[n, 3, h, w]`, h, w ≥ 75).
    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let x = self.Conv2d_1a_3x3.forward(x);
        let x = self.Conv2d_2a_3x3.forward(x);
        let x = self.Conv2d_2b_3x3.forward(x);
        let x = max_pool_3x3_s2(x);
        let x = self.Conv2d_3b_1x1.forward(x);
        let x = self.Conv2d_4a_3x3.forward(x);
        let x = max_pool_3x3_s2(x);
        let x = self.Mixed_5b.forward(x);
        let x = self.Mixed_5c.forward(x);
        let x = self.Mixed_5d.forward(x);
        let x = self.Mixed_6a.forward(x);
        let x = self.Mixed_6b.forward(x);
        let x = self.Mixed_6c.forward(x);
        let x = self.Mixed_6d.forward(x);
        let x = self.Mixed_6e.forward(x);
        let x = self.Mixed_7a.forward(x);
        let x = self.Mixed_7b.forward(x);
        self.Mixed_7c.forward(x)
    }
}
