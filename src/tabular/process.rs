//! fastai's tabular processing, fitted on the training split only: Categorify (level 0 `#na#` for
//! missing and unseen values), FillMissing (train median plus a `<col>_na` flag column), Normalize
//! (train mean and population std + 1e-7), and the target's vocabulary or range.

use serde::{Deserialize, Serialize};

use super::table::Table;
use crate::error::{Error, Result};

/// The level every categorical column reserves for missing and unseen values (code 0).
pub const NA_LEVEL: &str = "#na#";

/// What the model predicts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Target {
    /// A class out of `vocab` (sorted as fastai's `Categorize`).
    Classification {
        /// The target column.
        name: String,
        /// Its classes.
        vocab: Vec<String>,
    },
    /// A number, squashed into `y_range` by the model's last sigmoid.
    Regression {
        /// The target column.
        name: String,
        /// Output range (1.2× the training range unless given).
        y_range: (f64, f64),
    },
}

impl Target {
    /// The target column's name.
    pub fn name(&self) -> &str {
        match self {
            Target::Classification { name, .. } | Target::Regression { name, .. } => name,
        }
    }

    /// Model outputs: the number of classes, or 1.
    pub fn out_size(&self) -> usize {
        match self {
            Target::Classification { vocab, .. } => vocab.len(),
            Target::Regression { .. } => 1,
        }
    }

    /// Whether this is regression.
    pub fn is_regression(&self) -> bool {
        matches!(self, Target::Regression { .. })
    }
}

/// The fitted processing state, saved in the run's bundle so prediction processes rows identically.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Processor {
    /// Categorical columns the user's table has, in model order.
    pub cat_names: Vec<String>,
    /// Continuous columns, in model order.
    pub cont_names: Vec<String>,
    /// For each continuous column that had missing training values, its `<col>_na` flag column
    /// (these follow `cat_names` in the model's categorical inputs, as in fastai).
    pub na_flags: Vec<bool>,
    /// Levels of every categorical input (`cat_names`, then the `_na` flags), `#na#` first.
    pub classes: Vec<Vec<String>>,
    /// Fill value of each continuous column (training median).
    pub fill: Vec<f64>,
    /// Training mean of each continuous column (after filling).
    pub means: Vec<f64>,
    /// Training standard deviation (population) + 1e-7.
    pub stds: Vec<f64>,
    /// The target.
    pub target: Target,
}

/// Rows turned into model inputs.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Processed {
    /// Rows.
    pub n: usize,
    /// Category codes, row-major `[n, n_cat]`.
    pub cats: Vec<i64>,
    /// Normalised continuous values, row-major `[n, n_cont]`.
    pub conts: Vec<f32>,
    /// Class index per row (classification with a target column).
    pub y_class: Vec<i64>,
    /// Target value per row (regression with a target column).
    pub y_value: Vec<f32>,
    /// Per categorical input: cells whose level was not seen in training (coded `#na#`).
    pub unseen: Vec<usize>,
}

/// fastai's embedding size rule: `min(600, round(1.6 · n^0.56))` for `n` levels (with `#na#`).
pub fn emb_sz_rule(n: usize) -> usize {
    600.min((1.6 * (n as f64).powf(0.56)).round() as usize)
}

/// Sorts levels as pandas sorts a column's unique values: numerically when all are numbers.
fn sort_levels(levels: &mut Vec<String>) {
    let numeric: Option<Vec<f64>> = levels.iter().map(|l| l.parse::<f64>().ok()).collect();
    match numeric {
        Some(_) => levels.sort_by(|a, b| {
            let (x, y) = (
                a.parse::<f64>().unwrap_or(0.0),
                b.parse::<f64>().unwrap_or(0.0),
            );
            x.total_cmp(&y)
        }),
        None => levels.sort(),
    }
    levels.dedup();
}

fn median(mut v: Vec<f64>) -> f64 {
    if v.is_empty() {
        return 0.0;
    }
    v.sort_by(f64::total_cmp);
    let m = v.len() / 2;
    if v.len() % 2 == 1 {
        v[m]
    } else {
        (v[m - 1] + v[m]) / 2.0
    }
}

/// How to read the target column.
#[derive(Debug, Clone, PartialEq)]
pub struct TargetSpec {
    /// Column name.
    pub name: String,
    /// Regression (`true`) or classification.
    pub regression: bool,
    /// Regression output range, when the user gives one.
    pub y_range: Option<(f64, f64)>,
}

impl Processor {
    /// Fits the processing on `train` (the training rows only).
    pub fn fit(
        train: &Table,
        cat_names: &[String],
        cont_names: &[String],
        target: &TargetSpec,
    ) -> Result<Self> {
        let cat_cols = train.columns_of(cat_names)?;
        let cont_cols = train.columns_of(cont_names)?;
        let mut classes = Vec::with_capacity(cat_names.len());
        for &c in &cat_cols {
            let mut levels: Vec<String> = train.columns[c].iter().flatten().cloned().collect();
            sort_levels(&mut levels);
            levels.insert(0, NA_LEVEL.into());
            classes.push(levels);
        }
        let (mut fill, mut means, mut stds, mut na_flags) = (vec![], vec![], vec![], vec![]);
        let mut flag_classes = Vec::new();
        for &c in &cont_cols {
            let values = train.numbers(c, "continuous")?;
            let present: Vec<f64> = values.iter().flatten().copied().collect();
            let med = median(present.clone());
            let had_missing = present.len() < values.len();
            if had_missing {
                let mut levels: Vec<String> = values
                    .iter()
                    .map(|v| if v.is_none() { "True" } else { "False" }.to_string())
                    .collect();
                sort_levels(&mut levels);
                levels.insert(0, NA_LEVEL.into());
                flag_classes.push(levels);
            }
            na_flags.push(had_missing);
            let filled: Vec<f64> = values.iter().map(|v| v.unwrap_or(med)).collect();
            let n = filled.len().max(1) as f64;
            let mean = filled.iter().sum::<f64>() / n;
            let var = filled.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / n;
            fill.push(med);
            means.push(mean);
            stds.push(var.sqrt() + 1e-7);
        }
        classes.extend(flag_classes);
        let target = fit_target(train, target)?;
        Ok(Self {
            cat_names: cat_names.to_vec(),
            cont_names: cont_names.to_vec(),
            na_flags,
            classes,
            fill,
            means,
            stds,
            target,
        })
    }

    /// Names of the model's categorical inputs: the categorical columns, then the `_na` flags.
    pub fn cat_inputs(&self) -> Vec<String> {
        let flags = self
            .cont_names
            .iter()
            .zip(&self.na_flags)
            .filter(|(_, f)| **f)
            .map(|(n, _)| format!("{n}_na"));
        self.cat_names.iter().cloned().chain(flags).collect()
    }

    /// The (levels, width) of each embedding, by fastai's rule.
    pub fn emb_szs(&self) -> Vec<(usize, usize)> {
        self.classes
            .iter()
            .map(|c| (c.len(), emb_sz_rule(c.len())))
            .collect()
    }

    /// Processes `table`'s rows; reads the target when `with_target` (an unknown class or a
    /// non-number there is an error naming the line).
    pub fn transform(&self, table: &Table, with_target: bool) -> Result<Processed> {
        let n = table.len();
        let n_cat = self.classes.len();
        let n_cont = self.cont_names.len();
        let mut cats = vec![0i64; n * n_cat];
        let mut unseen = vec![0usize; n_cat];
        let cat_cols = table.columns_of(&self.cat_names)?;
        let cont_cols = table.columns_of(&self.cont_names)?;
        for (j, &c) in cat_cols.iter().enumerate() {
            let index: std::collections::HashMap<&str, i64> = self.classes[j]
                .iter()
                .enumerate()
                .skip(1)
                .map(|(i, l)| (l.as_str(), i as i64))
                .collect();
            for (r, cell) in table.columns[c].iter().enumerate() {
                if let Some(s) = cell {
                    match index.get(s.as_str()) {
                        Some(&code) => cats[r * n_cat + j] = code,
                        None => unseen[j] += 1,
                    }
                }
            }
        }
        let mut conts = vec![0f32; n * n_cont];
        let mut flag = self.cat_names.len();
        for (k, &c) in cont_cols.iter().enumerate() {
            let values = table.numbers(c, "continuous")?;
            for (r, v) in values.iter().enumerate() {
                let x = v.unwrap_or(self.fill[k]);
                conts[r * n_cont + k] = ((x - self.means[k]) / self.stds[k]) as f32;
            }
            if self.na_flags[k] {
                let code = |missing: bool| {
                    let level = if missing { "True" } else { "False" };
                    self.classes[flag]
                        .iter()
                        .position(|l| l == level)
                        .unwrap_or(0) as i64
                };
                for (r, v) in values.iter().enumerate() {
                    cats[r * n_cat + flag] = code(v.is_none());
                }
                flag += 1;
            }
        }
        let (mut y_class, mut y_value) = (Vec::new(), Vec::new());
        if with_target {
            let c = table.column(self.target.name())?;
            match &self.target {
                Target::Classification { vocab, name } => {
                    let index: std::collections::HashMap<&str, usize> = vocab
                        .iter()
                        .enumerate()
                        .map(|(i, v)| (v.as_str(), i))
                        .collect();
                    for (cell, &line) in table.columns[c].iter().zip(&table.lines) {
                        let s = cell.as_deref().unwrap_or("");
                        let i = index.get(s).copied().ok_or_else(|| {
                            Error::table(
                                &table.path,
                                Some(line),
                                Some(name),
                                format!(
                                    "class \"{s}\" was not in the training data (classes: {})",
                                    vocab.join(", ")
                                ),
                            )
                        })?;
                        y_class.push(i as i64);
                    }
                }
                Target::Regression { .. } => {
                    for (v, &line) in table.numbers(c, "the target")?.iter().zip(&table.lines) {
                        y_value.push(v.ok_or_else(|| {
                            Error::table(
                                &table.path,
                                Some(line),
                                Some(self.target.name()),
                                "missing target value",
                            )
                        })? as f32);
                    }
                }
            }
        }
        Ok(Processed {
            n,
            cats,
            conts,
            y_class,
            y_value,
            unseen,
        })
    }
}

fn fit_target(train: &Table, spec: &TargetSpec) -> Result<Target> {
    let c = train.column(&spec.name)?;
    if spec.regression {
        let values: Vec<f64> = train
            .numbers(c, "a regression target")?
            .into_iter()
            .flatten()
            .collect();
        let lo = values.iter().copied().fold(f64::INFINITY, f64::min);
        let hi = values.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        let pad = 0.1 * (hi - lo);
        return Ok(Target::Regression {
            name: spec.name.clone(),
            y_range: spec.y_range.unwrap_or((lo - pad, hi + pad)),
        });
    }
    let mut vocab: Vec<String> = train.columns[c].iter().flatten().cloned().collect();
    sort_levels(&mut vocab);
    if vocab.len() < 2 {
        return Err(Error::table(
            &train.path,
            None,
            Some(&spec.name),
            format!(
                "the target has {} class{} in the training rows ({}); classification needs at least two",
                vocab.len(),
                if vocab.len() == 1 { "" } else { "es" },
                vocab.join(", ")
            ),
        ));
    }
    Ok(Target::Classification {
        name: spec.name.clone(),
        vocab,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn embedding_sizes_follow_fastai() {
        assert_eq!(emb_sz_rule(3), 3);
        assert_eq!(emb_sz_rule(4), 3);
        assert_eq!(emb_sz_rule(10), 6);
        assert_eq!(emb_sz_rule(100_000), 600);
    }

    #[test]
    fn levels_sort_numerically_when_numbers() {
        let mut v = vec!["10".to_string(), "9".into(), "100".into(), "9".into()];
        sort_levels(&mut v);
        assert_eq!(v, ["9", "10", "100"]);
    }
}
