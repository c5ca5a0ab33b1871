//! Batches of processed rows: the training split shuffled every epoch (the last partial batch
//! dropped, as fastai's `TabDataLoader`), the validation split in order.

use std::sync::Arc;

use rand::SeedableRng;
use rand::rngs::StdRng;
use rand::seq::SliceRandom;

use super::process::Processed;
use crate::data::loader::mix;
use crate::learner::TrainData;

/// A batch of rows: category codes, continuous values and targets, row-major.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TabBatch {
    /// Rows in the batch.
    pub n: usize,
    /// Category codes `[n, n_cat]`.
    pub cats: Vec<i64>,
    /// Continuous values `[n, n_cont]`.
    pub conts: Vec<f32>,
    /// Class targets (classification).
    pub y_class: Vec<i64>,
    /// Value targets (regression).
    pub y_value: Vec<f32>,
    /// Row indices into the split.
    pub rows: Vec<usize>,
}

/// Gathers rows `rows` of `p` into a batch.
pub fn gather(p: &Processed, rows: &[usize]) -> TabBatch {
    let n_cat = p.cats.len() / p.n.max(1);
    let n_cont = p.conts.len() / p.n.max(1);
    let mut b = TabBatch {
        n: rows.len(),
        rows: rows.to_vec(),
        ..TabBatch::default()
    };
    for &r in rows {
        b.cats
            .extend_from_slice(&p.cats[r * n_cat..(r + 1) * n_cat]);
        b.conts
            .extend_from_slice(&p.conts[r * n_cont..(r + 1) * n_cont]);
        if !p.y_class.is_empty() {
            b.y_class.push(p.y_class[r]);
        }
        if !p.y_value.is_empty() {
            b.y_value.push(p.y_value[r]);
        }
    }
    b
}

/// The training and validation rows of a table, ready for the learner.
#[derive(Debug, Clone)]
pub struct TabularDataLoaders {
    /// Processed training rows.
    pub train: Arc<Processed>,
    /// Processed validation rows.
    pub valid: Arc<Processed>,
    /// Batch size (fastai: 64).
    pub bs: usize,
    /// Seed of the shuffle.
    pub seed: u64,
}

impl TabularDataLoaders {
    /// Loaders over `train` and `valid` with batch size `bs`.
    pub fn new(train: Processed, valid: Processed, bs: usize, seed: u64) -> Self {
        Self {
            train: Arc::new(train),
            valid: Arc::new(valid),
            bs: bs.max(1),
            seed,
        }
    }

    /// Whether the targets are values (regression).
    pub fn regression(&self) -> bool {
        !self.train.y_value.is_empty()
    }

    /// The validation rows in order, in batches of twice the training batch size.
    pub fn valid_batches(&self) -> impl Iterator<Item = TabBatch> + '_ {
        let n = self.valid.n;
        let bs = 2 * self.bs;
        (0..n.div_ceil(bs)).map(move |b| {
            let rows: Vec<usize> = (b * bs..((b + 1) * bs).min(n)).collect();
            gather(&self.valid, &rows)
        })
    }
}

/// The training batches of one epoch.
pub struct TabIter {
    data: Arc<Processed>,
    order: Vec<usize>,
    bs: usize,
    next: usize,
}

impl Iterator for TabIter {
    type Item = TabBatch;
    fn next(&mut self) -> Option<TabBatch> {
        let end = self.next + self.bs;
        if end > self.order.len() {
            return None;
        }
        // Data parallel: this rank's share of the global batch.
        let rows = &self.order[self.next..end];
        let b = gather(
            &self.data,
            &rows[crate::distributed::share(
                rows.len(),
                crate::distributed::rank(),
                crate::distributed::size(),
            )],
        );
        self.next = end;
        Some(b)
    }
}

impl TrainData for TabularDataLoaders {
    type Batch = TabBatch;
    type Iter = TabIter;

    fn train_batches(&self, epoch: usize) -> TabIter {
        let mut order: Vec<usize> = (0..self.train.n).collect();
        order.shuffle(&mut StdRng::seed_from_u64(mix(
            self.seed,
            epoch as u64,
            u64::MAX,
        )));
        TabIter {
            data: self.train.clone(),
            order,
            bs: self.bs,
            next: 0,
        }
    }

    fn batch_len(batch: &TabBatch) -> usize {
        batch.n
    }

    fn n_train_batches(&self) -> usize {
        self.train.n / self.bs
    }

    fn n_train_items(&self) -> usize {
        self.train.n
    }

    fn batch_size(&self) -> usize {
        self.bs
    }
}
