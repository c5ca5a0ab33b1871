//! `fastvision interpret`: a run's model on its data, written out as `interpret.json`,
//! `top_losses.png`, `confusion.png` and the run's `report.html`.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::dataset::{Split, items_in_vocab, run_dataset};
use super::interpretation::{ClassReport, Confusion, ImageLoss, Interpretation, interpret};
use crate::data::{ImageFolder, Skipped};
use crate::error::{Error, Result};
use crate::infer::Predictor;
use crate::io::write_atomic;
use crate::report::grid::{Tile, image_grid};
use crate::report::html::{self, Section};
use crate::report::plot::{plot_confusion, plot_confusion_normalized};

/// What `interpret.json` holds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InterpretReport {
    /// The images looked at.
    pub split: Split,
    /// Images predicted.
    pub n: usize,
    /// Share predicted right.
    pub accuracy: f64,
    /// Precision, recall and F1 per class.
    pub classes: Vec<ClassReport>,
    /// Most frequent confusions.
    pub most_confused: Vec<Confusion>,
    /// The largest losses, largest first.
    pub top_losses: Vec<ImageLoss>,
    /// `confusion[actual][predicted]`.
    pub confusion: Vec<Vec<usize>>,
    /// Class names.
    pub vocab: Vec<String>,
    /// Every image's result (for `--split train`, the input of cleaning).
    pub images: Vec<ImageLoss>,
    /// Unreadable files.
    pub skipped: Vec<Skipped>,
}

/// Options of `fastvision interpret`.
#[derive(Debug, Clone)]
pub struct InterpretOptions {
    /// Dataset folder; `None` = the one the run trained on.
    pub dir: Option<PathBuf>,
    /// Which images.
    pub split: Split,
    /// Images in `top_losses.png`.
    pub k: usize,
    /// Plot row-normalised confusion.
    pub normalize: bool,
    /// Smallest count listed in most-confused pairs.
    pub min: usize,
    /// Batch size.
    pub bs: usize,
}

impl Default for InterpretOptions {
    fn default() -> Self {
        Self {
            dir: None,
            split: Split::Valid,
            k: 16,
            normalize: false,
            min: 1,
            bs: 64,
        }
    }
}

impl InterpretReport {
    /// The report of an interpretation.
    pub fn new(interp: &Interpretation, split: Split, k: usize, min: usize) -> Self {
        Self {
            split,
            n: interp.images.len(),
            accuracy: interp.accuracy(),
            classes: interp.class_report(),
            most_confused: interp.most_confused(min),
            top_losses: interp.top_losses(k).into_iter().cloned().collect(),
            confusion: interp.confusion(),
            vocab: interp.vocab.clone(),
            images: interp.images.clone(),
            skipped: interp.skipped.clone(),
        }
    }
}

impl InterpretReport {
    /// The report page's interpretation section (per-class table, most confused pairs, and the
    /// confusion plot and, with `top_losses_plot`, the top-losses grid written beside it).
    pub fn section(&self, top_losses_plot: bool) -> Section {
        let mut h = format!(
            "<h2>Interpretation ({:?} split, {} items, accuracy {:.4})</h2>",
            self.split, self.n, self.accuracy
        );
        h.push_str(&html::table(
            &["class", "precision", "recall", "F1", "support"],
            self.classes.iter().map(|c| {
                vec![
                    c.class.clone(),
                    format!("{:.3}", c.precision),
                    format!("{:.3}", c.recall),
                    format!("{:.3}", c.f1),
                    c.support.to_string(),
                ]
            }),
        ));
        h.push_str("<h3>Most confused (actual → predicted)</h3>");
        h.push_str(&html::table(
            &["actual", "predicted", "count"],
            self.most_confused
                .iter()
                .take(20)
                .map(|c| vec![c.actual.clone(), c.predicted.clone(), c.count.to_string()]),
        ));
        h.push_str(&html::image(CONFUSION_PLOT, "Confusion matrix", 3));
        if top_losses_plot {
            h.push_str(&html::image(
                TOP_LOSSES_PLOT,
                "Top losses (predicted / actual, loss / probability)",
                3,
            ));
        }
        Section::new(40, "interpretation", h)
    }
}

/// The interpretation's record in the run folder.
pub const INTERPRET_FILE: &str = "interpret.json";
/// The confusion matrix plot.
pub const CONFUSION_PLOT: &str = "confusion.png";
/// The top losses' image grid.
pub const TOP_LOSSES_PLOT: &str = "top_losses.png";

/// The images of `split` of the run's data, predicted by the run's model.
pub fn interpret_split(
    run_dir: &Path,
    dir: Option<&Path>,
    split: Split,
    bs: usize,
    device: &burn::tensor::Device,
) -> Result<Interpretation> {
    let config = crate::vision::data_config(run_dir)?;
    let predictor = Predictor::load(run_dir, device)?;
    let data = run_dataset(&config, dir)?;
    interpret_folder(&predictor, &data, split, bs)
}

/// The images of `split` of an already read dataset, predicted by `predictor`.
pub fn interpret_folder(
    predictor: &Predictor,
    data: &ImageFolder,
    split: Split,
    bs: usize,
) -> Result<Interpretation> {
    let (items, skipped) = items_in_vocab(data, split, &predictor.config.vocab)?;
    let mut interp = interpret(predictor, &items, bs);
    interp.skipped.extend(skipped);
    Ok(interp)
}

/// Interprets the run in `run_dir` and writes its files there; returns the report.
pub fn interpret_run(
    run_dir: &Path,
    opts: &InterpretOptions,
    device: &burn::tensor::Device,
) -> Result<InterpretReport> {
    let interp = interpret_split(run_dir, opts.dir.as_deref(), opts.split, opts.bs, device)?;
    let report = InterpretReport::new(&interp, opts.split, opts.k, opts.min);
    let json = serde_json::to_vec_pretty(&report).map_err(|e| Error::Config(e.to_string()))?;
    write_atomic(&run_dir.join(INTERPRET_FILE), &json)?;
    let grid = !report.top_losses.is_empty();
    if grid {
        plot_top_losses(
            &report.top_losses,
            &report.vocab,
            &run_dir.join(TOP_LOSSES_PLOT),
        )?;
    }
    let png = run_dir.join(CONFUSION_PLOT);
    if opts.normalize {
        plot_confusion_normalized(&interp.confusion_normalized(), &report.vocab, &png)?;
    } else {
        plot_confusion(&report.confusion, &report.vocab, &png)?;
    }
    crate::run_dir::RunDir::open(run_dir)?.add_section(report.section(grid))?;
    Ok(report)
}

/// Writes `losses` as a PNG grid (fastai's `plot_top_losses`): each image captioned
/// "predicted / actual" and "loss / probability".
pub fn plot_top_losses(losses: &[ImageLoss], vocab: &[String], path: &Path) -> Result<()> {
    let tiles = losses
        .iter()
        .map(|im| {
            let image =
                crate::data::decode::decode_rgb(&im.path).map_err(|message| Error::Image {
                    path: im.path.clone(),
                    message,
                })?;
            Ok(Tile {
                image,
                caption: vec![
                    format!("{} / {}", vocab[im.predicted], vocab[im.actual]),
                    format!("{:.2} / {:.2}", im.loss, im.prob),
                ],
            })
        })
        .collect::<Result<Vec<_>>>()?;
    image_grid(&tiles, 4, 120, path)
}
