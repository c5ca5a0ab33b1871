//! The training loss: cross-entropy, with label smoothing and with the label mixing of MixUp/CutMix.

use burn::nn::loss::CrossEntropyLossConfig;
use burn::tensor::activation::log_softmax;
use burn::tensor::{Device, Int, Tensor, TensorData};

use crate::data::Batch;

/// Cross-entropy with optional label smoothing (fastai's `LabelSmoothingCrossEntropy`).
#[derive(Debug, Clone, Copy, PartialEq, Default, serde::Serialize, serde::Deserialize)]
pub struct LossFunc {
    /// Smoothing ε: the target puts ε/k on every class and 1−ε more on the true one (fastai: 0.1).
    pub label_smoothing: f64,
}

impl LossFunc {
    /// Plain cross-entropy.
    pub fn cross_entropy() -> Self {
        Self::default()
    }

    /// Label-smoothing cross-entropy with smoothing `eps`.
    pub fn label_smoothing(eps: f64) -> Self {
        Self {
            label_smoothing: eps,
        }
    }

    /// Mean loss of `logits` on `batch`'s labels, mixed as the batch says.
    pub fn batch_loss(&self, logits: Tensor<2>, batch: &Batch, device: &Device) -> Tensor<1> {
        if batch.mix.is_none() && self.label_smoothing == 0.0 {
            return self.hard(logits, batch.targets(device), device);
        }
        let [n, k] = logits.dims();
        let targets = self.soft_targets(batch, k);
        self.soft(
            logits,
            Tensor::from_data(TensorData::new(targets, [n, k]), device),
        )
    }

    /// Mean cross-entropy against integer labels.
    pub fn hard(&self, logits: Tensor<2>, targets: Tensor<1, Int>, device: &Device) -> Tensor<1> {
        let ce = CrossEntropyLossConfig::new();
        let ce = if self.label_smoothing > 0.0 {
            ce.with_smoothing(Some(self.label_smoothing as f32))
        } else {
            ce
        };
        ce.init(device).forward(logits, targets)
    }

    /// Mean cross-entropy against target distributions (rows summing to 1).
    pub fn soft(&self, logits: Tensor<2>, targets: Tensor<2>) -> Tensor<1> {
        let n = logits.dims()[0];
        (log_softmax(logits, 1) * targets).sum().neg() / n as f32
    }

    /// The target distribution of every image of `batch` over `k` classes, row after row.
    pub fn soft_targets(&self, batch: &Batch, k: usize) -> Vec<f32> {
        let eps = self.label_smoothing as f32;
        let (off, on) = (eps / k as f32, 1.0 - eps);
        let mut t = vec![off; batch.len() * k];
        for (i, &y) in batch.labels.iter().enumerate() {
            match &batch.mix {
                Some(mix) => {
                    t[i * k + y as usize] += on * mix.lam[i];
                    t[i * k + mix.other[i] as usize] += on * (1.0 - mix.lam[i]);
                }
                None => t[i * k + y as usize] += on,
            }
        }
        t
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::Mix;

    fn batch(labels: Vec<i64>, mix: Option<Mix>) -> Batch {
        Batch {
            images: Vec::new(),
            size: 0,
            indices: (0..labels.len()).collect(),
            labels,
            mix,
        }
    }

    fn logits(device: &Device) -> Tensor<2> {
        let v = vec![2.0f32, -1.0, 0.5, 0.1, 0.3, -2.0];
        Tensor::from_data(TensorData::new(v, [2, 3]), device)
    }

    fn log_probs(device: &Device) -> Vec<f32> {
        log_softmax(logits(device), 1)
            .into_data()
            .try_to_vec()
            .unwrap()
    }

    #[test]
    fn label_smoothing_equals_fastai_formula() {
        let device = Device::flex();
        let eps = 0.1f32;
        let lp = log_probs(&device);
        let labels = [0usize, 2];
        let expected: f32 = (0..2)
            .map(|i| {
                let row = &lp[i * 3..i * 3 + 3];
                let all: f32 = -row.iter().sum::<f32>();
                eps * all / 3.0 + (1.0 - eps) * -row[labels[i]]
            })
            .sum::<f32>()
            / 2.0;
        let lf = LossFunc::label_smoothing(0.1);
        let b = batch(vec![0, 2], None);
        let hard: f32 = lf.batch_loss(logits(&device), &b, &device).into_scalar();
        let mut mixed_self = b.clone();
        mixed_self.mix = Some(Mix {
            other: vec![0, 2],
            lam: vec![0.3, 0.6],
        });
        let soft: f32 = lf
            .batch_loss(logits(&device), &mixed_self, &device)
            .into_scalar();
        assert!((hard - expected).abs() < 1e-5, "{hard} vs {expected}");
        assert!((soft - expected).abs() < 1e-5, "{soft} vs {expected}");
    }

    #[test]
    fn mixed_loss_interpolates_the_two_losses() {
        let device = Device::flex();
        let lp = log_probs(&device);
        let lam = [0.7f32, 0.55];
        let expected =
            (lam[0] * -lp[0] + (1.0 - lam[0]) * -lp[1] + lam[1] * -lp[5] + (1.0 - lam[1]) * -lp[3])
                / 2.0;
        let b = batch(
            vec![0, 2],
            Some(Mix {
                other: vec![1, 0],
                lam: lam.to_vec(),
            }),
        );
        let got: f32 = LossFunc::cross_entropy()
            .batch_loss(logits(&device), &b, &device)
            .into_scalar();
        assert!((got - expected).abs() < 1e-5, "{got} vs {expected}");
    }
}
