//! A tabular run's settings (`TabularConfig`, saved as `train.json`) and its bundle: the model
//! settings and the fitted processing (`tabular.json`) beside `model.safetensors`.

use std::path::{Path, PathBuf};

use burn::tensor::Device;
use serde::{Deserialize, Serialize};

use super::model::{TabularModel, TabularModelConfig};
use super::process::Processor;
use crate::error::{Error, Result};
use crate::io::read_json;
use crate::weights::{WEIGHTS_FILE, load_weights};

/// File of a tabular bundle holding the model settings and the fitted processing.
pub const TABULAR_FILE: &str = "tabular.json";

/// How the validation rows are chosen.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum ValidSpec {
    /// A random `pct` of the rows (seeded, fastai's `RandomSplitter`).
    Pct(f64),
    /// Rows whose column (`True`/`1`/`yes`) marks them as validation.
    Column(String),
    /// Another CSV file with the same columns.
    File(PathBuf),
}

/// Everything a tabular run is made from; saved as its `train.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TabularConfig {
    /// The training CSV.
    pub csv: PathBuf,
    /// Field delimiter.
    pub delimiter: char,
    /// The target column.
    pub target: String,
    /// Columns the user named categorical.
    pub cat: Vec<String>,
    /// Columns the user named continuous.
    pub cont: Vec<String>,
    /// Force regression (`Some(true)`) or classification (`Some(false)`); inferred otherwise.
    pub regression: Option<bool>,
    /// Regression output range; 1.2× the training range when absent.
    pub y_range: Option<(f64, f64)>,
    /// The validation rows.
    pub valid: ValidSpec,
    /// Seed of the split, the initialisation and the shuffle.
    pub seed: u64,
    /// Epochs of one-cycle training.
    pub epochs: usize,
    /// Peak learning rate (fastai's default for tables: 1e-2).
    pub lr: f64,
    /// Run the LR finder first and use its valley suggestion.
    pub lr_auto: bool,
    /// Batch size (fastai: 64).
    pub bs: usize,
    /// Hidden layer widths (fastai: 200, 100).
    pub layers: Vec<usize>,
    /// Dropout after each hidden block.
    pub ps: f64,
    /// Dropout on the embeddings.
    pub embed_p: f64,
    /// Integer columns with at most this many values are categorical (fastai: 20).
    pub max_card: usize,
    /// Start the embeddings from this earlier run's, for the columns and levels they share.
    pub init_embeddings: Option<PathBuf>,
}

impl TabularConfig {
    /// fastai's defaults for `csv` and `target`: 20 % seeded validation, 5 epochs at 1e-2, bs 64.
    pub fn new(csv: impl Into<PathBuf>, target: impl Into<String>) -> Self {
        Self {
            csv: csv.into(),
            delimiter: ',',
            target: target.into(),
            cat: Vec::new(),
            cont: Vec::new(),
            regression: None,
            y_range: None,
            valid: ValidSpec::Pct(0.2),
            seed: 0,
            epochs: 5,
            lr: 1e-2,
            lr_auto: false,
            bs: 64,
            layers: vec![200, 100],
            ps: 0.0,
            embed_p: 0.0,
            max_card: 20,
            init_embeddings: None,
        }
    }

    /// Checks every setting (what the CLI's parsers refuse and what a hand-edited `train.json`
    /// may hold); each message names the setting and its allowed range.
    pub fn validate(&self) -> Result<()> {
        let bad = |m: String| Err(Error::Config(m));
        if self.epochs == 0 {
            return bad("`epochs` 0: train at least one epoch".into());
        }
        if self.bs < 2 {
            return bad(format!(
                "`bs` {}: at least 2 (BatchNorm needs two rows per batch)",
                self.bs
            ));
        }
        if let Some(w) = self.layers.iter().find(|&&w| w == 0) {
            return bad(format!("`layers`: every width at least 1 (got {w})"));
        }
        if let Some((lo, hi)) = self.y_range
            && !(lo.is_finite() && hi.is_finite() && lo < hi)
        {
            return bad(format!(
                "`y_range` ({lo}, {hi}): the low end must be below the high end"
            ));
        }
        if let ValidSpec::Pct(p) = self.valid
            && !(p > 0.0 && p < 1.0)
        {
            return bad(format!(
                "`ValidSpec::Pct` {p}: a fraction strictly between 0 and 1"
            ));
        }
        for (name, p) in [("`ps`", self.ps), ("`embed_p`", self.embed_p)] {
            if !(0.0..1.0).contains(&p) {
                return bad(format!("{name} {p}: a dropout probability in [0, 1)"));
            }
        }
        if !(self.lr > 0.0 && self.lr.is_finite()) {
            return bad(format!("`lr` {}: a positive learning rate", self.lr));
        }
        if !self.delimiter.is_ascii() {
            return bad("`delimiter` must be one ASCII character".into());
        }
        Ok(())
    }

    /// The same settings with the CSV files as absolute paths, so `train.json` means the same
    /// files from any working directory.
    pub fn with_absolute_paths(&self) -> Self {
        let abs = |p: &Path| std::fs::canonicalize(p).unwrap_or_else(|_| p.to_path_buf());
        Self {
            csv: abs(&self.csv),
            valid: match &self.valid {
                ValidSpec::File(f) => ValidSpec::File(abs(f)),
                v => v.clone(),
            },
            init_embeddings: self.init_embeddings.as_deref().map(abs),
            ..self.clone()
        }
    }
}

/// What a tabular bundle holds besides the weights.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TabularBundle {
    /// The model's settings.
    pub model: TabularModelConfig,
    /// The fitted processing (column roles, vocabularies, fill values, means and stds, target).
    pub processor: Processor,
}

/// The model settings of `config` for data processed by `processor`.
pub fn model_config(config: &TabularConfig, processor: &Processor) -> TabularModelConfig {
    let y_range = match &processor.target {
        super::process::Target::Regression { y_range, .. } => Some(*y_range),
        _ => None,
    };
    TabularModelConfig::new(
        processor.emb_szs(),
        processor.cont_names.len(),
        processor.target.out_size(),
    )
    .with_layers(config.layers.clone())
    .with_ps(config.ps)
    .with_embed_p(config.embed_p)
    .with_y_range(y_range)
}

/// Bytes each parameter takes while training: the f32 weight, its gradient, Adam's two moments,
/// and a copy while the weights are saved.
const TRAIN_BYTES_PER_PARAM: f64 = 20.0;

/// Refuses, naming the CSV file, a model too large to train in the memory left, before it is built.
pub fn check_model_size(config: &TabularConfig, processor: &Processor) -> Result<()> {
    let params = model_config(config, processor).n_params();
    let need = params * TRAIN_BYTES_PER_PARAM;
    match crate::backend::available_memory() {
        Some(have) if need > have => Err(Error::table(
            &config.csv,
            None,
            None,
            format!(
                "{} categorical and {} continuous inputs make a model of {:.1} million parameters, \
                 which needs about {:.1} GB to train, but {:.1} GB of memory is free: \
                 leave columns out of the file or narrow `layers`",
                processor.classes.len(),
                processor.cont_names.len(),
                params / 1e6,
                need / 1e9,
                have / 1e9
            ),
        )),
        _ => Ok(()),
    }
}

/// Rebuilds the model of the tabular run `dir` on `device`, in eval mode, with its processing.
pub fn load_bundle(dir: &Path, device: &Device) -> Result<(TabularModel, TabularBundle)> {
    let path = dir.join(TABULAR_FILE);
    let bundle: TabularBundle = read_json(&path)?;
    // Sizes read from the file are checked before anything is allocated.
    crate::backend::check_fits(
        device,
        4.0 * bundle.model.n_params(),
        "its model's weights",
        "`layers`",
    )
    .map_err(|e| e.in_file(&path))?;
    let model = bundle.model.init(device);
    let model = load_weights(model, &dir.join(WEIGHTS_FILE), TABULAR_FILE)?;
    Ok((burn::module::Module::valid(&model), bundle))
}
