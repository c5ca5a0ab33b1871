//! A GAN's real images: the training split of chosen classes, resized to the GAN's side, in
//! [-1, 1], kept grayscale when every image is gray (then one channel), held in memory.

use image::RgbImage;
use rand::SeedableRng;
use rand::rngs::StdRng;
use rayon::prelude::*;

use crate::data::decode::decode_rgb;
use crate::data::{ImageFolder, ItemTransform};
use crate::error::{Error, Result};

/// Real images for a GAN, `[n, channels, size, size]` row-major, with their class indices.
#[derive(Debug, Clone)]
pub struct GanData {
    /// Pixels in [-1, 1].
    pub images: Vec<f32>,
    /// Class index (into `classes`) of each image.
    pub labels: Vec<i64>,
    /// Images.
    pub n: usize,
    /// 1 (grayscale) or 3.
    pub channels: usize,
    /// Side in pixels.
    pub size: usize,
    /// Class names, in label order.
    pub classes: Vec<String>,
}

/// Whether every pixel of every image has equal R, G and B.
pub fn all_gray(images: &[RgbImage]) -> bool {
    images
        .iter()
        .all(|im| im.pixels().all(|p| p[0] == p[1] && p[1] == p[2]))
}

impl GanData {
    /// The training images of `classes` (names in `data.vocab`) at `size` px; each class must
    /// have at least `min_per_class` images (one batch), else an error naming it.
    pub fn load(
        data: &ImageFolder,
        classes: &[String],
        size: usize,
        min_per_class: usize,
    ) -> Result<Self> {
        let mut picked = Vec::new();
        for (k, name) in classes.iter().enumerate() {
            let label = data.vocab.iter().position(|v| v == name).ok_or_else(|| {
                Error::Config(format!(
                    "class \"{name}\" is not in {} (classes: {})",
                    data.root.display(),
                    data.vocab.join(", ")
                ))
            })?;
            let items: Vec<_> = data.train.iter().filter(|i| i.label == label).collect();
            if items.len() < min_per_class {
                return Err(Error::Dataset {
                    path: data.root.join(name),
                    message: format!(
                        "class \"{name}\" has {} training images, fewer than one batch ({min_per_class}); lower `bs` or add images",
                        items.len()
                    ),
                });
            }
            picked.extend(items.into_iter().map(|i| (i.path.clone(), k as i64)));
        }
        let tfm = ItemTransform::valid(size as u32);
        let decoded: Vec<(RgbImage, i64)> = picked
            .par_iter()
            .filter_map(|(path, k)| {
                let img = decode_rgb(path).ok()?;
                Some((tfm.apply(&img, &mut StdRng::seed_from_u64(0)), *k))
            })
            .collect();
        let imgs: Vec<RgbImage> = decoded.iter().map(|d| d.0.clone()).collect();
        let channels = if all_gray(&imgs) { 1 } else { 3 };
        let plane = size * size;
        let mut images = Vec::with_capacity(imgs.len() * channels * plane);
        for im in &imgs {
            for c in 0..channels {
                images.extend(im.pixels().map(|p| f32::from(p[c]) / 127.5 - 1.0));
            }
        }
        Ok(Self {
            n: imgs.len(),
            images,
            labels: decoded.iter().map(|d| d.1).collect(),
            channels,
            size,
            classes: classes.to_vec(),
        })
    }

    /// Mean and standard deviation of every pixel position over the images (`[c·s·s]` each).
    pub fn pixel_stats(images: &[f32], n: usize) -> (Vec<f32>, Vec<f32>) {
        let len = images.len() / n.max(1);
        let mut mean = vec![0f32; len];
        let mut sq = vec![0f32; len];
        for img in images.chunks(len) {
            for ((m, s), &v) in mean.iter_mut().zip(&mut sq).zip(img) {
                *m += v;
                *s += v * v;
            }
        }
        let nf = n.max(1) as f32;
        let mean: Vec<f32> = mean.iter().map(|m| m / nf).collect();
        let std = sq
            .iter()
            .zip(&mean)
            .map(|(s, m)| (s / nf - m * m).max(0.0).sqrt())
            .collect();
        (mean, std)
    }
}

/// Turns a generated image (`[c, s, s]` in [-1, 1]) into 8-bit RGB.
pub fn to_rgb(pixels: &[f32], channels: usize, size: usize) -> RgbImage {
    let plane = size * size;
    let byte = |v: f32| ((v + 1.0) * 127.5).round().clamp(0.0, 255.0) as u8;
    RgbImage::from_fn(size as u32, size as u32, |x, y| {
        let at = y as usize * size + x as usize;
        image::Rgb(std::array::from_fn(|c| {
            byte(pixels[c.min(channels - 1) * plane + at])
        }))
    })
}
