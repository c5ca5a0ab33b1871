//! A tabular training run: read the CSV, choose column roles and the split, fit the processing
//! on the training rows, train the model with the Learner, and write the run folder (bundle with
//! the fitted processing, `log.json`, plots, `report.html`). Orchestration only.

use std::path::{Path, PathBuf};
use std::time::Instant;

use burn::tensor::Device;
use rand::SeedableRng;
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use serde::{Deserialize, Serialize};

use super::data::TabularDataLoaders;
use super::model::{TabularModel, TabularModelConfig};
use super::process::{Processor, TargetSpec};
use super::table::{ColumnKind, Table, cont_cat_split};
use crate::error::{Error, Result};
pub use crate::io::read_json;
use crate::io::write_json;
use crate::learner::checkpoint;
use crate::learner::progress::Progress;
use crate::learner::schedule::{OneCycle, Schedule};
use crate::learner::{AdamConfig, Callback, Learner, Recorder};
use crate::report::plot::{plot_losses, plot_lr_find, plot_schedule};
use crate::weights::{WEIGHTS_FILE, load_weights, save_weights};

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
}

/// What a tabular bundle holds besides the weights.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TabularBundle {
    /// The model's settings.
    pub model: TabularModelConfig,
    /// The fitted processing (column roles, vocabularies, fill values, means and stds, target).
    pub processor: Processor,
}

/// The data of a run: both splits as tables, the fitted processing and the loaders.
pub struct Prepared {
    /// Training rows.
    pub train: Table,
    /// Validation rows.
    pub valid: Table,
    /// The processing fitted on `train`.
    pub processor: Processor,
    /// Batches of both splits.
    pub dls: TabularDataLoaders,
    /// Rows dropped because their target was missing.
    pub dropped: usize,
}

/// Reads the data and fits the processing as `config` says; prints the column roles.
pub fn prepare(config: &TabularConfig) -> Result<Prepared> {
    let delim = u8::try_from(config.delimiter)
        .map_err(|_| Error::Config("--delimiter must be one ASCII character".into()))?;
    let table = Table::read(&config.csv, delim)?;
    let t = table.column(&config.target)?;
    let keep: Vec<usize> = (0..table.len())
        .filter(|&r| table.columns[t][r].is_some())
        .collect();
    let dropped = table.len() - keep.len();
    let table = table.select(&keep);
    if table.is_empty() {
        return Err(Error::table(
            &config.csv,
            None,
            Some(&config.target),
            "every row's target is missing",
        ));
    }
    let regression = config.regression.unwrap_or_else(|| match table.kind(t) {
        ColumnKind::Float => true,
        ColumnKind::Int => table.n_unique(t) > config.max_card,
        _ => false,
    });
    let (train, valid, valid_col) = split(&table, config, delim)?;
    let (cat, cont) = column_roles(&table, config, valid_col.as_deref())?;
    let spec = TargetSpec {
        name: config.target.clone(),
        regression,
        y_range: config.y_range,
    };
    let processor = Processor::fit(&train, &cat, &cont, &spec)?;
    let dls = TabularDataLoaders::new(
        processor.transform(&train, true)?,
        processor.transform(&valid, true)?,
        config.bs,
        config.seed,
    );
    Ok(Prepared {
        train,
        valid,
        processor,
        dls,
        dropped,
    })
}

/// The categorical and continuous columns: the user's, the rest by `cont_cat_split`.
fn column_roles(
    table: &Table,
    config: &TabularConfig,
    valid_col: Option<&str>,
) -> Result<(Vec<String>, Vec<String>)> {
    for name in config.cat.iter().chain(&config.cont) {
        table.column(name)?;
        if name == &config.target {
            return Err(Error::Config(format!(
                "column \"{name}\" is the target; it cannot also be an input"
            )));
        }
    }
    let mut skip: Vec<&str> = vec![config.target.as_str()];
    skip.extend(valid_col);
    skip.extend(config.cat.iter().map(String::as_str));
    skip.extend(config.cont.iter().map(String::as_str));
    let (auto_cont, auto_cat) = cont_cat_split(table, config.max_card, &skip);
    let in_order = |names: Vec<String>| -> Vec<String> {
        table
            .headers
            .iter()
            .filter(|h| names.contains(h))
            .cloned()
            .collect()
    };
    let cat = in_order(config.cat.iter().cloned().chain(auto_cat).collect());
    let cont = in_order(config.cont.iter().cloned().chain(auto_cont).collect());
    Ok((cat, cont))
}

/// The training and validation tables, and the split column (not an input) if one was used.
fn split(
    table: &Table,
    config: &TabularConfig,
    delim: u8,
) -> Result<(Table, Table, Option<String>)> {
    match &config.valid {
        ValidSpec::File(path) => {
            let valid = Table::read(path, delim)?;
            for h in &table.headers {
                valid.column(h)?;
            }
            let t = valid.column(&config.target)?;
            let keep: Vec<usize> = (0..valid.len())
                .filter(|&r| valid.columns[t][r].is_some())
                .collect();
            Ok((table.clone(), valid.select(&keep), None))
        }
        ValidSpec::Column(name) => {
            let c = table.column(name)?;
            let mut is_valid = Vec::with_capacity(table.len());
            for (cell, &line) in table.columns[c].iter().zip(&table.lines) {
                let v = match cell.as_deref().map(str::to_ascii_lowercase).as_deref() {
                    Some("true" | "1" | "yes") => true,
                    Some("false" | "0" | "no") | None => false,
                    Some(other) => {
                        return Err(Error::table(
                            &table.path,
                            Some(line),
                            Some(name),
                            format!(
                                "\"{other}\" is not True/False (the column marks validation rows)"
                            ),
                        ));
                    }
                };
                is_valid.push(v);
            }
            let rows = |want: bool| -> Vec<usize> {
                (0..table.len()).filter(|&r| is_valid[r] == want).collect()
            };
            Ok((
                table.select(&rows(false)),
                table.select(&rows(true)),
                Some(name.clone()),
            ))
        }
        ValidSpec::Pct(pct) => {
            if !(0.0..1.0).contains(pct) {
                return Err(Error::Config(format!(
                    "--valid-pct {pct} must be in [0, 1)"
                )));
            }
            let mut order: Vec<usize> = (0..table.len()).collect();
            order.shuffle(&mut StdRng::seed_from_u64(config.seed));
            let n_valid = (pct * table.len() as f64).round() as usize;
            let (mut valid, mut train) = (order[..n_valid].to_vec(), order[n_valid..].to_vec());
            valid.sort_unstable();
            train.sort_unstable();
            Ok((table.select(&train), table.select(&valid), None))
        }
    }
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

/// What a finished tabular run reports.
#[derive(Debug, Clone)]
pub struct TabularSummary {
    /// The run folder.
    pub dir: PathBuf,
    /// The recorder (last epoch: final metrics).
    pub recorder: Recorder,
    /// Training and validation rows.
    pub n_train: usize,
    /// Validation rows.
    pub n_valid: usize,
    /// Wall time, seconds.
    pub seconds: f64,
}

impl TabularSummary {
    /// The closing line: `final: accuracy …` or `final: rmse …`.
    pub fn final_line(&self) -> String {
        match self.recorder.last() {
            Some(m) => match m.rmse {
                Some(r) => format!("final: rmse {r:.4}, valid loss {:.4}", m.valid_loss),
                None => format!(
                    "final: accuracy {:.4}, valid loss {:.4}",
                    m.accuracy, m.valid_loss
                ),
            },
            None => "final: no epoch trained".into(),
        }
    }
}

fn build_learner(
    p: &Prepared,
    config: &TabularConfig,
    device: &Device,
) -> Result<Learner<TabularModel>> {
    let device = device.clone().autodiff();
    device.seed(config.seed);
    let mut model = model_config(config, &p.processor).init(&device);
    if let Some(from) = &config.init_embeddings {
        let shared = super::embeddings::init_from(&mut model, &p.processor, from, &device)?;
        println!("embeddings: {shared} rows started from {}", from.display());
    }
    let mut learner = Learner::new(
        model,
        p.dls.clone(),
        AdamConfig::default(),
        &device,
        config.seed,
    );
    learner.callbacks = vec![Box::new(Progress::default()) as Box<dyn Callback<_>>];
    Ok(learner)
}

/// Prints the column roles and split sizes, as fastai users see them in `TabularPandas`.
fn describe(p: &Prepared, config: &TabularConfig) {
    let pr = &p.processor;
    println!(
        "target: {} ({})",
        config.target,
        match &pr.target {
            super::process::Target::Classification { vocab, .. } =>
                format!("classification, {} classes", vocab.len()),
            super::process::Target::Regression { y_range, .. } =>
                format!("regression, y_range {:.4}..{:.4}", y_range.0, y_range.1),
        }
    );
    println!("categorical: {}", pr.cat_inputs().join(", "));
    println!("continuous:  {}", pr.cont_names.join(", "));
    print!("rows: {} train, {} valid", p.dls.train.n, p.dls.valid.n);
    if p.dropped > 0 {
        print!(" ({} rows without a target left out)", p.dropped);
    }
    println!();
}

/// Trains a tabular model as `config` says into the new folder `run_dir`.
pub fn train(config: &TabularConfig, run_dir: &Path, device: &Device) -> Result<TabularSummary> {
    if run_dir.exists() {
        return Err(Error::Config(format!(
            "run folder {} already exists: choose another --name, or --resume it",
            run_dir.display()
        )));
    }
    let t0 = Instant::now();
    let p = prepare(config)?;
    describe(&p, config);
    let mut learner = build_learner(&p, config, device)?;
    std::fs::create_dir_all(run_dir).map_err(|e| Error::io(run_dir, e))?;
    let mut config = config.clone();
    if config.lr_auto {
        let found = learner.lr_find(Default::default())?;
        plot_lr_find(&found, &run_dir.join("lr_find.png"))?;
        config.lr = found.suggestions.valley;
        config.lr_auto = false;
        println!(
            "--lr auto: the LR finder suggests {:.2e} (valley)",
            config.lr
        );
    }
    write_json(&run_dir.join("train.json"), &config)?;
    learner.checkpoint_dir = Some(run_dir.join("checkpoint"));
    learner.fit_one_cycle(config.epochs, config.lr)?;
    finish(run_dir, &learner, &p, &config, t0)
}

/// Resumes the tabular run in `run_dir` from its last checkpoint and finishes it.
pub fn resume(run_dir: &Path, device: &Device) -> Result<TabularSummary> {
    let t0 = Instant::now();
    let config: TabularConfig = read_json(&run_dir.join("train.json"))?;
    let p = prepare(&config)?;
    let mut learner = build_learner(&p, &config, device)?;
    let ckpt = run_dir.join("checkpoint");
    let state = learner.load_checkpoint(&ckpt)?;
    learner.checkpoint_dir = Some(ckpt);
    let schedule = Schedule::OneCycle(OneCycle::new(config.lr));
    learner.set_lrs(config.lr.into());
    learner.fit_from(config.epochs, schedule, state.stage_epochs_done)?;
    finish(run_dir, &learner, &p, &config, t0)
}

fn finish(
    run_dir: &Path,
    learner: &Learner<TabularModel>,
    p: &Prepared,
    config: &TabularConfig,
    t0: Instant,
) -> Result<TabularSummary> {
    save_weights(run_dir, &learner.model)?;
    let bundle = TabularBundle {
        model: model_config(config, &p.processor),
        processor: p.processor.clone(),
    };
    write_json(&run_dir.join(TABULAR_FILE), &bundle)?;
    write_json(&run_dir.join("log.json"), &learner.recorder)?;
    plot_losses(&learner.recorder, &run_dir.join("loss.png"))?;
    plot_schedule(&learner.recorder, &run_dir.join("lr.png"))?;
    let device = learner.device().clone().without_autodiff();
    let (model, _) = load_bundle(run_dir, &device)?;
    super::report::write(run_dir, &model, &p.processor, &p.valid, &device)?;
    Ok(TabularSummary {
        dir: run_dir.into(),
        recorder: learner.recorder.clone(),
        n_train: p.dls.train.n,
        n_valid: p.dls.valid.n,
        seconds: t0.elapsed().as_secs_f64(),
    })
}

/// Rebuilds the model of the tabular run `dir` on `device`, in eval mode, with its processing.
pub fn load_bundle(dir: &Path, device: &Device) -> Result<(TabularModel, TabularBundle)> {
    let bundle: TabularBundle = read_json(&dir.join(TABULAR_FILE))?;
    let model = bundle.model.init(device);
    let model = load_weights(model, &dir.join(WEIGHTS_FILE), TABULAR_FILE)?;
    Ok((burn::module::Module::valid(&model), bundle))
}

/// Has `checkpoint.json`: an interrupted run that `--resume` continues.
pub fn has_checkpoint(dir: &Path) -> bool {
    checkpoint::load_state(&dir.join("checkpoint")).is_ok()
}
