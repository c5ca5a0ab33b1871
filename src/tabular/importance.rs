//! Permutation feature importance: how much the validation metric worsens when one input
//! column's values are shuffled across rows (Breiman 2001), each column shuffled `repeats` times.

use std::collections::HashMap;
use std::path::Path;

use burn::tensor::{Device, Int, Tensor, TensorData};
use rand::SeedableRng;
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use serde::{Deserialize, Serialize};

use super::data::gather;
use super::model::{TabularModel, batch_inputs};
use super::predict::{output_rows, score_outputs};
use super::process::{Processed, Processor};
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

/// Rows run through the model at once.
const CHUNK: usize = 512;

/// Columns drawn in `importance.png` (all of them are in `importance.json`).
const PLOTTED: usize = 40;

/// The model split after its first linear layer, for processed rows: every row's output of that
/// layer, and how a permutation of one input column's rows moves it. A column's shuffle then
/// costs one pass of its own inputs and the layers after the first, not a whole forward pass
/// through every column, so the importance of all columns takes time linear in their number.
struct FirstLayer<'a> {
    model: &'a TabularModel,
    p: &'a Processed,
    device: Device,
    /// The first linear layer's output for every row, in chunks of [`CHUNK`] rows.
    h0: Vec<Tensor<2>>,
    /// Its weight `[features, width]`.
    w: Tensor<2>,
    /// Where each categorical input's embedding starts among the features.
    offsets: Vec<usize>,
    /// The continuous inputs' BatchNorm scale `γ / √(var + ε)` (it is affine in eval mode).
    scale: Vec<f32>,
}

impl<'a> FirstLayer<'a> {
    fn new(model: &'a TabularModel, p: &'a Processed, device: &Device) -> Self {
        let h0 = (0..p.n)
            .step_by(CHUNK)
            .map(|start| {
                let rows: Vec<usize> = (start..(start + CHUNK).min(p.n)).collect();
                let (cats, conts) = batch_inputs(&gather(p, &rows), device);
                model.first_linear().forward(model.features(cats, conts))
            })
            .collect();
        let mut offsets = Vec::with_capacity(model.embeds.len() + 1);
        offsets.push(0);
        for e in &model.embeds {
            offsets.push(offsets.last().copied().unwrap_or(0) + e.weight.dims()[1]);
        }
        let scale = model.bn_cont.as_ref().map_or_else(Vec::new, |bn| {
            let s = bn.gamma.val() / bn.running_var.value().add_scalar(bn.epsilon).sqrt();
            s.into_data()
                .convert::<f32>()
                .try_to_vec::<f32>()
                .unwrap_or_default()
        });
        Self {
            model,
            p,
            device: device.clone(),
            h0,
            w: model.first_linear().weight.val(),
            offsets,
            scale,
        }
    }

    /// The outputs, one row each, with the rows of categorical inputs `cats` and continuous
    /// inputs `conts` taken from the rows `order` (none: the rows as they are).
    fn outputs(
        &self,
        pr: &Processor,
        cats: &[usize],
        conts: &[usize],
        order: &[usize],
    ) -> Vec<Vec<f32>> {
        let (n, p, dev) = (self.p.n, self.p, &self.device);
        let n_cat = p.cats.len() / n.max(1);
        let n_cont = p.conts.len() / n.max(1);
        let width = self.w.dims()[1];
        // Each permuted input's features for every row, and the slice of `w` that reads them.
        let mut blocks: Vec<(Tensor<2>, Tensor<2>)> = Vec::new();
        for &j in cats {
            let codes: Vec<i64> = (0..n).map(|r| p.cats[r * n_cat + j]).collect();
            let codes = Tensor::<2, Int>::from_data(TensorData::new(codes, [n, 1]), dev);
            let (a, b) = (self.offsets[j], self.offsets[j + 1]);
            let block = self.model.embeds[j].forward(codes).reshape([n, b - a]);
            blocks.push((block, self.w.clone().slice([a..b, 0..width])));
        }
        let n_emb = self.offsets.last().copied().unwrap_or(0);
        for &k in conts {
            let x: Vec<f32> = (0..n)
                .map(|r| p.conts[r * n_cont + k] * self.scale[k])
                .collect();
            let block = Tensor::<2>::from_data(TensorData::new(x, [n, 1]), dev);
            let a = n_emb + k;
            blocks.push((block, self.w.clone().slice([a..a + 1, 0..width])));
        }
        let mut out = Vec::with_capacity(n);
        for (c, h0) in self.h0.iter().enumerate() {
            let rows = c * CHUNK..((c + 1) * CHUNK).min(n);
            let mut h = h0.clone();
            if !blocks.is_empty() {
                let from: Vec<i64> = order[rows.clone()].iter().map(|&r| r as i64).collect();
                let from = Tensor::<1, Int>::from_data(TensorData::new(from, [rows.len()]), dev);
                for (block, w) in &blocks {
                    let delta =
                        block.clone().select(0, from.clone()) - block.clone().slice([rows.clone()]);
                    h = h + delta.matmul(w.clone());
                }
            }
            out.extend(output_rows(pr, self.model.forward_from_first(h)));
        }
        out
    }
}

/// The metric the importance is measured on: accuracy (higher is better) or −RMSE.
fn metric(pr: &Processor, p: &Processed, preds: &[Vec<f32>]) -> f64 {
    let e = score_outputs(pr, p, preds);
    e.accuracy.unwrap_or_else(|| -e.rmse.unwrap_or(f64::NAN))
}

/// Permutation importance of every input column on the labelled rows `table`, largest first.
/// The rows are processed once; shuffling a column permutes the model inputs made from it (its
/// codes, or its values and `_na` flag), exactly what processing the shuffled column gives.
pub fn permutation_importance(
    model: &TabularModel,
    pr: &Processor,
    table: &Table,
    repeats: usize,
    seed: u64,
    device: &Device,
) -> Result<(f64, Vec<Importance>)> {
    let p = pr.transform(table, true)?;
    let first = FirstLayer::new(model, &p, device);
    let n = p.n;
    let identity: Vec<usize> = (0..n).collect();
    let base = metric(pr, &p, &first.outputs(pr, &[], &[], &identity));
    // The model inputs each table column feeds: (categorical input, continuous input) indices.
    let cat_cols = table.columns_of(&pr.cat_names)?;
    let cont_cols = table.columns_of(&pr.cont_names)?;
    let mut inputs: HashMap<usize, (Vec<usize>, Vec<usize>)> = HashMap::new();
    for (j, &c) in cat_cols.iter().enumerate() {
        inputs.entry(c).or_default().0.push(j);
    }
    let mut flag = pr.cat_names.len();
    for (k, &c) in cont_cols.iter().enumerate() {
        let e = inputs.entry(c).or_default();
        e.1.push(k);
        if pr.na_flags[k] {
            e.0.push(flag);
            flag += 1;
        }
    }
    let columns = cat_cols.iter().chain(&cont_cols);
    let names = pr.cat_names.iter().chain(&pr.cont_names);
    let mut out = Vec::new();
    for (k, (name, c)) in names.zip(columns).enumerate() {
        let (cats, conts) = &inputs[c];
        let mut drops = Vec::new();
        for rep in 0..repeats.max(1) {
            let mut rng = StdRng::seed_from_u64(seed ^ ((k as u64) << 32) ^ rep as u64);
            // The row a shuffle of the column's cells brings to each place.
            let mut order = identity.clone();
            order.shuffle(&mut rng);
            drops.push(base - metric(pr, &p, &first.outputs(pr, cats, conts, &order)));
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

/// Writes `importance.json` (every column) and `importance.png` (the first 40) into `dir`.
pub fn write(dir: &Path, regression: bool, imps: &[Importance]) -> Result<()> {
    crate::io::write_json(&dir.join("importance.json"), &imps)?;
    let shown = &imps[..imps.len().min(PLOTTED)];
    let names: Vec<String> = shown.iter().map(|i| i.column.clone()).collect();
    let values: Vec<f64> = shown.iter().map(|i| i.importance).collect();
    let mut title = if regression {
        "permutation importance (RMSE increase)"
    } else {
        "permutation importance (accuracy drop)"
    }
    .to_string();
    if shown.len() < imps.len() {
        title.push_str(&format!(", top {} of {}", shown.len(), imps.len()));
    }
    plot_bars(&names, &values, &title, &dir.join("importance.png"))?;
    let section = Section::new(
        60,
        "importance",
        html::image("importance.png", "Permutation feature importance", 2),
    );
    RunDir::open(dir)?.add_section(section).map(drop)
}
