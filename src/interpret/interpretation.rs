//! Interpretation of a trained model on labelled images: per-image losses, top losses, confusion
//! matrix, most-confused pairs and per-class precision / recall / F1 (fastai's
//! `ClassificationInterpretation`).

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::data::{Item, Skipped};
use crate::infer::{Inference, Predictor};

/// What the model says about one labelled image.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ImageLoss {
    /// The image file.
    pub path: PathBuf,
    /// Its given class (index into the vocab).
    pub actual: usize,
    /// The predicted class.
    pub predicted: usize,
    /// Probability of the predicted class.
    pub prob: f32,
    /// Probability of the given class.
    pub actual_prob: f32,
    /// Cross-entropy loss, −ln(probability of the given class).
    pub loss: f32,
}

impl ImageLoss {
    /// Whether the prediction is wrong.
    pub fn is_wrong(&self) -> bool {
        self.actual != self.predicted
    }
}

/// Precision, recall and F1 of one class.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClassReport {
    /// Class name.
    pub class: String,
    /// Of the images predicted as this class, the share that are.
    pub precision: f64,
    /// Of the images of this class, the share found.
    pub recall: f64,
    /// Harmonic mean of precision and recall.
    pub f1: f64,
    /// Images of this class.
    pub support: usize,
}

/// A model's results on a set of labelled images.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Interpretation {
    /// Class names.
    pub vocab: Vec<String>,
    /// Every image predicted, in item order.
    pub images: Vec<ImageLoss>,
    /// Files that could not be read.
    pub skipped: Vec<Skipped>,
}

/// One (actual, predicted) pair and how often it happens.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Confusion {
    /// Given class.
    pub actual: String,
    /// Predicted class.
    pub predicted: String,
    /// Images.
    pub count: usize,
}

/// Per-image results from class probabilities (rows in item order, `None` = unreadable).
pub fn image_losses(items: &[Item], probs: Vec<Option<Vec<f32>>>) -> Vec<ImageLoss> {
    items
        .iter()
        .zip(probs)
        .filter_map(|(item, p)| {
            let p = p?;
            let predicted = (0..p.len()).max_by(|&a, &b| p[a].total_cmp(&p[b]))?;
            let actual_prob = p[item.label];
            Some(ImageLoss {
                path: item.path.clone(),
                actual: item.label,
                predicted,
                prob: p[predicted],
                actual_prob,
                loss: -actual_prob.max(1e-12).ln(),
            })
        })
        .collect()
}

/// Predicts every item with `predictor` and keeps the per-image results.
/// (An ensemble with fitted weights leaves out the images they were fitted on.)
pub fn interpret(predictor: &Predictor, items: &[Item], batch_size: usize) -> Interpretation {
    let (items, _) = predictor.scorable(items.to_vec());
    let out = predictor.infer(&items, batch_size, Inference::Plain);
    Interpretation {
        vocab: predictor.config.vocab.clone(),
        images: image_losses(&items, out.probs),
        skipped: out.skipped,
    }
}

impl Interpretation {
    /// The `k` images with the largest loss, largest first.
    pub fn top_losses(&self, k: usize) -> Vec<&ImageLoss> {
        let mut v: Vec<&ImageLoss> = self.images.iter().collect();
        v.sort_by(|a, b| b.loss.total_cmp(&a.loss));
        v.truncate(k);
        v
    }

    /// `confusion[actual][predicted]` counts.
    pub fn confusion(&self) -> Vec<Vec<usize>> {
        let k = self.vocab.len();
        let mut m = vec![vec![0; k]; k];
        for im in &self.images {
            m[im.actual][im.predicted] += 1;
        }
        m
    }

    /// The confusion matrix with each row divided by its total (recall on the diagonal).
    pub fn confusion_normalized(&self) -> Vec<Vec<f64>> {
        self.confusion()
            .iter()
            .map(|row| {
                let total: usize = row.iter().sum();
                row.iter()
                    .map(|&c| {
                        if total == 0 {
                            0.0
                        } else {
                            c as f64 / total as f64
                        }
                    })
                    .collect()
            })
            .collect()
    }

    /// Off-diagonal pairs seen at least `min` times, most frequent first.
    pub fn most_confused(&self, min: usize) -> Vec<Confusion> {
        let m = self.confusion();
        let mut pairs: Vec<Confusion> = Vec::new();
        for (a, row) in m.iter().enumerate() {
            for (p, &count) in row.iter().enumerate() {
                if a != p && count >= min.max(1) {
                    pairs.push(Confusion {
                        actual: self.vocab[a].clone(),
                        predicted: self.vocab[p].clone(),
                        count,
                    });
                }
            }
        }
        pairs.sort_by(|x, y| y.count.cmp(&x.count).then(x.actual.cmp(&y.actual)));
        pairs
    }

    /// Precision, recall and F1 of every class.
    pub fn class_report(&self) -> Vec<ClassReport> {
        let m = self.confusion();
        (0..self.vocab.len())
            .map(|c| {
                let tp = m[c][c] as f64;
                let predicted: usize = m.iter().map(|row| row[c]).sum();
                let support: usize = m[c].iter().sum();
                let ratio = |n: usize| if n == 0 { 0.0 } else { tp / n as f64 };
                let (precision, recall) = (ratio(predicted), ratio(support));
                let f1 = if precision + recall == 0.0 {
                    0.0
                } else {
                    2.0 * precision * recall / (precision + recall)
                };
                ClassReport {
                    class: self.vocab[c].clone(),
                    precision,
                    recall,
                    f1,
                    support,
                }
            })
            .collect()
    }

    /// Share of images predicted right.
    pub fn accuracy(&self) -> f64 {
        let right = self.images.iter().filter(|i| !i.is_wrong()).count();
        right as f64 / self.images.len().max(1) as f64
    }

    /// Images predicted wrongly with probability above `threshold` (the seed's method 1).
    pub fn confident_wrong(&self, threshold: f32) -> Vec<&ImageLoss> {
        let mut v: Vec<&ImageLoss> = self
            .images
            .iter()
            .filter(|i| i.is_wrong() && i.prob > threshold)
            .collect();
        v.sort_by(|a, b| b.loss.total_cmp(&a.loss));
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn interp() -> Interpretation {
        let items: Vec<Item> = [0, 0, 1, 1, 2, 2]
            .iter()
            .enumerate()
            .map(|(i, &label)| Item {
                path: format!("{i}.png").into(),
                label,
            })
            .collect();
        let probs = vec![
            Some(vec![0.9, 0.05, 0.05]),
            Some(vec![0.2, 0.7, 0.1]),
            Some(vec![0.1, 0.8, 0.1]),
            Some(vec![0.95, 0.03, 0.02]),
            Some(vec![0.1, 0.1, 0.8]),
            None,
        ];
        Interpretation {
            vocab: vec!["a".into(), "b".into(), "c".into()],
            images: image_losses(&items, probs),
            skipped: Vec::new(),
        }
    }

    #[test]
    fn losses_confusion_and_reports_follow_their_definitions() {
        let it = interp();
        assert_eq!(it.images.len(), 5, "the unreadable image is left out");
        let top = it.top_losses(2);
        assert_eq!(top[0].path, PathBuf::from("3.png"));
        assert!((top[0].loss - -(0.03f32).ln()).abs() < 1e-6);
        assert_eq!(
            it.confusion(),
            vec![vec![1, 1, 0], vec![1, 1, 0], vec![0, 0, 1]]
        );
        assert_eq!(it.confusion_normalized()[0], vec![0.5, 0.5, 0.0]);
        let pairs = it.most_confused(1);
        assert_eq!(pairs.len(), 2);
        assert_eq!(
            (pairs[0].actual.as_str(), pairs[0].predicted.as_str()),
            ("a", "b")
        );
        let r = it.class_report();
        assert_eq!((r[0].precision, r[0].recall, r[0].f1), (0.5, 0.5, 0.5));
        assert_eq!((r[2].precision, r[2].recall, r[2].support), (1.0, 1.0, 1));
        assert!((it.accuracy() - 0.6).abs() < 1e-12);
        let wrong = it.confident_wrong(0.9);
        assert_eq!(wrong.len(), 1);
        assert_eq!(wrong[0].path, PathBuf::from("3.png"));
        assert_eq!(it.confident_wrong(0.6).len(), 2);
    }
}
