//! Item transforms (crop, resize, flip) on RGB8 images, and ImageNet normalisation.

use fast_image_resize::{FilterType, ResizeAlg, ResizeOptions, Resizer};
use image::RgbImage;
use rand::{Rng, RngExt};
use serde::{Deserialize, Serialize};

/// Per-channel mean and standard deviation applied to pixel values scaled to 0..1.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Normalize {
    /// Channel means (R, G, B).
    pub mean: [f32; 3],
    /// Channel standard deviations (R, G, B).
    pub std: [f32; 3],
}

impl Normalize {
    /// ImageNet statistics, as fastai's `imagenet_stats`.
    pub const IMAGENET: Normalize = Normalize {
        mean: [0.485, 0.456, 0.406],
        std: [0.229, 0.224, 0.225],
    };

    /// Writes `img` (HWC u8) into `out` as CHW f32 in 0..1 (for augmentation before normalising).
    pub fn write_unit_chw(img: &RgbImage, out: &mut [f32]) {
        let plane = (img.width() * img.height()) as usize;
        for (i, px) in img.as_raw().chunks_exact(3).enumerate() {
            for c in 0..3 {
                out[c * plane + i] = f32::from(px[c]) / 255.0;
            }
        }
    }

    /// Normalises CHW values in 0..1, in place.
    pub fn normalize_in_place(&self, planes: &mut [f32]) {
        let plane = planes.len() / 3;
        for (c, chunk) in planes.chunks_mut(plane).enumerate() {
            let (m, s) = (self.mean[c], self.std[c]);
            chunk.iter_mut().for_each(|v| *v = (*v - m) / s);
        }
    }

    /// Undoes the normalisation of one CHW value of channel `c`, back to 0..1.
    pub fn denormalize(&self, c: usize, v: f32) -> f32 {
        v * self.std[c] + self.mean[c]
    }

    /// Writes `img` (HWC u8) into `out` as normalised CHW f32.
    pub fn write_chw(&self, img: &RgbImage, out: &mut [f32]) {
        let (w, h) = img.dimensions();
        let plane = (w * h) as usize;
        debug_assert_eq!(out.len(), plane * 3);
        let scale: [f32; 3] = std::array::from_fn(|c| 1.0 / (255.0 * self.std[c]));
        let shift: [f32; 3] = std::array::from_fn(|c| -self.mean[c] / self.std[c]);
        for (i, px) in img.as_raw().chunks_exact(3).enumerate() {
            for c in 0..3 {
                out[c * plane + i] = f32::from(px[c]) * scale[c] + shift[c];
            }
        }
    }
}

/// How one image becomes a square training or validation input.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub enum ItemTransform {
    /// fastai's `RandomResizedCrop` (scale and ratio ranges) then a horizontal flip with p 0.5.
    RandomResizedCrop {
        /// Output side in pixels.
        size: u32,
        /// Smallest fraction of the image area to crop (fastai: 0.08).
        min_scale: f64,
        /// Aspect-ratio range of the crop (fastai: 3/4 to 4/3).
        ratio: (f64, f64),
        /// Whether to flip horizontally half the time.
        flip: bool,
    },
    /// Resize the shorter side to `size`, then take the centre square (validation).
    ResizeCenterCrop {
        /// Output side in pixels.
        size: u32,
    },
}

impl ItemTransform {
    /// The training transform with fastai's defaults.
    pub fn train(size: u32) -> Self {
        Self::train_min_scale(size, 0.08)
    }

    /// The training transform with another smallest crop area (1.0 = no crop, flip only).
    pub fn train_min_scale(size: u32, min_scale: f64) -> Self {
        ItemTransform::RandomResizedCrop {
            size,
            min_scale,
            ratio: (3.0 / 4.0, 4.0 / 3.0),
            flip: true,
        }
    }

    /// The validation transform.
    pub fn valid(size: u32) -> Self {
        ItemTransform::ResizeCenterCrop { size }
    }

    /// Side of the square output.
    pub fn size(&self) -> u32 {
        match *self {
            ItemTransform::RandomResizedCrop { size, .. }
            | ItemTransform::ResizeCenterCrop { size } => size,
        }
    }

    /// The same transform without its random flip (when the batch augmentation flips instead).
    pub fn without_flip(self) -> Self {
        match self {
            ItemTransform::RandomResizedCrop {
                size,
                min_scale,
                ratio,
                ..
            } => ItemTransform::RandomResizedCrop {
                size,
                min_scale,
                ratio,
                flip: false,
            },
            other => other,
        }
    }

    /// The same transform at another output size (progressive resizing).
    pub fn with_size(self, new: u32) -> Self {
        match self {
            ItemTransform::RandomResizedCrop {
                min_scale,
                ratio,
                flip,
                ..
            } => ItemTransform::RandomResizedCrop {
                size: new,
                min_scale,
                ratio,
                flip,
            },
            ItemTransform::ResizeCenterCrop { .. } => ItemTransform::ResizeCenterCrop { size: new },
        }
    }

    /// Applies the transform; randomness comes only from `rng`.
    pub fn apply(&self, img: &RgbImage, rng: &mut impl Rng) -> RgbImage {
        let (w, h) = (f64::from(img.width()), f64::from(img.height()));
        match *self {
            ItemTransform::RandomResizedCrop {
                size,
                min_scale,
                ratio,
                flip,
            } => {
                let (left, top, cw, ch) = random_crop_box(w, h, min_scale, ratio, rng);
                let mut out = crop_resize(img, (left, top, cw, ch), size);
                if flip && rng.random_bool(0.5) {
                    image::imageops::flip_horizontal_in_place(&mut out);
                }
                out
            }
            ItemTransform::ResizeCenterCrop { size } => {
                let side = w.min(h);
                crop_resize(img, ((w - side) / 2.0, (h - side) / 2.0, side, side), size)
            }
        }
    }
}

/// Picks a crop box as torchvision/fastai do: up to 10 tries at a random area and log-uniform
/// ratio, else the largest centred box within the ratio range.
fn random_crop_box(
    w: f64,
    h: f64,
    min_scale: f64,
    ratio: (f64, f64),
    rng: &mut impl Rng,
) -> (f64, f64, f64, f64) {
    let area = w * h;
    let (lr0, lr1) = (ratio.0.ln(), ratio.1.ln());
    for _ in 0..10 {
        let target = area * rng.random_range(min_scale.min(1.0)..=1.0);
        let r = rng.random_range(lr0..=lr1).exp();
        let cw = (target * r).sqrt();
        let ch = (target / r).sqrt();
        if cw <= w && ch <= h {
            let left = rng.random_range(0.0..=(w - cw));
            let top = rng.random_range(0.0..=(h - ch));
            return (left, top, cw, ch);
        }
    }
    let in_ratio = w / h;
    let (cw, ch) = if in_ratio < ratio.0 {
        (w, w / ratio.0)
    } else if in_ratio > ratio.1 {
        (h * ratio.1, h)
    } else {
        (w, h)
    };
    ((w - cw) / 2.0, (h - ch) / 2.0, cw, ch)
}

/// Crops the box (sub-pixel) out of `img` and resizes it to `size`×`size` with a bilinear filter.
pub fn crop_resize(
    img: &RgbImage,
    (left, top, cw, ch): (f64, f64, f64, f64),
    size: u32,
) -> RgbImage {
    let mut dst = RgbImage::new(size, size);
    let options = ResizeOptions::new()
        .crop(left, top, cw, ch)
        .resize_alg(ResizeAlg::Convolution(FilterType::Bilinear));
    #[allow(
        clippy::expect_used,
        reason = "the box lies inside the image (random_crop_box / centre_crop_box), and an RGB8 to RGB8 resize of such a box has no failure case"
    )]
    Resizer::new()
        .resize(img, &mut dst, &options)
        .expect("RGB8 to RGB8 resize with a valid crop box cannot fail");
    dst
}
