//! `fastvision interpret`: a run's model on its data, written out as `interpret.json`,
//! `top_losses.png`, `confusion.png` and the run's `report.html`.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::dataset::{Split, items_in_vocab, run_dataset};
use super::interpret::{ClassReport, Confusion, ImageLoss, Interpretation, interpret};
use crate::data::{ImageFolder, Skipped};
use crate::error::{Error, Result};
use crate::infer::Predictor;
use crate::io::write_atomic;
use crate::report::grid::{Tile, image_grid};
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

/// The images of `split` of the run's data, predicted by the run's model.
pub fn interpret_split(
    run_dir: &Path,
    dir: Option<&Path>,
    split: Split,
    bs: usize,
    device: &burn::tensor::Device,
) -> Result<Interpretation> {
    let config = if crate::ensemble::is_ensemble(run_dir) {
        crate::ensemble::report::data_config(run_dir)?
    } else {
        crate::run::load_config(run_dir)?
    };
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
    write_atomic(&run_dir.join("interpret.json"), &json)?;
    let tiles = report
        .top_losses
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
                    format!(
                        "{} / {}",
                        report.vocab[im.predicted], report.vocab[im.actual]
                    ),
                    format!("{:.2} / {:.2}", im.loss, im.prob),
                ],
            })
        })
        .collect::<Result<Vec<_>>>()?;
    if !tiles.is_empty() {
        image_grid(&tiles, 4, 120, &run_dir.join("top_losses.png"))?;
    }
    let png = run_dir.join("confusion.png");
    if opts.normalize {
        plot_confusion_normalized(&interp.confusion_normalized(), &report.vocab, &png)?;
    } else {
        plot_confusion(&report.confusion, &report.vocab, &png)?;
    }
    crate::report::html::write_report(run_dir)?;
    Ok(report)
}
