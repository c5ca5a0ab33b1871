//! A tabular run's report: per-class precision/recall/F1 and the confusion matrix of the
//! validation rows (classification) or predicted-against-actual values (regression), gathered
//! with the training table and plots into the run's `report.html`.

use std::path::{Path, PathBuf};

use burn::tensor::Device;

use super::model::TabularModel;
use super::predict::predict_table;
use super::process::Processor;
use super::table::Table;
use crate::clean::dataset::Split;
use crate::clean::interpret::{Interpretation, image_losses};
use crate::clean::report::InterpretReport;
use crate::data::Item;
use crate::error::Result;
use crate::io::write_json;
use crate::report::plot::{plot_confusion, plot_scatter};

/// Writes `interpret.json` + `confusion.png` or `residuals.png`, then `report.html`, in `run_dir`.
pub fn write(
    run_dir: &Path,
    model: &TabularModel,
    processor: &Processor,
    valid: &Table,
    device: &Device,
) -> Result<PathBuf> {
    if !valid.is_empty() {
        let (preds, p) = predict_table(model, processor, valid, true, device)?;
        if processor.target.is_regression() {
            let points: Vec<(f64, f64)> = p
                .y_value
                .iter()
                .zip(&preds)
                .map(|(&y, q)| (f64::from(y), f64::from(q[0])))
                .collect();
            let title = format!(
                "{}: predicted against actual (validation)",
                processor.target.name()
            );
            plot_scatter(
                &points,
                None,
                (&title, "actual", "predicted"),
                true,
                &run_dir.join("residuals.png"),
            )?;
        } else {
            let items: Vec<Item> = valid
                .lines
                .iter()
                .zip(&p.y_class)
                .map(|(line, &y)| Item {
                    path: PathBuf::from(format!("{}:{line}", valid.path.display())),
                    label: y as usize,
                })
                .collect();
            let vocab = match &processor.target {
                super::process::Target::Classification { vocab, .. } => vocab.clone(),
                _ => Vec::new(),
            };
            let interp = Interpretation {
                vocab,
                images: image_losses(&items, preds.into_iter().map(Some).collect()),
                skipped: Vec::new(),
            };
            let report = InterpretReport::new(&interp, Split::Valid, 10, 1);
            write_json(&run_dir.join("interpret.json"), &report)?;
            plot_confusion(
                &report.confusion,
                &report.vocab,
                &run_dir.join("confusion.png"),
            )?;
        }
    }
    crate::report::html::write_report(run_dir)
}
