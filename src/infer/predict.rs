//! Prediction with a trained bundle: class probabilities for image files or a whole loader.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use burn::module::Module;
use burn::tensor::Device;
use burn::tensor::activation::softmax;
use image::RgbImage;
use rand::SeedableRng;
use rand::rngs::StdRng;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use super::bundle::{BundleConfig, load_bundle};
use crate::data::{DataLoader, ItemTransform};
use crate::error::Result;
use crate::learner::Precision;
use crate::models::ImageClassifier;
use crate::ops::autocast::with_autocast;
use crate::ops::kernels::{FrozenWeights, with_frozen_weights};
use crate::ops::workers::on_workers;

/// One class and its probability.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClassProb {
    /// Class name.
    pub class: String,
    /// Probability (0..1).
    pub prob: f32,
}

/// The top classes predicted for one image.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Prediction {
    /// The image file.
    pub path: PathBuf,
    /// Most probable classes first.
    pub top: Vec<ClassProb>,
}

/// A trained model ready to predict, on one device.
pub struct Predictor {
    /// The model, in eval mode (an ensemble's first member).
    pub model: ImageClassifier,
    /// Its bundle configuration.
    pub config: BundleConfig,
    device: Device,
    /// An ensemble's other members (empty for a single run).
    pub others: Vec<Predictor>,
    /// How an ensemble's members' probabilities combine.
    pub combination: super::combine::Combination,
    /// Images an ensemble's weights were fitted on: left out whenever it is scored.
    pub fit_items: Vec<PathBuf>,
    /// The convolutions' precision (resolved: `Auto` is bf16 where the CPU's bf16 is faster).
    precision: Precision,
    /// The model's weights packed for bf16 products, kept from batch to batch.
    frozen: Arc<FrozenWeights>,
}

impl Predictor {
    /// Whether test-time augmentation has random augmentation to replay: some member trained
    /// with it (see [`BundleConfig::augments`]).
    pub fn tta_augments(&self) -> bool {
        self.config.augments() || self.others.iter().any(Predictor::tta_augments)
    }

    /// Loads the single bundle at `path` (a run folder or an exported file) onto `device`.
    pub fn open_bundle(path: &Path, device: &Device) -> Result<Self> {
        let device = device.clone().without_autodiff();
        let (model, config) = load_bundle(path, &device)?;
        Ok(Self::new(model, config, &device))
    }

    /// Whether this predictor combines several models.
    pub fn is_ensemble(&self) -> bool {
        !self.others.is_empty()
    }

    /// `items` without those an ensemble's weights were fitted on (never scored), and how many
    /// were left out.
    pub fn scorable(&self, items: Vec<crate::data::Item>) -> (Vec<crate::data::Item>, usize) {
        if self.fit_items.is_empty() {
            return (items, 0);
        }
        // Compared as real paths: the same image read as `photos/…` or `/abs/photos/…`.
        let real = |p: &Path| std::fs::canonicalize(p).unwrap_or_else(|_| p.to_path_buf());
        let fit: std::collections::HashSet<PathBuf> =
            self.fit_items.iter().map(|p| real(p)).collect();
        let n = items.len();
        let kept: Vec<_> = items
            .into_iter()
            .filter(|i| !fit.contains(&real(&i.path)))
            .collect();
        let left = n - kept.len();
        (kept, left)
    }

    /// Wraps an in-memory model (e.g. straight after training).
    pub fn new(model: ImageClassifier, config: BundleConfig, device: &Device) -> Self {
        let device = device.clone().without_autodiff();
        Self {
            model: model.valid().to_device(&device),
            config,
            others: Vec::new(),
            combination: super::combine::Combination::Mean,
            fit_items: Vec::new(),
            precision: Precision::Auto.resolve(&device),
            frozen: FrozenWeights::new(),
            device,
        }
    }

    /// Predicts in `precision` from now on, an ensemble's members too (refused where the
    /// device cannot compute in it).
    pub fn set_precision(&mut self, precision: Precision) -> Result<()> {
        precision.check(&self.device)?;
        self.precision = precision.resolve(&self.device);
        for other in &mut self.others {
            other.set_precision(precision)?;
        }
        Ok(())
    }

    /// The convolutions' precision.
    pub fn precision(&self) -> Precision {
        self.precision
    }

    /// Class probabilities of a host batch.
    pub fn probs_for_batch(&self, batch: &crate::data::Batch) -> Vec<Vec<f32>> {
        let half = self.precision.half();
        let flat: Vec<f32> = on_workers(&self.device, || {
            let logits = with_frozen_weights(&self.frozen, || {
                with_autocast(half, || self.model.forward(batch.images(&self.device)))
            });
            softmax(logits, 1)
                .into_data()
                .try_to_vec()
                .unwrap_or_default()
        });
        let n_classes = self.config.vocab.len();
        flat.chunks(n_classes).map(|c| c.to_vec()).collect()
    }

    /// Class probabilities of in-memory images (a notebook's array, a decoded upload), each
    /// resized and centre-cropped as validation images are; an ensemble combines its members'.
    pub fn probs_of_images(&self, images: &[RgbImage]) -> Vec<Vec<f32>> {
        let own = self.own_probs_of_images(images);
        if self.others.is_empty() {
            return own;
        }
        let all: Vec<Vec<Vec<f32>>> = std::iter::once(own)
            .chain(self.others.iter().map(|m| m.own_probs_of_images(images)))
            .collect();
        (0..images.len())
            .map(|i| {
                let rows: Vec<&[f32]> = all.iter().map(|m| m[i].as_slice()).collect();
                self.combination.combine(&rows)
            })
            .collect()
    }

    /// [`probs_of_images`](Self::probs_of_images) with this predictor's own model only.
    fn own_probs_of_images(&self, images: &[RgbImage]) -> Vec<Vec<f32>> {
        if images.is_empty() {
            return Vec::new();
        }
        let tfm = ItemTransform::valid(self.config.size);
        let s = self.config.size as usize;
        let plane = 3 * s * s;
        let mut pixels = vec![0.0; images.len() * plane];
        images
            .par_iter()
            .zip(pixels.par_chunks_mut(plane))
            .for_each(|(img, out)| {
                let view = tfm.apply(img, &mut StdRng::seed_from_u64(0));
                self.config.normalize.write_chw(&view, out);
            });
        self.probs_for_batch(&crate::data::Batch {
            images: pixels,
            labels: vec![0; images.len()],
            size: s,
            indices: (0..images.len()).collect(),
            mix: None,
        })
    }

    /// Probabilities and targets for every item of `loader` (fastai's `get_preds`).
    pub fn get_preds(&self, loader: &DataLoader) -> (Vec<Vec<f32>>, Vec<usize>) {
        let (mut probs, mut targets) = (Vec::new(), Vec::new());
        for batch in loader.iter(0) {
            probs.extend(self.probs_for_batch(&batch));
            targets.extend(batch.labels.iter().map(|&l| l as usize));
        }
        (probs, targets)
    }
}

/// The `k` largest probabilities with their class names, largest first.
pub fn top_k(probs: &[f32], vocab: &[String], k: usize) -> Vec<ClassProb> {
    let mut idx: Vec<usize> = (0..probs.len()).collect();
    idx.sort_by(|&a, &b| probs[b].total_cmp(&probs[a]));
    idx.into_iter()
        .take(k)
        .map(|i| ClassProb {
            class: vocab[i].clone(),
            prob: probs[i],
        })
        .collect()
}
