//! Preparing an image run from its settings, before anything is written: the dataset (its
//! folder or the demo, sampled and with synthetic images as the settings say), the checks that
//! it suits the run (classes, sizes, a batch that fits, the memory it needs) and the loaders and
//! model configuration.

use burn::tensor::Device;

use super::config::{DEFAULT_MIN_SCALE, TrainConfig, default_aug};
use crate::data::{
    DataLoaders, ImageFolder, ItemTransform, Normalize, SplitConfig, demo::demo_path,
};
use crate::error::{Error, Result};
use crate::models::ClassifierConfig;

/// Everything a run needs, rebuilt identically from its [`TrainConfig`].
pub struct Prepared {
    /// The dataset, split.
    pub data: ImageFolder,
    /// Its loaders at the first stage's size.
    pub dls: DataLoaders,
    /// The model to build.
    pub model: ClassifierConfig,
    /// The final image side.
    pub size: u32,
    /// What the user should know before training starts.
    pub notes: Vec<String>,
}

/// The dataset a configuration names (its folder, or the demo), split as it says.
pub fn load_data(config: &TrainConfig) -> Result<ImageFolder> {
    let root = match &config.data {
        Some(p) => p.clone(),
        None => demo_path()?,
    };
    ImageFolder::from_folder(
        &root,
        SplitConfig {
            valid_pct: config.valid_pct,
            seed: config.split_seed.unwrap_or(config.seed),
        },
    )
}

/// The data a run trains on: [`load_data`], its training split drawn as `sampling` says
/// (ensembles), plus with `--extra-data` the synthetic images in the training split (never in
/// validation, never in `clean`'s or `interpret`'s data).
pub fn training_data(config: &TrainConfig) -> Result<ImageFolder> {
    let mut data = load_data(config)?;
    if let Some(s) = config.sampling {
        data.train = crate::data::sample::sample_train(&data.train, s, config.seed);
    }
    if let Some(dir) = &config.extra_data {
        crate::data::extra::add_synthetic(&mut data, dir, config.extra_fraction, config.seed)?;
    }
    Ok(data)
}

/// The batch size to train `n` images with: `bs` when it fits; else, when `auto` (the user gave
/// no batch size), the largest power of two up to half of `n`, at least 2 (so from 4 images up an
/// epoch has two steps or more, and BatchNorm never sees a batch of one: the last partial batch
/// is dropped); `None` when nothing fits (fewer than 2 images, or `bs` was the user's choice).
pub fn fit_batch_size(n: usize, bs: usize, auto: bool) -> Option<usize> {
    if n >= bs {
        return Some(bs);
    }
    if !auto || n < 2 {
        return None;
    }
    let half = (n / 2).max(2);
    Some(1 << half.ilog2())
}

/// What the user should know about the data before training: synthetic images, nested folders.
fn data_notes(data: &ImageFolder) -> Vec<String> {
    let mut notes = Vec::new();
    if data.synthetic > 0 {
        notes.push(format!(
            "training split: {} real + {} synthetic images (every epoch), validation: {} real",
            data.train.len() - data.synthetic,
            data.synthetic,
            data.valid.len()
        ));
    }
    if !data.nested.is_empty() {
        let shown: Vec<String> = data
            .nested
            .iter()
            .take(5)
            .map(|p| p.display().to_string())
            .collect();
        notes.push(format!(
            "{} inside class folders: their images take the class's label ({}{})",
            crate::text::count(data.nested.len(), "folder"),
            shown.join(", "),
            if data.nested.len() > 5 { ", …" } else { "" }
        ));
    }
    notes
}

/// Checks that `data` has two classes and that the run's sizes suit its architecture; returns
/// the final image side (the setting, or the data's smallest side up to 64 px).
fn check_sizes(config: &TrainConfig, data: &ImageFolder) -> Result<u32> {
    if data.vocab.len() < 2 {
        return Err(Error::Dataset {
            path: data.root.clone(),
            message: format!(
                "one class folder ({}): a classifier needs at least two",
                data.vocab.join(", ")
            ),
        });
    }
    if data.valid.is_empty() {
        let per_class = data.train.len() as f64 / data.vocab.len() as f64;
        return Err(Error::Dataset {
            path: data.root.clone(),
            message: format!(
                "no validation images: the classes have {per_class:.1} usable images each on average, too few to hold `valid_pct` {} of each out (a class keeps at least one for training); add images, or validation images in `valid/<class>/` beside `train/<class>/`",
                config.valid_pct
            ),
        });
    }
    let size = config.final_size().unwrap_or_else(|| data.min_side.min(64));
    if size < 16 {
        return Err(Error::Config(format!(
            "image size {size} is too small (at least 16)"
        )));
    }
    let smallest = config.sizes.first().copied().unwrap_or(size);
    let arch = config.arch;
    if smallest < arch.min_size() {
        return Err(Error::Config(format!(
            "{arch} needs images of at least {} px, this run would use {smallest} px (the data's images are {} px): use `size` {} or more to upscale",
            arch.min_size(),
            data.min_side,
            arch.min_size()
        )));
    }
    Ok(size)
}

/// The batch size the run trains with ([`fit_batch_size`]), or why none fits.
fn batch_size(config: &TrainConfig, data: &ImageFolder) -> Result<usize> {
    fit_batch_size(data.train.len(), config.bs, config.auto_bs).ok_or_else(|| Error::Dataset {
        path: data.root.clone(),
        message: format!(
            "{} training images: fewer than one batch (`bs` {}){}",
            data.train.len(),
            config.bs,
            if config.auto_bs {
                "; at least 2 are needed"
            } else {
                "; a smaller `bs`, or none, fits"
            }
        ),
    })
}

/// Validates `config` (the one place it is) and prepares its data, loaders and model.
pub fn prepare(config: &TrainConfig, data: ImageFolder) -> Result<Prepared> {
    config.validate()?;
    let mut notes = data_notes(&data);
    let size = check_sizes(config, &data)?;
    let bs = batch_size(config, &data)?;
    if bs != config.bs {
        notes.push(format!(
            "batch size {bs}: {} training images are fewer than {} (set `bs` to choose)",
            data.train.len(),
            config.bs
        ));
    }
    let first = config.sizes.first().copied().unwrap_or(size);
    let train_tfm =
        ItemTransform::train_min_scale(first, config.min_scale.unwrap_or(DEFAULT_MIN_SCALE));
    let dls = DataLoaders::with_transforms(
        &data,
        train_tfm,
        ItemTransform::valid(first),
        bs,
        config.seed,
    )
    .with_aug(config.aug.unwrap_or_else(|| default_aug(size)).transforms())
    .with_normalize({
        let (mean, std) = config.arch.spec().stats;
        Normalize { mean, std }
    });
    let model = ClassifierConfig::new(config.arch, data.vocab.len()).with_width(config.width);
    Ok(Prepared {
        data,
        dls,
        model,
        size,
        notes,
    })
}

/// Refuses, before anything is written, a batch and image size whose training would not fit in
/// the memory the CPU backend has left (a GPU's own memory is not known here).
pub fn check_memory(config: &TrainConfig, p: &Prepared, device: &Device) -> Result<()> {
    let largest = config
        .sizes
        .iter()
        .copied()
        .max()
        .unwrap_or(p.size)
        .max(p.size);
    let bs = p.dls.train.batch_size();
    let need = config.arch.training_memory(config.width, bs, largest);
    crate::backend::check_fits(
        device,
        need,
        &format!(
            "training {} at `size` {largest} with `bs` {bs}",
            config.arch
        ),
        "`size` or `bs`",
    )
}

#[cfg(test)]
mod tests {
    use super::fit_batch_size;

    #[test]
    fn batch_size_fits_small_datasets_only_when_not_chosen() {
        assert_eq!(fit_batch_size(3000, 64, true), Some(64));
        assert_eq!(fit_batch_size(40, 64, true), Some(16));
        assert_eq!(fit_batch_size(63, 64, true), Some(16));
        assert_eq!(fit_batch_size(5, 64, true), Some(2));
        assert_eq!(fit_batch_size(2, 64, true), Some(2));
        assert_eq!(fit_batch_size(1, 64, true), None);
        assert_eq!(fit_batch_size(40, 64, false), None);
    }
}
