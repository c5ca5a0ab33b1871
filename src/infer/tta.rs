//! Test-time augmentation (fastai's `tta`) and the ResNet paper's 10-crop evaluation.

use std::path::PathBuf;

use image::RgbImage;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use super::predict::{Prediction, Predictor, top_k};
use crate::data::decode::decode_rgb;
use crate::data::transform::crop_resize;
use crate::data::{Batch, DataLoader, Item, ItemTransform, Skipped};
use crate::error::{Error, Result};

/// fastai's `tta` settings.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Tta {
    /// Augmented passes (fastai: 4).
    pub n: usize,
    /// Weight of the plain prediction in the blend (fastai: 0.25).
    pub beta: f64,
    /// Take the maximum over the passes instead of the mean.
    pub use_max: bool,
    /// Seed of the augmentation draws.
    pub seed: u64,
}

impl Default for Tta {
    fn default() -> Self {
        Self {
            n: 4,
            beta: 0.25,
            use_max: false,
            seed: 0,
        }
    }
}

/// What to tell the user asking for TTA of a model that trained without random augmentation.
const TTA_WITHOUT_AUGMENTATION: &str = "the model trained without augmentation (`aug` none): TTA replays the training augmentation, so every pass is the same view of an image (the whole image, resized; on a square image, the plain prediction)";

/// How images are turned into predictions.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
pub enum Inference {
    /// One centre view.
    #[default]
    Plain,
    /// Test-time augmentation with the training transforms.
    Tta(Tta),
    /// Four corners and the centre, and their mirror images, averaged.
    TenCrop,
}

impl Inference {
    /// What to tell the user of predictions made this way by a model that does (`augments`) or
    /// does not train with random augmentation ([`super::Predictor::tta_augments`],
    /// [`super::BundleConfig::augments`]): TTA without any has nothing to replay.
    pub fn note(self, augments: bool) -> Option<&'static str> {
        (matches!(self, Inference::Tta(_)) && !augments).then_some(TTA_WITHOUT_AUGMENTATION)
    }
}

/// Class probabilities of each item (`None` where the file could not be read) and the files skipped.
pub struct ItemProbs {
    /// One row per item, in item order.
    pub probs: Vec<Option<Vec<f32>>>,
    /// Files that failed to decode.
    pub skipped: Vec<Skipped>,
}

/// fastai's blend: the passes' mean (or max), then `(1 − beta)·augmented + beta·plain`.
pub fn combine_tta(plain: &[f32], passes: &[Vec<f32>], beta: f64, use_max: bool) -> Vec<f32> {
    if passes.is_empty() {
        return plain.to_vec();
    }
    let beta = beta as f32;
    (0..plain.len())
        .map(|c| {
            let column = passes.iter().map(|p| p[c]);
            let aug = if use_max {
                column.fold(f32::MIN, f32::max)
            } else {
                column.sum::<f32>() / passes.len() as f32
            };
            (1.0 - beta) * aug + beta * plain[c]
        })
        .collect()
}

/// The ten views of the ResNet paper's evaluation at `size`: the shorter side scaled to
/// `size`·256/224, then the four corner crops, the centre crop, and the mirror of each.
pub fn ten_crop_views(img: &RgbImage, size: u32) -> Vec<RgbImage> {
    let (w, h) = (f64::from(img.width()), f64::from(img.height()));
    let scaled_short = f64::from(size) * 256.0 / 224.0;
    let side = w.min(h) * f64::from(size) / scaled_short;
    let boxes = [
        (0.0, 0.0),
        (w - side, 0.0),
        (0.0, h - side),
        (w - side, h - side),
        ((w - side) / 2.0, (h - side) / 2.0),
    ];
    let crops: Vec<RgbImage> = boxes
        .iter()
        .map(|&(l, t)| crop_resize(img, (l, t, side, side), size))
        .collect();
    let flips: Vec<RgbImage> = crops.iter().map(image::imageops::flip_horizontal).collect();
    crops.into_iter().chain(flips).collect()
}

impl Predictor {
    /// The `k` most probable classes for each image file; an unreadable file is an error naming it.
    pub fn predict(&self, paths: &[PathBuf], k: usize, how: Inference) -> Result<Vec<Prediction>> {
        let out = self.infer(&unlabelled(paths), 64, how);
        if let Some(bad) = out.skipped.first() {
            return Err(Error::Image {
                path: bad.path.clone(),
                message: bad.reason.clone(),
            });
        }
        let probs: Vec<Vec<f32>> = out.probs.into_iter().flatten().collect();
        Ok(paths
            .iter()
            .zip(probs)
            .map(|(path, p)| Prediction {
                path: path.clone(),
                top: top_k(&p, &self.config.vocab, k),
            })
            .collect())
    }
    /// Probabilities of every item in `items` by `how`, `batch_size` images per forward pass;
    /// an ensemble runs every member (each at its own size and normalisation, TTA per member)
    /// and combines their probabilities.
    pub fn infer(&self, items: &[Item], batch_size: usize, how: Inference) -> ItemProbs {
        if self.others.is_empty() {
            return self.infer_one(items, batch_size, how);
        }
        let outs: Vec<ItemProbs> = std::iter::once(self)
            .chain(&self.others)
            .map(|m| m.infer_one(items, batch_size, how))
            .collect();
        let probs = (0..items.len())
            .map(|i| {
                let rows: Option<Vec<&[f32]>> =
                    outs.iter().map(|o| o.probs[i].as_deref()).collect();
                rows.map(|r| self.combination.combine(&r))
            })
            .collect();
        let mut skipped: Vec<_> = outs.into_iter().flat_map(|o| o.skipped).collect();
        skipped.sort_by(|a, b| a.path.cmp(&b.path));
        skipped.dedup_by(|a, b| a.path == b.path);
        ItemProbs { probs, skipped }
    }

    /// [`infer`](Self::infer) with this predictor's own model only.
    pub fn infer_one(&self, items: &[Item], batch_size: usize, how: Inference) -> ItemProbs {
        match how {
            Inference::Plain => {
                let tfm = ItemTransform::valid(self.config.size);
                self.loader_probs(&self.loader(items, tfm, None, 0, batch_size), 0)
            }
            Inference::Tta(t) => self.tta(items, batch_size, t),
            Inference::TenCrop => self.ten_crop(items, batch_size),
        }
    }

    fn loader(
        &self,
        items: &[Item],
        tfm: ItemTransform,
        aug: Option<crate::data::AugTransforms>,
        seed: u64,
        batch_size: usize,
    ) -> DataLoader {
        DataLoader::new(
            items.to_vec(),
            tfm,
            self.config.normalize,
            batch_size,
            false,
            seed,
        )
        .with_aug(aug)
    }

    /// Runs every batch of `loader` (epoch `epoch` of its augmentation draws), rows by item.
    fn loader_probs(&self, loader: &DataLoader, epoch: usize) -> ItemProbs {
        let mut probs = vec![None; loader.items().len()];
        for batch in loader.iter(epoch) {
            for (&i, p) in batch.indices.iter().zip(self.probs_for_batch(&batch)) {
                probs[i] = Some(p);
            }
        }
        ItemProbs {
            probs,
            skipped: loader.failed(),
        }
    }

    fn tta(&self, items: &[Item], batch_size: usize, t: Tta) -> ItemProbs {
        let size = self.config.size;
        let plain = self.infer(items, batch_size, Inference::Plain);
        let train_tfm = self
            .config
            .train_transform
            .map(|tfm| tfm.with_size(size))
            .unwrap_or_else(|| ItemTransform::train_min_scale(size, 1.0));
        let loader = self.loader(items, train_tfm, self.config.aug, t.seed, batch_size);
        let passes: Vec<ItemProbs> = (0..t.n).map(|p| self.loader_probs(&loader, p)).collect();
        let probs = plain
            .probs
            .iter()
            .enumerate()
            .map(|(i, row)| {
                let row = row.as_ref()?;
                let aug: Option<Vec<Vec<f32>>> =
                    passes.iter().map(|p| p.probs[i].clone()).collect();
                Some(combine_tta(row, &aug?, t.beta, t.use_max))
            })
            .collect();
        ItemProbs {
            probs,
            skipped: plain.skipped,
        }
    }

    fn ten_crop(&self, items: &[Item], batch_size: usize) -> ItemProbs {
        let size = self.config.size;
        let s = size as usize;
        let plane = 3 * s * s;
        let per_batch = (batch_size / 10).max(1);
        let mut probs = Vec::with_capacity(items.len());
        let mut skipped = Vec::new();
        for chunk in items.chunks(per_batch) {
            let views: Vec<Result<Vec<f32>, Skipped>> = chunk
                .par_iter()
                .map(|item| {
                    let img = decode_rgb(&item.path).map_err(|e| Skipped::new(&item.path, &e))?;
                    let mut out = vec![0.0; 10 * plane];
                    for (v, view) in ten_crop_views(&img, size).iter().enumerate() {
                        self.config
                            .normalize
                            .write_chw(view, &mut out[v * plane..(v + 1) * plane]);
                    }
                    Ok(out)
                })
                .collect();
            let ok: Vec<&Vec<f32>> = views.iter().filter_map(|v| v.as_ref().ok()).collect();
            let batch = Batch {
                images: ok.iter().flat_map(|v| v.iter().copied()).collect(),
                labels: vec![0; ok.len() * 10],
                size: s,
                indices: (0..ok.len() * 10).collect(),
                mix: None,
            };
            let rows = if ok.is_empty() {
                Vec::new()
            } else {
                self.probs_for_batch(&batch)
            };
            let mut means = rows.chunks(10).map(|views| {
                let k = views[0].len();
                (0..k)
                    .map(|c| views.iter().map(|v| v[c]).sum::<f32>() / 10.0)
                    .collect::<Vec<f32>>()
            });
            for v in views {
                match v {
                    Ok(_) => probs.push(means.next()),
                    Err(s) => {
                        skipped.push(s);
                        probs.push(None);
                    }
                }
            }
        }
        ItemProbs { probs, skipped }
    }
}

/// Items for image files with no label (for prediction).
pub fn unlabelled(paths: &[PathBuf]) -> Vec<Item> {
    paths
        .iter()
        .map(|p| Item {
            path: p.clone(),
            label: 0,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tta_of_a_constant_model_is_that_constant() {
        let c = vec![0.1f32, 0.6, 0.3];
        for use_max in [false, true] {
            let out = combine_tta(&c, &vec![c.clone(); 4], 0.25, use_max);
            for (a, b) in out.iter().zip(&c) {
                assert!((a - b).abs() < 1e-7);
            }
        }
    }

    #[test]
    fn tta_blends_a_quarter_of_the_plain_prediction() {
        let plain = [1.0f32, 0.0];
        let passes = vec![vec![0.0, 1.0], vec![0.5, 0.5]];
        assert_eq!(
            combine_tta(&plain, &passes, 0.25, false),
            vec![0.4375, 0.5625]
        );
        assert_eq!(combine_tta(&plain, &passes, 0.25, true), vec![0.625, 0.75]);
    }

    #[test]
    fn ten_crop_gives_ten_views_of_the_size_with_mirrors() {
        let img = RgbImage::from_fn(40, 30, |x, y| image::Rgb([x as u8 * 6, y as u8 * 8, 7]));
        let views = ten_crop_views(&img, 24);
        assert_eq!(views.len(), 10);
        assert!(views.iter().all(|v| v.dimensions() == (24, 24)));
        for i in 0..5 {
            assert_eq!(image::imageops::flip_horizontal(&views[i]), views[i + 5]);
        }
        assert_ne!(views[0], views[3], "corners differ");
    }
}
