//! Parameter groups, freezing and discriminative learning rates (fastai's splitter and `slice`).

use std::fmt;
use std::str::FromStr;

use burn::module::{Module, ParamGroup};
use serde::{Deserialize, Serialize};

use crate::error::Error;

/// Learning rates for the parameter groups: one value for all, or fastai's `slice(lo, hi)`
/// spread geometrically from the first group to the last.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub enum Lrs {
    /// The same learning rate for every group.
    Single(f64),
    /// `slice(lo, hi)`: geometric from `lo` (first group) to `hi` (head).
    Range(f64, f64),
    /// `slice(hi)`: `hi / 10` for every group but the last, which gets `hi`.
    UpTo(f64),
}

impl Lrs {
    /// Refuses learning rates that are not positive and finite, or a range whose low end is
    /// above its high end; the message names the setting `name`.
    pub fn check(&self, name: &str) -> crate::error::Result<()> {
        let ok = |v: f64| v.is_finite() && v > 0.0;
        let valid = match *self {
            Lrs::Single(v) | Lrs::UpTo(v) => ok(v),
            Lrs::Range(lo, hi) => ok(lo) && ok(hi) && lo <= hi,
        };
        if valid {
            Ok(())
        } else {
            Err(crate::error::Error::Config(format!(
                "`{name}` {self}: learning rates are positive and finite (a range: low ≤ high)"
            )))
        }
    }

    /// The learning rate of the last group (the schedule's peak).
    pub fn max(&self) -> f64 {
        match *self {
            Lrs::Single(v) | Lrs::Range(_, v) | Lrs::UpTo(v) => v,
        }
    }

    /// Learning rate of each of `n` groups (fastai's `even_mults` for a range).
    pub fn per_group(&self, n: usize) -> Vec<f64> {
        match *self {
            Lrs::Single(v) => vec![v; n],
            Lrs::UpTo(v) => (0..n)
                .map(|i| if i + 1 == n { v } else { v / 10.0 })
                .collect(),
            Lrs::Range(lo, hi) => {
                if n < 2 {
                    return vec![hi; n];
                }
                let step = (hi / lo).powf(1.0 / (n - 1) as f64);
                (0..n).map(|i| lo * step.powi(i as i32)).collect()
            }
        }
    }

    /// This spread scaled by `f` (e.g. fastai's `base_lr /= 2`).
    pub fn scaled(self, f: f64) -> Self {
        match self {
            Lrs::Single(v) => Lrs::Single(v * f),
            Lrs::UpTo(v) => Lrs::UpTo(v * f),
            Lrs::Range(lo, hi) => Lrs::Range(lo * f, hi * f),
        }
    }
}

impl From<f64> for Lrs {
    fn from(v: f64) -> Self {
        Lrs::Single(v)
    }
}

impl fmt::Display for Lrs {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Lrs::Single(v) => write!(f, "{v:e}"),
            Lrs::Range(lo, hi) => write!(f, "{lo:e}:{hi:e}"),
            Lrs::UpTo(hi) => write!(f, ":{hi:e}"),
        }
    }
}

impl FromStr for Lrs {
    type Err = Error;
    /// `1e-3`, `1e-5:1e-3` (a range) or `:1e-3` (fastai's `slice(1e-3)`).
    fn from_str(s: &str) -> Result<Self, Error> {
        let num = |t: &str| {
            t.trim()
                .parse::<f64>()
                .ok()
                .filter(|v| *v > 0.0 && v.is_finite())
        };
        let bad = || {
            Error::Config(format!(
                "learning rate {s:?} is not a positive number, LO:HI or :HI"
            ))
        };
        match s.split_once(':') {
            None => num(s).map(Lrs::Single).ok_or_else(bad),
            Some(("", hi)) => num(hi).map(Lrs::UpTo).ok_or_else(bad),
            Some((lo, hi)) => match (num(lo), num(hi)) {
                (Some(lo), Some(hi)) if lo <= hi => Ok(Lrs::Range(lo, hi)),
                _ => Err(bad()),
            },
        }
    }
}

/// The parameters whose path starts with one of `prefixes` (anchored, unlike a substring match,
/// so `head.` does not catch `body.….conv_head.`).
pub fn prefix_group(prefixes: &[String]) -> ParamGroup {
    let alternatives: Vec<String> = prefixes.iter().map(|p| p.replace('.', "\\.")).collect();
    #[allow(
        clippy::expect_used,
        reason = "the prefixes are the model's own parameter paths with every dot escaped"
    )]
    ParamGroup::from_regex(format!("^({})", alternatives.join("|")))
        .expect("escaped prefixes form a valid regex")
}

/// Freezes every group before `n` except its BatchNorm parameters (fastai's `train_bn`), and
/// unfreezes the groups from `n` on.
pub fn freeze_to<M: Module>(model: M, groups: &[Vec<String>], n: usize) -> M {
    let mut model = model;
    for (i, prefixes) in groups.iter().enumerate() {
        model = model.set_require_grad_group(prefix_group(prefixes), i >= n);
    }
    model.set_require_grad_group(ParamGroup::from_predicate("bn"), true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_spread_geometrically_like_even_mults() {
        let l = Lrs::Range(1e-5, 1e-3).per_group(3);
        assert!(
            (l[0] - 1e-5).abs() < 1e-18
                && (l[1] - 1e-4).abs() < 1e-15
                && (l[2] - 1e-3).abs() < 1e-15
        );
        assert_eq!(Lrs::UpTo(1e-3).per_group(3), vec![1e-4, 1e-4, 1e-3]);
        assert_eq!("1e-5:1e-3".parse::<Lrs>().unwrap(), Lrs::Range(1e-5, 1e-3));
        assert_eq!(":2e-3".parse::<Lrs>().unwrap(), Lrs::UpTo(2e-3));
        assert!("1e-3:1e-5".parse::<Lrs>().is_err());
        assert!("fast".parse::<Lrs>().is_err());
    }
}
