//! How an ensemble's members' class probabilities become one: their mean (default), their
//! geometric mean (the mean of log-probabilities, renormalised), or a weighted mean with weights
//! fitted on part of the validation split.

use serde::{Deserialize, Serialize};

/// A combination rule.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Combination {
    /// Mean of probabilities.
    #[default]
    Mean,
    /// Geometric mean: exp(mean of log-probabilities), renormalised to sum 1.
    Geometric,
    /// Weighted mean of probabilities (weights sum to 1, one per member).
    Weighted(Vec<f64>),
    /// Greedy selection with replacement (Caruana et al., 2004): the mean of the chosen
    /// members, each weighted by how often it was chosen (weights sum to 1, one per member).
    Selected(Vec<f64>),
}

impl std::str::FromStr for Combination {
    type Err = crate::error::Error;
    fn from_str(s: &str) -> crate::error::Result<Self> {
        match s {
            "mean" => Ok(Combination::Mean),
            "geometric" | "geomean" => Ok(Combination::Geometric),
            other => Err(crate::error::Error::Config(format!(
                "unknown combination {other:?} (mean, geometric; fitted weights come from `ensemble fit-weights`)"
            ))),
        }
    }
}

impl Combination {
    /// Combines one probability row per member.
    pub fn combine(&self, rows: &[&[f32]]) -> Vec<f32> {
        let k = rows.first().map_or(0, |r| r.len());
        let m = rows.len().max(1) as f64;
        match self {
            Combination::Mean => (0..k)
                .map(|c| (rows.iter().map(|r| f64::from(r[c])).sum::<f64>() / m) as f32)
                .collect(),
            Combination::Weighted(w) | Combination::Selected(w) => (0..k)
                .map(|c| {
                    rows.iter()
                        .zip(w)
                        .map(|(r, w)| w * f64::from(r[c]))
                        .sum::<f64>() as f32
                })
                .collect(),
            Combination::Geometric => {
                let logs: Vec<f64> = (0..k)
                    .map(|c| {
                        rows.iter()
                            .map(|r| f64::from(r[c].max(1e-12)).ln())
                            .sum::<f64>()
                            / m
                    })
                    .collect();
                let max = logs.iter().copied().fold(f64::NEG_INFINITY, f64::max);
                let e: Vec<f64> = logs.iter().map(|l| (l - max).exp()).collect();
                let z: f64 = e.iter().sum();
                e.iter().map(|v| (v / z) as f32).collect()
            }
        }
    }

    /// A short name for tables.
    pub fn name(&self) -> &'static str {
        match self {
            Combination::Mean => "mean",
            Combination::Geometric => "geometric",
            Combination::Weighted(_) => "weighted",
            Combination::Selected(_) => "selected",
        }
    }

    /// The per-member weights of a weighted or selected combination.
    pub fn weights(&self) -> Option<&[f64]> {
        match self {
            Combination::Weighted(w) | Combination::Selected(w) => Some(w),
            _ => None,
        }
    }

    /// ` (weights 0.50, 0.25, …)` for a message, or nothing for a rule without weights.
    pub fn weights_note(&self) -> String {
        match self.weights() {
            Some(w) if !w.is_empty() => {
                let w: Vec<String> = w.iter().map(|w| format!("{w:.2}")).collect();
                format!(" (weights {})", w.join(", "))
            }
            _ => String::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rules_combine_as_defined() {
        let (a, b) = ([0.8f32, 0.2], [0.4f32, 0.6]);
        let m = Combination::Mean.combine(&[&a, &b]);
        assert!((m[0] - 0.6).abs() < 1e-6 && (m[1] - 0.4).abs() < 1e-6);
        let g = Combination::Geometric.combine(&[&a, &b]);
        let (x, y) = ((0.8f64 * 0.4).sqrt(), (0.2f64 * 0.6).sqrt());
        assert!((f64::from(g[0]) - x / (x + y)).abs() < 1e-6);
        let w = Combination::Weighted(vec![0.25, 0.75]).combine(&[&a, &b]);
        assert!((w[0] - 0.5).abs() < 1e-6);
    }
}
