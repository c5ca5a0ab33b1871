//! GAN-test and GAN-train (Shmelkov, Schmid & Alahari, ECCV 2018), measures fastai does not give:
//! GAN-test — a classifier trained on real images classifies generated images of each class
//! (high: the images look like their class); GAN-train — a classifier trained on generated images
//! only, with the same recipe, classifies the real validation images (high: the images cover
//! what the class looks like).

use std::path::Path;

use burn::tensor::Device;
use rand::SeedableRng;
use rand::rngs::StdRng;
use serde::{Deserialize, Serialize};

use super::data::to_rgb;
use super::run::folder_name;
use super::sample::{Generated, file_name, generate_all};
use crate::data::{Batch, DataLoader, ImageFolder, Item, ItemTransform};
use crate::error::{Error, Result};
use crate::infer::Predictor;
use crate::learner::Listen;

/// The scores of a GAN run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GanScores {
    /// GAN-test accuracy of each class's generated images, by the real-data classifier.
    pub gan_test: Vec<(String, f64)>,
    /// Mean GAN-test accuracy.
    pub gan_test_mean: f64,
    /// GAN-train: accuracy on the real validation images (of the GAN's classes) of a classifier
    /// trained on generated images only.
    pub gan_train: Option<f64>,
    /// The real-data classifier's own accuracy on those validation images, for reference.
    pub real_accuracy: f64,
    /// Generated images per class.
    pub n_per_class: usize,
}

/// Probabilities of the classifier for RGB images resized as its bundle says.
fn classify(pred: &Predictor, images: &[image::RgbImage]) -> Vec<Vec<f32>> {
    let size = pred.config.size;
    let tfm = ItemTransform::valid(size);
    let plane = (size * size) as usize;
    let mut out = Vec::new();
    for chunk in images.chunks(128) {
        let mut px = vec![0f32; chunk.len() * 3 * plane];
        for (img, dst) in chunk.iter().zip(px.chunks_mut(3 * plane)) {
            let img = tfm.apply(img, &mut StdRng::seed_from_u64(0));
            pred.config.normalize.write_chw(&img, dst);
        }
        let batch = Batch {
            images: px,
            labels: vec![0; chunk.len()],
            size: size as usize,
            indices: (0..chunk.len()).collect(),
            mix: None,
        };
        out.extend(pred.probs_for_batch(&batch));
    }
    out
}

fn argmax(p: &[f32]) -> usize {
    (0..p.len())
        .max_by(|&a, &b| p[a].total_cmp(&p[b]))
        .unwrap_or(0)
}

/// Scores the GAN run `run_dir` with the image run `classifier` (trained on the same classes of
/// real data): GAN-test on `n` generated images per class and, when `gan_train`, GAN-train by
/// training the classifier's recipe on those images (written under `run_dir/score-<seed>/`).
pub fn score(
    run_dir: &Path,
    classifier: &Path,
    n: usize,
    seed: u64,
    gan_train: bool,
    device: &Device,
    listen: Listen,
) -> Result<GanScores> {
    let pred = Predictor::load(classifier, device)?;
    let generated = generate_all(run_dir, n, seed, device)?;
    let vocab = &pred.config.vocab;
    let mut gan_test = Vec::new();
    for Generated {
        class,
        pixels: px,
        channels,
        size,
    } in &generated
    {
        let k = vocab.iter().position(|v| v == class).ok_or_else(|| {
            Error::Config(format!(
                "the classifier {} has no class \"{class}\" (its classes: {})",
                classifier.display(),
                vocab.join(", ")
            ))
        })?;
        let images: Vec<_> = px
            .chunks(channels * size * size)
            .map(|p| to_rgb(p, *channels, *size))
            .collect();
        let probs = classify(&pred, &images);
        let ok = probs.iter().filter(|p| argmax(p) == k).count();
        gan_test.push((class.clone(), ok as f64 / probs.len().max(1) as f64));
    }
    let gan_test_mean = gan_test.iter().map(|c| c.1).sum::<f64>() / gan_test.len().max(1) as f64;
    // The real validation images of the GAN's classes, from the classifier's own data.
    let config = crate::vision::load_config(classifier)?;
    let data = crate::vision::load_data(&config)?;
    let classes: Vec<String> = generated.iter().map(|g| g.class.clone()).collect();
    let valid: Vec<Item> = data
        .valid
        .iter()
        .filter_map(|it| {
            let name = &data.vocab[it.label];
            classes.iter().position(|c| c == name).map(|k| Item {
                path: it.path.clone(),
                label: k,
            })
        })
        .collect();
    let real_probs = {
        let loader = DataLoader::new(
            valid
                .iter()
                .map(|it| Item {
                    path: it.path.clone(),
                    label: vocab
                        .iter()
                        .position(|v| v == &classes[it.label])
                        .unwrap_or(0),
                })
                .collect(),
            ItemTransform::valid(pred.config.size),
            pred.config.normalize,
            64,
            false,
            0,
        );
        pred.get_preds(&loader)
    };
    let real_accuracy = accuracy(&real_probs.0, &real_probs.1);
    let gan_train = if gan_train {
        Some(train_on_generated(
            run_dir, &config, &generated, &classes, valid, seed, device, listen,
        )?)
    } else {
        None
    };
    Ok(GanScores {
        gan_test,
        gan_test_mean,
        gan_train,
        real_accuracy,
        n_per_class: n,
    })
}

fn accuracy(probs: &[Vec<f32>], targets: &[usize]) -> f64 {
    let ok = probs
        .iter()
        .zip(targets)
        .filter(|(p, t)| argmax(p) == **t)
        .count();
    ok as f64 / targets.len().max(1) as f64
}

#[allow(clippy::too_many_arguments)]
fn train_on_generated(
    run_dir: &Path,
    config: &crate::vision::TrainConfig,
    generated: &[Generated],
    classes: &[String],
    valid: Vec<Item>,
    seed: u64,
    device: &Device,
    listen: Listen,
) -> Result<f64> {
    let dir = run_dir.join(format!("score-{seed}"));
    let mut train = Vec::new();
    for (k, g) in generated.iter().enumerate() {
        let (class, px, channels, size) = (&g.class, &g.pixels, &g.channels, &g.size);
        let cdir = dir.join(folder_name(class));
        std::fs::create_dir_all(&cdir).map_err(|e| Error::io(&cdir, e))?;
        for (i, p) in px.chunks(channels * size * size).enumerate() {
            let path = cdir.join(file_name(class, seed, i));
            let img = image::DynamicImage::ImageRgb8(to_rgb(p, *channels, *size));
            crate::io::write_atomic(&path, &crate::report::png_bytes(&img, &path)?)?;
            train.push(Item { path, label: k });
        }
    }
    let size = generated.first().map_or(32, |g| g.size) as u32;
    let data = ImageFolder {
        root: dir.clone(),
        train,
        valid: valid.clone(),
        vocab: classes.to_vec(),
        skipped: Vec::new(),
        min_side: size,
        synthetic: 0,
        nested: Vec::new(),
    };
    let pred = crate::vision::train_in_memory(config, data, device, listen)?;
    let loader = DataLoader::new(
        valid,
        ItemTransform::valid(pred.config.size),
        pred.config.normalize,
        64,
        false,
        0,
    );
    let (probs, targets) = pred.get_preds(&loader);
    Ok(accuracy(&probs, &targets))
}
