//! The LR range test (fastai's `lr_find`) and its suggestions: valley, steep, minimum, slide.

use super::TrainData;
use serde::{Deserialize, Serialize};

use super::learner::Learner;
use crate::error::{Error, Result};

/// Settings of the range test, with fastai's defaults.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct LrFindConfig {
    /// First learning rate (1e-7).
    pub start_lr: f64,
    /// Last learning rate (10).
    pub end_lr: f64,
    /// Iterations (100).
    pub num_it: usize,
    /// Stop when the smoothed loss exceeds `stop_factor` × the best (4).
    pub stop_factor: f64,
    /// Smoothing of the loss (β 0.98, debiased).
    pub beta: f64,
}

impl Default for LrFindConfig {
    fn default() -> Self {
        Self {
            start_lr: 1e-7,
            end_lr: 10.0,
            num_it: 100,
            stop_factor: 4.0,
            beta: 0.98,
        }
    }
}

/// The suggestions computed from a range test.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Suggestions {
    /// fastai's default: inside the longest descending run of the loss.
    pub valley: f64,
    /// Steepest descent of loss over log LR.
    pub steep: f64,
    /// LR at the minimum loss, divided by 10.
    pub minimum: f64,
    /// Where the loss gradient stops changing (fastai's `slide`).
    pub slide: f64,
}

/// What the range test recorded, and its suggestions.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LrFind {
    /// Learning rate of each iteration.
    pub lrs: Vec<f64>,
    /// Smoothed loss of each iteration.
    pub losses: Vec<f64>,
    /// Whether the test stopped early because the loss diverged.
    pub diverged: bool,
    /// Suggested learning rates.
    pub suggestions: Suggestions,
}

impl<M: super::Trainable> Learner<M> {
    /// Runs the LR range test and restores the model and optimizer exactly as they were; a
    /// listener's `cancelled` ends it after a step (restored, `Error::Cancelled`).
    pub fn lr_find(&mut self, config: LrFindConfig) -> Result<LrFind> {
        if self.dls.n_train_batches() == 0 {
            return Err(Error::Config(
                "the training set is smaller than one batch".into(),
            ));
        }
        // BatchNorm's running statistics keep each batch's update pending until they are read
        // (`valid` syncs them): synced before saving so the record is current, and again
        // after the test so no pending update overwrites the restored statistics.
        let _ = self.model.valid();
        let saved_model = self.model.clone().into_record();
        let saved_optim = self.optim.to_record();
        let saved_mults = self.lr_mults();
        self.set_lrs(super::Lrs::Single(1.0));
        let (lrs, losses, diverged, cancelled) = self.range_test(&config);
        let _ = self.model.valid();
        self.model = self.model.clone().load_record(saved_model);
        self.optim = self.optim.clone().load_record(saved_optim);
        for (h, m) in self.handles.lr_mults.iter().zip(saved_mults) {
            h.set(m);
        }
        if cancelled {
            return Err(Error::Cancelled);
        }
        let suggestions = suggest(&lrs, &losses, config.num_it).ok_or_else(|| {
            Error::Config(format!(
                "the LR finder recorded only {} points: too few to suggest",
                lrs.len()
            ))
        })?;
        Ok(LrFind {
            lrs,
            losses,
            diverged,
            suggestions,
        })
    }

    /// The range test's LRs and smoothed losses, whether it diverged, and whether a listener
    /// cancelled it (asked after every step, as in a fit).
    fn range_test(&mut self, c: &LrFindConfig) -> (Vec<f64>, Vec<f64>, bool, bool) {
        let (mut lrs, mut losses) = (Vec::new(), Vec::new());
        let (mut avg, mut best) = (0.0, f64::INFINITY);
        let mut epoch = 0;
        loop {
            for batch in self.dls.train_batches(self.epochs_done + epoch) {
                let i = lrs.len();
                let lr = c.start_lr * (c.end_lr / c.start_lr).powf(i as f64 / c.num_it as f64);
                let loss = self.train_step(&batch, lr, self.handles.mom.get()).loss;
                avg = c.beta * avg + (1.0 - c.beta) * loss;
                let smooth = avg / (1.0 - c.beta.powi(i as i32 + 1));
                lrs.push(lr);
                losses.push(smooth);
                best = best.min(smooth);
                if !smooth.is_finite() || smooth > c.stop_factor * best {
                    return (lrs, losses, true, false);
                }
                if lrs.len() >= c.num_it {
                    return (lrs, losses, false, false);
                }
                if self.callbacks.iter_mut().any(|cb| cb.cancelled()) {
                    return (lrs, losses, false, true);
                }
            }
            epoch += 1;
        }
    }
}

/// `lr` to three significant digits: a rate taken from the range test (`--lr auto`, the
/// playbook) then prints and records as a user would type it; the test cannot tell finer.
pub fn round_lr(lr: f64) -> f64 {
    if !(lr.is_finite() && lr > 0.0) {
        return lr;
    }
    let scale = 10f64.powi(2 - lr.log10().floor() as i32);
    (lr * scale).round() / scale
}

/// Computes every suggestion over fastai's window (skip the first tenth and the last five
/// points); `None` when fewer than two points remain.
pub fn suggest(lrs: &[f64], losses: &[f64], num_it: usize) -> Option<Suggestions> {
    let lo = num_it / 10;
    let hi = lrs.len().saturating_sub(5);
    if hi < lo + 2 {
        return None;
    }
    let (lrs, losses) = (&lrs[lo..hi], &losses[lo..hi]);
    Some(Suggestions {
        valley: valley(lrs, losses),
        steep: steep(lrs, losses),
        minimum: minimum(lrs, losses),
        slide: slide(lrs, losses),
    })
}

/// fastai's `valley`: the longest decreasing subsequence of the loss; the LR two-thirds along it.
pub fn valley(lrs: &[f64], losses: &[f64]) -> f64 {
    let n = losses.len();
    // fastai's start index can be -1 (a run that falls from the first point); it is kept signed.
    let (mut max_start, mut max_end) = (0isize, 0usize);
    let mut lds = vec![1usize; n];
    for i in 1..n {
        for j in 0..i {
            if losses[i] < losses[j] && lds[i] < lds[j] + 1 {
                lds[i] = lds[j] + 1;
            }
            if lds[max_end] < lds[i] {
                max_end = i;
                max_start = max_end as isize - lds[max_end] as isize;
            }
        }
    }
    let sections = (max_end as isize - max_start) as f64 / 3.0;
    let idx = max_start + sections as isize + (sections / 2.0) as isize;
    lrs[idx.rem_euclid(n as isize) as usize]
}

/// fastai's `steep`: the LR where the loss falls fastest per unit of log LR.
pub fn steep(lrs: &[f64], losses: &[f64]) -> f64 {
    let grads =
        (1..lrs.len()).map(|i| (losses[i] - losses[i - 1]) / (lrs[i].ln() - lrs[i - 1].ln()));
    let i = grads
        .enumerate()
        .min_by(|a, b| a.1.total_cmp(&b.1))
        .map_or(0, |(i, _)| i);
    lrs[i]
}

/// fastai's `minimum`: the LR of the lowest loss, divided by 10.
pub fn minimum(lrs: &[f64], losses: &[f64]) -> f64 {
    let i = (0..losses.len())
        .min_by(|&a, &b| losses[a].total_cmp(&losses[b]))
        .unwrap_or(0);
    lrs[i] / 10.0
}

/// fastai's `slide` (lr_diff 15, thresh 0.005): walks left from the end until the loss gradient
/// 15 points apart stops differing by more than the threshold.
pub fn slide(lrs: &[f64], losses: &[f64]) -> f64 {
    let (lr_diff, thresh) = (15isize, 0.005);
    let n = losses.len() as isize;
    let grad = gradient(losses);
    let at = |i: isize| (i + n) as usize;
    let mut r = -1isize;
    let mut l = r - lr_diff;
    if l < -n {
        return lrs[0];
    }
    let mut local_min = lrs[at(l)];
    while l >= -n && (grad[at(r)] - grad[at(l)]).abs() > thresh {
        local_min = lrs[at(l)];
        r -= 1;
        l -= 1;
    }
    local_min
}

/// numpy's `gradient` (central differences, one-sided at the ends).
fn gradient(y: &[f64]) -> Vec<f64> {
    let n = y.len();
    (0..n)
        .map(|i| match i {
            0 => y[1] - y[0],
            i if i == n - 1 => y[n - 1] - y[n - 2],
            i => (y[i + 1] - y[i - 1]) / 2.0,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::round_lr;

    #[test]
    fn a_learning_rate_from_the_test_prints_with_three_digits() {
        assert_eq!(format!("{:e}", round_lr(4.786300923226385e-4)), "4.79e-4");
        assert_eq!(format!("{:e}", round_lr(1.0e-3)), "1e-3");
        assert_eq!(format!("{:e}", round_lr(0.0123456)), "1.23e-2");
        assert!(round_lr(f64::NAN).is_nan());
    }
}
