//! Combination weights fitted on half of the validation split (seeded), which the ensemble then
//! never scores: `evaluate`, `interpret` and `ensemble report` leave those images out.

use std::path::Path;

use burn::tensor::Device;

use super::report::{Halves, Score, combine_rows, halves, score_rows};
use crate::error::Result;
use crate::infer::combine::Combination;
use crate::infer::ensemble::EnsembleFile;

/// Weights on the simplex minimising the mean cross-entropy of the weighted mean of `probs`
/// (`[member][image][class]`), by exponentiated gradient descent.
pub fn fit(probs: &[Vec<Vec<f32>>], targets: &[usize]) -> Vec<f64> {
    let m = probs.len();
    let n = targets.len().max(1) as f64;
    let mut w = vec![1.0 / m as f64; m];
    for _ in 0..500 {
        let mut grad = vec![0.0; m];
        for (i, &t) in targets.iter().enumerate() {
            let p: f64 = (0..m)
                .map(|k| w[k] * f64::from(probs[k][i][t]))
                .sum::<f64>()
                .max(1e-12);
            for (k, g) in grad.iter_mut().enumerate() {
                *g -= f64::from(probs[k][i][t]) / p / n;
            }
        }
        for (wk, g) in w.iter_mut().zip(&grad) {
            *wk *= (-0.5 * g).exp();
        }
        let z: f64 = w.iter().sum();
        w.iter_mut().for_each(|v| *v /= z);
    }
    w
}

/// What fitting found: the weights, and mean vs weighted scores on the held-out half.
#[derive(Debug, Clone, PartialEq)]
pub struct Fitted {
    /// One weight per member.
    pub weights: Vec<f64>,
    /// Images fitted on.
    pub n_fit: usize,
    /// The mean and the weighted ensemble on the other half.
    pub held_out: Vec<Score>,
}

/// Fits weights on a seeded half of the ensemble's validation split, writes them (and the
/// fitted images) into `ensemble.json`, and scores mean vs weighted on the other half.
pub fn fit_weights(dir: &Path, seed: u64, device: &Device) -> Result<Fitted> {
    let mut file = EnsembleFile::read(dir)?;
    let Halves {
        fit_items,
        fit: (p_fit, t_fit),
        held: (p_held, t_held),
    } = halves(dir, seed, "fit weights", device)?;
    let weights = fit(&p_fit, &t_fit);
    let all: Vec<usize> = (0..p_held.len()).collect();
    let combined = |rule: &Combination| combine_rows(&p_held, rule, &all);
    let weighted = Combination::Weighted(weights.clone());
    let held_out = vec![
        score_rows("mean", &combined(&Combination::Mean), &t_held),
        score_rows("weighted", &combined(&weighted), &t_held),
    ];
    file.combination = weighted;
    file.fit_items = fit_items.iter().map(|i| i.path.clone()).collect();
    file.write(dir)?;
    Ok(Fitted {
        weights,
        n_fit: fit_items.len(),
        held_out,
    })
}

#[cfg(test)]
mod tests {
    use super::fit;

    #[test]
    fn weights_favour_the_member_that_is_right() {
        // Member 0 is right with 0.9, member 1 always says 50/50.
        let good = vec![vec![0.9f32, 0.1]; 20];
        let flat = vec![vec![0.5f32, 0.5]; 20];
        let w = fit(&[good, flat], &[0; 20]);
        assert!(w[0] > 0.95 && (w[0] + w[1] - 1.0).abs() < 1e-9, "{w:?}");
    }
}
