//! The one epoch plan: how many epochs at which image size, split, and shrunk to fit a time
//! budget at a measured pace. `train`'s progressive resizing, its `sizes` and the playbook's
//! recipes all split epochs here.

/// `epochs` split over `n` parts as evenly as possible, the earlier parts taking the remainder
/// (in progressive resizing they are the smaller, cheaper sizes).
pub fn split_epochs(epochs: usize, n: usize) -> Vec<usize> {
    let n = n.max(1);
    (0..n)
        .map(|i| epochs / n + usize::from(i < epochs % n))
        .collect()
}

/// Image sides and the epochs at each: one training run's plan of sizes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EpochPlan {
    /// Image side of each stage, smallest first (empty: one stage at the run's size).
    pub sizes: Vec<u32>,
    /// Epochs of each stage, matching `sizes`.
    pub epochs: Vec<usize>,
}

impl EpochPlan {
    /// `epochs` split over `sizes` (stages left with no epoch are dropped).
    pub fn split(sizes: &[u32], epochs: usize) -> Self {
        let (sizes, epochs) = sizes
            .iter()
            .copied()
            .zip(split_epochs(epochs, sizes.len()))
            .filter(|&(_, e)| e > 0)
            .unzip();
        Self { sizes, epochs }
    }

    /// Progressive resizing towards `target` px over `epochs`: start at a quarter of the target
    /// (at least 16 px), double each stage, no more stages than epochs.
    pub fn progressive(target: u32, epochs: usize) -> Self {
        let mut sizes = Vec::new();
        let mut s = (target / 4).max(16);
        while s < target {
            sizes.push(s);
            s *= 2;
        }
        sizes.push(target);
        let keep = sizes.len().min(epochs.max(1));
        let sizes = sizes.split_off(sizes.len() - keep);
        Self {
            epochs: split_epochs(epochs, sizes.len()),
            sizes,
        }
    }

    /// Epochs in all.
    pub fn total(&self) -> usize {
        self.epochs.iter().sum()
    }

    /// Seconds the plan takes when an epoch at side `s` takes `epoch_s(s)` seconds.
    pub fn seconds(&self, epoch_s: impl Fn(u32) -> f64) -> f64 {
        self.sizes
            .iter()
            .zip(&self.epochs)
            .map(|(&s, &e)| e as f64 * epoch_s(s))
            .sum()
    }
}

/// A run's length in epochs, rounded to hundredths, as whole epochs counting a last partial
/// one and the share of that last one trained (`None` when it is whole); no epochs for a length
/// that is not positive.
pub fn split_length(length: f64) -> (usize, Option<f64>) {
    let hundredths = (length * 100.0).round();
    if hundredths.is_nan() || hundredths < 1.0 {
        return (0, None);
    }
    let epochs = (hundredths / 100.0).ceil() as usize;
    let pct = (hundredths - 100.0 * (epochs - 1) as f64) / 100.0;
    (epochs, (pct < 1.0).then_some(pct))
}

/// A run's length in words: "5 epochs", "1.63 epochs".
pub fn length_text(length: f64) -> String {
    match split_length(length) {
        (e, None) => crate::text::count(e, "epoch"),
        (e, Some(p)) => format!("{:.2} epochs", (e - 1) as f64 + p),
    }
}

/// The most epochs from `min` to `max` whose run `seconds(epochs)` fits `budget_s` (at least
/// `min`): one-cycle wants all its epochs in one run, so a budget buys the longest that fits.
pub fn most_epochs(min: usize, max: usize, budget_s: f64, seconds: impl Fn(usize) -> f64) -> usize {
    (min..=max.max(min))
        .rev()
        .find(|&e| seconds(e) <= budget_s)
        .unwrap_or(min)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn epochs_split_evenly_with_the_remainder_first() {
        assert_eq!(split_epochs(7, 3), [3, 2, 2]);
        assert_eq!(split_epochs(2, 3), [1, 1, 0]);
        assert_eq!(split_epochs(5, 0), [5]);
        assert_eq!(EpochPlan::split(&[16, 32, 64], 2).sizes, [16, 32]);
    }

    #[test]
    fn progressive_plans_double_from_a_quarter() {
        let p = EpochPlan::progressive(128, 7);
        assert_eq!(p.sizes, [32, 64, 128]);
        assert_eq!(p.epochs, [3, 2, 2]);
        assert_eq!(EpochPlan::progressive(64, 1).sizes, [64]);
    }

    #[test]
    fn the_budget_buys_the_most_epochs_that_fit() {
        let secs = |e: usize| EpochPlan::split(&[28], e).seconds(|_| 9.0);
        assert_eq!(most_epochs(1, 40, 100.0, secs), 11);
        assert_eq!(most_epochs(2, 40, 1.0, secs), 2);
        assert_eq!(most_epochs(1, 5, 1e9, secs), 5);
    }
}
