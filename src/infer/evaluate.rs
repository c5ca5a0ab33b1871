//! Evaluation of a bundle on a labelled folder: accuracy, per-class accuracy, confusion matrix.

use serde::{Deserialize, Serialize};

use super::predict::Predictor;
use super::tta::Inference;
use crate::data::{Item, Skipped};

/// Results of evaluating a model on labelled images.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Evaluation {
    /// Images evaluated.
    pub n: usize,
    /// Overall accuracy.
    pub accuracy: f64,
    /// Accuracy of each class (NaN for a class with no image).
    pub per_class: Vec<(String, f64, usize)>,
    /// `confusion[actual][predicted]` counts.
    pub confusion: Vec<Vec<usize>>,
    /// Files skipped.
    pub skipped: Vec<Skipped>,
    /// Images left out because an ensemble's weights were fitted on them.
    #[serde(default)]
    pub fit_excluded: usize,
    /// Seconds spent predicting.
    pub seconds: f64,
}

/// Evaluates `predictor` on `items` (labels in the predictor's vocab), predicting as `how` says.
pub fn evaluate(
    predictor: &Predictor,
    items: Vec<Item>,
    skipped: Vec<Skipped>,
    batch_size: usize,
    how: Inference,
) -> Evaluation {
    let cfg = &predictor.config;
    let (items, fit_excluded) = predictor.scorable(items);
    let t0 = std::time::Instant::now();
    let out = predictor.infer(&items, batch_size, how);
    let seconds = t0.elapsed().as_secs_f64();
    let (probs, targets): (Vec<Vec<f32>>, Vec<usize>) = out
        .probs
        .into_iter()
        .zip(&items)
        .filter_map(|(p, item)| Some((p?, item.label)))
        .unzip();
    let k = cfg.vocab.len();
    let mut confusion = vec![vec![0usize; k]; k];
    for (p, &t) in probs.iter().zip(&targets) {
        let pred = (0..k).max_by(|&a, &b| p[a].total_cmp(&p[b])).unwrap_or(0);
        confusion[t][pred] += 1;
    }
    let n = targets.len();
    let correct: usize = (0..k).map(|i| confusion[i][i]).sum();
    let per_class = (0..k)
        .map(|i| {
            let total: usize = confusion[i].iter().sum();
            let acc = if total == 0 {
                f64::NAN
            } else {
                confusion[i][i] as f64 / total as f64
            };
            (cfg.vocab[i].clone(), acc, total)
        })
        .collect();
    let mut skipped = skipped;
    skipped.extend(out.skipped);
    Evaluation {
        n,
        accuracy: if n == 0 {
            f64::NAN
        } else {
            correct as f64 / n as f64
        },
        per_class,
        confusion,
        skipped,
        seconds,
        fit_excluded,
    }
}
