//! "Vary the training set" (ensembles, out-of-fold judgements): the training items as a
//! bootstrap sample or K−1 of K folds of the training split. The validation split is never
//! touched.

use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{RngExt, SeedableRng};
use serde::{Deserialize, Serialize};

use super::Item;

/// How a member's training data was drawn from the training split.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub enum Sampling {
    /// The whole training split.
    All,
    /// A bootstrap sample (n draws with replacement) seeded by `seed`.
    Bootstrap {
        /// Seed of the draws.
        seed: u64,
    },
    /// Every fold but `fold` of `k` (seeded by the run's seed).
    Fold {
        /// Folds.
        k: usize,
        /// The fold left out.
        fold: usize,
    },
    /// The weights at the end of SGDR cycle `cycle` of one training run.
    Snapshot {
        /// Cycle (0-based).
        cycle: usize,
    },
}

/// The fold (0..k) of each of `n` training items: a seeded shuffle dealt round-robin.
pub fn folds(n: usize, k: usize, seed: u64) -> Vec<usize> {
    let mut order: Vec<usize> = (0..n).collect();
    order.shuffle(&mut StdRng::seed_from_u64(seed ^ 0xF01D));
    let mut fold = vec![0; n];
    for (pos, &i) in order.iter().enumerate() {
        fold[i] = pos % k.max(1);
    }
    fold
}

/// The training items a member with `sampling` trains on (`seed`: the run's seed, for folds).
pub fn sample_train(train: &[Item], sampling: Sampling, seed: u64) -> Vec<Item> {
    match sampling {
        Sampling::All | Sampling::Snapshot { .. } => train.to_vec(),
        Sampling::Bootstrap { seed } => {
            let mut rng = StdRng::seed_from_u64(seed);
            (0..train.len())
                .map(|_| train[rng.random_range(0..train.len())].clone())
                .collect()
        }
        Sampling::Fold { k, fold } => {
            let f = folds(train.len(), k, seed);
            train
                .iter()
                .zip(f)
                .filter(|(_, g)| *g != fold)
                .map(|(i, _)| i.clone())
                .collect()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn items(n: usize) -> Vec<Item> {
        (0..n)
            .map(|i| Item {
                path: format!("{i}.png").into(),
                label: i % 3,
            })
            .collect()
    }

    #[test]
    fn bootstrap_draws_n_with_repeats_and_folds_leave_one_out() {
        let t = items(100);
        let b = sample_train(&t, Sampling::Bootstrap { seed: 3 }, 0);
        assert_eq!(b.len(), 100);
        let distinct: std::collections::HashSet<_> = b.iter().map(|i| &i.path).collect();
        assert!(
            distinct.len() < 80 && distinct.len() > 50,
            "≈63 % distinct: {}",
            distinct.len()
        );
        let parts: Vec<Vec<Item>> = (0..4)
            .map(|f| sample_train(&t, Sampling::Fold { k: 4, fold: f }, 7))
            .collect();
        assert!(parts.iter().all(|p| p.len() == 75));
        // Every item is left out by exactly one fold.
        for it in &t {
            assert_eq!(parts.iter().filter(|p| !p.contains(it)).count(), 1);
        }
    }
}
