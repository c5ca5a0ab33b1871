//! `fastvision gan sample`: generated images written as PNG files, one folder per class (a
//! training folder `--extra-data` accepts), named `gan-<class>-<seed>-<i>.png` so they are
//! recognisable as synthetic, with `manifest.json` saying what made them. Seeded: the same
//! seed writes the same images.

use std::path::{Path, PathBuf};

use burn::tensor::Device;
use serde::{Deserialize, Serialize};

use super::data::to_rgb;
use super::run::{folder_name, load_generators};
use super::train::generate;
use crate::data::loader::mix;
use crate::error::{Error, Result};

/// What `manifest.json` records.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    /// The GAN run.
    pub run: PathBuf,
    /// Seed of the noise.
    pub seed: u64,
    /// Images per class.
    pub n_per_class: usize,
    /// Classes, each with the files written.
    pub classes: Vec<(String, usize)>,
    /// Image side and channels.
    pub size: usize,
    /// 1 or 3.
    pub channels: usize,
}

/// Generated images of one class.
#[derive(Debug, Clone, PartialEq)]
pub struct Generated {
    /// The class.
    pub class: String,
    /// Pixels `[n, channels, size, size]` in [-1, 1].
    pub pixels: Vec<f32>,
    /// 1 or 3.
    pub channels: usize,
    /// Side in pixels.
    pub size: usize,
}

/// Generated images of every class of `run_dir`, `n` per class.
pub fn generate_all(
    run_dir: &Path,
    n: usize,
    seed: u64,
    device: &Device,
) -> Result<Vec<Generated>> {
    let mut out = Vec::new();
    for (generator, info) in load_generators(run_dir, device)? {
        for (k, class) in info.classes.iter().enumerate() {
            let classes = info.conditional.then(|| vec![k as i64; n]);
            let s = mix(seed, k as u64, class.len() as u64);
            let px = generate(&generator, info.gan.noise, n, classes, s, device);
            out.push(Generated {
                class: class.clone(),
                pixels: px,
                channels: info.channels,
                size: info.gan.size,
            });
        }
    }
    Ok(out)
}

/// Writes `n` images per class into `out/<class>/` and `out/manifest.json`; refuses to replace
/// any existing file (choose another `--seed` or folder).
pub fn sample(
    run_dir: &Path,
    n: usize,
    seed: u64,
    out: &Path,
    device: &Device,
) -> Result<Manifest> {
    let images = generate_all(run_dir, n, seed, device)?;
    let manifest_path = out.join("manifest.json");
    let seed_manifest = out.join(format!("manifest-{seed}.json"));
    // Every file this call would write is checked first: nothing of the user's is replaced,
    // and a refused call writes nothing.
    let mut targets = vec![seed_manifest.clone()];
    for Generated { class, .. } in &images {
        let dir = out.join(folder_name(class));
        targets.extend((0..n).map(|i| dir.join(file_name(class, seed, i))));
    }
    if let Some(existing) = targets.iter().find(|p| p.exists()) {
        return Err(Error::Config(format!(
            "{} exists (a file is never replaced): use another `seed` or `out`",
            existing.display()
        )));
    }
    let mut manifest = Manifest {
        run: run_dir.into(),
        seed,
        n_per_class: n,
        classes: Vec::new(),
        size: 0,
        channels: 0,
    };
    for Generated {
        class,
        pixels: px,
        channels,
        size,
    } in images
    {
        let dir = out.join(folder_name(&class));
        std::fs::create_dir_all(&dir).map_err(|e| Error::io(&dir, e))?;
        let len = channels * size * size;
        for (i, p) in px.chunks(len).enumerate() {
            let path = dir.join(file_name(&class, seed, i));
            let rgb = image::DynamicImage::ImageRgb8(to_rgb(p, channels, size));
            let img = if channels == 1 {
                image::DynamicImage::ImageLuma8(rgb.into_luma8())
            } else {
                rgb
            };
            crate::io::write_new(&path, &crate::report::png_bytes(&img, &path)?)?;
        }
        manifest.classes.push((class, n));
        (manifest.size, manifest.channels) = (size, channels);
    }
    // Several seeds may share a folder: each writes manifest-<seed>.json; the first also
    // manifest.json (an existing one is never replaced).
    crate::io::write_json_new(&seed_manifest, &manifest)?;
    if !manifest_path.exists() {
        crate::io::write_json_new(&manifest_path, &manifest)?;
    }
    Ok(manifest)
}

/// The file name of synthetic image `i` of `class` drawn with `seed`.
pub fn file_name(class: &str, seed: u64, i: usize) -> String {
    format!("gan-{}-{seed}-{i:05}.png", folder_name(class))
}
