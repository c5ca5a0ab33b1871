//! Prediction and evaluation of a tabular run on new CSV rows, processed exactly as in training;
//! unseen levels become `#na#` and are counted, never an error.

use std::path::Path;

use burn::tensor::Device;
use burn::tensor::activation::softmax;

use super::config::load_bundle;
use super::data::gather;
use super::model::TabularModel;
use super::process::{Processor, Target};
use super::table::Table;
use crate::error::{Error, Result};

/// Model outputs for every row of `table`: class probabilities, or the value (one column).
pub fn predict_table(
    model: &TabularModel,
    processor: &Processor,
    table: &Table,
    with_target: bool,
    device: &Device,
) -> Result<(Vec<Vec<f32>>, super::process::Processed)> {
    let p = processor.transform(table, with_target)?;
    Ok((predict_processed(model, processor, &p, device), p))
}

/// Model outputs for processed rows, in batches of 512.
pub fn predict_processed(
    model: &TabularModel,
    processor: &Processor,
    p: &super::process::Processed,
    device: &Device,
) -> Vec<Vec<f32>> {
    let mut out = Vec::with_capacity(p.n);
    for start in (0..p.n).step_by(512) {
        let rows: Vec<usize> = (start..(start + 512).min(p.n)).collect();
        let y = model.forward_batch(&gather(p, &rows), device);
        out.extend(output_rows(processor, y));
    }
    out
}

/// Model outputs `[n, out]` as one row each: class probabilities (softmax), or the value.
pub fn output_rows(processor: &Processor, y: burn::tensor::Tensor<2>) -> Vec<Vec<f32>> {
    let k = processor.target.out_size();
    let y = if processor.target.is_regression() {
        y
    } else {
        softmax(y, 1)
    };
    let v: Vec<f32> = y
        .into_data()
        .convert::<f32>()
        .try_to_vec::<f32>()
        .unwrap_or_default();
    v.chunks(k.max(1)).map(<[f32]>::to_vec).collect()
}

/// What `tabular predict` wrote.
#[derive(Debug, Clone)]
pub struct PredictSummary {
    /// Rows predicted.
    pub n: usize,
    /// Cells whose level was not seen in training, per categorical column (non-zero only).
    pub unseen: Vec<(String, usize)>,
    /// Lines of rows the model gave no finite output for (their prediction cells are empty).
    pub failed: Vec<u64>,
}

/// Predicts every row of `csv` with the run `run_dir` and writes the input columns plus the
/// predictions (`<target>_pred`, and `p_<class>` per class) as CSV to `out`.
pub fn predict_csv(
    run_dir: &Path,
    csv: &Path,
    delimiter: u8,
    out: &mut dyn std::io::Write,
    device: &Device,
) -> Result<PredictSummary> {
    let (model, bundle) = load_bundle(run_dir, device)?;
    let pr = &bundle.processor;
    let table = Table::read(csv, delimiter)?;
    let (preds, p) = predict_table(&model, pr, &table, false, device)?;
    let mut w = csv::Writer::from_writer(out);
    let io = |e: csv::Error| Error::Config(format!("writing predictions: {e}"));
    let mut header = table.headers.clone();
    header.push(format!("{}_pred", pr.target.name()));
    if let Target::Classification { vocab, .. } = &pr.target {
        header.extend(vocab.iter().map(|c| format!("p_{c}")));
    }
    w.write_record(&header).map_err(io)?;
    let raw = super::table::raw_rows(csv, delimiter)?;
    let mut failed = Vec::new();
    for ((probs, record), &line) in preds.iter().zip(&raw).zip(&table.lines) {
        let mut row: Vec<String> = record.iter().map(str::to_string).collect();
        if !probs.iter().all(|p| p.is_finite()) {
            // No class from a non-finite output: the row keeps its place, its cells stay empty.
            failed.push(line);
            row.resize(header.len(), String::new());
            w.write_record(&row).map_err(io)?;
            continue;
        }
        match &pr.target {
            Target::Classification { vocab, .. } => {
                let best = argmax(probs);
                row.push(vocab[best].clone());
                row.extend(probs.iter().map(|p| format!("{p:.6}")));
            }
            Target::Regression { .. } => row.push(format!("{:.6}", probs[0])),
        }
        w.write_record(&row).map_err(io)?;
    }
    w.flush()
        .map_err(|e| Error::Config(format!("writing predictions: {e}")))?;
    Ok(PredictSummary {
        n: p.n,
        unseen: unseen_counts(pr, &p),
        failed,
    })
}

/// Non-zero counts of unseen levels by column.
pub fn unseen_counts(pr: &Processor, p: &super::process::Processed) -> Vec<(String, usize)> {
    pr.cat_inputs()
        .into_iter()
        .zip(&p.unseen)
        .filter(|(_, n)| **n > 0)
        .map(|(c, n)| (c, *n))
        .collect()
}

/// Index of the largest value.
pub fn argmax(v: &[f32]) -> usize {
    (0..v.len())
        .max_by(|&a, &b| v[a].total_cmp(&v[b]))
        .unwrap_or(0)
}

/// Metrics of a run on labelled rows.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct TabularEval {
    /// Rows scored.
    pub n: usize,
    /// Mean loss (cross-entropy, or squared error).
    pub loss: f64,
    /// Accuracy (classification).
    pub accuracy: Option<f64>,
    /// Root mean squared error (regression).
    pub rmse: Option<f64>,
    /// Unseen levels by column.
    pub unseen: Vec<(String, usize)>,
}

/// Scores the model on processed rows with targets.
pub fn score(
    model: &TabularModel,
    pr: &Processor,
    p: &super::process::Processed,
    device: &Device,
) -> TabularEval {
    score_outputs(pr, p, &predict_processed(model, pr, p, device))
}

/// Scores outputs `preds` (as [`output_rows`] gives them) of processed rows with targets.
pub fn score_outputs(
    pr: &Processor,
    p: &super::process::Processed,
    preds: &[Vec<f32>],
) -> TabularEval {
    let n = p.n.max(1) as f64;
    let (loss, accuracy, rmse) = if pr.target.is_regression() {
        let mse = preds
            .iter()
            .zip(&p.y_value)
            .map(|(q, &y)| f64::from(q[0] - y).powi(2))
            .sum::<f64>()
            / n;
        (mse, None, Some(mse.sqrt()))
    } else {
        let (mut ce, mut ok) = (0.0, 0usize);
        for (q, &y) in preds.iter().zip(&p.y_class) {
            ce -= f64::from(q[y as usize].max(1e-12)).ln();
            ok += usize::from(argmax(q) == y as usize);
        }
        (ce / n, Some(ok as f64 / n), None)
    };
    TabularEval {
        n: p.n,
        loss,
        accuracy,
        rmse,
        unseen: unseen_counts(pr, p),
    }
}

/// Evaluates the run on the labelled rows of `csv` (rows without a target are left out).
pub fn evaluate_csv(
    run_dir: &Path,
    csv: &Path,
    delimiter: u8,
    device: &Device,
) -> Result<TabularEval> {
    let (model, bundle) = load_bundle(run_dir, device)?;
    let pr = &bundle.processor;
    let table = Table::read(csv, delimiter)?;
    let t = table.column(pr.target.name())?;
    let keep: Vec<usize> = (0..table.len())
        .filter(|&r| table.columns[t][r].is_some())
        .collect();
    let table = table.select(&keep);
    let p = pr.transform(&table, true)?;
    Ok(score(&model, pr, &p, device))
}
