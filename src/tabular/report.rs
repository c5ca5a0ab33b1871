//! A tabular run's report: per-class precision/recall/F1 and the confusion matrix of the
//! validation rows (classification) or predicted-against-actual values (regression), gathered
//! with the training table and plots into the run's `report.html`.

use std::path::{Path, PathBuf};

use burn::tensor::Device;

use super::model::TabularModel;
use super::predict::predict_table;
use super::process::Processor;
use super::table::Table;
use crate::data::Item;
use crate::error::Result;
use crate::interpret::dataset::Split;
use crate::interpret::interpretation::{Interpretation, image_losses};
use crate::interpret::report::{CONFUSION_PLOT, INTERPRET_FILE, InterpretReport};
use crate::io::write_json;
use crate::report::html::{self, Section};
use crate::report::plot::{plot_confusion, plot_scatter};
use crate::run_dir::RunDir;

/// Predicted against actual, for regression.
pub const RESIDUALS_PLOT: &str = "residuals.png";

/// Writes `interpret.json` + `confusion.png` or `residuals.png`, and their report section, in
/// `run_dir`; returns the report's path.
pub fn write(
    run_dir: &Path,
    model: &TabularModel,
    processor: &Processor,
    valid: &Table,
    device: &Device,
) -> Result<PathBuf> {
    let mut section = None;
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
                &run_dir.join(RESIDUALS_PLOT),
            )?;
            section = Some(Section::new(
                40,
                "residuals",
                html::image(
                    RESIDUALS_PLOT,
                    "Predicted against actual (validation rows)",
                    2,
                ),
            ));
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
            write_json(&run_dir.join(INTERPRET_FILE), &report)?;
            plot_confusion(
                &report.confusion,
                &report.vocab,
                &run_dir.join(CONFUSION_PLOT),
            )?;
            section = Some(report.section(false));
        }
    }
    let run = RunDir::open(run_dir)?;
    match section {
        Some(s) => run.add_section(s),
        None => run.render(),
    }
}
