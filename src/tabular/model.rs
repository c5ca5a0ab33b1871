//! fastai's `TabularModel`: one embedding per categorical input → embedding dropout, BatchNorm on
//! the continuous inputs, then Linear → ReLU → BatchNorm (→ dropout) blocks and a final Linear;
//! regression squashes the output into `y_range` with a scaled sigmoid (`SigmoidRange`).

use burn::config::Config;
use burn::module::Module;
use burn::nn::{
    BatchNorm, BatchNormConfig, Dropout, DropoutConfig, Embedding, EmbeddingConfig, Initializer,
    Linear, LinearConfig,
};
use burn::tensor::activation::{relu, sigmoid};
use burn::tensor::{Device, Int, Tensor, TensorData};

use super::data::{TabBatch, TabularDataLoaders};
use crate::learner::{LossFunc, Trainable, Validation};
use crate::ops::{batch_norm_1d, linear_module};

/// Settings of fastai's `tabular_learner` model (`layers` [200, 100], no dropout, `embed_p` 0).
#[derive(Config, Debug, PartialEq)]
pub struct TabularModelConfig {
    /// (levels, width) of each categorical input's embedding.
    pub emb_szs: Vec<(usize, usize)>,
    /// Number of continuous inputs.
    pub n_cont: usize,
    /// Outputs: classes, or 1 for regression.
    pub out_size: usize,
    /// Hidden layer widths (fastai: [200, 100]).
    #[config(default = "vec![200, 100]")]
    pub layers: Vec<usize>,
    /// Dropout after each hidden block (fastai's `ps`: 0).
    #[config(default = 0.0)]
    pub ps: f64,
    /// Dropout on the concatenated embeddings (fastai's `embed_p`: 0).
    #[config(default = 0.0)]
    pub embed_p: f64,
    /// Regression output range (`SigmoidRange`), if any.
    #[config(default = "None")]
    pub y_range: Option<(f64, f64)>,
}

/// Linear (no bias) → ReLU → BatchNorm → dropout: fastai's `LinBnDrop(lin_first=True)`.
#[derive(Module, Debug)]
pub struct LinBnDrop {
    /// The linear layer.
    pub lin: Linear,
    /// BatchNorm after the activation.
    pub bn: BatchNorm,
    /// Dropout `ps`.
    pub drop: Dropout,
}

/// The tabular model.
#[derive(Module, Debug)]
pub struct TabularModel {
    /// One embedding per categorical input (level 0 is `#na#`).
    pub embeds: Vec<Embedding>,
    /// Dropout on the concatenated embeddings.
    pub emb_drop: Dropout,
    /// BatchNorm of the continuous inputs (absent without any).
    pub bn_cont: Option<BatchNorm>,
    /// The hidden blocks.
    pub layers: Vec<LinBnDrop>,
    /// The output layer.
    pub out: Linear,
    /// Whether the output goes through `SigmoidRange(y_lo, y_hi)`.
    pub use_y_range: bool,
    /// Lower end of the output range.
    pub y_lo: f64,
    /// Upper end of the output range.
    pub y_hi: f64,
}

impl TabularModelConfig {
    /// Builds the model: embeddings N(0, 0.01) (fastai: truncated normal, std 0.01), linear
    /// layers with PyTorch's default init, BatchNorm γ 1 β 0.
    pub fn init(&self, device: &Device) -> TabularModel {
        let embeds = self
            .emb_szs
            .iter()
            .map(|&(n, d)| {
                EmbeddingConfig::new(n, d)
                    .with_initializer(Initializer::Normal {
                        mean: 0.0,
                        std: 0.01,
                    })
                    .init(device)
            })
            .collect();
        let n_emb: usize = self.emb_szs.iter().map(|e| e.1).sum();
        let mut sizes = vec![n_emb + self.n_cont];
        sizes.extend(&self.layers);
        let layers = sizes
            .windows(2)
            .map(|w| LinBnDrop {
                lin: LinearConfig::new(w[0], w[1]).with_bias(false).init(device),
                bn: BatchNormConfig::new(w[1]).init(device),
                drop: DropoutConfig::new(self.ps).init(),
            })
            .collect();
        let (lo, hi) = self.y_range.unwrap_or((0.0, 1.0));
        TabularModel {
            embeds,
            emb_drop: DropoutConfig::new(self.embed_p).init(),
            bn_cont: (self.n_cont > 0).then(|| BatchNormConfig::new(self.n_cont).init(device)),
            layers,
            out: LinearConfig::new(*sizes.last().unwrap_or(&1), self.out_size).init(device),
            use_y_range: self.y_range.is_some(),
            y_lo: lo,
            y_hi: hi,
        }
    }

    /// Numbers the model will hold (parameters, BatchNorm statistics), counted without building it.
    pub fn n_params(&self) -> f64 {
        let n_emb: f64 = self.emb_szs.iter().map(|e| e.1 as f64).sum();
        let emb: f64 = self.emb_szs.iter().map(|&(n, d)| n as f64 * d as f64).sum();
        let mut sizes = vec![n_emb + self.n_cont as f64];
        sizes.extend(self.layers.iter().map(|&w| w as f64));
        // Linear without bias, then BatchNorm's γ, β, mean and variance, per hidden block.
        let hidden: f64 = sizes.windows(2).map(|w| w[0] * w[1] + 4.0 * w[1]).sum();
        let last = *sizes.last().unwrap_or(&1.0);
        let out = self.out_size as f64;
        emb + 4.0 * self.n_cont as f64 + hidden + last * out + out
    }
}

impl TabularModel {
    /// Outputs `[n, out]` from category codes `[n, n_cat]` and continuous values `[n, n_cont]`.
    pub fn forward(&self, cats: Option<Tensor<2, Int>>, conts: Option<Tensor<2>>) -> Tensor<2> {
        let x = self.features(cats, conts);
        self.forward_from_first(linear_module(self.first_linear(), x))
    }

    /// The first linear layer's input: embeddings, then normalised continuous values, per row.
    pub fn features(&self, cats: Option<Tensor<2, Int>>, conts: Option<Tensor<2>>) -> Tensor<2> {
        let mut parts = Vec::new();
        if let (Some(cats), false) = (cats, self.embeds.is_empty()) {
            let n = cats.dims()[0];
            let embs: Vec<Tensor<2>> = self
                .embeds
                .iter()
                .enumerate()
                .map(|(i, e)| {
                    let d = e.weight.dims()[1];
                    e.forward(cats.clone().slice([0..n, i..i + 1]))
                        .reshape([n, d])
                })
                .collect();
            parts.push(self.emb_drop.forward(Tensor::cat(embs, 1)));
        }
        if let (Some(conts), Some(bn)) = (conts, &self.bn_cont) {
            parts.push(batch_norm_1d(bn, conts));
        }
        Tensor::cat(parts, 1)
    }

    /// The first linear layer: the first hidden block's (no bias), or the output layer.
    pub fn first_linear(&self) -> &Linear {
        self.layers.first().map_or(&self.out, |l| &l.lin)
    }

    /// Outputs from the first linear layer's output `h`: the rest of [`TabularModel::forward`].
    pub fn forward_from_first(&self, h: Tensor<2>) -> Tensor<2> {
        let x = match self.layers.split_first() {
            Some((first, rest)) => {
                let mut x = first.drop.forward(batch_norm_1d(&first.bn, relu(h)));
                for l in rest {
                    x = l
                        .drop
                        .forward(batch_norm_1d(&l.bn, relu(linear_module(&l.lin, x))));
                }
                linear_module(&self.out, x)
            }
            None => h,
        };
        if self.use_y_range {
            sigmoid(x)
                .mul_scalar(self.y_hi - self.y_lo)
                .add_scalar(self.y_lo)
        } else {
            x
        }
    }

    /// Outputs for a batch of processed rows.
    pub fn forward_batch(&self, batch: &TabBatch, device: &Device) -> Tensor<2> {
        let (cats, conts) = batch_inputs(batch, device);
        self.forward(cats, conts)
    }
}

/// A batch's category codes `[n, n_cat]` and continuous values `[n, n_cont]` as tensors.
pub fn batch_inputs(
    batch: &TabBatch,
    device: &Device,
) -> (Option<Tensor<2, Int>>, Option<Tensor<2>>) {
    let n = batch.n;
    let n_cat = batch.cats.len() / n.max(1);
    let n_cont = batch.conts.len() / n.max(1);
    let cats = (n_cat > 0).then(|| {
        Tensor::<2, Int>::from_data(TensorData::new(batch.cats.clone(), [n, n_cat]), device)
    });
    let conts = (n_cont > 0)
        .then(|| Tensor::<2>::from_data(TensorData::new(batch.conts.clone(), [n, n_cont]), device));
    (cats, conts)
}

/// The loss of outputs on a batch: cross-entropy for classes, mean squared error for values.
fn batch_loss(
    out: Tensor<2>,
    batch: &TabBatch,
    loss_func: &LossFunc,
    device: &Device,
) -> Tensor<1> {
    let n = batch.n;
    if batch.y_value.is_empty() {
        let y = Tensor::<1, Int>::from_data(TensorData::new(batch.y_class.clone(), [n]), device);
        loss_func.hard(out, y, device)
    } else {
        let y = Tensor::<2>::from_data(TensorData::new(batch.y_value.clone(), [n, 1]), device);
        (out - y).powi_scalar(2).mean().reshape([1])
    }
}

impl Trainable for TabularModel {
    type Data = TabularDataLoaders;

    fn param_groups(&self) -> Vec<Vec<String>> {
        vec![Vec::new()]
    }

    fn train_loss(&self, batch: &TabBatch, loss_func: &LossFunc, device: &Device) -> Tensor<1> {
        batch_loss(self.forward_batch(batch, device), batch, loss_func, device)
    }

    fn validate(&self, data: &TabularDataLoaders, device: &Device) -> Validation {
        let (mut loss_sum, mut correct, mut sq, mut n) = (0.0, 0usize, 0.0, 0usize);
        let ce = LossFunc::cross_entropy();
        for batch in data.valid_batches() {
            let out = self.forward_batch(&batch, device);
            let loss = f64::from(batch_loss(out.clone(), &batch, &ce, device).into_scalar::<f32>());
            loss_sum += loss * batch.n as f64;
            if batch.y_value.is_empty() {
                let pred = out
                    .argmax(1)
                    .into_data()
                    .convert::<i64>()
                    .try_to_vec::<i64>();
                correct += pred
                    .unwrap_or_default()
                    .iter()
                    .zip(&batch.y_class)
                    .filter(|(p, y)| p == y)
                    .count();
            } else {
                sq += loss * batch.n as f64;
            }
            n += batch.n;
        }
        if n == 0 {
            return Validation::default();
        }
        let n_f = n as f64;
        let regression = data.regression();
        Validation {
            loss: Some(loss_sum / n_f),
            accuracy: (!regression).then(|| correct as f64 / n_f),
            rmse: regression.then(|| (sq / n_f).sqrt()),
        }
    }
}
