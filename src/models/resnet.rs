//! torchvision-layout ResNet-18/34/50 bodies (same parameter names and shapes as torchvision,
//! so pretrained weights map one to one; the `fc` layer is replaced by fastai's head).

use burn::config::Config;
use burn::module::Module;
use burn::nn::conv::{Conv2d, Conv2dConfig};

use crate::ops::{Activation, conv_bn, max_pool2d_module};
use burn::nn::pool::{MaxPool2d, MaxPool2dConfig};
use burn::nn::{BatchNorm, BatchNormConfig, Initializer, PaddingConfig2d};
use burn::tensor::activation::relu;
use burn::tensor::{Device, Tensor};

use crate::error::{Error, Result};

/// torchvision's init for convolutions: Kaiming-normal, fan-out, ReLU gain.
fn kaiming_fan_out() -> Initializer {
    Initializer::KaimingNormal {
        gain: std::f64::consts::SQRT_2,
        fan_out_only: true,
    }
}

fn conv(c_in: usize, c_out: usize, k: usize, stride: usize) -> Conv2dConfig {
    let p = k / 2;
    Conv2dConfig::new([c_in, c_out], [k, k])
        .with_stride([stride, stride])
        .with_padding(PaddingConfig2d::Explicit(p, p, p, p))
        .with_bias(false)
        .with_initializer(kaiming_fan_out())
}

/// The projection shortcut of a block whose shape changes (torchvision's `downsample.0/1`).
#[derive(Module, Debug)]
pub struct Downsample {
    /// 1×1 strided convolution (`downsample.0`).
    pub conv: Conv2d,
    /// Its batch norm (`downsample.1`).
    pub bn: BatchNorm,
}

/// A residual block: basic (two 3×3 convs) or bottleneck (1×1, 3×3, 1×1 with 4× expansion).
#[derive(Module, Debug)]
pub struct Block {
    /// First convolution.
    pub conv1: Conv2d,
    /// First batch norm.
    pub bn1: BatchNorm,
    /// Second convolution (3×3, carries the stride).
    pub conv2: Conv2d,
    /// Second batch norm.
    pub bn2: BatchNorm,
    /// Third convolution (bottleneck only).
    pub conv3: Option<Conv2d>,
    /// Third batch norm (bottleneck only).
    pub bn3: Option<BatchNorm>,
    /// Projection shortcut, when the shape changes.
    pub downsample: Option<Downsample>,
}

impl Block {
    fn new(c_in: usize, planes: usize, stride: usize, bottleneck: bool, device: &Device) -> Self {
        let expansion = if bottleneck { 4 } else { 1 };
        let c_out = planes * expansion;
        let bn = |c| BatchNormConfig::new(c).init(device);
        let downsample = (stride != 1 || c_in != c_out).then(|| Downsample {
            conv: conv(c_in, c_out, 1, stride).init(device),
            bn: bn(c_out),
        });
        if bottleneck {
            Self {
                conv1: conv(c_in, planes, 1, 1).init(device),
                bn1: bn(planes),
                conv2: conv(planes, planes, 3, stride).init(device),
                bn2: bn(planes),
                conv3: Some(conv(planes, c_out, 1, 1).init(device)),
                bn3: Some(bn(c_out)),
                downsample,
            }
        } else {
            Self {
                conv1: conv(c_in, planes, 3, stride).init(device),
                bn1: bn(planes),
                conv2: conv(planes, planes, 3, 1).init(device),
                bn2: bn(planes),
                conv3: None,
                bn3: None,
                downsample,
            }
        }
    }

    fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let identity = match &self.downsample {
            Some(d) => conv_bn(&d.conv, &d.bn, x.clone(), Activation::Identity),
            None => x.clone(),
        };
        let out = conv_bn(&self.conv1, &self.bn1, x, Activation::Relu);
        let out = match (&self.conv3, &self.bn3) {
            (Some(c3), Some(b3)) => {
                let mid = conv_bn(&self.conv2, &self.bn2, out, Activation::Relu);
                conv_bn(c3, b3, mid, Activation::Identity)
            }
            _ => conv_bn(&self.conv2, &self.bn2, out, Activation::Identity),
        };
        relu(out + identity)
    }
}

/// Which ResNet: depth 18, 34 or 50, and the stem width (64 in torchvision; smaller for tests).
#[derive(Config, Debug, PartialEq)]
pub struct ResNetConfig {
    /// 18, 34 or 50.
    pub depth: usize,
    /// Channels of the stem and first stage (torchvision: 64).
    #[config(default = 64)]
    pub width: usize,
}

/// A ResNet body: stem and four stages, ending before the pooling and `fc` of torchvision.
#[derive(Module, Debug)]
pub struct ResNet {
    /// 7×7 stride-2 stem convolution.
    pub conv1: Conv2d,
    /// Stem batch norm.
    pub bn1: BatchNorm,
    /// 3×3 stride-2 max pool.
    pub maxpool: MaxPool2d,
    /// Stage 1.
    pub layer1: Vec<Block>,
    /// Stage 2.
    pub layer2: Vec<Block>,
    /// Stage 3.
    pub layer3: Vec<Block>,
    /// Stage 4.
    pub layer4: Vec<Block>,
}

impl ResNetConfig {
    /// Blocks per stage and whether blocks are bottlenecks.
    fn layout(&self) -> Result<([usize; 4], bool)> {
        match self.depth {
            18 => Ok(([2, 2, 2, 2], false)),
            34 => Ok(([3, 4, 6, 3], false)),
            50 => Ok(([3, 4, 6, 3], true)),
            d => Err(Error::Config(format!(
                "ResNet depth {d} is not one of 18, 34, 50"
            ))),
        }
    }

    /// Channels of the body's output feature map.
    pub fn out_channels(&self) -> usize {
        let bottleneck = self.depth >= 50;
        self.width * 8 * if bottleneck { 4 } else { 1 }
    }

    /// Builds the body with torchvision's initialisation.
    pub fn init(&self, device: &Device) -> Result<ResNet> {
        let (blocks, bottleneck) = self.layout()?;
        let w = self.width;
        let expansion = if bottleneck { 4 } else { 1 };
        let mut c_in = w;
        let mut stage = |planes: usize, n: usize, stride: usize| -> Vec<Block> {
            (0..n)
                .map(|i| {
                    let b = Block::new(
                        c_in,
                        planes,
                        if i == 0 { stride } else { 1 },
                        bottleneck,
                        device,
                    );
                    c_in = planes * expansion;
                    b
                })
                .collect()
        };
        let layer1 = stage(w, blocks[0], 1);
        let layer2 = stage(w * 2, blocks[1], 2);
        let layer3 = stage(w * 4, blocks[2], 2);
        let layer4 = stage(w * 8, blocks[3], 2);
        Ok(ResNet {
            conv1: conv(3, w, 7, 2).init(device),
            bn1: BatchNormConfig::new(w).init(device),
            maxpool: MaxPool2dConfig::new([3, 3])
                .with_strides([2, 2])
                .with_padding(PaddingConfig2d::Explicit(1, 1, 1, 1))
                .init(),
            layer1,
            layer2,
            layer3,
            layer4,
        })
    }
}

impl ResNet {
    /// Feature map `[n, out_channels, h/32, w/32]` of a `[n, 3, h, w]` batch.
    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let stem = conv_bn(&self.conv1, &self.bn1, x, Activation::Relu);
        let mut x = max_pool2d_module(&self.maxpool, stem);
        for layer in [&self.layer1, &self.layer2, &self.layer3, &self.layer4] {
            for block in layer {
                x = block.forward(x);
            }
        }
        x
    }
}
