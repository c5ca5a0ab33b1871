//! Permutation feature importance: how much the validation metric worsens when one input
//! column's values are shuffled across rows (Breiman 2001), each column shuffled `repeats` times.

use std::path::Path;

use burn::tensor::Device;
use rand::SeedableRng;
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use serde::{Deserialize, Serialize};

use super::model::TabularModel;
use super::predict::score;
use super::process::Processor;
use super::table::Table;
use crate::error::Result;
use crate::report::html::{self, Section};
use crate::report::plot::plot_bars;
use crate::run_dir::RunDir;

/// The importance of one input column.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Importance {
    /// The column.
    pub column: String,
    /// Mean worsening of the metric (accuracy drop, or RMSE rise) over the shuffles.
    pub importance: f64,
    /// Standard deviation over the shuffles.
    pub std: f64,
}

/// The metric the importance is measured on: accuracy (higher is better) or −RMSE.
fn metric(model: &TabularModel, pr: &Processor, table: &Table, device: &Device) -> Result<f64> {
    let p = pr.transform(table, true)?;
    let e = score(model, pr, &p, device);
    Ok(e.accuracy.unwrap_or_else(|| -e.rmse.unwrap_or(f64::NAN)))
}

/// Permutation importance of every input column on the labelled rows `table`, largest first.
pub fn permutation_importance(
    model: &TabularModel,
    pr: &Processor,
    table: &Table,
    repeats: usize,
    seed: u64,
    device: &Device,
) -> Result<(f64, Vec<Importance>)> {
    let base = metric(model, pr, table, device)?;
    let mut out = Vec::new();
    for (k, name) in pr.cat_names.iter().chain(&pr.cont_names).enumerate() {
        let c = table.column(name)?;
        let mut drops = Vec::new();
        for rep in 0..repeats.max(1) {
            let mut shuffled = table.clone();
            let mut rng = StdRng::seed_from_u64(seed ^ ((k as u64) << 32) ^ rep as u64);
            shuffled.columns[c].shuffle(&mut rng);
            drops.push(base - metric(model, pr, &shuffled, device)?);
        }
        let n = drops.len() as f64;
        let mean = drops.iter().sum::<f64>() / n;
        let std = (drops.iter().map(|d| (d - mean).powi(2)).sum::<f64>() / n).sqrt();
        out.push(Importance {
            column: name.clone(),
            importance: mean,
            std,
        });
    }
    out.sort_by(|a, b| b.importance.total_cmp(&a.importance));
    Ok((base, out))
}

/// Writes `importance.json` and `importance.png` into `dir`.
pub fn write(dir: &Path, regression: bool, imps: &[Importance]) -> Result<()> {
    crate::io::write_json(&dir.join("importance.json"), &imps)?;
    let names: Vec<String> = imps.iter().map(|i| i.column.clone()).collect();
    let values: Vec<f64> = imps.iter().map(|i| i.importance).collect();
    let title = if regression {
        "permutation importance (RMSE increase)"
    } else {
        "permutation importance (accuracy drop)"
    };
    plot_bars(&names, &values, title, &dir.join("importance.png"))?;
    let section = Section::new(
        60,
        "importance",
        html::image("importance.png", "Permutation feature importance", 2),
    );
    RunDir::open(dir)?.add_section(section).map(drop)
}
