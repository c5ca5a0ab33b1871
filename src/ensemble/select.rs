//! Choosing how an ensemble combines its members: greedy forward selection with replacement
//! (Caruana et al., 2004) fitted on a seeded half of the validation split and judged on the
//! other half against the plain mean and against every member alone, so the ensemble written
//! never scores below its best member there.

use std::path::Path;

use burn::tensor::Device;

use super::report::{Halves, Score, combine_rows, halves, score_rows};
use crate::error::Result;
use crate::infer::combine::Combination;
use crate::infer::ensemble::EnsembleFile;

/// Rounds of selection (members added, repeats counted) at most.
pub const MAX_ROUNDS: usize = 25;

/// Caruana's selection on `probs` (`[member][image][class]`): start from nothing, add the member
/// (repeats allowed) whose addition gives the averaged probabilities the lowest cross-entropy on
/// `targets`, and stop when no addition lowers it or after `rounds`; returns each member's share
/// of the picks (weights summing to 1).
pub fn caruana(probs: &[Vec<Vec<f32>>], targets: &[usize], rounds: usize) -> Vec<f64> {
    let m = probs.len();
    let n = targets.len();
    let mut counts = vec![0usize; m];
    let mut sum = vec![vec![0.0f64; probs.first().and_then(|p| p.first()).map_or(0, Vec::len)]; n];
    let mut picks = 0usize;
    let mut best_loss = f64::INFINITY;
    let loss_with = |sum: &[Vec<f64>], k: usize, picks: usize| -> f64 {
        let d = (picks + 1) as f64;
        targets
            .iter()
            .enumerate()
            .map(|(i, &t)| {
                -((sum[i][t] + f64::from(probs[k][i][t])) / d)
                    .max(1e-12)
                    .ln()
            })
            .sum::<f64>()
            / n.max(1) as f64
    };
    for _ in 0..rounds.max(1) {
        let Some((k, loss)) = (0..m)
            .map(|k| (k, loss_with(&sum, k, picks)))
            .min_by(|a, b| a.1.total_cmp(&b.1))
        else {
            break;
        };
        if loss >= best_loss {
            break;
        }
        best_loss = loss;
        counts[k] += 1;
        picks += 1;
        for (i, row) in sum.iter_mut().enumerate() {
            for (c, v) in row.iter_mut().enumerate() {
                *v += f64::from(probs[k][i][c]);
            }
        }
    }
    let total = picks.max(1) as f64;
    counts.iter().map(|&c| c as f64 / total).collect()
}

/// Whether score `a` is better than `b`: higher accuracy, then lower loss.
fn better(a: &Score, b: &Score) -> bool {
    a.accuracy > b.accuracy || (a.accuracy == b.accuracy && a.loss < b.loss)
}

/// What selection found and chose.
#[derive(Debug, Clone, PartialEq)]
pub struct Selection {
    /// Validation images the selection was fitted on (never scored by the ensemble later when
    /// a fitted rule is chosen).
    pub n_fit: usize,
    /// Validation images it was judged on.
    pub n_held: usize,
    /// Every member alone, the plain mean and the selected ensemble, on the other half.
    pub held_out: Vec<Score>,
    /// The rule written to `ensemble.json`.
    pub chosen: Combination,
    /// What it is: `mean`, `selected`, or the one member chosen alone.
    pub chosen_name: String,
    /// Its score on the held-out half.
    pub score: Score,
}

/// Fits Caruana's selection on a seeded half of the ensemble's validation split and scores,
/// on the other half, every member alone, the plain mean and the selection; writes into
/// `ensemble.json` the selection when it beats the mean there (with the fitted images, left out
/// of every later score), the mean otherwise — or, if one member alone beats both, that member
/// (weight 1), so the ensemble is never below its best member on that half. With `force`, the
/// selection is written whatever the comparison.
pub fn select(dir: &Path, seed: u64, force: bool, device: &Device) -> Result<Selection> {
    let mut file = EnsembleFile::read(dir)?;
    let Halves {
        fit_items,
        fit: (p_fit, t_fit),
        held: (p_held, t_held),
    } = halves(dir, seed, "select members", device)?;
    let weights = caruana(&p_fit, &t_fit, MAX_ROUNDS);
    let all: Vec<usize> = (0..p_held.len()).collect();
    let selected = Combination::Selected(weights);
    let mean = score_rows(
        "mean",
        &combine_rows(&p_held, &Combination::Mean, &all),
        &t_held,
    );
    let sel = score_rows("selected", &combine_rows(&p_held, &selected, &all), &t_held);
    let members: Vec<Score> = file
        .members
        .iter()
        .zip(&p_held)
        .map(|(m, p)| score_rows(&m.dir.display().to_string(), p, &t_held))
        .collect();
    let (mut chosen, mut chosen_score) = if force || better(&sel, &mean) {
        (selected, sel.clone())
    } else {
        (Combination::Mean, mean.clone())
    };
    if !force
        && let Some((k, best)) = members
            .iter()
            .enumerate()
            .reduce(|a, b| if better(b.1, a.1) { b } else { a })
        && better(best, &chosen_score)
    {
        let mut w = vec![0.0; members.len()];
        w[k] = 1.0;
        chosen = Combination::Selected(w);
        chosen_score = best.clone();
    }
    let chosen_name = chosen_score.name.clone();
    file.fit_items = if chosen == Combination::Mean {
        Vec::new()
    } else {
        fit_items.iter().map(|i| i.path.clone()).collect()
    };
    file.combination = chosen.clone();
    file.write(dir)?;
    let mut held_out = members;
    held_out.extend([mean, sel]);
    Ok(Selection {
        n_fit: fit_items.len(),
        n_held: t_held.len(),
        held_out,
        chosen,
        chosen_name,
        score: chosen_score,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Rows for `n` images of 3 classes, right (with `p`) on every image where `right` says so.
    fn member(n: usize, p: f32, right: impl Fn(usize) -> bool) -> Vec<Vec<f32>> {
        (0..n)
            .map(|i| {
                let t = i % 3;
                let k = if right(i) { t } else { (t + 1) % 3 };
                let mut row = vec![(1.0 - p) / 2.0; 3];
                row[k] = p;
                row
            })
            .collect()
    }

    #[test]
    fn selection_keeps_the_good_member_and_leaves_a_bad_one_out() {
        let n = 60;
        let targets: Vec<usize> = (0..n).map(|i| i % 3).collect();
        let good = member(n, 0.8, |i| i % 10 != 0);
        let bad = member(n, 0.9, |i| i % 2 == 0);
        let w = caruana(&[good, bad], &targets, MAX_ROUNDS);
        assert!(w[0] > 0.99, "{w:?}");
        assert!((w.iter().sum::<f64>() - 1.0).abs() < 1e-9);
    }

    #[test]
    fn two_members_right_on_different_images_are_both_kept() {
        let n = 60;
        let targets: Vec<usize> = (0..n).map(|i| i % 3).collect();
        let a = member(n, 0.6, |i| i % 4 != 0);
        let b = member(n, 0.6, |i| i % 4 != 1);
        let w = caruana(&[a, b], &targets, MAX_ROUNDS);
        assert!(w[0] > 0.2 && w[1] > 0.2, "{w:?}");
    }
}
