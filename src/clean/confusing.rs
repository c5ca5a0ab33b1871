//! The seed's method 1: training images the model labels wrongly with high confidence, judged
//! in-sample by the run's model or out-of-fold by models that never saw them.

use std::path::PathBuf;

use rand::{SeedableRng, rngs::StdRng, seq::SliceRandom};
use serde::{Deserialize, Serialize};

use crate::data::{ImageFolder, Item};
use crate::error::{Error, Result};
use crate::infer::Inference;
use crate::interpret::interpretation::{Interpretation, image_losses};
use crate::learner::{Listen, Listener};
use crate::vision::{TrainConfig, train_in_memory};

/// The list of confusing images `clean` writes into the run folder.
pub const CONFUSING_FILE: &str = "confusing.csv";

/// One image flagged as probably mislabelled.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Flag {
    /// The image file.
    pub path: PathBuf,
    /// Its folder's class.
    pub given: String,
    /// The class the model sees.
    pub predicted: String,
    /// Probability of the predicted class.
    pub probability: f32,
    /// Loss on the given label.
    pub loss: f32,
}

/// Images of `interp` predicted wrongly with probability above `threshold`, largest loss first.
pub fn flags(interp: &Interpretation, threshold: f32) -> Vec<Flag> {
    interp
        .confident_wrong(threshold)
        .into_iter()
        .map(|im| Flag {
            path: im.path.clone(),
            given: interp.vocab[im.actual].clone(),
            predicted: interp.vocab[im.predicted].clone(),
            probability: im.prob,
            loss: im.loss,
        })
        .collect()
}

/// The flags as CSV with a header row (path, given, predicted, probability, loss).
pub fn to_csv(flags: &[Flag]) -> Result<String> {
    let mut w = csv::Writer::from_writer(Vec::new());
    for f in flags {
        w.serialize(f).map_err(|e| Error::Config(e.to_string()))?;
    }
    let bytes = w.into_inner().map_err(|e| Error::Config(e.to_string()))?;
    String::from_utf8(bytes).map_err(|e| Error::Config(e.to_string()))
}

/// Assigns each item to one of `k` folds, stratified by class and seeded.
pub fn fold_of(items: &[Item], k: usize, seed: u64) -> Vec<usize> {
    let mut fold = vec![0; items.len()];
    let n_classes = items.iter().map(|i| i.label + 1).max().unwrap_or(0);
    let mut rng = StdRng::seed_from_u64(seed);
    let mut next = 0;
    for c in 0..n_classes {
        let mut idx: Vec<usize> = (0..items.len()).filter(|&i| items[i].label == c).collect();
        idx.shuffle(&mut rng);
        for i in idx {
            fold[i] = next % k;
            next += 1;
        }
    }
    fold
}

/// Predicts every training image of `data` with a model trained (by `config`'s plan) on the
/// other `folds − 1` folds, so no image is judged by a model that memorised it.
pub fn out_of_fold(
    config: &TrainConfig,
    data: &ImageFolder,
    folds: usize,
    device: &burn::tensor::Device,
    listen: Listen,
) -> Result<Interpretation> {
    if folds < 2 {
        return Err(Error::Config(format!("`folds` {folds}: at least 2")));
    }
    let items = &data.train;
    let fold = fold_of(items, folds, config.seed);
    let mut probs = vec![None; items.len()];
    for f in 0..folds {
        let (held, kept): (Vec<usize>, Vec<usize>) = (0..items.len()).partition(|&i| fold[i] == f);
        let part = ImageFolder {
            train: kept.iter().map(|&i| items[i].clone()).collect(),
            ..data.clone()
        };
        listen.clone().note(&format!("fold {}/{folds}", f + 1));
        let predictor = train_in_memory(config, part, device, listen.clone())?;
        let held_items: Vec<Item> = held.iter().map(|&i| items[i].clone()).collect();
        let out = predictor.infer(&held_items, config.bs, Inference::Plain);
        for (&i, p) in held.iter().zip(out.probs) {
            probs[i] = p;
        }
    }
    Ok(Interpretation {
        vocab: data.vocab.clone(),
        images: image_losses(items, probs),
        skipped: data.skipped.clone(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folds_are_stratified_balanced_and_seeded() {
        let items: Vec<Item> = (0..30)
            .map(|i| Item {
                path: format!("{i}.png").into(),
                label: i % 3,
            })
            .collect();
        let f = fold_of(&items, 5, 7);
        assert_eq!(f, fold_of(&items, 5, 7));
        for k in 0..5 {
            let members: Vec<&Item> = items
                .iter()
                .zip(&f)
                .filter(|(_, g)| **g == k)
                .map(|(i, _)| i)
                .collect();
            assert_eq!(members.len(), 6);
            for c in 0..3 {
                assert_eq!(members.iter().filter(|i| i.label == c).count(), 2);
            }
        }
    }

    #[test]
    fn csv_quotes_awkward_names() {
        let f = Flag {
            path: "train/shirt/a, \"b\".png".into(),
            given: "shirt".into(),
            predicted: "t-shirt".into(),
            probability: 0.95,
            loss: 3.5,
        };
        let text = to_csv(&[f]).unwrap();
        assert_eq!(
            text,
            "path,given,predicted,probability,loss\n\"train/shirt/a, \"\"b\"\".png\",shirt,t-shirt,0.95,3.5\n"
        );
    }
}
