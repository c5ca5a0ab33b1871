//! fastai's classification head: concat pooling, then two BN → dropout → linear blocks.

use burn::config::Config;
use burn::module::Module;
use burn::nn::{
    BatchNorm, BatchNormConfig, Dropout, DropoutConfig, Initializer, Linear, LinearConfig,
};
use burn::tensor::activation::relu;
use burn::tensor::{Device, Tensor};

use crate::ops::linear_module;

/// Settings of fastai's `create_head` (defaults: 512 hidden units, dropout 0.25 then 0.5).
#[derive(Config, Debug, PartialEq)]
pub struct HeadConfig {
    /// Channels of the body's feature map (pooled to twice this).
    pub n_features: usize,
    /// Number of classes.
    pub n_classes: usize,
    /// Hidden units (fastai: 512).
    #[config(default = 512)]
    pub hidden: usize,
    /// Dropout before the last linear layer (fastai's `ps`: 0.5; the first one uses half).
    #[config(default = 0.5)]
    pub ps: f64,
}

/// Adaptive concat pool → BN → dropout → linear → ReLU → BN → dropout → linear.
#[derive(Module, Debug)]
pub struct Head {
    /// Batch norm over the pooled features.
    pub bn1: BatchNorm,
    /// Dropout `ps/2`.
    pub drop1: Dropout,
    /// Linear to the hidden layer (no bias: a BN follows).
    pub lin1: Linear,
    /// Batch norm of the hidden layer.
    pub bn2: BatchNorm,
    /// Dropout `ps`.
    pub drop2: Dropout,
    /// Linear to the classes (no bias, as fastai's `LinBnDrop`).
    pub lin2: Linear,
}

impl HeadConfig {
    /// Builds the head with Kaiming-normal linear weights (fastai's `apply_init`).
    pub fn init(&self, device: &Device) -> Head {
        let kaiming = Initializer::KaimingNormal {
            gain: std::f64::consts::SQRT_2,
            fan_out_only: false,
        };
        let lin = |i, o| {
            LinearConfig::new(i, o)
                .with_bias(false)
                .with_initializer(kaiming.clone())
                .init(device)
        };
        let nf = 2 * self.n_features;
        Head {
            bn1: bn(nf, device),
            drop1: DropoutConfig::new(self.ps / 2.0).init(),
            lin1: lin(nf, self.hidden),
            bn2: bn(self.hidden, device),
            drop2: DropoutConfig::new(self.ps).init(),
            lin2: lin(self.hidden, self.n_classes),
        }
    }
}

/// fastai's head batch norm: weight 1, bias 1e-3.
fn bn(n: usize, device: &Device) -> BatchNorm {
    let mut bn = BatchNormConfig::new(n).init(device);
    bn.beta = bn.beta.map(|b| b.ones_like().mul_scalar(1e-3));
    bn
}

impl Head {
    /// Logits `[n, n_classes]` from a feature map `[n, c, h, w]`.
    pub fn forward(&self, features: Tensor<4>) -> Tensor<2> {
        let x = concat_pool(features);
        let x = linear_module(&self.lin1, self.drop1.forward(self.bn1.forward(x)));
        let x = relu(x);
        linear_module(&self.lin2, self.drop2.forward(self.bn2.forward(x)))
    }
}

/// fastai's `AdaptiveConcatPool2d(1)` + flatten: `[max, avg]` over space, `[n, 2c]`.
pub fn concat_pool(x: Tensor<4>) -> Tensor<2> {
    let [n, c, h, w] = x.dims();
    let flat = x.reshape([n, c, h * w]);
    let max = flat.clone().max_dim(2).reshape([n, c]);
    let avg = flat.mean_dim(2).reshape([n, c]);
    Tensor::cat(vec![max, avg], 1)
}
