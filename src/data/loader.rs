//! The parallel, prefetching data loader: decode → item transform → normalise → batch.

use std::sync::mpsc::{Receiver, sync_channel};
use std::sync::{Arc, Mutex};

use burn::tensor::{Device, Int, Tensor, TensorData};
use rand::{SeedableRng, rngs::StdRng, seq::SliceRandom};
use rayon::prelude::*;

use super::augment::AugTransforms;
use super::decode::decode_rgb;
use super::transform::{ItemTransform, Normalize};
use super::{ImageFolder, Item, Skipped};

/// Batches decoded ahead of the training step.
const PREFETCH: usize = 3;

/// A batch of normalised images (NCHW f32) and their labels, still in host memory.
#[derive(Debug, Clone)]
pub struct Batch {
    /// Pixel values, `n × 3 × size × size`.
    pub images: Vec<f32>,
    /// Class index of each image.
    pub labels: Vec<i64>,
    /// Side of each image.
    pub size: usize,
    /// Positions in the loader's item list of the images in this batch.
    pub indices: Vec<usize>,
    /// How the images were mixed with each other (MixUp, CutMix), if they were.
    pub mix: Option<Mix>,
}

/// Each image `i` of a mixed batch is `lam[i]` of itself and `1 − lam[i]` of image `other[i]`;
/// its loss mixes the two labels the same way.
#[derive(Debug, Clone, PartialEq)]
pub struct Mix {
    /// Label of the image mixed into each image.
    pub other: Vec<i64>,
    /// Weight of each image's own label.
    pub lam: Vec<f32>,
}

impl Batch {
    /// Number of images.
    pub fn len(&self) -> usize {
        self.labels.len()
    }

    /// Whether the batch holds no image.
    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    /// The images as a `[n, 3, size, size]` tensor on `device`.
    pub fn images(&self, device: &Device) -> Tensor<4> {
        let shape = [self.len(), 3, self.size, self.size];
        Tensor::from_data(TensorData::new(self.images.clone(), shape), device)
    }

    /// The labels as a `[n]` integer tensor on `device`.
    pub fn targets(&self, device: &Device) -> Tensor<1, Int> {
        Tensor::from_data(TensorData::new(self.labels.clone(), [self.len()]), device)
    }
}

/// Iterates a list of items in batches, decoding and transforming in parallel ahead of use.
#[derive(Debug, Clone)]
pub struct DataLoader {
    items: Arc<Vec<Item>>,
    tfm: ItemTransform,
    norm: Normalize,
    aug: Option<AugTransforms>,
    batch_size: usize,
    shuffle: bool,
    drop_last: bool,
    seed: u64,
    failed: Arc<Mutex<Vec<Skipped>>>,
}

impl DataLoader {
    /// A loader over `items`; training loaders shuffle and drop the last partial batch (fastai).
    pub fn new(
        items: Vec<Item>,
        tfm: ItemTransform,
        norm: Normalize,
        batch_size: usize,
        train: bool,
        seed: u64,
    ) -> Self {
        Self {
            items: Arc::new(items),
            tfm,
            norm,
            aug: None,
            batch_size: batch_size.max(1),
            shuffle: train,
            drop_last: train,
            seed,
            failed: Arc::default(),
        }
    }

    /// The items, in their stored order.
    pub fn items(&self) -> &[Item] {
        &self.items
    }

    /// The item transform.
    pub fn transform(&self) -> ItemTransform {
        self.tfm
    }

    /// The augmentation applied after the item transform, if any.
    pub fn aug(&self) -> Option<AugTransforms> {
        self.aug
    }

    /// This loader with augmentation `aug` after the item transform (each image its own draw).
    pub fn with_aug(mut self, aug: Option<AugTransforms>) -> Self {
        self.aug = aug;
        self
    }

    /// The normalisation applied last.
    pub fn normalize(&self) -> Normalize {
        self.norm
    }

    /// Batch size.
    pub fn batch_size(&self) -> usize {
        self.batch_size
    }

    /// This loader with another item transform (e.g. a new size).
    pub fn with_transform(mut self, tfm: ItemTransform) -> Self {
        self.tfm = tfm;
        self
    }

    /// Number of batches per epoch.
    pub fn len(&self) -> usize {
        let n = self.items.len();
        if self.drop_last && n >= self.batch_size {
            n / self.batch_size
        } else {
            n.div_ceil(self.batch_size)
        }
    }

    /// Whether an epoch yields no batch.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Files that failed to decode while loading (after passing the initial check).
    pub fn failed(&self) -> Vec<Skipped> {
        self.failed.lock().map(|f| f.clone()).unwrap_or_default()
    }

    /// The item order of `epoch`: shuffled by (seed, epoch) for training, stored order otherwise.
    fn order(&self, epoch: usize) -> Vec<usize> {
        let mut order: Vec<usize> = (0..self.items.len()).collect();
        if self.shuffle {
            order.shuffle(&mut StdRng::seed_from_u64(mix(
                self.seed,
                epoch as u64,
                u64::MAX,
            )));
        }
        order
    }

    /// Builds batch `b` of `order` (rayon-parallel over its images).
    fn make_batch(&self, order: &[usize], b: usize, epoch: usize) -> Batch {
        let start = b * self.batch_size;
        let idx = &order[start..(start + self.batch_size).min(order.len())];
        // Data parallel: a training batch is this rank's share of the global batch.
        let idx = if self.shuffle {
            &idx[crate::distributed::share(
                idx.len(),
                crate::distributed::rank(),
                crate::distributed::size(),
            )]
        } else {
            idx
        };
        let size = self.tfm.size() as usize;
        let plane = 3 * size * size;
        let decoded: Vec<Option<(usize, Vec<f32>)>> = idx
            .par_iter()
            .map(|&i| {
                let item = &self.items[i];
                match decode_rgb(&item.path) {
                    Ok(img) => {
                        let mut rng = StdRng::seed_from_u64(mix(self.seed, epoch as u64, i as u64));
                        let img = self.tfm.apply(&img, &mut rng);
                        let mut out = vec![0.0; plane];
                        match &self.aug {
                            Some(aug) => {
                                Normalize::write_unit_chw(&img, &mut out);
                                aug.apply(&mut out, size, &mut rng);
                                self.norm.normalize_in_place(&mut out);
                            }
                            None => self.norm.write_chw(&img, &mut out),
                        }
                        Some((i, out))
                    }
                    Err(why) => {
                        if let Ok(mut f) = self.failed.lock()
                            && !f.iter().any(|s| s.path == item.path)
                        {
                            f.push(Skipped::new(&item.path, &why));
                        }
                        None
                    }
                }
            })
            .collect();
        let mut batch = Batch {
            images: Vec::with_capacity(idx.len() * plane),
            labels: Vec::new(),
            size,
            indices: Vec::new(),
            mix: None,
        };
        for (i, px) in decoded.into_iter().flatten() {
            batch.images.extend_from_slice(&px);
            batch.labels.push(self.items[i].label as i64);
            batch.indices.push(i);
        }
        batch
    }

    /// The batches of `epoch`, produced by a background thread up to a few batches ahead.
    pub fn iter(&self, epoch: usize) -> BatchIter {
        let (tx, rx) = sync_channel(PREFETCH);
        let this = self.clone();
        let n = self.len();
        std::thread::spawn(move || {
            let order = this.order(epoch);
            for b in 0..n {
                let batch = this.make_batch(&order, b, epoch);
                if batch.is_empty() {
                    continue;
                }
                if tx.send(batch).is_err() {
                    return;
                }
            }
        });
        BatchIter { rx }
    }
}

/// Batches of one epoch, in order.
pub struct BatchIter {
    rx: Receiver<Batch>,
}

impl Iterator for BatchIter {
    type Item = Batch;
    fn next(&mut self) -> Option<Batch> {
        self.rx.recv().ok()
    }
}

/// A reproducible 64-bit mix of a seed with an epoch and an item index (SplitMix64 finaliser).
pub fn mix(seed: u64, a: u64, b: u64) -> u64 {
    let mut z =
        seed ^ a.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ b.wrapping_mul(0xC2B2_AE3D_27D4_EB4F);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// The training and validation loaders of a dataset, with its class names.
#[derive(Debug, Clone)]
pub struct DataLoaders {
    /// Shuffled, augmented training batches.
    pub train: DataLoader,
    /// Validation batches in order, without augmentation.
    pub valid: DataLoader,
    /// Class names.
    pub vocab: Vec<String>,
    /// The normalisation applied.
    pub normalize: Normalize,
    /// How many training items are synthetic (`--extra-data`).
    pub synthetic: usize,
}

impl DataLoaders {
    /// Loaders for `data` at `size` px with fastai's default transforms and ImageNet statistics.
    pub fn from_folder(data: &ImageFolder, size: u32, batch_size: usize, seed: u64) -> Self {
        Self::with_transforms(
            data,
            ItemTransform::train(size),
            ItemTransform::valid(size),
            batch_size,
            seed,
        )
    }

    /// Loaders for `data` with the given train and valid transforms.
    pub fn with_transforms(
        data: &ImageFolder,
        train_tfm: ItemTransform,
        valid_tfm: ItemTransform,
        batch_size: usize,
        seed: u64,
    ) -> Self {
        let normalize = Normalize::IMAGENET;
        Self {
            train: DataLoader::new(
                data.train.clone(),
                train_tfm,
                normalize,
                batch_size,
                true,
                seed,
            ),
            valid: DataLoader::new(
                data.valid.clone(),
                valid_tfm,
                normalize,
                batch_size,
                false,
                seed,
            ),
            vocab: data.vocab.clone(),
            normalize,
            synthetic: data.synthetic,
        }
    }

    /// These loaders with another normalisation (e.g. the statistics a pretrained model expects).
    pub fn with_normalize(mut self, normalize: Normalize) -> Self {
        self.train.norm = normalize;
        self.valid.norm = normalize;
        self.normalize = normalize;
        self
    }

    /// These loaders with training augmentation `aug` (`None`: the crop alone); the crop's own
    /// flip is dropped, flipping being part of the augmentation.
    pub fn with_aug(mut self, aug: Option<AugTransforms>) -> Self {
        let tfm = self.train.transform().without_flip();
        self.train = self.train.with_transform(tfm).with_aug(aug);
        self
    }

    /// Number of classes.
    pub fn n_classes(&self) -> usize {
        self.vocab.len()
    }

    /// Both loaders at a new image size (progressive resizing).
    pub fn resized(&self, size: u32) -> Self {
        let mut out = self.clone();
        out.train = out
            .train
            .with_transform(self.train.transform().with_size(size));
        out.valid = out
            .valid
            .with_transform(self.valid.transform().with_size(size));
        out
    }
}
