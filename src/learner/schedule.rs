//! Hyper-parameter schedules as functions of training progress (0 → 1), with fastai's formulas.

use std::f64::consts::PI;

/// fastai's `SchedCos`: cosine from `start` to `end` as `pos` goes 0 → 1.
pub fn sched_cos(start: f64, end: f64, pos: f64) -> f64 {
    start + (1.0 + (PI * (1.0 - pos)).cos()) * (end - start) / 2.0
}

/// fastai's `combined_cos`: cosine `start → middle` over the first `pct` of training, then
/// cosine `middle → end`.
pub fn combined_cos(pct: f64, start: f64, middle: f64, end: f64, pos: f64) -> f64 {
    if pct > 0.0 && pos < pct {
        sched_cos(start, middle, pos / pct)
    } else if pct >= 1.0 {
        middle
    } else {
        sched_cos(middle, end, (pos - pct) / (1.0 - pct))
    }
}

/// fastai's one-cycle policy (`fit_one_cycle`), for the learning rate and the momentum.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct OneCycle {
    /// Peak learning rate.
    pub lr_max: f64,
    /// The cycle starts at `lr_max / div` (fastai: 25).
    pub div: f64,
    /// and ends at `lr_max / div_final` (fastai: 1e5).
    pub div_final: f64,
    /// Fraction of training spent warming up (fastai: 0.25).
    pub pct_start: f64,
    /// Momentum at start, middle and end (fastai: 0.95, 0.85, 0.95).
    pub moms: (f64, f64, f64),
}

impl OneCycle {
    /// One-cycle with fastai's defaults around `lr_max`.
    pub fn new(lr_max: f64) -> Self {
        Self {
            lr_max,
            div: 25.0,
            div_final: 1e5,
            pct_start: 0.25,
            moms: (0.95, 0.85, 0.95),
        }
    }

    /// Learning rate at progress `pos`.
    pub fn lr(&self, pos: f64) -> f64 {
        combined_cos(
            self.pct_start,
            self.lr_max / self.div,
            self.lr_max,
            self.lr_max / self.div_final,
            pos,
        )
    }

    /// Momentum at progress `pos`.
    pub fn mom(&self, pos: f64) -> f64 {
        combined_cos(self.pct_start, self.moms.0, self.moms.1, self.moms.2, pos)
    }
}

/// A learning-rate (and momentum) schedule over one call to `fit`.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Schedule {
    /// fastai's one-cycle.
    OneCycle(OneCycle),
    /// A constant learning rate and momentum.
    Constant {
        /// Learning rate.
        lr: f64,
        /// Momentum.
        mom: f64,
    },
}

impl Schedule {
    /// Learning rate at progress `pos` (0 → 1).
    pub fn lr(&self, pos: f64) -> f64 {
        match self {
            Schedule::OneCycle(s) => s.lr(pos),
            Schedule::Constant { lr, .. } => *lr,
        }
    }

    /// Momentum at progress `pos` (0 → 1).
    pub fn mom(&self, pos: f64) -> f64 {
        match self {
            Schedule::OneCycle(s) => s.mom(pos),
            Schedule::Constant { mom, .. } => *mom,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Values computed by hand from fastai's formulas (`combined_cos` with `SchedCos`):
    /// lr_max 1e-3, div 25, div_final 1e5, pct_start 0.25, moms (0.95, 0.85, 0.95).
    #[test]
    fn one_cycle_matches_fastai_formulas() {
        let s = OneCycle::new(1e-3);
        let close = |a: f64, b: f64| (a - b).abs() <= 1e-12 + 1e-9 * b.abs();
        // pos 0: start = lr_max/div.
        assert!(close(s.lr(0.0), 4e-5));
        // pos 0.125: halfway through warm-up, cosine midpoint of 4e-5 and 1e-3.
        assert!(close(s.lr(0.125), (4e-5 + 1e-3) / 2.0));
        // pos 0.25: the peak.
        assert!(close(s.lr(0.25), 1e-3));
        // pos 0.625: halfway down, midpoint of 1e-3 and 1e-8.
        assert!(close(s.lr(0.625), (1e-3 + 1e-8) / 2.0));
        // pos 1: lr_max/div_final.
        assert!(close(s.lr(1.0), 1e-8));
        // A quarter into warm-up: 4e-5 + (1 + cos(3π/4))/2 · (1e-3 − 4e-5).
        let q = 4e-5 + (1.0 - std::f64::consts::FRAC_1_SQRT_2) / 2.0 * (1e-3 - 4e-5);
        assert!(close(s.lr(0.0625), q));
        assert!(close(s.mom(0.0), 0.95));
        assert!(close(s.mom(0.25), 0.85));
        assert!(close(s.mom(0.625), 0.90));
        assert!(close(s.mom(1.0), 0.95));
    }

    #[test]
    fn one_cycle_is_monotone_in_each_phase() {
        let s = OneCycle::new(0.01);
        let lrs: Vec<f64> = (0..=100).map(|i| s.lr(i as f64 / 100.0)).collect();
        assert!(lrs[..=25].windows(2).all(|w| w[1] >= w[0]));
        assert!(lrs[25..].windows(2).all(|w| w[1] <= w[0]));
    }
}
