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

/// fastai's `fit_sgdr`: `n_cycles` cosine cycles from `lr_max` to 0, the i-th lasting
/// `cycle_len · cycle_mult^i` epochs; the learning rate restarts at the top of each cycle.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Sgdr {
    /// Learning rate at the start of every cycle.
    pub lr_max: f64,
    /// Number of cycles.
    pub n_cycles: usize,
    /// Epochs of the first cycle.
    pub cycle_len: usize,
    /// Growth of each cycle's length (fastai: 2).
    pub cycle_mult: usize,
}

impl Sgdr {
    /// Total epochs of all cycles (fastai: `cycle_len · (cycle_mult^n − 1) / (cycle_mult − 1)`);
    /// `usize::MAX` when the count does not fit (see [`Sgdr::checked_epochs`]).
    pub fn n_epochs(&self) -> usize {
        self.checked_epochs().unwrap_or(usize::MAX)
    }

    /// Total epochs of all cycles, or `None` when the count overflows.
    pub fn checked_epochs(&self) -> Option<usize> {
        (0..self.n_cycles).try_fold(0usize, |total, i| {
            let len = self
                .cycle_mult
                .checked_pow(u32::try_from(i).ok()?)?
                .checked_mul(self.cycle_len)?;
            total.checked_add(len)
        })
    }

    /// Learning rate at progress `pos` of the whole run.
    pub fn lr(&self, pos: f64) -> f64 {
        let total = self.n_epochs() as f64;
        let mut start = 0.0;
        for i in 0..self.n_cycles {
            let len = self.cycle_len as f64 * (self.cycle_mult as f64).powi(i as i32);
            let pct = len / total;
            if pos < start + pct || i + 1 == self.n_cycles {
                return sched_cos(self.lr_max, 0.0, ((pos - start) / pct).clamp(0.0, 1.0));
            }
            start += pct;
        }
        0.0
    }
}

/// A learning-rate (and momentum) schedule over one call to `fit`, as a function of progress.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Schedule {
    /// fastai's one-cycle.
    OneCycle(OneCycle),
    /// fastai's `fit_sgdr` (momentum constant).
    Sgdr {
        /// The cycles.
        sgdr: Sgdr,
        /// Momentum.
        mom: f64,
    },
    /// fastai's `fit_flat_cos`: `lr` for `pct_start` of training, then cosine to `lr / div_final`.
    FlatCos {
        /// Flat learning rate.
        lr: f64,
        /// Fraction of training at the flat rate (fastai: 0.75).
        pct_start: f64,
        /// Final division (fastai: 1e5).
        div_final: f64,
        /// Momentum.
        mom: f64,
    },
    /// Cosine annealing from `lr` to 0 over the whole fit (one SGDR cycle, no restart).
    Cosine {
        /// Starting learning rate.
        lr: f64,
        /// Momentum.
        mom: f64,
    },
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
        match *self {
            Schedule::OneCycle(s) => s.lr(pos),
            Schedule::Sgdr { sgdr, .. } => sgdr.lr(pos),
            Schedule::FlatCos {
                lr,
                pct_start,
                div_final,
                ..
            } => {
                if pos < pct_start {
                    lr
                } else {
                    sched_cos(lr, lr / div_final, (pos - pct_start) / (1.0 - pct_start))
                }
            }
            Schedule::Cosine { lr, .. } => sched_cos(lr, 0.0, pos),
            Schedule::Constant { lr, .. } => lr,
        }
    }

    /// Momentum at progress `pos` (0 → 1).
    pub fn mom(&self, pos: f64) -> f64 {
        match *self {
            Schedule::OneCycle(s) => s.mom(pos),
            Schedule::Sgdr { mom, .. }
            | Schedule::FlatCos { mom, .. }
            | Schedule::Cosine { mom, .. }
            | Schedule::Constant { mom, .. } => mom,
        }
    }

    /// Peak learning rate of the schedule (to scale discriminative learning rates).
    pub fn lr_max(&self) -> f64 {
        match *self {
            Schedule::OneCycle(s) => s.lr_max,
            Schedule::Sgdr { sgdr, .. } => sgdr.lr_max,
            Schedule::FlatCos { lr, .. }
            | Schedule::Cosine { lr, .. }
            | Schedule::Constant { lr, .. } => lr,
        }
    }
}

impl std::fmt::Display for Schedule {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Schedule::OneCycle(s) => write!(
                f,
                "one-cycle (peak {:e}, div {}, pct_start {})",
                s.lr_max, s.div, s.pct_start
            ),
            Schedule::Sgdr { sgdr, .. } => {
                write!(
                    f,
                    "SGDR ({} cycles from {} epochs, ×{}, restarting at {:e})",
                    sgdr.n_cycles, sgdr.cycle_len, sgdr.cycle_mult, sgdr.lr_max
                )
            }
            Schedule::FlatCos { lr, pct_start, .. } => {
                write!(f, "flat-cos ({lr:e}, cosine from {pct_start})")
            }
            Schedule::Cosine { lr, .. } => write!(f, "cosine ({lr:e} to 0)"),
            Schedule::Constant { lr, .. } => write!(f, "constant ({lr:e})"),
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
